// glibc malloc (ptmalloc2). Pure C++; parsing of malloc_info is exposed for unit-style checks.
#pragma once

#include <cstddef>

#include "backend.h"

namespace fragstat {

// Parses the XML written by malloc_info(0, fp) into per-arena figures. Returns false when the
// text does not look like malloc_info output.
bool ParseMallocInfo(const char* xml, size_t len, Detail& out);

}  // namespace fragstat
