#include "glibc.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "arenatop.h"
#include "probe.h"
#include "symbols.h"

namespace fragstat {

namespace {

// Layouts copied from <malloc.h> so the addon neither includes nor links them: musl has neither.
struct MallInfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct MallInfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

using Mallinfo2Fn = MallInfo2 (*)();
using MallinfoFn = MallInfo (*)();
using MallocInfoFn = int (*)(int, FILE*);
using MallocTrimFn = int (*)(size_t);
using GnuGetLibcVersionFn = const char* (*)();

// ---- malloc_info parsing -------------------------------------------------------------------

// Finds attribute `name` inside the tag [tag, end) and parses it as an unsigned number.
bool Attr(const char* tag, const char* end, const char* name, double& out) {
  const size_t n = std::strlen(name);
  for (const char* p = tag; p + n + 2 < end; p++) {
    if (p[-1] == ' ' && std::strncmp(p, name, n) == 0 && p[n] == '=' && p[n + 1] == '"') {
      const char* q = p + n + 2;
      double v = 0;
      bool any = false;
      while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        any = true;
        q++;
      }
      if (!any) return false;
      out = v;
      return true;
    }
  }
  return false;
}

bool AttrIs(const char* tag, const char* end, const char* name, const char* value) {
  const size_t n = std::strlen(name);
  const size_t vn = std::strlen(value);
  for (const char* p = tag; p + n + vn + 3 <= end; p++) {
    if (p[-1] == ' ' && std::strncmp(p, name, n) == 0 && p[n] == '=' && p[n + 1] == '"') {
      return std::strncmp(p + n + 2, value, vn) == 0 && p[n + 2 + vn] == '"';
    }
  }
  return false;
}

bool TagIs(const char* tag, const char* end, const char* name) {
  const size_t n = std::strlen(name);
  return static_cast<size_t>(end - tag) >= n && std::strncmp(tag, name, n) == 0 &&
         (tag[n] == ' ' || tag[n] == '>' || tag[n] == '/');
}

// The versions glibc's malloc statistics carry (x86_64's base is GLIBC_2.2.5, aarch64's
// GLIBC_2.17; malloc_info came in 2.10, mallinfo2 in 2.33). libc_malloc_debug.so, preloaded,
// defines these functions only under these versions (it is not meant to be linked against), and
// with malloc checking on (glibc.malloc.check, MALLOC_CHECK_) it serves malloc from its own copy
// of the allocator, which only its own mallinfo2 describes: libc's then shows an idle heap.
// Versioned lookups find its definitions first; without it they find libc's, as before.
constexpr const char* kMallinfo2Versions[] = {"GLIBC_2.33", nullptr};
constexpr const char* kBaseVersions[] = {"GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.10", nullptr};

// Low bits of a chunk's size field: PREV_INUSE, IS_MMAPPED, NON_MAIN_ARENA.
constexpr unsigned long long kFlagBits = 7;

}  // namespace

