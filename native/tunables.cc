#include "tunables.h"

#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "symbols.h"

namespace fragstat {

namespace {

// ---- glibc ---------------------------------------------------------------------------------

using MalloptFn = int (*)(int, int);

struct MalloptParam {
  const char* name;
  int param;  // <malloc.h>
};
// The parameters fragstat sets. Values from glibc's <malloc.h>.
constexpr MalloptParam kMalloptParams[] = {
    {"M_TRIM_THRESHOLD", -1},
    {"M_TOP_PAD", -2},
    {"M_MMAP_THRESHOLD", -3},
    {"M_ARENA_MAX", -8},
};

// mallopt changes process-wide state, so the record of fragstat's own calls is process-wide too:
// every worker thread's copy of the addon shares it. Guarded by the lock below.
std::mutex mallopt_lock;
std::map<std::string, long>& MalloptRecord() {
  static auto* record = new std::map<std::string, long>();  // never destroyed: read at exit
  return *record;
}

// ---- jemalloc ------------------------------------------------------------------------------

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);

enum class JeType { kBool, kUnsigned, kSsize, kSize, kString };
struct JeSetting {
  const char* name;
  JeType type;
};
// Read in this order. Names absent from a build (opt.prof without --enable-prof, opt.lg_tcache_max
// in 5.3, opt.tcache_max before it) are skipped.
constexpr JeSetting kJemallocSettings[] = {
    {"opt.narenas", JeType::kUnsigned},
    {"opt.background_thread", JeType::kBool},
    {"opt.max_background_threads", JeType::kSize},
    {"opt.dirty_decay_ms", JeType::kSsize},
    {"opt.muzzy_decay_ms", JeType::kSsize},
    {"opt.retain", JeType::kBool},
    {"opt.thp", JeType::kString},
    {"opt.metadata_thp", JeType::kString},
    {"opt.tcache", JeType::kBool},
    {"opt.tcache_max", JeType::kSize},
    {"opt.lg_tcache_max", JeType::kSsize},
    {"opt.prof", JeType::kBool},
    {"background_thread", JeType::kBool},
    {"max_background_threads", JeType::kSize},
    {"arenas.narenas", JeType::kUnsigned},
    {"arenas.dirty_decay_ms", JeType::kSsize},
    {"arenas.muzzy_decay_ms", JeType::kSsize},
    {"arena.0.dirty_decay_ms", JeType::kSsize},
    {"arena.0.muzzy_decay_ms", JeType::kSsize},
};

bool ReadJemalloc(MallctlFn mallctl, const JeSetting& s, Setting& out) {
  out.name = s.name;
  switch (s.type) {
    case JeType::kBool: {
      bool v = false;
      size_t sz = sizeof(v);
      if (mallctl(s.name, &v, &sz, nullptr, 0) != 0) return false;
      out.kind = Setting::kBool;
      out.flag = v;
      return true;
    }
    case JeType::kUnsigned: {
      unsigned v = 0;
      size_t sz = sizeof(v);
      if (mallctl(s.name, &v, &sz, nullptr, 0) != 0) return false;
      out.number = v;
      return true;
    }
    case JeType::kSsize: {
      ssize_t v = 0;
      size_t sz = sizeof(v);
      if (mallctl(s.name, &v, &sz, nullptr, 0) != 0) return false;
      out.number = static_cast<double>(v);
      return true;
    }
    case JeType::kSize: {
      size_t v = 0;
      size_t sz = sizeof(v);
      if (mallctl(s.name, &v, &sz, nullptr, 0) != 0) return false;
      out.number = static_cast<double>(v);
      return true;
    }
    case JeType::kString: {
      const char* v = nullptr;
      size_t sz = sizeof(v);
      if (mallctl(s.name, &v, &sz, nullptr, 0) != 0 || v == nullptr) return false;
      out.kind = Setting::kText;
      out.text = v;
      return true;
    }
  }
  return false;
}

Status JemallocError(const std::string& name, int err) {
  return Status::Error("ERR_FRAGSTAT_TUNE_FAILED", "jemalloc refused " + name + ": " + std::strerror(err) +
                                                       " (mallctl returned " + std::to_string(err) + ")");
}

Status WriteJemallocDecay(MallctlFn mallctl, const std::string& name, ssize_t value) {
  // "arena.all.<x>_decay_ms": every initialized arena. jemalloc has no MALLCTL_ARENAS_ALL form
  // of these two, so each arena is written by its index.
  const std::string prefix = "arena.all.";
  if (name.compare(0, prefix.size(), prefix) != 0) {
    const int err = mallctl(name.c_str(), nullptr, nullptr, &value, sizeof(value));
    return err == 0 ? Status() : JemallocError(name, err);
  }
  const std::string leaf = name.substr(prefix.size());
  unsigned narenas = 0;
  size_t sz = sizeof(narenas);
  int err = mallctl("arenas.narenas", &narenas, &sz, nullptr, 0);
  if (err != 0) return JemallocError("arenas.narenas", err);
  for (unsigned i = 0; i < narenas; i++) {
    const std::string arena = "arena." + std::to_string(i) + ".";
    bool initialized = false;
    sz = sizeof(initialized);
    if (mallctl((arena + "initialized").c_str(), &initialized, &sz, nullptr, 0) != 0 || !initialized)
      continue;
    const std::string full = arena + leaf;
    err = mallctl(full.c_str(), nullptr, nullptr, &value, sizeof(value));
    if (err != 0) return JemallocError(full, err);
  }
  return Status();
}

// ---- tcmalloc (gperftools) -----------------------------------------------------------------

using GetNumericPropertyFn = int (*)(const char*, size_t*);
using GetRateFn = double (*)();
using SetRateFn = void (*)(double);

// gperftools 2.10 has no C entry point for the release rate; MallocExtension::SetMemoryReleaseRate
// only assigns this exported flag (the value TCMALLOC_RELEASE_RATE initialises), so it is read and
// written directly when the C functions are absent.
constexpr const char* kReleaseRateFlag =
    "_ZN62FLAG__namespace_do_not_use_directly_use_DECLARE_double_instead27FLAGS_tcmalloc_release_rateE";

bool ReadReleaseRate(double& out) {
  if (auto get = Resolve<GetRateFn>("MallocExtension_GetMemoryReleaseRate")) {
    out = get();
    return true;
  }
  if (auto* flag = static_cast<double*>(ResolveSymbol(kReleaseRateFlag))) {
    out = *flag;
    return true;
  }
  return false;
}

bool WriteReleaseRate(double rate) {
  if (auto set = Resolve<SetRateFn>("MallocExtension_SetMemoryReleaseRate")) {
    set(rate);
    return true;
  }
  if (auto* flag = static_cast<double*>(ResolveSymbol(kReleaseRateFlag))) {
    *flag = rate;
    return true;
  }
  return false;
}

// ---- mimalloc ------------------------------------------------------------------------------

using MiVersionFn = int (*)();
using MiOptionGetFn = long (*)(int);
using MiOptionSetFn = void (*)(int, long);

struct MiOption {
  const char* name;
  int index;  // position in mimalloc 2.0.9's mi_option_t (include/mimalloc.h at tag v2.0.9)
  bool flag;
};
// The enum changes between releases, so these indices are trusted for 2.0.9 only (mi_version 209).
constexpr int kMimallocPinnedVersion = 209;
constexpr MiOption kMiOptions[] = {
    {"mi_option_eager_commit", 3, true},
    {"mi_option_page_reset", 11, true},
    {"mi_option_abandoned_page_decommit", 12, true},
    {"mi_option_eager_commit_delay", 14, false},
    {"mi_option_decommit_delay", 15, false},
    {"mi_option_allow_decommit", 22, true},
    {"mi_option_segment_decommit_delay", 23, false},
    {"mi_option_decommit_extend_delay", 24, false},
};

bool MimallocPinned() {
  auto version = Resolve<MiVersionFn>("mi_version");
  return version != nullptr && version() == kMimallocPinnedVersion;
}

Status Unsupported(const std::string& allocator, const std::string& name) {
  return Status::Error("ERR_FRAGSTAT_TUNE_UNSUPPORTED",
                       name + " cannot be set under " + allocator + " in this process");
}

}  // namespace

