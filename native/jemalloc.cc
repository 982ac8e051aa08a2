// jemalloc, found only when it serves malloc (preloaded or linked into the executable). Every
// statistic is read by MIB: names are translated once, then each read is a plain array lookup.
//
// jemalloc's statistics are a copy it refreshes when `epoch` is written, and that refresh merges
// the statistics of every arena and every thread cache: 60-140 us measured in a Node process, 11-13
// times process.memoryUsage(). So the figures are refreshed at most once per kRefreshMs, shared
// by every thread, and a snapshot says how old they are (Snapshot.statsAgeMs). A trim makes the
// next reading refresh.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "backend.h"
#include "clock.h"
#include "probe.h"
#include "symbols.h"

namespace fragstat {

namespace {

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using NameToMibFn = int (*)(const char*, size_t*, size_t*);
using MallctlByMibFn = int (*)(const size_t*, size_t, void*, size_t*, void*, size_t);
using StatsPrintFn = void (*)(void (*)(void*, const char*), void*, const char*);

constexpr size_t kArenasAll = 4096;  // MALLCTL_ARENAS_ALL
constexpr size_t kMaxMib = 6;
// The longest a snapshot serves figures from an earlier refresh.
constexpr double kRefreshMs = 10;

struct Mib {
  size_t v[kMaxMib];
  size_t len = 0;
};

// Raw fields, in the order of RawFieldNames().
enum RawIndex {
  kAllocated,
  kActive,
  kMetadata,
  kResident,
  kMapped,
  kRetained,
  kPdirty,
  kPmuzzy,
  kNarenas,
  kPage,
  kTcacheBytes,
  kRawCount
};

class JemallocBackend final : public Backend {
 public:
  JemallocBackend(MallctlFn mallctl, NameToMibFn nametomib, MallctlByMibFn bymib)
      : mallctl_(mallctl), nametomib_(nametomib), bymib_(bymib) {
    const char* v = nullptr;
    size_t sz = sizeof(v);
    if (mallctl_("version", &v, &sz, nullptr, 0) == 0 && v != nullptr) version_ = v;
    Translate("epoch", epoch_);
    Translate("stats.allocated", stats_[0]);
    Translate("stats.active", stats_[1]);
    Translate("stats.metadata", stats_[2]);
    Translate("stats.resident", stats_[3]);
    Translate("stats.mapped", stats_[4]);
    Translate("stats.retained", stats_[5]);
    Translate("stats.arenas.0.pdirty", pdirty_);
    Translate("stats.arenas.0.pmuzzy", pmuzzy_);
    Translate("stats.arenas.0.tcache_bytes", tcache_bytes_);
    Translate("arenas.narenas", narenas_);
    Translate("arena.0.initialized", initialized_);
    Translate("arena.0.purge", purge_);
    Translate("thread.tcache.flush", tcache_flush_);
    pdirty_.v[2] = kArenasAll;
    pmuzzy_.v[2] = kArenasAll;
    tcache_bytes_.v[2] = kArenasAll;
    purge_.v[1] = kArenasAll;
    size_t page_sz = sizeof(page_);
    Mib page;
    if (!Translate("arenas.page", page) || bymib_(page.v, page.len, &page_, &page_sz, nullptr, 0) != 0) {
      page_ = 4096;
    }
    stats_ok_ = epoch_.len && stats_[0].len && stats_[1].len && pdirty_.len && pmuzzy_.len;
  }

  const char* Name() const override { return "jemalloc"; }
  std::string Version() const override { return version_; }
  std::string Limitations() const override {
    std::string s;
    if (!stats_ok_) s += "this jemalloc was built without statistics (--disable-stats). ";
    s += "jemalloc cannot tell its largest free block: largestFreeBytes is null.";
    return s;
  }
  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> names = {"stats.allocated",
                                                   "stats.active",
                                                   "stats.metadata",
                                                   "stats.resident",
                                                   "stats.mapped",
                                                   "stats.retained",
                                                   "stats.arenas.all.pdirty",
                                                   "stats.arenas.all.pmuzzy",
                                                   "arenas.narenas",
                                                   "arenas.page",
                                                   "stats.arenas.all.tcache_bytes"};
    return names;
  }
  bool HasStats() const override { return stats_ok_; }
  bool CanTrim() const override { return purge_.len != 0; }

