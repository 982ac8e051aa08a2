// Monotonic clock, for durations and for the age of cached statistics.
#pragma once

#include <time.h>

namespace fragstat {

// Monotonic clock in milliseconds (a vDSO call: tens of nanoseconds, no system call).
inline double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace fragstat
