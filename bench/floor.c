// The physical floor of a snapshot: the raw calls one reading makes, timed in C with nothing
// around them, in a bare process, under whichever allocator serves malloc (found as fragstat finds
// it: jemalloc's thread.allocated moves, tcmalloc or mimalloc owns a fresh block, else glibc).
// - glibc: mallinfo2() + pread of /proc/self/statm.
// - jemalloc: what fragstat does, at the same rate: an epoch refresh, the statistics by MIB and the
//   initialized-arena count at most once every 10 ms, and the pread and a clock read every time.
//   `refreshNs` is the cost of one refresh alone.
// - tcmalloc: the five MallocExtension_GetNumericProperty reads + the pread.
// - mimalloc: mi_process_info() + the pread.
// The heap of a bare C process is simpler than Node's: `threads` > 1 starts that many threads in
// all, each allocating once and staying alive until the end, so the allocator has as many arenas
// (glibc), thread caches (jemalloc, tcmalloc) and heaps (mimalloc) to visit as a Node process with
// as many threads that allocated.
// Build: cc -O2 -o bench/floor bench/floor.c -ldl -lpthread. Usage: floor [calls [rounds [threads]]];
// prints JSON with the median CPU ns per call over the rounds (the jemalloc refresh policy runs on
// the wall clock).
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
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
typedef int (*ownership_fn)(const void*);
typedef int (*numeric_property_fn)(const char*, size_t*);
typedef _Bool (*in_heap_fn)(const void*);
typedef void (*process_info_fn)(size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*);

#define JE_STATS 9
#define MAX_ROUNDS 101

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

// CPU time of the process: what a call costs, whoever else wants the CPU meanwhile.
static double cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void* volatile sink_ptr;

static mallctl_fn mallctl;
static bymib_fn bymib;
static size_t je_mibs[JE_STATS][6], je_lens[JE_STATS], epoch_mib[2],
    epoch_len = 2, narenas_mib[2], narenas_len = 2, init_mib[3], init_len = 3;
static double last_refresh_ns = -1e18;

static size_t jemalloc_refresh(void) {
  size_t sink = 0;
  uint64_t e = 1;
  size_t esz = sizeof(e);
  bymib(epoch_mib, epoch_len, &e, &esz, &e, sizeof(e));
  for (int k = 0; k < JE_STATS; k++) {
    size_t v = 0, sz = sizeof(v);
    bymib(je_mibs[k], je_lens[k], &v, &sz, NULL, 0);
    sink += v;
  }
  unsigned narenas = 0;
  size_t sz = sizeof(narenas);
  bymib(narenas_mib, narenas_len, &narenas, &sz, NULL, 0);
  for (unsigned i = 0; i < narenas; i++) {
    _Bool init = 0;
    sz = sizeof(init);
    init_mib[1] = i;
    bymib(init_mib, init_len, &init, &sz, NULL, 0);
    sink += init;
  }
  return sink;
}

static pthread_mutex_t park_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int started = 0, done = 0;

// Allocates (which gives this thread its arena or cache), then waits for the end.
static void* allocate_and_park(void* arg) {
  (void)arg;
  void* p = malloc(256);
  sink_ptr = p;
  pthread_mutex_lock(&park_mutex);
  started++;
  pthread_cond_broadcast(&park_cond);
  while (!done) pthread_cond_wait(&park_cond, &park_mutex);
  pthread_mutex_unlock(&park_mutex);
  free(p);
  return NULL;
}

