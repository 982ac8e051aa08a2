#include "claim.h"

#include <mutex>

namespace fragstat {

namespace {

std::mutex mutex;
int owner = -1;  // the thread holding the claim, -1 for none
int claims = 0;  // how many times it claimed

}  // namespace

int ClaimMonitor(int thread_id) {
  std::lock_guard<std::mutex> lock(mutex);
  if (owner != -1 && owner != thread_id) return owner;
  owner = thread_id;
  claims++;
  return -1;
}

void ReleaseMonitor(int thread_id) {
  std::lock_guard<std::mutex> lock(mutex);
  if (owner != thread_id) return;
  if (--claims <= 0) {
    owner = -1;
    claims = 0;
  }
}

void ReleaseMonitorThread(int thread_id) {
  std::lock_guard<std::mutex> lock(mutex);
  if (owner != thread_id) return;
  owner = -1;
  claims = 0;
}

}  // namespace fragstat
