// gperftools tcmalloc, found only when it serves malloc (preloaded or linked).
#include <algorithm>
#include <string>

#include "backend.h"
#include "probe.h"
#include "symbols.h"

namespace fragstat {

namespace {

using GetNumericPropertyFn = int (*)(const char*, size_t*);
using ReleaseFreeMemoryFn = void (*)();
using GetOwnershipFn = int (*)(const void*);
using TcVersionFn = const char* (*)(int*, int*, const char**);

constexpr int kOwned = 1;  // MallocExtension::kOwned

// Raw fields, in the order of RawFieldNames(). Each generic.* read (and each tcmalloc.*_cache_*
// one) runs a full statistics extraction inside tcmalloc, about 5 us in node: a snapshot reads
// only the two generic figures it needs and three cheap page-heap counters, each once.
enum RawIndex { kCurrentAllocated, kHeapSize, kPageheapFree, kPageheapUnmapped, kThreadCache, kRawCount };

class TcmallocBackend final : public Backend {
 public:
  TcmallocBackend(GetNumericPropertyFn get, ReleaseFreeMemoryFn release, TcVersionFn version)
      : get_(get), release_(release) {
    if (version != nullptr) {
      int major = 0, minor = 0;
      const char* patch = nullptr;
      const char* s = version(&major, &minor, &patch);
      if (s != nullptr) version_ = s;
    }
  }

  const char* Name() const override { return "tcmalloc"; }
  std::string Version() const override { return version_; }
  std::string Limitations() const override {
    return "tcmalloc has no arenas and cannot tell its largest free block: arenas and "
           "largestFreeBytes are null.";
  }
  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> names = {
        "generic.current_allocated_bytes", "generic.heap_size", "tcmalloc.pageheap_free_bytes",
        "tcmalloc.pageheap_unmapped_bytes", "tcmalloc.current_total_thread_cache_bytes"};
    return names;
  }
  bool HasStats() const override { return true; }
  bool CanTrim() const override { return release_ != nullptr; }

  Status Read(Figures& out, Detail*) override {
    const auto& names = RawFieldNames();
    for (int i = 0; i < kRawCount; i++) {
      size_t v = 0;
      if (get_(names[i], &v)) out.raw[i] = static_cast<double>(v);
    }
    out.allocated = out.raw[kCurrentAllocated];
    // heap_size counts unmapped (released) pages too; the footprint is what is still mapped.
    out.heap = out.raw[kHeapSize] - (std::isnan(out.raw[kPageheapUnmapped]) ? 0 : out.raw[kPageheapUnmapped]);
    out.free = out.heap - out.allocated;
    return Status();
  }

  // generic.total_physical_bytes is the page heap's mapped bytes plus metadata: each property
  // read is a full statistics extraction, so snapshots leave it out and the breakdown asks here.
  double MetadataBytes() override {
    size_t physical = 0, heap = 0, unmapped = 0;
    if (!get_("generic.total_physical_bytes", &physical) || !get_("generic.heap_size", &heap) ||
        !get_("tcmalloc.pageheap_unmapped_bytes", &unmapped)) {
      return NAN;
    }
    const double mapped = static_cast<double>(heap) - static_cast<double>(unmapped);
    return std::max(0.0, static_cast<double>(physical) - mapped);
  }

  Status Trim(double& result) override {
    if (release_ != nullptr) release_();
    result = NAN;
    return Status();
  }

 private:
  GetNumericPropertyFn get_;
  ReleaseFreeMemoryFn release_;
  std::string version_;
};

}  // namespace

Backend* ProbeTcmalloc() {
  auto ownership = Resolve<GetOwnershipFn>("MallocExtension_GetOwnership");
  auto get = Resolve<GetNumericPropertyFn>("MallocExtension_GetNumericProperty");
  if (ownership == nullptr || get == nullptr) return nullptr;
  void* p = ProbeAllocate(64);
  const bool owned = ownership(p) == kOwned;
  ProbeFree(p);
  if (!owned) return nullptr;
  return new TcmallocBackend(get, Resolve<ReleaseFreeMemoryFn>("MallocExtension_ReleaseFreeMemory"),
                             Resolve<TcVersionFn>("tc_version"));
}

}  // namespace fragstat