  Status Read(Figures& out, Detail*) override {
    if (!stats_ok_) return Status();
    std::lock_guard<std::mutex> lock(mu_);
    const double now = NowMs();
    // Also true while refreshed_ms_ is NaN (never refreshed, or a trim since).
    if (!(now - refreshed_ms_ < kRefreshMs)) {
      Figures fresh;
      if (Status s = Refresh(fresh); !s.ok()) return s;
      cached_ = fresh;
      refreshed_ms_ = now;
    }
    out = cached_;
    out.stats_age_ms = now - refreshed_ms_;
    return Status();
  }

  void PrepareTrimOnCallingThread() override {
    // The calling thread's cache holds freed small objects that purge cannot see.
    if (tcache_flush_.len) bymib_(tcache_flush_.v, tcache_flush_.len, nullptr, nullptr, nullptr, 0);
    Invalidate();
  }

  // malloc_stats_print's text, appended into one buffer reserved up front and cut at `max_bytes`.
  Status StatsText(size_t max_bytes, std::string& text, std::string& format, bool& truncated) override {
    truncated = false;
    if (stats_print_ == nullptr || max_bytes == 0) return Status();
    struct Sink {
      std::string* text;
      size_t max;
      bool cut;
    } sink{&text, max_bytes, false};
    text.clear();
    text.reserve(max_bytes);
    auto write = [](void* arg, const char* s) {
      Sink* k = static_cast<Sink*>(arg);
      const size_t n = std::strlen(s);
      const size_t room = k->max - k->text->size();
      if (n > room) k->cut = true;
      k->text->append(s, n < room ? n : room);
    };
    // The statistics are merged anew (an epoch write) so the report is of now.
    uint64_t epoch = 1;
    size_t esz = sizeof(epoch);
    if (epoch_.len) bymib_(epoch_.v, epoch_.len, &epoch, &esz, &epoch, sizeof(epoch));
    // "J": JSON would be larger; the default text, without per-size-class bin tables ("b", "l", "x").
    stats_print_(write, &sink, "blx");
    truncated = sink.cut;
    format = "jemalloc_stats";
    return Status();
  }

  Status Trim(double& result) override {
    const int rc = bymib_(purge_.v, purge_.len, nullptr, nullptr, nullptr, 0);
    Invalidate();
    if (rc != 0) {
      return Status::Error("ERR_FRAGSTAT_MALLCTL",
                           std::string("mallctl arena.<all>.purge: ") + std::strerror(rc));
    }
    result = NAN;
    return Status();
  }

 private:
  // Writes `epoch` and reads every figure anew.
  Status Refresh(Figures& out) {
    uint64_t epoch = 1;
    size_t esz = sizeof(epoch);
    if (int rc = bymib_(epoch_.v, epoch_.len, &epoch, &esz, &epoch, sizeof(epoch)); rc != 0) {
      return Status::Error("ERR_FRAGSTAT_MALLCTL", std::string("mallctl epoch: ") + std::strerror(rc));
    }
    for (int i = 0; i < 6; i++) {
      if (stats_[i].len == 0) continue;
      size_t v = 0;
      size_t sz = sizeof(v);
      if (bymib_(stats_[i].v, stats_[i].len, &v, &sz, nullptr, 0) == 0) out.raw[i] = static_cast<double>(v);
    }
    size_t pages = 0;
    size_t sz = sizeof(pages);
    if (bymib_(pdirty_.v, pdirty_.len, &pages, &sz, nullptr, 0) == 0)
      out.raw[kPdirty] = static_cast<double>(pages);
    sz = sizeof(pages);
    if (bymib_(pmuzzy_.v, pmuzzy_.len, &pages, &sz, nullptr, 0) == 0)
      out.raw[kPmuzzy] = static_cast<double>(pages);
    size_t tcache = 0;
    sz = sizeof(tcache);
    if (tcache_bytes_.len && bymib_(tcache_bytes_.v, tcache_bytes_.len, &tcache, &sz, nullptr, 0) == 0)
      out.raw[kTcacheBytes] = static_cast<double>(tcache);
    unsigned narenas = 0;
    sz = sizeof(narenas);
    if (bymib_(narenas_.v, narenas_.len, &narenas, &sz, nullptr, 0) == 0) {
      out.raw[kNarenas] = narenas;
      out.arenas = CountInitialized(narenas);
    }
    out.raw[kPage] = static_cast<double>(page_);

    const double page = static_cast<double>(page_);
    // stats.allocated counts the small objects parked in thread caches as allocated: they are
    // freed as far as the program is concerned. Without them, allocatedBytes is what is live.
    out.allocated = out.raw[kAllocated] - (std::isnan(out.raw[kTcacheBytes]) ? 0 : out.raw[kTcacheBytes]);
    // The footprint is what the page allocator holds: pages backing allocations (active) plus
    // freed pages not yet returned to the OS (dirty, and muzzy: MADV_FREE'd but still mapped).
    out.heap = out.raw[kActive] + (out.raw[kPdirty] + out.raw[kPmuzzy]) * page;
    out.free = out.heap - out.allocated;
    return Status();
  }

