// jemalloc's heap profiler, driven through mallctl: whether it is available and active, switching
// it on and off, and dumping the sampled live allocations (heap_v2 text) to a private file whose
// contents are returned. Plain C++ over run-time-resolved symbols: no N-API here.
#pragma once

#include <string>

#include "backend.h"

namespace fragstat {

struct ProfileState {
  bool jemalloc = false;   // jemalloc serves malloc
  bool config = false;     // built with profiling (config.prof)
  bool enabled = false;    // started with profiling (opt.prof, i.e. MALLOC_CONF=prof:true)
  bool active = false;     // sampling now (prof.active)
  double lg_sample = NAN;  // log2 of the mean bytes between samples (prof.lg_sample)
};

ProfileState ReadProfileState();

// Sets prof.active; `previous` receives the value it had.
Status SetProfileActive(bool active, bool* previous);

// One prof.dump into a file created with mkstemp (mode 0600) in `dir`, read back into `text`
// and removed. Takes jemalloc's profiling locks for as long as the dump writes: threads that
// allocate a sampled object (or a new backtrace) meanwhile wait. Safe on any thread.
struct DumpResult {
  Status status;
  std::string text;
  double duration_ms = NAN;  // the prof.dump call alone
};
DumpResult DumpProfile(const std::string& dir);

// JavaScript frames in the stacks of allocations made on the main thread: installs
// jemalloc 5.3's experimental.hooks.prof_backtrace with an unwinder that continues, where libgcc's
// stops (at the V8 builtin that called into C++: JIT code has no unwind tables), by following
// frame pointers, which V8 keeps, within the main thread's stack. Other threads unwind as jemalloc
// does by default. `on` false restores the hook found at the first install. Must be called on the
// main thread (it records that thread's stack bounds).
Status SetJsBacktrace(bool on);

// The demangled form of a C++ symbol name, or an empty string when it is not a mangled name.
std::string Demangle(const char* name);

}  // namespace fragstat
