// See arenatop.h. The layouts below were read in glibc's malloc/malloc.c and malloc/arena.c for
// every release from 2.27 to 2.42 (unchanged there; the development tree after 2.42 removed
// fastbins, which moves `top`, so it is not supported):
//   heap_info { mstate ar_ptr; heap_info* prev; size_t size; size_t mprotect_size;
//               [2.35+: size_t pagesize;] pad to MALLOC_ALIGNMENT }   32 bytes, 48 from 2.35
//   a thread arena's malloc_state sits right after the heap_info of its first heap (h + 1);
//   malloc_state { int mutex; int flags; int have_fastchunks; mfastbinptr fastbinsY[10];
//                  mchunkptr top; mchunkptr last_remainder; mchunkptr bins[254];
//                  unsigned int binmap[4]; struct malloc_state* next; ... }
//     so on 64-bit `top` is at offset 96 and `next` at 2160
//   heaps are HEAP_MAX_SIZE (64 MiB) aligned; heap_for_ptr(p) = p & ~(64 MiB - 1)
//   the arena mutex is a low-level lock: 0 free, 1 locked, 2 locked with waiters; lock is a
//   CAS 0 -> 1, unlock an exchange with 0 and a FUTEX_WAKE_PRIVATE of one waiter when it was 2.
//   arenas and the first heap of each are never unmapped; later heaps are, under the lock.
//   _int_new_arena: new_heap (a fresh mapping, so `next` reads 0), ar_ptr, top, then
//   __libc_lock_init (mutex) (a plain store of 0), then under list_lock `a->next =
//   main_arena.next`, a write barrier, `main_arena.next = a`; then it locks the arena. Arenas are
//   never unlinked. The list is circular: main_arena -> newest -> ... -> oldest -> main_arena.
#include "arenatop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "clock.h"

namespace fragstat {

namespace {

constexpr uintptr_t kHeapMax = uintptr_t{64} << 20;
constexpr size_t kTopOffset = 96;
constexpr size_t kNextOffset = 2160;
constexpr size_t kMinSize = 32;  // MINSIZE on 64-bit: the top chunk's header and links
// How long an arena must have been seen linked before its top is released, and how far a walk
// along the arena list goes (glibc's cap is 8 arenas per CPU).
constexpr int64_t kMinAgeMs = 1000;
constexpr size_t kMaxWalk = 8192;

int MinorVersion(const char* v) {
  if (v == nullptr || std::strncmp(v, "2.", 2) != 0) return -1;
  return std::atoi(v + 2);
}

// What a seccomp filter, an LSM or a missing /proc answers for a call it does not allow.
bool Refused(int err) { return err == EPERM || err == EACCES || err == ENOSYS; }

// The files the step reads, opened before any lock is taken. `refused` records that a call was
// refused rather than failed: the step's result is then unknown, not 0.
struct Proc {
  int maps = -1, mem = -1, pagemap = -1;
  bool refused = false;

  bool Open() {
    for (auto [fd, path] : {std::pair<int*, const char*>{&maps, "/proc/self/maps"},
                            {&mem, "/proc/self/mem"},
                            {&pagemap, "/proc/self/pagemap"}}) {
      *fd = open(path, O_RDONLY | O_CLOEXEC);
      if (*fd < 0) {
        refused = refused || Refused(errno);
        return false;
      }
    }
    return true;
  }
  ~Proc() {
    for (int fd : {maps, mem, pagemap})
      if (fd >= 0) close(fd);
  }

  // Copies `len` bytes at `addr` of this process; false where any of it is not mapped.
  bool Read(uintptr_t addr, void* out, size_t len) {
    const ssize_t n = pread(mem, out, len, static_cast<off_t>(addr));
    if (n < 0 && Refused(errno)) refused = true;
    return n == static_cast<ssize_t>(len);
  }