  void Invalidate() {
    std::lock_guard<std::mutex> lock(mu_);
    refreshed_ms_ = NAN;
  }

  bool Translate(const char* name, Mib& mib) {
    mib.len = kMaxMib;
    if (nametomib_(name, mib.v, &mib.len) != 0) {
      mib.len = 0;
      return false;
    }
    return true;
  }

  // arenas.narenas is the number of arena slots; count the ones in use.
  double CountInitialized(unsigned narenas) {
    if (initialized_.len == 0) return narenas;
    Mib m = initialized_;
    unsigned n = 0;
    for (unsigned i = 0; i < narenas; i++) {
      m.v[1] = i;
      bool init = false;
      size_t sz = sizeof(init);
      if (bymib_(m.v, m.len, &init, &sz, nullptr, 0) == 0 && init) n++;
    }
    return n;
  }

  MallctlFn mallctl_;
  StatsPrintFn stats_print_ = Resolve<StatsPrintFn>("malloc_stats_print");
  NameToMibFn nametomib_;
  MallctlByMibFn bymib_;
  std::string version_;
  Mib epoch_, stats_[6], pdirty_, pmuzzy_, tcache_bytes_, narenas_, initialized_, purge_, tcache_flush_;
  size_t page_ = 4096;
  bool stats_ok_ = false;
  // The last refresh's figures and when it happened (NaN: refresh at the next reading). Shared by
  // every thread that reads; the lock is held through a refresh, so a reader never sees half of one.
  std::mutex mu_;
  Figures cached_;
  double refreshed_ms_ = NAN;
};

}  // namespace

Backend* ProbeJemalloc() {
  auto mallctl = Resolve<MallctlFn>("mallctl");
  auto nametomib = Resolve<NameToMibFn>("mallctlnametomib");
  auto bymib = Resolve<MallctlByMibFn>("mallctlbymib");
  if (mallctl == nullptr || nametomib == nullptr || bymib == nullptr) return nullptr;
  // jemalloc may be loaded without serving malloc (linked into a library while another allocator
  // won the symbol). It counts what this thread allocated: if a malloc moves that counter, it is
  // jemalloc's.
  uint64_t before = 0, after = 0;
  size_t sz = sizeof(before);
  if (mallctl("thread.allocated", &before, &sz, nullptr, 0) != 0) return nullptr;
  void* p = ProbeAllocate(4096);
  sz = sizeof(after);
  const int rc = mallctl("thread.allocated", &after, &sz, nullptr, 0);
  ProbeFree(p);
  if (rc != 0 || after - before < 4096) return nullptr;
  return new JemallocBackend(mallctl, nametomib, bymib);
}

Backend* ProbeJemallocWithoutStats() {
  auto mallctl = Resolve<MallctlFn>("mallctl");
  auto nametomib = Resolve<NameToMibFn>("mallctlnametomib");
  auto bymib = Resolve<MallctlByMibFn>("mallctlbymib");
  if (mallctl == nullptr || nametomib == nullptr || bymib == nullptr) return nullptr;
  bool stats = true;
  size_t sz = sizeof(stats);
  if (mallctl("config.stats", &stats, &sz, nullptr, 0) != 0 || stats) return nullptr;
  return new JemallocBackend(mallctl, nametomib, bymib);
}

}  // namespace fragstat
