// Allocator settings: read what the running allocator exposes, and change the few that can be
// changed at run time. Plain C++ over entry points resolved with dlsym (symbols.h); no N-API.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "backend.h"

namespace fragstat {

// One setting under the allocator's own name ("opt.narenas", "M_TRIM_THRESHOLD",
// "mi_option_decommit_delay", ...). Exactly one of number/flag/text is meaningful, per `kind`.
struct Setting {
  enum Kind { kNumber, kBool, kText };
  std::string name;
  Kind kind = kNumber;
  double number = NAN;
  bool flag = false;
  std::string text;
};

// The settings the allocator named `allocator` (CurrentBackend().Name()) lets a process read:
// jemalloc's opt.* and live controls, tcmalloc's release rate and thread-cache limit, mimalloc
// 2.0.9's options. Empty for glibc (it has no public getter) and for allocators it cannot read.
std::vector<Setting> ReadAllocatorSettings(const std::string& allocator);

// glibc: the mallopt calls made through Mallopt() in this process, last value per parameter.
// mallopt is process-wide, so this record is too (guarded by a lock).
std::vector<Setting> MalloptCalls();

// glibc mallopt for a parameter named "M_ARENA_MAX", "M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD" or
// "M_TOP_PAD". Records the call when glibc accepts it.
Status Mallopt(const std::string& param, long value);

// Writes one setting of the running allocator (see tunables.cc for the names each accepts).
Status WriteAllocatorSetting(const std::string& allocator, const Setting& value);

}  // namespace fragstat
