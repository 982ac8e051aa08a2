#include "probe.h"

#include <cstdlib>

namespace fragstat {

namespace {

void* volatile g_probe_sink = nullptr;

}  // namespace

void* ProbeAllocate(size_t bytes) {
  void* p = std::malloc(bytes);
  g_probe_sink = p;  // a volatile store: the compiler may not drop the malloc/free pair
  return g_probe_sink;
}

void ProbeFree(void* p) {
  g_probe_sink = nullptr;
  std::free(p);
}

}  // namespace fragstat
