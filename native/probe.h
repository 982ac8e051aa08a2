// Probe allocations: the malloc/free pair each backend's probe uses to ask its allocator whether it
// owns a block malloc just returned. Depends on nothing else in fragstat, so backends and the
// detection in detect.cc can both use it without depending on each other.
#pragma once

#include <cstddef>

namespace fragstat {

// malloc(bytes), kept from being elided: the compiler may not drop a malloc/free pair whose result
// it cannot see used, and a probe needs the allocation to happen.
void* ProbeAllocate(size_t bytes);
// free(p) for a block from ProbeAllocate.
void ProbeFree(void* p);

}  // namespace fragstat