int main(int argc, char** argv) {
  const int calls = argc > 1 ? atoi(argv[1]) : 20000;
  int rounds = argc > 2 ? atoi(argv[2]) : 31;
  int threads = argc > 3 ? atoi(argv[3]) : 1;
  if (rounds < 1) rounds = 1;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  pthread_t parked[64];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  char buf[128];
  const char* allocator = "glibc";

  mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  nametomib_fn nametomib = (nametomib_fn)dlsym(RTLD_DEFAULT, "mallctlnametomib");
  bymib = (bymib_fn)dlsym(RTLD_DEFAULT, "mallctlbymib");
  ownership_fn ownership = (ownership_fn)dlsym(RTLD_DEFAULT, "MallocExtension_GetOwnership");
  numeric_property_fn property =
      (numeric_property_fn)dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty");
  in_heap_fn in_heap = (in_heap_fn)dlsym(RTLD_DEFAULT, "mi_is_in_heap_region");
  process_info_fn process_info = (process_info_fn)dlsym(RTLD_DEFAULT, "mi_process_info");
  mallinfo2_fn mallinfo2 = (mallinfo2_fn)dlsym(RTLD_DEFAULT, "mallinfo2");

  uint64_t before = 0, after = 0;
  size_t usz = sizeof(before);
  if (mallctl && nametomib && bymib && mallctl("thread.allocated", &before, &usz, NULL, 0) == 0) {
    sink_ptr = malloc(4096);
    mallctl("thread.allocated", &after, &usz, NULL, 0);
    free(sink_ptr);
    if (after - before >= 4096) allocator = "jemalloc";
  }
  if (strcmp(allocator, "glibc") == 0 && ownership && property) {
    sink_ptr = malloc(64);
    if (ownership(sink_ptr) == 1) allocator = "tcmalloc";
    free(sink_ptr);
  }
  if (strcmp(allocator, "glibc") == 0 && in_heap && process_info) {
    sink_ptr = malloc(64);
    if (in_heap(sink_ptr)) allocator = "mimalloc";
    free(sink_ptr);
  }
  const int jemalloc = strcmp(allocator, "jemalloc") == 0;
  const int tcmalloc = strcmp(allocator, "tcmalloc") == 0;
  const int mimalloc = strcmp(allocator, "mimalloc") == 0;
  if (!jemalloc && !tcmalloc && !mimalloc && mallinfo2 == NULL) {
    fprintf(stderr, "no allocator statistics found\n");
    return 1;
  }

  if (jemalloc) {
    const char* names[JE_STATS] = {
        "stats.allocated",       "stats.active",          "stats.metadata",
        "stats.resident",        "stats.mapped",          "stats.retained",
        "stats.arenas.0.pdirty", "stats.arenas.0.pmuzzy", "stats.arenas.0.tcache_bytes"};
    for (int i = 0; i < JE_STATS; i++) {
      je_lens[i] = 6;
      nametomib(names[i], je_mibs[i], &je_lens[i]);
    }
    je_mibs[6][2] = je_mibs[7][2] = je_mibs[8][2] = 4096; /* MALLCTL_ARENAS_ALL */
    nametomib("epoch", epoch_mib, &epoch_len);
    nametomib("arenas.narenas", narenas_mib, &narenas_len);
    nametomib("arena.0.initialized", init_mib, &init_len);
  }
  // Every extra thread allocates while the others are alive, so none reuses another's arena.
  for (int t = 1; t < threads; t++) pthread_create(&parked[t], NULL, allocate_and_park, NULL);
  pthread_mutex_lock(&park_mutex);
  while (started < threads - 1) pthread_cond_wait(&park_cond, &park_mutex);
  pthread_mutex_unlock(&park_mutex);

  const char* tc_names[] = {"generic.current_allocated_bytes", "generic.heap_size",
                            "tcmalloc.pageheap_free_bytes", "tcmalloc.pageheap_unmapped_bytes",
                            "tcmalloc.current_total_thread_cache_bytes"};

  double samples[MAX_ROUNDS], refresh[MAX_ROUNDS];
  size_t sink = 0;
  for (int r = 0; r < rounds; r++) {
    double t0 = cpu_ns();
    for (int i = 0; i < calls; i++) {
      if (jemalloc) {
        const double now = now_ns();
        if (now - last_refresh_ns >= 10e6) {
          sink += jemalloc_refresh();
          last_refresh_ns = now;
        }
      } else if (tcmalloc) {
        for (int k = 0; k < 5; k++) {
          size_t v = 0;
          property(tc_names[k], &v);
          sink += v;
        }
      } else if (mimalloc) {
        size_t a, b, c, d, e, f, g, h;
        process_info(&a, &b, &c, &d, &e, &f, &g, &h);
        sink += f;
      } else {
        struct mi2 m = mallinfo2();
        sink += m.uordblks;
      }
      sink += (size_t)pread(fd, buf, sizeof(buf), 0);
    }
    samples[r] = (cpu_ns() - t0) / calls;
    refresh[r] = 0;
    if (jemalloc) {
      const int n = 20;
      double t1 = cpu_ns();
      for (int i = 0; i < n; i++) sink += jemalloc_refresh();
      refresh[r] = (cpu_ns() - t1) / n;
    }
  }
  pthread_mutex_lock(&park_mutex);
  done = 1;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_mutex);
  for (int t = 1; t < threads; t++) pthread_join(parked[t], NULL);
  qsort(samples, rounds, sizeof(double), cmp);
  qsort(refresh, rounds, sizeof(double), cmp);
  printf("{\"allocator\":\"%s\",\"threads\":%d,\"medianNs\":%.1f,\"refreshNs\":%.1f,\"sink\":%zu}\n",
         allocator, threads, samples[rounds / 2], jemalloc ? refresh[rounds / 2] : 0.0, sink % 2);
  return 0;
}
