#include "rss.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cmath>

namespace fragstat {

namespace {

// One descriptor for the whole process, shared by every Node environment (worker threads
// included). It is opened on first use and published with a compare-and-swap (the loser of a race
// closes its own); pread does not move a file offset, so concurrent readers need no lock.
//
// /proc/self is resolved when the file is opened: a descriptor inherited across fork() would go
// on reading the parent's figures. A fork handler closes it in the child instead, which then opens
// its own on first use. That costs nothing per read (a pid check would cost a system call on
// every read). Forks that run no fork handlers (vfork, posix_spawn) must exec or exit anyway.
//
// The descriptor lives as long as this code is mapped: when Node unloads the addon (it does when
// only worker threads loaded it and the last of them exits), the destructor below closes it, and
// glibc drops the fork handler with the code it points into.
std::atomic<int> g_statm_fd{-1};

void CloseStatm() {
  const int fd = g_statm_fd.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0) close(fd);
}

struct StatmCloser {
  ~StatmCloser() { CloseStatm(); }
} g_statm_closer;

long PageSize() {
  static const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? page : 4096;
}

double ParseResident(const char* buf, ssize_t n) {
  // statm: "size resident shared text lib data dt", in pages.
  ssize_t i = 0;
  while (i < n && buf[i] != ' ') i++;  // skip size
  if (i >= n) return NAN;
  i++;
  double pages = 0;
  bool any = false;
  while (i < n && buf[i] >= '0' && buf[i] <= '9') {
    pages = pages * 10 + (buf[i] - '0');
    any = true;
    i++;
  }
  return any ? pages * static_cast<double>(PageSize()) : NAN;
}

int StatmFd() {
  int fd = g_statm_fd.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  // Registered once per load of this code, before any descriptor can be inherited.
  static const bool fork_handler = pthread_atfork(nullptr, nullptr, CloseStatm) == 0;
  if (!fork_handler) return -1;  // without it a child could read its parent's RSS: reopen instead
  int opened = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (opened < 0) return -1;
  int expected = -1;
  if (!g_statm_fd.compare_exchange_strong(expected, opened, std::memory_order_acq_rel)) {
    close(opened);
    return expected;
  }
  return opened;
}

}  // namespace

double ReadRssBytes() {
  int fd = StatmFd();
  if (fd < 0) return ReadRssBytesReopen();
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof(buf), 0);
  if (n <= 0) return NAN;
  return ParseResident(buf, n);
}

double ReadRssBytesReopen() {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NAN;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return NAN;
  return ParseResident(buf, n);
}

}  // namespace fragstat
