// N-API glue: registers the functions the TypeScript layer calls and nothing else. Arguments are
// validated in TypeScript; the checks here only keep a misuse of the internal binding from
// crashing the process.
#include <napi.h>

#include <string>

#include "backend.h"
#include "claim.h"
#include "clock.h"
#include "profile.h"
#include "rss.h"
#include "tunables.h"
#include "v8heap.h"

namespace fragstat {

namespace {

// Layout of the Float64Array a snapshot is written into (mirrored in src/binding.ts).
enum Slot {
  kRss,
  kAllocated,
  kFree,
  kHeap,
  kLargestFree,
  kArenas,
  kMayWrap,
  kDurationMs,
  kStatsAgeMs,
  kRawStart,
  kSlots = kRawStart + kMaxRawFields
};
// Layout of the Float64Array a trim is written into.
enum TrimSlot {
  kTrimSupported,
  kTrimRssBefore,
  kTrimRssAfter,
  kTrimDurationMs,
  kTrimResult,
  kTrimBlockingMs,
  kTrimBeyondBytes,
  kTrimPendingArenas,
  kTrimSlots
};

Napi::Error CodedError(Napi::Env env, const Status& status) {
  Napi::Error e = Napi::Error::New(env, status.message);
  e.Set("code", Napi::String::New(env, status.code));
  return e;
}

// The data of `v` when it is a Float64Array of at least `min_length` elements, else nullptr. A
// detached array (its buffer transferred, e.g. by structuredClone) has length 0 and no data, so
// it fails the length check. One napi_get_typedarray_info, which fails for anything but a typed
// array: node-addon-api's IsTypedArray and As<Float64Array> made four calls on every snapshot.
double* ArrayData(const Napi::Value& v, size_t min_length) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(v.Env(), v, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    return nullptr;
  }
  if (type != napi_float64_array || length < min_length || data == nullptr) return nullptr;
  return static_cast<double*>(data);
}

constexpr const char* kLayoutError =
    "fragstat internal: expected a Float64Array of the binding's layout (not detached)";

double* TargetArray(const Napi::Value& v, size_t min_length) {
  double* data = ArrayData(v, min_length);
  if (data == nullptr) throw Napi::TypeError::New(v.Env(), kLayoutError);
  return data;
}

// One reading of the allocator and RSS, timed. Plain data: safe to fill on any thread.
struct Reading {
  Figures figures;
  Detail detail;
  Status status;
  double rss = NAN;
  double duration_ms = NAN;
  double stats_age_ms = NAN;  // NaN when the allocator gives no figures
};

void TakeReading(Reading& r, bool detail) {
  const double start = NowMs();
  Backend& b = CurrentBackend();
  r.status = b.Read(r.figures, detail ? &r.detail : nullptr);
  r.rss = ReadRssBytes();
  r.duration_ms = NowMs() - start;
  if (b.HasStats()) r.stats_age_ms = r.figures.stats_age_ms;
}

void WriteFigures(double* out, const Reading& r) {
  const Figures& f = r.figures;
  out[kRss] = r.rss;
  out[kAllocated] = f.allocated;
  out[kFree] = f.free;
  out[kHeap] = f.heap;
  out[kLargestFree] = f.largest_free;
  out[kArenas] = f.arenas;
  out[kMayWrap] = f.may_wrap;
  out[kDurationMs] = r.duration_ms;
  out[kStatsAgeMs] = r.stats_age_ms;
  for (int i = 0; i < kMaxRawFields; i++) out[kRawStart + i] = f.raw[i];
}

Napi::Value DetailToJs(Napi::Env env, const Detail& d) {
  Napi::Object obj = Napi::Object::New(env);
  Napi::Array arenas = Napi::Array::New(env, d.arenas.size());
  for (size_t i = 0; i < d.arenas.size(); i++) {
    const ArenaDetail& a = d.arenas[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", a.index);
    o.Set("systemBytes", a.system_bytes);
    o.Set("maxSystemBytes", a.max_system_bytes);
    o.Set("freeBytes", a.free_bytes);
    o.Set("freeChunks", a.free_chunks);
    o.Set("fastBytes", a.fast_bytes);
    o.Set("fastChunks", a.fast_chunks);
    o.Set("topBytes", a.top_bytes);
    o.Set("largestFreeBytes", a.largest_free_bytes);
    arenas[i] = o;
  }
  obj.Set("arenas", arenas);
  obj.Set("mmapChunks", std::isnan(d.mmap_chunks) ? env.Null() : Napi::Number::New(env, d.mmap_chunks));
  obj.Set("mmapBytes", std::isnan(d.mmap_bytes) ? env.Null() : Napi::Number::New(env, d.mmap_bytes));
  return obj;
}

Napi::Value SettingsToJs(Napi::Env env, const std::vector<Setting>& settings) {
  Napi::Object obj = Napi::Object::New(env);
  for (const Setting& s : settings) {
    if (s.kind == Setting::kBool) {
      obj.Set(s.name, s.flag);
    } else if (s.kind == Setting::kText) {
      obj.Set(s.name, s.text);
    } else {
      obj.Set(s.name, std::isnan(s.number) ? env.Null() : Napi::Number::New(env, s.number));
    }
  }
  return obj;
}

struct TrimOutcome {
  Status status;
  double rss_before = NAN, rss_after = NAN, duration_ms = NAN, result = NAN, blocking_ms = NAN,
         beyond_bytes = NAN, pending_arenas = NAN;
};

// The part of a trim that must run on the thread that asked for it (see
// Backend::PrepareTrimOnCallingThread). RSS is read just before the first step that releases
// memory: here when that step runs on this thread, otherwise when the rest of the trim starts, so
// time spent waiting for a pool thread does not count as released (or gained) memory.
TrimOutcome BeginTrim(Backend& b) {
  TrimOutcome t;
  if (!b.CanTrim()) return t;
  if (b.PrepareReleasesMemory()) t.rss_before = ReadRssBytes();
  const double start = NowMs();
  b.PrepareTrimOnCallingThread();
  t.blocking_ms = NowMs() - start;
  return t;
}

// The rest, on any thread.
void FinishTrim(Backend& b, TrimOutcome& t) {
  if (!b.CanTrim()) return;
  if (std::isnan(t.rss_before)) t.rss_before = ReadRssBytes();
  const double start = NowMs();
  t.status = b.Trim(t.result);
  if (t.status.ok()) t.beyond_bytes = b.ReleaseBeyondTrim(t.pending_arenas);
  t.duration_ms = t.blocking_ms + (NowMs() - start);
  t.rss_after = ReadRssBytes();
}

void WriteTrim(double* out, bool supported, const TrimOutcome& t) {
  out[kTrimSupported] = supported ? 1 : 0;
  out[kTrimRssBefore] = t.rss_before;
  out[kTrimRssAfter] = t.rss_after;
  out[kTrimDurationMs] = t.duration_ms;
  out[kTrimResult] = t.result;
  out[kTrimBlockingMs] = t.blocking_ms;
  out[kTrimBeyondBytes] = t.beyond_bytes;
  out[kTrimPendingArenas] = t.pending_arenas;
}

// Async work over plain data: Execute() runs on a libuv pool thread and touches no JS value; the
// target array is pinned by a reference and written on the JS thread when the work completes.
class SnapshotWorker final : public Napi::AsyncWorker {
 public:
  SnapshotWorker(Napi::Env env, Napi::Float64Array target, bool detail)
      : Napi::AsyncWorker(env, "fragstat.snapshot"), deferred_(env), detail_(detail) {
    target_ = Napi::Persistent(target);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { TakeReading(reading_, detail_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!reading_.status.ok()) {
      deferred_.Reject(CodedError(env, reading_.status).Value());
      return;
    }
    // The array may have been detached while the reading ran on the pool.
    double* out = ArrayData(target_.Value(), kSlots);
    if (out == nullptr) {
      deferred_.Reject(Napi::TypeError::New(env, kLayoutError).Value());
      return;
    }
    WriteFigures(out, reading_);
    deferred_.Resolve(detail_ ? DetailToJs(env, reading_.detail) : env.Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float64Array> target_;
  bool detail_;
  Reading reading_;
};

class TrimWorker final : public Napi::AsyncWorker {
 public:
  TrimWorker(Napi::Env env, Napi::Float64Array target, const TrimOutcome& begun)
      : Napi::AsyncWorker(env, "fragstat.trim"), deferred_(env), outcome_(begun) {
    target_ = Napi::Persistent(target);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { FinishTrim(CurrentBackend(), outcome_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!outcome_.status.ok()) {
      deferred_.Reject(CodedError(env, outcome_.status).Value());
      return;
    }
    double* out = ArrayData(target_.Value(), kTrimSlots);
    if (out == nullptr) {
      deferred_.Reject(Napi::TypeError::New(env, kLayoutError).Value());
      return;
    }
    WriteTrim(out, CurrentBackend().CanTrim(), outcome_);
    deferred_.Resolve(env.Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float64Array> target_;
  TrimOutcome outcome_;
};

class ProfileDumpWorker final : public Napi::AsyncWorker {
 public:
  ProfileDumpWorker(Napi::Env env, std::string dir)
      : Napi::AsyncWorker(env, "fragstat.heapProfile"), deferred_(env), dir_(std::move(dir)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { result_ = DumpProfile(dir_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!result_.status.ok()) {
      deferred_.Reject(CodedError(env, result_.status).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("text", Napi::String::New(env, result_.text));
    o.Set("durationMs", result_.duration_ms);
    result_.text.clear();
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  DumpResult result_;
};

class StatsTextWorker final : public Napi::AsyncWorker {
 public:
  StatsTextWorker(Napi::Env env, size_t max_bytes)
      : Napi::AsyncWorker(env, "fragstat.statsText"), deferred_(env), max_bytes_(max_bytes) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { status_ = CurrentBackend().StatsText(max_bytes_, text_, format_, truncated_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(CodedError(env, status_).Value());
      return;
    }
    if (format_.empty()) {
      deferred_.Resolve(env.Null());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("format", Napi::String::New(env, format_));
    o.Set("text", Napi::String::New(env, text_));
    o.Set("truncated", truncated_);
    std::string().swap(text_);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  size_t max_bytes_;
  Status status_;
  std::string text_;
  std::string format_;
  bool truncated_ = false;
};

class FragstatAddon final : public Napi::Addon<FragstatAddon> {
 public:
  FragstatAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("allocator", &FragstatAddon::Allocator),
                             InstanceMethod("bind", &FragstatAddon::Bind),
                             InstanceMethod("snapshot", &FragstatAddon::Snapshot),
                             InstanceMethod("snapshotAsync", &FragstatAddon::SnapshotAsync),
                             InstanceMethod("trimSync", &FragstatAddon::TrimSync),
                             InstanceMethod("trim", &FragstatAddon::Trim),
                             InstanceMethod("rssBytes", &FragstatAddon::Rss),
                             InstanceMethod("rssBytesReopen", &FragstatAddon::RssReopen),
                             InstanceMethod("metadataBytes", &FragstatAddon::MetadataBytes),
                             InstanceMethod("rawReadNs", &FragstatAddon::RawReadNs),
                             InstanceMethod("allocatorSettings", &FragstatAddon::AllocatorSettings),
                             InstanceMethod("malloptCalls", &FragstatAddon::MalloptCalls),
                             InstanceMethod("mallopt", &FragstatAddon::Mallopt),
                             InstanceMethod("writeSetting", &FragstatAddon::WriteSetting),
                             InstanceMethod("profileState", &FragstatAddon::ProfileStateJs),
                             InstanceMethod("profileSetActive", &FragstatAddon::ProfileSetActive),
                             InstanceMethod("profileDump", &FragstatAddon::ProfileDump),
                             InstanceMethod("profileDumpSync", &FragstatAddon::ProfileDumpSync),
                             InstanceMethod("profileSetJsFrames", &FragstatAddon::ProfileSetJsFrames),
                             InstanceMethod("demangle", &FragstatAddon::DemangleJs),
                             InstanceMethod("statsText", &FragstatAddon::StatsText),
                             InstanceMethod("v8ReleaseAvailable", &FragstatAddon::V8ReleaseAvailableJs),
                             InstanceMethod("releaseV8Heap", &FragstatAddon::ReleaseV8HeapJs),
                             InstanceMethod("claimMonitor", &FragstatAddon::ClaimMonitorJs),
                             InstanceMethod("releaseMonitor", &FragstatAddon::ReleaseMonitorJs),
                             InstanceValue("SNAPSHOT_SLOTS", Napi::Number::New(env, kSlots)),
                             InstanceValue("TRIM_SLOTS", Napi::Number::New(env, kTrimSlots)),
                         });
  }

 private:
  Napi::Value Allocator(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Backend& b = CurrentBackend();
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", b.Name());
    const std::string version = b.Version();
    o.Set("version", version.empty() ? env.Null() : Napi::String::New(env, version));
    const std::string limits = b.Limitations();
    o.Set("limitations", limits.empty() ? env.Null() : Napi::String::New(env, limits));
    o.Set("hasStats", b.HasStats());
    o.Set("hasDetail", b.HasDetail());
    o.Set("canTrim", b.CanTrim());
    o.Set("trimsThreadArenaTops", b.ReleasesBeyondTrim());
    const auto& names = b.RawFieldNames();
    Napi::Array raw = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); i++) raw[i] = Napi::String::New(env, names[i]);
    o.Set("rawFields", raw);
    return o;
  }

  // Pins the arrays synchronous calls write into, once per environment.
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    TargetArray(info[0], kSlots);
    TargetArray(info[1], kTrimSlots);
    values_ref_ = Napi::Persistent(info[0].As<Napi::Float64Array>());
    trim_ref_ = Napi::Persistent(info[1].As<Napi::Float64Array>());
    return info.Env().Undefined();
  }

  // The bound array's data, checked on every call: a pointer kept from bind() would dangle once
  // the array's buffer is detached.
  double* Bound(Napi::Env env, Napi::Reference<Napi::Float64Array>& ref, size_t min_length) {
    if (ref.IsEmpty()) throw Napi::Error::New(env, "fragstat internal: bind() was not called");
    return TargetArray(ref.Value(), min_length);
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    // napi_get_value_bool fails (leaving `asked` false) for anything but a boolean: one call.
    bool asked = false;
    napi_get_value_bool(env, info[0], &asked);
    const bool detail = asked && CurrentBackend().HasDetail();
    double* out = Bound(env, values_ref_, kSlots);
    Reading r;
    TakeReading(r, detail);
    if (!r.status.ok()) throw CodedError(env, r.status);
    WriteFigures(out, r);
    return detail ? DetailToJs(env, r.detail) : env.Undefined();
  }

  Napi::Value SnapshotAsync(const Napi::CallbackInfo& info) {
    const bool detail = info[0].ToBoolean() && CurrentBackend().HasDetail();
    TargetArray(info[1], kSlots);
    auto* w = new SnapshotWorker(info.Env(), info[1].As<Napi::Float64Array>(), detail);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value TrimSync(const Napi::CallbackInfo& info) {
    double* out = Bound(info.Env(), trim_ref_, kTrimSlots);
    Backend& b = CurrentBackend();
    const double start = NowMs();
    TrimOutcome t = BeginTrim(b);
    FinishTrim(b, t);
    if (b.CanTrim()) t.blocking_ms = NowMs() - start;
    if (!t.status.ok()) throw CodedError(info.Env(), t.status);
    WriteTrim(out, b.CanTrim(), t);
    return info.Env().Undefined();
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    TargetArray(info[0], kTrimSlots);
    auto* w = new TrimWorker(info.Env(), info[0].As<Napi::Float64Array>(), BeginTrim(CurrentBackend()));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // The allocator's statistics report, on a pool thread; at most info[0] bytes of it.
  Napi::Value StatsText(const Napi::CallbackInfo& info) {
    const double max = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(max >= 2 && max <= 1024.0 * 1024 * 1024)) {
      throw Napi::RangeError::New(info.Env(), "statsText: maxBytes out of range");
    }
    auto* w = new StatsTextWorker(info.Env(), static_cast<size_t>(max));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Rss(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ReadRssBytes()); }
  Napi::Value RssReopen(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ReadRssBytesReopen());
  }

  Napi::Value MetadataBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), CurrentBackend().MetadataBytes());
  }

  // For the benchmark: the mean cost in ns of the reading a snapshot makes (allocator + RSS),
  // looped in C++ inside this process's own heap, without N-API or JavaScript around it.
  Napi::Value RawReadNs(const Napi::CallbackInfo& info) {
    const int64_t n = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 1000;
    if (n <= 0 || n > 100000000) throw Napi::RangeError::New(info.Env(), "iterations out of range");
    const double start = NowMs();
    for (int64_t i = 0; i < n; i++) {
      Reading r;
      TakeReading(r, false);
    }
    return Napi::Number::New(info.Env(), (NowMs() - start) * 1e6 / static_cast<double>(n));
  }

  // Allocator settings (tunables.h); names and values are validated in TypeScript.
  Napi::Value AllocatorSettings(const Napi::CallbackInfo& info) {
    return SettingsToJs(info.Env(), ReadAllocatorSettings(CurrentBackend().Name()));
  }
  Napi::Value MalloptCalls(const Napi::CallbackInfo& info) {
    return SettingsToJs(info.Env(), fragstat::MalloptCalls());
  }
  Napi::Value Mallopt(const Napi::CallbackInfo& info) {
    const Status s = fragstat::Mallopt(info[0].ToString(), info[1].ToNumber().Int64Value());
    if (!s.ok()) throw CodedError(info.Env(), s);
    return info.Env().Undefined();
  }
  Napi::Value WriteSetting(const Napi::CallbackInfo& info) {
    Setting v;
    v.name = info[0].ToString();
    if (info[1].IsBoolean()) {
      v.kind = Setting::kBool;
      v.flag = info[1].As<Napi::Boolean>().Value();
    } else {
      v.number = info[1].ToNumber().DoubleValue();
    }
    const Status s = WriteAllocatorSetting(CurrentBackend().Name(), v);
    if (!s.ok()) throw CodedError(info.Env(), s);
    return info.Env().Undefined();
  }

  Napi::Value ProfileStateJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const ProfileState s = ReadProfileState();
    Napi::Object o = Napi::Object::New(env);
    o.Set("jemalloc", s.jemalloc);
    o.Set("config", s.config);
    o.Set("enabled", s.enabled);
    o.Set("active", s.active);
    o.Set("lgSample", std::isnan(s.lg_sample) ? env.Null() : Napi::Number::New(env, s.lg_sample));
    return o;
  }

  Napi::Value ProfileSetActive(const Napi::CallbackInfo& info) {
    bool previous = false;
    const Status st = SetProfileActive(info[0].ToBoolean(), &previous);
    if (!st.ok()) throw CodedError(info.Env(), st);
    return Napi::Boolean::New(info.Env(), previous);
  }

  Napi::Value ProfileDump(const Napi::CallbackInfo& info) {
    if (!info[0].IsString())
      throw Napi::TypeError::New(info.Env(), "fragstat internal: expected a directory");
    auto* w = new ProfileDumpWorker(info.Env(), info[0].As<Napi::String>().Utf8Value());
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value ProfileSetJsFrames(const Napi::CallbackInfo& info) {
    const Status st = SetJsBacktrace(info[0].ToBoolean());
    if (!st.ok()) throw CodedError(info.Env(), st);
    return info.Env().Undefined();
  }

  // On the calling thread: for process exit, where no pool work can complete.
  Napi::Value ProfileDumpSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "fragstat internal: expected a directory");
    DumpResult r = DumpProfile(info[0].As<Napi::String>().Utf8Value());
    if (!r.status.ok()) throw CodedError(env, r.status);
    Napi::Object o = Napi::Object::New(env);
    o.Set("text", Napi::String::New(env, r.text));
    o.Set("durationMs", r.duration_ms);
    return o;
  }

  // Demangles a batch of symbol names; "" for a name that is not a mangled C++ name.
  Napi::Value DemangleJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "fragstat internal: expected an array of names");
    Napi::Array in = info[0].As<Napi::Array>();
    Napi::Array out = Napi::Array::New(env, in.Length());
    for (uint32_t i = 0; i < in.Length(); i++) {
      Napi::Value v = in[i];
      out[i] = Napi::String::New(env, v.IsString() ? Demangle(v.As<Napi::String>().Utf8Value().c_str()) : "");
    }
    return out;
  }

  // The V8 release method named by a number (V8ReleaseMethod), or throws.
  static V8ReleaseMethod ReleaseMethod(const Napi::CallbackInfo& info) {
    const int32_t m = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
    if (m != 0 && m != 1)
      throw Napi::TypeError::New(info.Env(), "fragstat internal: expected a V8 release method");
    return static_cast<V8ReleaseMethod>(m);
  }

  Napi::Value V8ReleaseAvailableJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), V8ReleaseAvailable(ReleaseMethod(info)));
  }

  // Synchronous on the calling JS thread: V8 collects garbage inside this call.
  Napi::Value ReleaseV8HeapJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ReleaseV8Heap(ReleaseMethod(info)));
  }

  // The process's monitor, claimed by one thread at a time (src/monitor/monitor.ts).
  Napi::Value ClaimMonitorJs(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber())
      throw Napi::TypeError::New(info.Env(), "fragstat internal: expected a thread id");
    const int thread_id = info[0].As<Napi::Number>().Int32Value();
    const int holder = ClaimMonitor(thread_id);
    if (holder == -1) claimed_thread_ = thread_id;
    return Napi::Number::New(info.Env(), holder);
  }

  Napi::Value ReleaseMonitorJs(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber())
      throw Napi::TypeError::New(info.Env(), "fragstat internal: expected a thread id");
    ReleaseMonitor(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

 public:
  // At the environment's teardown (a worker exiting with its monitor running): its claim goes.
  ~FragstatAddon() {
    if (claimed_thread_ != -1) ReleaseMonitorThread(claimed_thread_);
  }

 private:
  int claimed_thread_ = -1;
  Napi::Reference<Napi::Float64Array> values_ref_;
  Napi::Reference<Napi::Float64Array> trim_ref_;
};

}  // namespace

}  // namespace fragstat

using fragstat::FragstatAddon;
NODE_API_ADDON(FragstatAddon)
