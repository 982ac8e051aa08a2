// A standalone driver of every backend against the real allocator serving malloc (run it with
// LD_PRELOAD of jemalloc, tcmalloc or mimalloc, or with none for glibc), built with sanitizers by
// scripts/sanitize.mjs. Without node and N-API around it, a sanitizer sees only fragstat's code.
//
//   backends <expected allocator name>
//
// Checks, exiting non-zero on the first failure: the allocator detected is the one expected;
// a read succeeds, with and without detail; 64 MiB more live bytes moves `allocated` by at least
// that much (when the allocator counts live bytes); four threads allocating and freeing while two
// others read and trim for a while; a trim after freeing it all. Under glibc also: a thread arena's
// free top is released once the step has seen the arena on an earlier scan a second before; and an
// arena that glibc is still creating (mapped, top set, lock word not yet initialised, not linked
// into main_arena's list) is never locked or released, on a first scan or on a later one.
#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "../../native/arenatop.h"
#include "../../native/backend.h"
#include "../../native/rss.h"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) failures++;
}

void* volatile sink = nullptr;

// A thread arena in the state glibc's _int_new_arena leaves it in just before its
// __libc_lock_init: a 64 MiB-aligned private anonymous heap whose heap_info names the malloc_state
// right after it, with a top chunk that passes every structural check, resident pages filled with
// a pattern past the top, the lock word 0, and no link into main_arena's list (`next` still 0,
// as in a fresh mapping). The release step runs twice, a scan apart by more than a second, while
// a thread watches the lock word: nothing may write it and the pattern must stay.
void FakeArenaBeingCreated(const char* glibc_version) {
  constexpr uintptr_t kHeapMax = uintptr_t{64} << 20;
  constexpr size_t kUsed = 8u << 20;  // heap_info.size: the part glibc made read-write
  const size_t header = std::atoi(glibc_version + 2) >= 35 ? 48 : 32;
  void* raw = mmap(nullptr, 2 * kHeapMax, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return Check(false, "mmap for the fake arena");
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t heap = (base + kHeapMax - 1) & ~(kHeapMax - 1);
  if (heap > base) munmap(raw, heap - base);
  munmap(reinterpret_cast<void*>(heap + kHeapMax), base + 2 * kHeapMax - heap - kHeapMax);
  mprotect(reinterpret_cast<void*>(heap + kUsed), kHeapMax - kUsed, PROT_NONE);  // as new_heap leaves it
  uintptr_t* info = reinterpret_cast<uintptr_t*>(heap);
  const uintptr_t arena = heap + header;
  info[0] = arena;  // ar_ptr
  info[1] = 0;      // prev: the arena's first heap
  info[2] = kUsed;  // size
  info[3] = kUsed;  // mprotect_size
  if (header == 48) info[4] = 4096;
  constexpr size_t kStateSize = 2200;  // sizeof (struct malloc_state), 2.27-2.42, 64-bit
  uintptr_t top = arena + kStateSize;
  if ((top + 16) % 16 != 0) top += 16 - (top + 16) % 16;  // glibc aligns chunk2mem (top)
  int* mutex = reinterpret_cast<int*>(arena);
  *mutex = 0;  // what __libc_lock_init is about to store; no lock of glibc's is held here
  *reinterpret_cast<uintptr_t*>(arena + 96) = top;
  reinterpret_cast<uintptr_t*>(top)[1] = (heap + kUsed - top) | 1;  // size, PREV_INUSE
  unsigned char* past = reinterpret_cast<unsigned char*>(top + 16);
  const size_t past_len = heap + kUsed - (top + 16);
  std::memset(past, 0xa5, past_len);

  std::atomic<bool> stop{false};
  std::atomic<int> lock_seen{0};
  std::thread watcher([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const int v = __atomic_load_n(mutex, __ATOMIC_RELAXED);
      if (v != 0) lock_seen = v;
    }
  });
  double released = 0;
  for (int scan = 0; scan < 2; scan++) {
    if (scan == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    const double r = fragstat::ReleaseArenaTops(glibc_version, 128 * 1024);
    if (!std::isnan(r)) released += r;
  }
  stop = true;
  watcher.join();
  size_t intact = 0;
  for (size_t i = 0; i < past_len; i++) intact += past[i] == 0xa5;
  std::printf(
      "     arena being created: lock word seen as %d, %zu of %zu pattern bytes intact, %.1f MiB released in "
      "all (other arenas)\n",
      lock_seen.load(), intact, past_len, released / 1048576);
  Check(lock_seen.load() == 0, "the step never writes the lock word of an arena glibc is still creating");
  Check(intact == past_len, "and never releases the pages past its top");
  munmap(reinterpret_cast<void*>(heap), kHeapMax);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fragstat;
  const char* expected = argc > 1 ? argv[1] : "glibc";
  Backend& b = CurrentBackend();
  std::printf("backend %s %s (%s)\n", b.Name(), b.Version().c_str(), b.Limitations().c_str());
  Check(std::strcmp(b.Name(), expected) == 0, "the expected allocator is detected");

  Figures before;
  Check(b.Read(before, nullptr).ok(), "a read succeeds");
  Detail detail;
  Figures with_detail;
  Check(b.Read(with_detail, &detail).ok(), "a detail read succeeds");
  if (b.HasDetail()) Check(!detail.arenas.empty(), "detail lists arenas");

  // glibc: a thread arena's free top, which malloc_trim leaves resident. Freeing a 24 MiB mmapped
  // chunk raises glibc's mmap threshold to 24 MiB and its trim threshold to 48 MiB; a thread then
  // takes 16 MiB from its own arena's top, writes it and frees it: it merges back into the top,
  // below the trim threshold, and stays while the thread idles.
  if (std::strcmp(b.Name(), "glibc") == 0) {
    double pending = NAN;
    Check(!std::isnan(b.ReleaseBeyondTrim(pending)), "glibc releases thread-arena tops (a layout it knows)");
    Check(!std::isnan(pending), "and says how many arenas it left for later");
    constexpr size_t kTop = 16u << 20;
    char* big = static_cast<char*>(std::malloc(24u << 20));
    std::memset(big, 1, 24u << 20);
    sink = big;  // so the compiler keeps the pair
    std::free(big);
    std::atomic<int> phase{0};
    std::atomic<bool> intact{true};
    std::thread idle([&] {
      for (int round = 0; round < 2; round++) {
        char* p = static_cast<char*>(std::malloc(kTop));
        std::memset(p, 7, kTop);
        sink = p;
        for (size_t i = 0; i < kTop; i += 4096) intact = intact && p[i] == 7;
        std::free(p);
        phase = round * 2 + 1;
        while (phase.load() == round * 2 + 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    while (phase.load() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // The step releases only arenas it saw linked on a scan at least a second before: this
    // trim's scan notes the new arena (and says it left one), the next one, after the wait,
    // releases its top.
    b.ReleaseBeyondTrim(pending);
    Check(pending >= 1, "a scan that first sees an arena leaves it pending");
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    const double rss0 = ReadRssBytes();
    double r = 0;
    Check(b.Trim(r).ok(), "malloc_trim succeeds");
    const double rss1 = ReadRssBytes();
    const double released = b.ReleaseBeyondTrim(pending);
    Check(pending == 0, "a second later, none is left pending");
    const double rss2 = ReadRssBytes();
    std::printf(
        "     thread-arena top: malloc_trim released %.1f MiB, the top release %.1f MiB (RSS -%.1f MiB)\n",
        (rss0 - rss1) / 1048576, released / 1048576, (rss1 - rss2) / 1048576);
    Check(rss0 - rss1 < kTop / 2.0, "malloc_trim leaves the thread arena's top resident");
    Check(released >= kTop - (1u << 20), "the top release counts the 16 MiB (less its 128 KiB pad)");
    Check(rss1 - rss2 >= kTop - (2u << 20), "and RSS falls by it");
    phase = 2;  // the thread allocates from that top again, writes and checks it
    while (phase.load() != 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    phase = 4;
    idle.join();
    Check(intact.load(), "memory from the released top is written and read back intact");
    FakeArenaBeingCreated(b.Version().c_str());
  }

  // 64 MiB in 1 KiB blocks, written so every page is really used.
  std::vector<char*> blocks;
  for (int i = 0; i < 64 * 1024; i++) {
    char* p = static_cast<char*>(std::malloc(1024));
    std::memset(p, 1, 1024);
    blocks.push_back(p);
  }
  Figures after;
  Check(b.Read(after, nullptr).ok(), "a read after allocating succeeds");
  if (!std::isnan(before.allocated)) {
    Check(after.allocated - before.allocated >= 64.0 * 1024 * 1024, "allocated grows by the 64 MiB");
  }
  for (size_t i = 1; i < blocks.size(); i += 2) {
    std::free(blocks[i]);
    blocks[i] = nullptr;
  }

  // Readers and a trimmer against threads that allocate and free, for about a second.
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&stop, t] {
      std::vector<void*> mine(4096, nullptr);
      unsigned x = 12345u + static_cast<unsigned>(t);
      while (!stop.load()) {
        for (void*& p : mine) {
          x = x * 1103515245u + 12345u;
          std::free(p);
          p = std::malloc(16 + (x >> 16) % 8192);
          sink = p;
        }
      }
      for (void* p : mine) std::free(p);
    });
  }
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&b, &stop, &errors, t] {
      while (!stop.load()) {
        Figures f;
        Detail d;
        if (!b.Read(f, t == 0 ? &d : nullptr).ok()) errors++;
        if (t == 1) {
          double r = 0;
          b.PrepareTrimOnCallingThread();
          if (!b.Trim(r).ok()) errors++;
          double left = 0;
          b.ReleaseBeyondTrim(left);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  stop = true;
  for (std::thread& t : threads) t.join();
  Check(errors.load() == 0, "concurrent reads and trims while other threads allocate all succeed");

  for (char*& p : blocks) std::free(p);
  double result = 0;
  b.PrepareTrimOnCallingThread();
  Check(b.Trim(result).ok(), "a trim after freeing everything succeeds");
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
