// Which allocator serves malloc in this process. Address comparison does not work (the official
// node binary calls malloc through its own PLT), so each candidate is asked whether it owns a
// block malloc just returned. Runs once per process, on first use.
#include <cstdlib>
#include <mutex>
#include <string>

#include "backend.h"
#include "symbols.h"

namespace fragstat {

namespace {

class UnknownBackend final : public Backend {
 public:
  explicit UnknownBackend(std::string reason) : reason_(std::move(reason)) {}
  const char* Name() const override { return "unknown"; }
  std::string Version() const override { return std::string(); }
  std::string Limitations() const override { return reason_; }
  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> none;
    return none;
  }
  bool HasStats() const override { return false; }
  bool CanTrim() const override { return false; }
  Status Read(Figures&, Detail*) override { return Status(); }
  Status Trim(double& result) override {
    result = NAN;
    return Status();
  }

 private:
  std::string reason_;
};

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

Backend* MakeUnknown(std::string reason) { return new UnknownBackend(std::move(reason)); }

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