bool ParseMallocInfo(const char* xml, size_t len, Detail& out) {
  const char* p = xml;
  const char* const stop = xml + len;
  bool seen_root = false;
  bool in_heap = false;
  ArenaDetail cur;
  double rest_size = 0, raw_bin_totals = 0, bin_bytes = 0, largest = 0;

  while (p < stop) {
    const char* lt = static_cast<const char*>(std::memchr(p, '<', stop - p));
    if (lt == nullptr) break;
    const char* gt = static_cast<const char*>(std::memchr(lt, '>', stop - lt));
    if (gt == nullptr) break;
    const char* tag = lt + 1;
    p = gt + 1;

    if (TagIs(tag, gt, "malloc")) {
      seen_root = true;
    } else if (TagIs(tag, gt, "heap")) {
      in_heap = true;
      cur = ArenaDetail();
      Attr(tag, gt, "nr", cur.index);
      rest_size = raw_bin_totals = bin_bytes = largest = 0;
    } else if (TagIs(tag, gt, "/heap")) {
      if (!in_heap) return false;
      in_heap = false;
      // The top chunk is counted in "rest" but listed in no <size>: what is left is the top.
      // The flag bits inflate rest and the raw totals alike, so they cancel here.
      cur.top_bytes = rest_size - raw_bin_totals;
      if (cur.top_bytes < 0) cur.top_bytes = 0;
      cur.free_bytes = cur.fast_bytes + bin_bytes + cur.top_bytes;
      cur.largest_free_bytes = largest > cur.top_bytes ? largest : cur.top_bytes;
      out.arenas.push_back(cur);
    } else if (in_heap && (TagIs(tag, gt, "size") || TagIs(tag, gt, "unsorted"))) {
      double from = 0, to = 0, total = 0, count = 0;
      if (!Attr(tag, gt, "to", to) || !Attr(tag, gt, "total", total) || !Attr(tag, gt, "count", count)) {
        return false;
      }
      Attr(tag, gt, "from", from);
      if (!(to < 1e18)) return false;  // no real chunk is this big; keeps the cast below defined
      const unsigned long long to_bits = static_cast<unsigned long long>(to);
      const unsigned long long flags = to_bits & kFlagBits;
      const bool fastbin = TagIs(tag, gt, "size") && flags == 0;
      // Fastbin entries are synthetic (to = the bin's chunk size, total = count * to) and already
      // exact. Regular-bin entries carry the raw size field: mask the flags off, and take them
      // off the total once per chunk.
      const double size = static_cast<double>(to_bits & ~kFlagBits);
      if (!fastbin) {
        raw_bin_totals += total;
        bin_bytes += total - count * static_cast<double>(flags);
      }
      if (size > largest) largest = size;
    } else if (TagIs(tag, gt, "total")) {
      double count = 0, size = 0;
      Attr(tag, gt, "count", count);
      Attr(tag, gt, "size", size);
      if (in_heap && AttrIs(tag, gt, "type", "fast")) {
        cur.fast_chunks = count;
        cur.fast_bytes = size;
        cur.free_chunks += count;
      } else if (in_heap && AttrIs(tag, gt, "type", "rest")) {
        rest_size = size;
        cur.free_chunks += count;
      } else if (!in_heap && AttrIs(tag, gt, "type", "mmap")) {
        out.mmap_chunks = count;
        out.mmap_bytes = size;
      }
    } else if (in_heap && TagIs(tag, gt, "system")) {
      double size = 0;
      Attr(tag, gt, "size", size);
      if (AttrIs(tag, gt, "type", "current")) cur.system_bytes = size;
      if (AttrIs(tag, gt, "type", "max")) cur.max_system_bytes = size;
    }
  }
  return seen_root && !in_heap;
}

namespace {

class GlibcBackend final : public Backend {
 public:
  GlibcBackend(GnuGetLibcVersionFn version)
      : version_(version),
        mallinfo2_(Resolve<Mallinfo2Fn>("mallinfo2", kMallinfo2Versions)),
        mallinfo_(Resolve<MallinfoFn>("mallinfo", kBaseVersions)),
        malloc_info_(Resolve<MallocInfoFn>("malloc_info", kBaseVersions)),
        malloc_trim_(Resolve<MallocTrimFn>("malloc_trim", kBaseVersions)) {
    const char* off = std::getenv("FRAGSTAT_ARENA_TOPS");
    arena_tops_ = malloc_trim_ != nullptr && version_ != nullptr && ArenaTopsSupported(version_()) &&
                  !(off != nullptr && std::strcmp(off, "0") == 0);
  }

  const char* Name() const override { return "glibc"; }
  std::string Version() const override { return version_ ? version_() : std::string(); }

  std::string Limitations() const override {
    std::string s;
    if (mallinfo2_ == nullptr && mallinfo_ != nullptr) {
      s += "mallinfo2 is missing (glibc older than 2.33): figures come from mallinfo, whose fields "
           "wrap above 4 GiB (and read wrong above 2 GiB). ";
    }
    if (mallinfo2_ == nullptr && mallinfo_ == nullptr) s += "mallinfo2 and mallinfo are missing. ";
    if (malloc_info_ == nullptr) s += "malloc_info is missing: no detail. ";
    if (malloc_trim_ == nullptr) s += "malloc_trim is missing: no trim. ";
    if (!s.empty()) s.pop_back();
    return s;
  }

