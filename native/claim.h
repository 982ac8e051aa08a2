// Process-wide claims: state shared by every thread's instance of the addon (the main thread's
// and each worker's), which JavaScript cannot share between isolates.
#pragma once

namespace fragstat {

// Claims the process's monitor for `thread_id` (worker_threads' threadId; 0 is the main thread).
// Returns -1 when granted (again, for a thread that already holds it: claims count up), else the
// thread that holds it.
int ClaimMonitor(int thread_id);

// Gives up one claim of `thread_id`'s; the last one frees the monitor for any thread.
void ReleaseMonitor(int thread_id);

// Gives up every claim of `thread_id`'s: its environment is going away (a worker that exits with
// a monitor still running).
void ReleaseMonitorThread(int thread_id);

}  // namespace fragstat
