// The physical floor of a snapshot: the raw calls alone, timed in C with nothing around them.
// glibc: mallinfo2() + pread of /proc/self/statm. Under a preloaded jemalloc: an epoch refresh,
// the six stats reads and the two page counters by MIB, + the same pread.
// Build: cc -O2 -o bench/floor bench/floor.c -ldl. Prints the median ns per call of 31 rounds.
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mi2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
typedef struct mi2 (*mallinfo2_fn)(void);
typedef int (*mallctl_fn)(const char*, void*, size_t*, void*, size_t);
typedef int (*nametomib_fn)(const char*, size_t*, size_t*);
typedef int (*bymib_fn)(const size_t*, size_t, void*, size_t*, void*, size_t);

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  const int calls = argc > 1 ? atoi(argv[1]) : 20000;
  int fd = open("/proc/self/statm", O_RDONLY);
  char buf[128];
  mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  nametomib_fn nametomib = (nametomib_fn)dlsym(RTLD_DEFAULT, "mallctlnametomib");
  bymib_fn bymib = (bymib_fn)dlsym(RTLD_DEFAULT, "mallctlbymib");
  mallinfo2_fn mallinfo2 = (mallinfo2_fn)dlsym(RTLD_DEFAULT, "mallinfo2");
  const char* names[] = {"stats.allocated",       "stats.active",         "stats.metadata",
                         "stats.resident",        "stats.mapped",         "stats.retained",
                         "stats.arenas.0.pdirty", "stats.arenas.0.pmuzzy"};
  size_t mibs[8][6], lens[8], epoch_mib[2], epoch_len = 2;
  const int jemalloc = mallctl && nametomib && bymib && nametomib("epoch", epoch_mib, &epoch_len) == 0;
  if (jemalloc) {
    for (int i = 0; i < 8; i++) {
      lens[i] = 6;
      nametomib(names[i], mibs[i], &lens[i]);
    }
    mibs[6][2] = mibs[7][2] = 4096; /* MALLCTL_ARENAS_ALL */
  }
  double rounds[31];
  size_t sink = 0;
  for (int r = 0; r < 31; r++) {
    double t0 = now_ns();
    for (int i = 0; i < calls; i++) {
      if (jemalloc) {
        uint64_t e = 1;
        size_t esz = sizeof(e);
        bymib(epoch_mib, epoch_len, &e, &esz, &e, sizeof(e));
        for (int k = 0; k < 8; k++) {
          size_t v, sz = sizeof(v);
          bymib(mibs[k], lens[k], &v, &sz, NULL, 0);
          sink += v;
        }
      } else if (mallinfo2) {
        struct mi2 m = mallinfo2();
        sink += m.uordblks;
      }
      sink += (size_t)pread(fd, buf, sizeof(buf), 0);
    }
    rounds[r] = (now_ns() - t0) / calls;
  }
  qsort(rounds, 31, sizeof(double), cmp);
  printf("{\"allocator\":\"%s\",\"medianNs\":%.1f,\"sink\":%zu}\n", jemalloc ? "jemalloc" : "glibc",
         rounds[15], sink % 2);
  return 0;
}
