// mimalloc, found only when it serves malloc (preloaded or linked). Release builds keep few
// statistics: the process figures below are what mimalloc exposes reliably.
#include <string>

#include "backend.h"
#include "probe.h"
#include "symbols.h"

namespace fragstat {

namespace {

using IsInHeapRegionFn = bool (*)(const void*);
using VersionFn = int (*)();
using ProcessInfoFn = void (*)(size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*);
using CollectFn = void (*)(bool);

enum RawIndex { kCurrentCommit, kPeakCommit, kPeakRss, kPageFaults, kRawCount };

class MimallocBackend final : public Backend {
 public:
  MimallocBackend(VersionFn version, ProcessInfoFn info, CollectFn collect) : info_(info), collect_(collect) {
    if (version != nullptr) {
      const int v = version();  // 209 is 2.0.9
      version_ =
          std::to_string(v / 100) + "." + std::to_string((v % 100) / 10) + "." + std::to_string(v % 10);
    }
  }

  const char* Name() const override { return "mimalloc"; }
  std::string Version() const override { return version_; }
  std::string Limitations() const override {
    return "mimalloc release builds do not count live bytes: allocatedBytes, freeBytes and the "
           "ratios built on them are null; heapBytes is mimalloc's committed-memory estimate "
           "(mi_process_info).";
  }
  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> names = {"current_commit", "peak_commit", "peak_rss",
                                                   "page_faults"};
    return names;
  }
  bool HasStats() const override { return info_ != nullptr; }
  bool CanTrim() const override { return collect_ != nullptr; }

  Status Read(Figures& out, Detail*) override {
    if (info_ == nullptr) return Status();
    size_t elapsed = 0, user = 0, sys = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0, faults = 0;
    info_(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    out.raw[kCurrentCommit] = static_cast<double>(commit);
    out.raw[kPeakCommit] = static_cast<double>(peak_commit);
    out.raw[kPeakRss] = static_cast<double>(peak_rss);
    out.raw[kPageFaults] = static_cast<double>(faults);
    out.heap = static_cast<double>(commit);
    return Status();
  }

  // mi_collect(true) frees the pages of the calling thread's heap only, and Buffers live in the
  // JS thread's heap: measured, a collect on a pool thread released nothing of 256 MiB of freed
  // Buffers. So the JS thread does the forced collect (trim() reports the time as blockingMs).
  void PrepareTrimOnCallingThread() override {
    if (collect_ != nullptr) collect_(true);
  }

  bool PrepareReleasesMemory() const override { return true; }

  Status Trim(double& result) override {
    // The pool thread's own heap and the abandoned segments of exited threads.
    if (collect_ != nullptr) collect_(true);
    result = NAN;
    return Status();
  }

 private:
  ProcessInfoFn info_;
  CollectFn collect_;
  std::string version_;
};

}  // namespace

Backend* ProbeMimalloc() {
  auto in_heap = Resolve<IsInHeapRegionFn>("mi_is_in_heap_region");
  if (in_heap == nullptr) return nullptr;
  void* p = ProbeAllocate(64);
  const bool ours = in_heap(p);
  ProbeFree(p);
  if (!ours) return nullptr;
  return new MimallocBackend(Resolve<VersionFn>("mi_version"), Resolve<ProcessInfoFn>("mi_process_info"),
                             Resolve<CollectFn>("mi_collect"));
}

}  // namespace fragstat