  // Resident bytes in [begin, end), page-aligned: pagemap's bit 63 (present), which the kernel
  // gives unprivileged readers of their own pagemap. Swapped pages (bit 62) are not resident.
  // A buffer on the stack: nothing here allocates. -1 where pagemap cannot be read.
  double Resident(uintptr_t begin, uintptr_t end, size_t page) {
    uint64_t entries[512];
    size_t present = 0;
    for (uintptr_t p = begin; p < end;) {
      const size_t n = std::min<size_t>((end - p) / page, sizeof entries / sizeof entries[0]);
      const ssize_t got = pread(pagemap, entries, n * sizeof entries[0], static_cast<off_t>(p / page * 8));
      if (got != static_cast<ssize_t>(n * sizeof entries[0])) {
        if (got < 0 && Refused(errno)) refused = true;
        return -1;
      }
      for (size_t i = 0; i < n; i++) present += entries[i] >> 63;
      p += n * page;
    }
    return static_cast<double>(present) * static_cast<double>(page);
  }
};

struct HeapInfo {
  uintptr_t ar_ptr, prev, size, mprotect_size;
};

struct Heap {
  uintptr_t start;
  HeapInfo info;
};

// Every 64 MiB-aligned private anonymous read-write mapping whose first bytes read as a heap_info.
std::vector<Heap> FindHeaps(Proc& proc, size_t header) {
  std::vector<Heap> heaps;
  std::string text;
  char buf[16384];
  ssize_t n;
  while ((n = read(proc.maps, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  if (n < 0 && Refused(errno)) proc.refused = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    char perms[8] = {0}, dev[16] = {0};
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %15s %lu %n", &start, &end, perms, &offset, dev, &inode,
                    &path_at) < 6)
      continue;
    if (start % kHeapMax != 0 || std::strncmp(perms, "rw-p", 4) != 0 || inode != 0) continue;
    if (path_at > 0 && static_cast<size_t>(path_at) < line.size()) continue;  // named: [heap], [stack], files
    Heap h{start, {}};
    if (!proc.Read(start, &h.info, sizeof h.info)) continue;
    const HeapInfo& i = h.info;
    if (i.size < header || i.size > kHeapMax || i.mprotect_size < i.size || i.mprotect_size > kHeapMax)
      continue;
    if (i.size > end - start) continue;
    const bool first = i.prev == 0 && i.ar_ptr == start + header;
    const bool later = i.prev != 0 && i.prev % kHeapMax == 0 && i.ar_ptr % kHeapMax == header;
    if (first || later) heaps.push_back(h);
  }
  return heaps;
}

// Whether `arena` is in glibc's arena list: following `next` from it comes back to it, through
// exactly one node that is not a thread arena's (main_arena, inside libc). Before glibc links a
// new arena its `next` is 0 (a fresh mapping), and between its two link stores the walk runs
// around the list without returning to it. Every node of a walk that returns is linked too.
bool Linked(Proc& proc, uintptr_t arena, size_t header, std::vector<uintptr_t>& linked) {
  for (uintptr_t a : linked)
    if (a == arena) return true;
  const size_t known = linked.size();
  size_t outside = 0;
  uintptr_t cur = arena;
  for (size_t step = 0; step < kMaxWalk; step++) {
    uintptr_t next = 0;
    if (!proc.Read(cur + kNextOffset, &next, sizeof next) || next == 0) break;
    if (next == arena) {
      if (outside == 1) {
        linked.push_back(arena);
        return true;
      }
      break;
    }
    if (next % kHeapMax != header) outside++;
    if (outside > 1) break;
    linked.push_back(next);
    cur = next;
  }
  linked.resize(known);  // shrinks only: no allocation
  return false;
}

// Arenas first seen linked, with when (CLOCK_MONOTONIC ms): process-wide, because arenas live as
// long as the process. Lock-free (an entry is claimed with a CAS, its time stored after), so
// concurrent calls and a fork in the middle of one leave it usable, and a fixed size, so nothing
// allocates. An arena that finds the table full is never released (1024 is above glibc's cap of
// 8 arenas per CPU up to 128 CPUs).
struct SeenArena {
  std::atomic<uintptr_t> arena{0};
  std::atomic<int64_t> since_ms{0};  // 0 until the claim's time is stored
};
SeenArena g_seen[1024];

// Notes `arena` as seen linked at `now_ms`; true if it was already seen at least kMinAgeMs before.
bool SeenLongEnough(uintptr_t arena, int64_t now_ms) {
  for (SeenArena& s : g_seen) {
    uintptr_t a = s.arena.load(std::memory_order_acquire);
    if (a == 0) {
      if (s.arena.compare_exchange_strong(a, arena, std::memory_order_acq_rel)) {
        s.since_ms.store(now_ms, std::memory_order_release);
        return false;
      }
    }
    if (a == arena) {
      const int64_t since = s.since_ms.load(std::memory_order_acquire);
      return since != 0 && now_ms - since >= kMinAgeMs;
    }
  }
  return false;
}

bool TryLock(int* mutex) {
  int expected = 0;
  return __atomic_compare_exchange_n(mutex, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void Unlock(int* mutex) {
  if (__atomic_exchange_n(mutex, 0, __ATOMIC_RELEASE) > 1) {
    syscall(SYS_futex, mutex, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
}

}  // namespace

bool ArenaTopsSupported(const char* glibc_version) {
  const int minor = MinorVersion(glibc_version);
  return sizeof(void*) == 8 && minor >= 27 && minor <= 42;
}

double ReleaseArenaTops(const char* glibc_version, size_t pad, int* pending) {
  double released = 0;
  if (pending != nullptr) *pending = 0;
  if (!ArenaTopsSupported(glibc_version)) return released;
  const size_t header = MinorVersion(glibc_version) >= 35 ? 48 : 32;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const int64_t now_ms = std::max<int64_t>(static_cast<int64_t>(NowMs()), 1);
  Proc proc;
  if (!proc.Open()) return proc.refused ? NAN : released;
  const std::vector<Heap> heaps = FindHeaps(proc, header);
  // Which arenas to visit, decided before any lock is taken (the walk allocates).
  std::vector<uintptr_t> linked, ready;
  for (const Heap& first : heaps) {
    if (first.info.prev != 0) continue;  // one visit per arena, from its first heap
    const uintptr_t arena = first.info.ar_ptr;
    if (!Linked(proc, arena, header, linked)) continue;
    if (SeenLongEnough(arena, now_ms)) {
      ready.push_back(arena);
    } else if (pending != nullptr) {
      ++*pending;
    }
  }
  if (proc.refused) return NAN;
  // Pairs with glibc's write barrier between the lock init and the store that links the arena:
  // every lock word below reads as initialised, so no CAS lands before glibc's store of 0.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Nothing below allocates: this thread's own arena may be the one locked.
  for (const uintptr_t arena : ready) {
    int flags_and_mutex[2];
    // The mutex must read as a lock word before anything writes to it.
    if (!proc.Read(arena, flags_and_mutex, sizeof flags_and_mutex) || flags_and_mutex[0] < 0 ||
        flags_and_mutex[0] > 2)
      continue;
    int* mutex = reinterpret_cast<int*>(arena);
    if (!TryLock(mutex)) continue;
    // Under the lock: the arena's top and the heap it lies in cannot change or go away.
    uintptr_t top = 0;
    HeapInfo h{};
    uintptr_t size_field = 0;
    bool ok = proc.Read(arena + kTopOffset, &top, sizeof top) && top != 0;
    const uintptr_t heap_start = top & ~(kHeapMax - 1);
    bool known = false;
    for (const Heap& k : heaps) known = known || (k.start == heap_start && k.info.ar_ptr == arena);
    ok = ok && known && proc.Read(heap_start, &h, sizeof h) && h.ar_ptr == arena &&
         proc.Read(top + sizeof(uintptr_t), &size_field, sizeof size_field);
    const uintptr_t top_size = size_field & ~uintptr_t{7};
    // The top chunk ends exactly where the heap's used part ends, and says its neighbour is in use.
    ok = ok && (size_field & 1) != 0 && h.size <= kHeapMax && top >= heap_start + header &&
         top + top_size == heap_start + h.size;
    if (ok) {
      const uintptr_t begin = (top + kMinSize + pad + page - 1) & ~(page - 1);
      const uintptr_t end = (heap_start + h.size) & ~(page - 1);
      if (end > begin) {
        const double resident = proc.Resident(begin, end, page);
        if (resident > 0) {
          if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0) {
            released += resident;
          } else if (Refused(errno)) {
            proc.refused = true;
          }
        }
      }
    }
    Unlock(mutex);
    if (proc.refused) return NAN;
  }
  return released;
}

}  // namespace fragstat
