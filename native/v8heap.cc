#include "v8heap.h"

#include "symbols.h"

namespace fragstat {

namespace {

// Looked up at run time by their mangled names, as exported by every Node binary from 18 on: a
// link-time reference would tie the prebuilt addon to V8's C++ ABI and stop it loading in a
// runtime without them. A member function takes `this` as its first argument (Itanium C++ ABI);
// v8::MemoryPressureLevel is an enum class over int.
using TryGetCurrentFn = void* (*)();
using MemoryPressureFn = void (*)(void* isolate, int level);
using LowMemoryFn = void (*)();

constexpr int kLevelNone = 0;
constexpr int kLevelCritical = 2;

struct Entry {
  TryGetCurrentFn try_get_current;
  MemoryPressureFn memory_pressure;
  LowMemoryFn low_memory;
};

const Entry& Entries() {
  static const Entry entry = {
      Resolve<TryGetCurrentFn>("_ZN2v87Isolate13TryGetCurrentEv"),
      Resolve<MemoryPressureFn>("_ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE"),
      Resolve<LowMemoryFn>("_ZN4node21LowMemoryNotificationEv"),
  };
  return entry;
}

}  // namespace

bool V8ReleaseAvailable(V8ReleaseMethod method) {
  const Entry& e = Entries();
  if (e.try_get_current == nullptr) return false;
  return method == V8ReleaseMethod::kMemoryPressure ? e.memory_pressure != nullptr : e.low_memory != nullptr;
}

bool ReleaseV8Heap(V8ReleaseMethod method) {
  if (!V8ReleaseAvailable(method)) return false;
  const Entry& e = Entries();
  void* isolate = e.try_get_current();
  if (isolate == nullptr) return false;
  if (method == V8ReleaseMethod::kMemoryPressure) {
    e.memory_pressure(isolate, kLevelCritical);
    // V8 resets the level once it has acted on it; setting it back here as well keeps a version
    // that did not from optimizing for memory (smaller heap growth, more GCs) from then on.
    e.memory_pressure(isolate, kLevelNone);
  } else {
    // Acts on the current isolate (v8::Isolate::TryGetCurrent()) and is a no-op without one.
    e.low_memory();
  }
  return true;
}

}  // namespace fragstat