  const std::vector<const char*>& RawFieldNames() const override {
    static const std::vector<const char*> names = {"arena",   "ordblks", "smblks",   "hblks",    "hblkhd",
                                                   "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"};
    return names;
  }
  bool HasStats() const override { return mallinfo2_ != nullptr || mallinfo_ != nullptr; }
  bool HasDetail() const override { return malloc_info_ != nullptr; }
  bool CanTrim() const override { return malloc_trim_ != nullptr; }

  Status Read(Figures& out, Detail* detail) override {
    // malloc_info runs first, into a buffer allocated before it, so that it and mallinfo2 see
    // the same heap: nothing fragstat does allocates between the two walks.
    std::string xml;
    if (detail != nullptr && malloc_info_ != nullptr) {
      if (Status s = MallocInfo(xml); !s.ok()) return s;
    }
    double f[10];
    if (mallinfo2_ != nullptr) {
      MallInfo2 m = mallinfo2_();
      const size_t v[10] = {m.arena,   m.ordblks, m.smblks,   m.hblks,    m.hblkhd,
                            m.usmblks, m.fsmblks, m.uordblks, m.fordblks, m.keepcost};
      for (int i = 0; i < 10; i++) f[i] = static_cast<double>(v[i]);
    } else if (mallinfo_ != nullptr) {
      MallInfo m = mallinfo_();
      const int v[10] = {m.arena,   m.ordblks, m.smblks,   m.hblks,    m.hblkhd,
                         m.usmblks, m.fsmblks, m.uordblks, m.fordblks, m.keepcost};
      // The int fields are size_t values truncated to 32 bits: read them back modulo 2^32.
      for (int i = 0; i < 10; i++) f[i] = static_cast<double>(static_cast<unsigned int>(v[i]));
      out.may_wrap = 1;
    }
    if (mallinfo2_ != nullptr || mallinfo_ != nullptr) {
      for (int i = 0; i < 10; i++) out.raw[i] = f[i];
      const double arena = f[0], hblkhd = f[4], uordblks = f[7], fordblks = f[8];
      out.allocated = uordblks + hblkhd;
      out.free = fordblks;
      out.heap = arena + hblkhd;
    }

    if (!xml.empty()) {
      if (!ParseMallocInfo(xml.data(), xml.size(), *detail)) {
        return Status::Error("ERR_FRAGSTAT_MALLOC_INFO", "malloc_info wrote text fragstat cannot parse");
      }
      double largest = 0;
      for (const ArenaDetail& a : detail->arenas) {
        if (a.largest_free_bytes > largest) largest = a.largest_free_bytes;
      }
      out.largest_free = largest;
      out.arenas = static_cast<double>(detail->arenas.size());
    }
    return Status();
  }

  Status Trim(double& result) override {
    if (malloc_trim_ == nullptr) return Status();
    result = malloc_trim_(0);
    return Status();
  }

  // The tops of thread arenas (arenatop.h), unless FRAGSTAT_ARENA_TOPS=0 was set at load. Only
  // arenas linked into glibc's list and seen so on a call at least a second earlier are released,
  // so a first trim after an arena appears only notes it. NaN (null in JS) where a call the step
  // needs is refused (a seccomp filter returning EPERM, for one), not 0.
  bool ReleasesBeyondTrim() const override { return arena_tops_; }

  // malloc_info into one buffer of `max_bytes`, allocated before the walk (which then allocates
  // nothing) and left uninitialised, so that only the pages the text fills become resident: text
  // beyond the buffer is dropped, and the report says it was cut.
  Status StatsText(size_t max_bytes, std::string& text, std::string& format, bool& truncated) override {
    truncated = false;
    if (malloc_info_ == nullptr || max_bytes < 2) return Status();
    std::unique_ptr<char[]> buf(new (std::nothrow) char[max_bytes]);
    if (!buf) return Status::Error("ERR_FRAGSTAT_MALLOC_INFO", "no memory for malloc_info's buffer");
    size_t n = 0;
    const Status st = MallocInfoInto(buf.get(), max_bytes, n);
    if (!st.ok()) return st;
    // fmemopen keeps the last byte for a terminating NUL: a full buffer means the text was cut.
    truncated = n >= max_bytes - 1;
    text.assign(buf.get(), n < max_bytes ? n : max_bytes - 1);
    format = "malloc_info";
    return Status();
  }
  double ReleaseBeyondTrim(double& pending) override {
    pending = NAN;
    if (!arena_tops_) return NAN;
    int n = 0;
    const double released = ReleaseArenaTops(version_(), kTopPad, &n);
    if (!std::isnan(released)) pending = n;
    return released;
  }