std::vector<Setting> ReadAllocatorSettings(const std::string& allocator) {
  std::vector<Setting> out;
  if (allocator == "jemalloc") {
    auto mallctl = Resolve<MallctlFn>("mallctl");
    if (mallctl == nullptr) return out;
    for (const JeSetting& s : kJemallocSettings) {
      Setting v;
      if (ReadJemalloc(mallctl, s, v)) out.push_back(v);
    }
  } else if (allocator == "tcmalloc") {
    Setting rate;
    rate.name = "tcmalloc.release_rate";
    if (ReadReleaseRate(rate.number)) out.push_back(rate);
    if (auto get = Resolve<GetNumericPropertyFn>("MallocExtension_GetNumericProperty")) {
      for (const char* name :
           {"tcmalloc.max_total_thread_cache_bytes", "tcmalloc.aggressive_memory_decommit"}) {
        size_t v = 0;
        if (get(name, &v) != 1) continue;
        Setting s;
        s.name = name;
        s.number = static_cast<double>(v);
        out.push_back(s);
      }
    }
  } else if (allocator == "mimalloc") {
    auto get = Resolve<MiOptionGetFn>("mi_option_get");
    if (get == nullptr || !MimallocPinned()) return out;
    for (const MiOption& o : kMiOptions) {
      Setting s;
      s.name = o.name;
      const long v = get(o.index);
      if (o.flag) {
        s.kind = Setting::kBool;
        s.flag = v != 0;
      } else {
        s.number = static_cast<double>(v);
      }
      out.push_back(s);
    }
  }
  return out;
}

