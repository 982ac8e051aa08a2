// V8's idle heap: asks the calling thread's isolate to give its free pages back to the system.
// Not an allocator backend: V8 maps its heap pages itself, so no malloc_trim reaches them.
#pragma once

namespace fragstat {

// What V8 is asked to do (mirrored in src/binding.ts).
enum class V8ReleaseMethod {
  // v8::Isolate::MemoryPressureNotification(kCritical): a full GC that reduces the footprint
  // (compacts, shrinks new space, frees pooled pages), and a second one only when the first took
  // under 50 ms and left 8 MiB or a tenth of the heap to collect. V8 resets the level itself.
  kMemoryPressure = 0,
  // node::LowMemoryNotification(): V8's CollectAllAvailableGarbage, up to seven full GCs until
  // nothing more dies. Releases a little more, pauses about twice as long.
  kLowMemory = 1,
};

// Whether this process exports what `method` needs (Node does; other embedders may not).
bool V8ReleaseAvailable(V8ReleaseMethod method);

// Runs `method` on the calling thread's isolate, synchronously: call only from a JS thread.
// Returns false when the process lacks the entry points or the thread has no isolate.
bool ReleaseV8Heap(V8ReleaseMethod method);

}  // namespace fragstat
