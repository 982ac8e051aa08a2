// See arenatop.h. The layouts below were read in glibc's malloc/malloc.c and malloc/arena.c for
// every release from 2.27 to 2.42 (unchanged there; the development tree after 2.42 removed
// fastbins, which moves `top`, so it is not supported):
//   heap_info { mstate ar_ptr; heap_info* prev; size_t size; size_t mprotect_size;
//               [2.35+: size_t pagesize;] pad to MALLOC_ALIGNMENT }   32 bytes, 48 from 2.35
//   a thread arena's malloc_state sits right after the heap_info of its first heap (h + 1);
//   malloc_state { int mutex; int flags; int have_fastchunks; mfastbinptr fastbinsY[10];
//                  mchunkptr top; ... }   so top is at offset 96 on 64-bit
//   heaps are HEAP_MAX_SIZE (64 MiB) aligned; heap_for_ptr(p) = p & ~(64 MiB - 1)
//   the arena mutex is a low-level lock: 0 free, 1 locked, 2 locked with waiters; lock is a
//   CAS 0 -> 1, unlock an exchange with 0 and a FUTEX_WAKE_PRIVATE of one waiter when it was 2.
//   arenas and the first heap of each are never unmapped; later heaps are, under the lock.
#include "arenatop.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace fragstat {

namespace {

constexpr uintptr_t kHeapMax = uintptr_t{64} << 20;
constexpr size_t kTopOffset = 96;
constexpr size_t kMinSize = 32;  // MINSIZE on 64-bit: the top chunk's header and links

int MinorVersion(const char* v) {
  if (v == nullptr || std::strncmp(v, "2.", 2) != 0) return -1;
  return std::atoi(v + 2);
}

// Copies `len` bytes at `addr` of this process; false where any of it is not mapped.
bool SafeRead(uintptr_t addr, void* out, size_t len) {
  struct iovec local = {out, len};
  struct iovec remote = {reinterpret_cast<void*>(addr), len};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

struct HeapInfo {
  uintptr_t ar_ptr, prev, size, mprotect_size;
};

struct Heap {
  uintptr_t start;
  HeapInfo info;
};

// Every 64 MiB-aligned private anonymous read-write mapping whose first bytes read as a heap_info.
std::vector<Heap> FindHeaps(size_t header) {
  std::vector<Heap> heaps;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return heaps;
  std::string text;
  char buf[16384];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fd);
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
    if (!SafeRead(start, &h.info, sizeof h.info)) continue;
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

bool TryLock(int* mutex) {
  int expected = 0;
  return __atomic_compare_exchange_n(mutex, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void Unlock(int* mutex) {
  if (__atomic_exchange_n(mutex, 0, __ATOMIC_RELEASE) > 1) {
    syscall(SYS_futex, mutex, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
}

// Resident bytes in [begin, end), page-aligned, within one heap. `vec` holds a byte per page of a
// whole heap, allocated before any lock is taken: this thread's own arena may be the one locked,
// and a malloc then would wait for itself.
double Resident(uintptr_t begin, uintptr_t end, size_t page, std::vector<unsigned char>& vec) {
  const size_t pages = (end - begin) / page;
  if (pages > vec.size() || mincore(reinterpret_cast<void*>(begin), end - begin, vec.data()) != 0) return 0;
  size_t n = 0;
  for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
  return static_cast<double>(n) * static_cast<double>(page);
}

}  // namespace

bool ArenaTopsSupported(const char* glibc_version) {
  const int minor = MinorVersion(glibc_version);
  return sizeof(void*) == 8 && minor >= 27 && minor <= 42;
}

double ReleaseArenaTops(const char* glibc_version, size_t pad) {
  double released = 0;
  if (!ArenaTopsSupported(glibc_version)) return released;
  const size_t header = MinorVersion(glibc_version) >= 35 ? 48 : 32;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const std::vector<Heap> heaps = FindHeaps(header);
  std::vector<unsigned char> pages(kHeapMax / page);
  // Nothing below allocates: see Resident().
  for (const Heap& first : heaps) {
    if (first.info.prev != 0) continue;  // one pass per arena, from its first heap
    const uintptr_t arena = first.info.ar_ptr;
    int flags_and_mutex[2];
    // The mutex must read as a lock word before anything writes to it.
    if (!SafeRead(arena, flags_and_mutex, sizeof flags_and_mutex) || flags_and_mutex[0] < 0 ||
        flags_and_mutex[0] > 2)
      continue;
    int* mutex = reinterpret_cast<int*>(arena);
    if (!TryLock(mutex)) continue;
    // Under the lock: the arena's top and the heap it lies in cannot change or go away.
    uintptr_t top = 0;
    HeapInfo h{};
    uintptr_t size_field = 0;
    bool ok = SafeRead(arena + kTopOffset, &top, sizeof top) && top != 0;
    const uintptr_t heap_start = top & ~(kHeapMax - 1);
    bool known = false;
    for (const Heap& k : heaps) known = known || (k.start == heap_start && k.info.ar_ptr == arena);
    ok = ok && known && SafeRead(heap_start, &h, sizeof h) && h.ar_ptr == arena &&
         SafeRead(top + sizeof(uintptr_t), &size_field, sizeof size_field);
    const uintptr_t top_size = size_field & ~uintptr_t{7};
    // The top chunk ends exactly where the heap's used part ends, and says its neighbour is in use.
    ok = ok && (size_field & 1) != 0 && h.size <= kHeapMax && top >= heap_start + header &&
         top + top_size == heap_start + h.size;
    if (ok) {
      const uintptr_t begin = (top + kMinSize + pad + page - 1) & ~(page - 1);
      const uintptr_t end = (heap_start + h.size) & ~(page - 1);
      if (end > begin) {
        const double resident = Resident(begin, end, page, pages);
        if (resident > 0 && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0) {
          released += resident;
        }
      }
    }
    Unlock(mutex);
  }
  return released;
}

}  // namespace fragstat