std::vector<Setting> MalloptCalls() {
  std::lock_guard<std::mutex> guard(mallopt_lock);
  std::vector<Setting> out;
  for (const auto& entry : MalloptRecord()) {
    Setting s;
    s.name = entry.first;
    s.number = static_cast<double>(entry.second);
    out.push_back(s);
  }
  return out;
}

Status Mallopt(const std::string& param, long value) {
  const MalloptParam* found = nullptr;
  for (const MalloptParam& p : kMalloptParams) {
    if (param == p.name) found = &p;
  }
  if (found == nullptr) return Unsupported("glibc", param);
  auto mallopt = Resolve<MalloptFn>("mallopt");
  if (mallopt == nullptr) return Unsupported("this C library", param);
  std::lock_guard<std::mutex> guard(mallopt_lock);
  if (mallopt(found->param, static_cast<int>(value)) != 1) {
    return Status::Error("ERR_FRAGSTAT_TUNE_FAILED",
                         "glibc refused mallopt(" + param + ", " + std::to_string(value) + ")");
  }
  MalloptRecord()[param] = value;
  return Status();
}

Status WriteAllocatorSetting(const std::string& allocator, const Setting& value) {
  const std::string& name = value.name;
  if (allocator == "jemalloc") {
    auto mallctl = Resolve<MallctlFn>("mallctl");
    if (mallctl == nullptr) return Unsupported(allocator, name);
    if (name == "background_thread") {
      bool v = value.flag;
      const int err = mallctl("background_thread", nullptr, nullptr, &v, sizeof(v));
      return err == 0 ? Status() : JemallocError(name, err);
    }
    if (name == "arenas.dirty_decay_ms" || name == "arenas.muzzy_decay_ms" ||
        name == "arena.all.dirty_decay_ms" || name == "arena.all.muzzy_decay_ms") {
      return WriteJemallocDecay(mallctl, name, static_cast<ssize_t>(value.number));
    }
  } else if (allocator == "tcmalloc") {
    if (name == "tcmalloc.release_rate") {
      return WriteReleaseRate(value.number) ? Status() : Unsupported(allocator, name);
    }
  } else if (allocator == "mimalloc") {
    auto set = Resolve<MiOptionSetFn>("mi_option_set");
    if (set != nullptr && MimallocPinned()) {
      for (const MiOption& o : kMiOptions) {
        if (name != o.name) continue;
        set(o.index, o.flag ? (value.flag ? 1 : 0) : static_cast<long>(value.number));
        return Status();
      }
    }
  }
  return Unsupported(allocator, name);
}

}  // namespace fragstat