 private:
  // Runs malloc_info into `buf` (`cap` bytes) through an unbuffered fmemopen stream, so that the
  // walk allocates nothing; `written` is how many bytes it wrote (fmemopen keeps the last byte
  // for a terminating NUL).
  Status MallocInfoInto(char* buf, size_t cap, size_t& written) {
    written = 0;
    FILE* fp = fmemopen(buf, cap, "w");
    if (fp == nullptr) {
      return Status::Error("ERR_FRAGSTAT_MALLOC_INFO",
                           std::string("fmemopen failed: ") + std::strerror(errno));
    }
    setvbuf(fp, nullptr, _IONBF, 0);
    const int rc = malloc_info_(0, fp);
    const int saved = errno;
    const long n = std::ftell(fp);
    std::fclose(fp);
    if (rc != 0) {
      return Status::Error("ERR_FRAGSTAT_MALLOC_INFO",
                           std::string("malloc_info failed: ") + std::strerror(saved));
    }
    written = n > 0 ? static_cast<size_t>(n) : 0;
    return Status();
  }

  // Captures malloc_info's XML. The buffer is allocated up front and the stream is unbuffered,
  // so the walk itself allocates nothing (open_memstream would realloc between arenas and move
  // the very figures being read). Grows and retries when the text does not fit.
  Status MallocInfo(std::string& xml) {
    for (size_t cap = 64 * 1024; cap <= (size_t{256} << 20); cap *= 4) {
      xml.assign(cap, '\0');
      size_t written = 0;
      const Status st = MallocInfoInto(&xml[0], cap, written);
      if (!st.ok()) return st;
      if (written > 0 && written < cap - 1) {
        xml.resize(written);
        return Status();
      }
    }
    return Status::Error("ERR_FRAGSTAT_MALLOC_INFO", "malloc_info wrote more than 256 MiB");
  }

  GnuGetLibcVersionFn version_;
  Mallinfo2Fn mallinfo2_;
  MallinfoFn mallinfo_;
  MallocInfoFn malloc_info_;
  MallocTrimFn malloc_trim_;
  bool arena_tops_ = false;
  // What a thread arena's top keeps: glibc's own M_TOP_PAD default (128 KiB), so the next
  // allocations from it do not fault at once.
  static constexpr size_t kTopPad = 128 * 1024;
};

}  // namespace

Backend* ProbeGlibc(bool& present) {
  auto version = Resolve<GnuGetLibcVersionFn>("gnu_get_libc_version");
  present = version != nullptr;
  if (version == nullptr) return nullptr;
  // glibc's entry points resolve under any preloaded allocator and then describe an unused heap:
  // check that a malloc moves glibc's own count of live bytes (in the arena, or mmapped when the
  // threshold was lowered). 4000 bytes is above tcache's largest size, so no cached chunk hides
  // it; other threads can move the count too, hence three tries.
  auto mi2 = Resolve<Mallinfo2Fn>("mallinfo2", kMallinfo2Versions);
  auto mi = Resolve<MallinfoFn>("mallinfo", kBaseVersions);
  if (mi2 == nullptr && mi == nullptr) return new GlibcBackend(version);  // cannot tell: trust it
  auto live = [&]() -> double {
    if (mi2 != nullptr) {
      MallInfo2 m = mi2();
      return static_cast<double>(m.uordblks) + static_cast<double>(m.hblkhd);
    }
    MallInfo m = mi();
    return static_cast<double>(static_cast<unsigned>(m.uordblks)) + static_cast<unsigned>(m.hblkhd);
  };
  for (int attempt = 0; attempt < 3; attempt++) {
    const double before = live();
    void* p = ProbeAllocate(4000);
    const double after = live();
    ProbeFree(p);
    if (after - before >= 4000) return new GlibcBackend(version);
  }
  return nullptr;
}

}  // namespace fragstat
