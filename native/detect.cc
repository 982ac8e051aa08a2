// Which allocator serves malloc in this process. Address comparison does not work (the official
// node binary calls malloc through its own PLT), so each candidate is asked whether it owns a
// block malloc just returned. Runs once per process, on first use.
#include <string>

#include "backend.h"

namespace fragstat {

Backend& CurrentBackend() {
  // Detected once for the process and shared by every environment (worker threads included);
  // the backend objects are immutable after construction and never freed.
  static Backend* const backend = [] {
    if (Backend* b = ProbeJemalloc()) return b;
    if (Backend* b = ProbeTcmalloc()) return b;
    if (Backend* b = ProbeMimalloc()) return b;
    bool glibc_present = false;
    if (Backend* b = ProbeGlibc(glibc_present)) return b;
    if (Backend* b = ProbeJemallocWithoutStats()) return b;
    if (glibc_present) {
      return MakeUnknown(
          "malloc is served by an allocator fragstat does not recognise (glibc is the C library, but "
          "its heap did not move when malloc ran, and no jemalloc, tcmalloc or mimalloc owns the "
          "block): only rssBytes is reported and trim is not supported");
    }
    return MakeUnknown(
        "no supported allocator serves malloc here (not glibc: gnu_get_libc_version is missing, "
        "as on musl; no preloaded jemalloc, tcmalloc or mimalloc): only rssBytes is reported and "
        "trim is not supported");
  }();
  return *backend;
}

}  // namespace fragstat
