// The interface every allocator backend implements. Nothing here knows about N-API: backends are
// plain C++ over the allocator's C entry points, resolved at run time (see symbols.h).
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace fragstat {

// Raw allocator fields a backend reports, at most this many.
constexpr int kMaxRawFields = 24;

// One reading. NaN means "not known" and becomes null in JavaScript.
struct Figures {
  double allocated = NAN;     // bytes in live allocations
  double free = NAN;          // bytes the allocator holds that serve no allocation
  double heap = NAN;          // the allocator's footprint the two above divide
  double largest_free = NAN;  // largest single free block, bytes
  double arenas = NAN;        // number of arenas
  double may_wrap = 0;        // 1 when the values come from a legacy API that wraps at 2^32
  double stats_age_ms = 0;    // how long ago the allocator produced these figures (0: just now)
  double raw[kMaxRawFields];  // the allocator's own fields, in RawFieldNames() order

  Figures() {
    for (double& v : raw) v = NAN;
  }
};

// Per-arena figures from glibc's malloc_info (detail mode).
struct ArenaDetail {
  double index = 0;
  double system_bytes = 0;      // <system type="current">
  double max_system_bytes = 0;  // <system type="max">
  double free_bytes = 0;        // fastbins + bins + top, chunk sizes
  double free_chunks = 0;       // fastbin chunks + bin chunks + 1 (top)
  double fast_bytes = 0;
  double fast_chunks = 0;
  double top_bytes = 0;
  double largest_free_bytes = 0;
};

struct Detail {
  std::vector<ArenaDetail> arenas;
  double mmap_chunks = NAN;
  double mmap_bytes = NAN;
};

// A failure a user may see; `code` is stable (ERR_FRAGSTAT_*), the message explains.
struct Status {
  const char* code = nullptr;
  std::string message;
  bool ok() const { return code == nullptr; }
  static Status Error(const char* code, std::string message) {
    Status s;
    s.code = code;
    s.message = std::move(message);
    return s;
  }
};

class Backend {
 public:
  virtual ~Backend() = default;

  // 'glibc', 'jemalloc', 'tcmalloc', 'mimalloc' or 'unknown'.
  virtual const char* Name() const = 0;
  // The allocator's own version string, empty when it cannot be told.
  virtual std::string Version() const = 0;
  // Why figures are missing, empty when everything documented is available.
  virtual std::string Limitations() const { return std::string(); }
  virtual const std::vector<const char*>& RawFieldNames() const = 0;
  virtual bool HasStats() const = 0;
  virtual bool HasDetail() const { return false; }
  virtual bool CanTrim() const = 0;

  // Fills `out`. With `detail` non-null, also the expensive per-arena figures where supported.
  // Safe to call from any thread.
  virtual Status Read(Figures& out, Detail* detail) = 0;

  // The allocator's own metadata in RAM, bytes, for the RSS breakdown where Read() does not carry
  // it (a separate read, which may cost more than Read()); NaN where the allocator cannot tell.
  virtual double MetadataBytes() { return NAN; }

  // Work that must happen on the thread that asked for a trim, before Trim() runs, possibly on
  // another thread (jemalloc's thread cache belongs to the calling thread, for instance).
  virtual void PrepareTrimOnCallingThread() {}
  // True when PrepareTrimOnCallingThread releases memory itself, so RSS must be read before it.
  virtual bool PrepareReleasesMemory() const { return false; }
  // Releases free memory to the OS. `result` receives the allocator's own return value, or NaN
  // when the allocator's call returns nothing. Safe to call from any thread.
  virtual Status Trim(double& result) = 0;
  // A second step after Trim() for free memory the allocator's own trim cannot reach; returns the
  // resident bytes it released, or NaN where the allocator has no such step. `pending` receives
  // how many places it left for a later call (glibc: arenas too new), NaN likewise. Any thread.
  virtual double ReleaseBeyondTrim(double& pending) {
    pending = NAN;
    return NAN;
  }
  // Whether ReleaseBeyondTrim() does anything here.
  virtual bool ReleasesBeyondTrim() const { return false; }

  // The allocator's own statistics report as text (glibc: malloc_info's XML; jemalloc:
  // malloc_stats_print), at most `max_bytes` of it: `truncated` is set when it was cut there.
  // `format` names the text ("malloc_info", "jemalloc_stats"), or stays empty where the allocator
  // has no such report. Holds one buffer of at most `max_bytes`. Safe to call from any thread.
  virtual Status StatsText(size_t max_bytes, std::string& text, std::string& format, bool& truncated) {
    (void)max_bytes;
    (void)text;
    (void)format;
    truncated = false;
    return Status();
  }
};

// The backend for the allocator that serves malloc in this process, detected once.
Backend& CurrentBackend();

// Factories, each returning nullptr when its allocator does not serve malloc here.
Backend* ProbeJemalloc();
Backend* ProbeTcmalloc();
Backend* ProbeMimalloc();
// Sets `present` when glibc is the C library; returns a backend only when glibc serves malloc.
Backend* ProbeGlibc(bool& present);
// jemalloc built without statistics cannot be probed by its counters; this names it when its
// control interface is there but its statistics are not. Call it only once glibc, tcmalloc and
// mimalloc are ruled out.
Backend* ProbeJemallocWithoutStats();
Backend* MakeUnknown(std::string reason);

}  // namespace fragstat
