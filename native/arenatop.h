// The free tops of glibc's thread arenas, which malloc_trim never releases. Pure C++, no N-API.
//
// malloc_trim madvises the whole pages of free chunks in every arena's bins but shrinks only the
// main arena's top chunk (mtrim: `av == &main_arena ? systrim (pad, av) : 0`). A thread arena's
// top shrinks only inside free(), when a freed chunk of 64 KiB or more leaves the top above
// M_TRIM_THRESHOLD, which glibc raises to twice the largest mmapped chunk freed so far (up to
// 64 MiB). After a burst, tens of MiB can stay resident in the tops of arenas whose threads are
// idle. This does for those tops what mtrim does for free chunks: under the arena's own lock,
// MADV_DONTNEED on the whole pages inside the top chunk past its header and a pad, leaving every
// byte of glibc's bookkeeping as it is.
//
// Only arenas glibc has finished creating are touched. _int_new_arena maps the heap and sets
// `ar_ptr` and `top` before it initialises the arena's lock word and links the arena into
// main_arena's circular `next` list, so a heap found in memory may belong to an arena whose lock
// does not exist yet: locking it then would be wiped by the init, and the creating thread would
// allocate from a top being released. An arena is released only when it is linked (reachable
// around the list from itself, through main_arena) and was already linked on an earlier call at
// least a second before.
#pragma once

#include <cstddef>

namespace fragstat {

// Whether the layout this relies on is known for this glibc ("2.36"): 2.27 to 2.42.
bool ArenaTopsSupported(const char* glibc_version);

// Releases the pages of every finished thread arena's top chunk beyond `pad` bytes and returns
// the resident bytes released (counted in /proc/self/pagemap before the madvise). Call only when
// ArenaTopsSupported() and glibc serves malloc.
//
// An arena is released only if this call finds it linked into main_arena's list and an earlier
// call found it linked at least a second before (so a first call after an arena appears only
// notes it). Takes each arena's lock with a try-lock (an arena in use is skipped, never waited
// for). Reads everything it has not locked with pread on /proc/self/mem, so a heap unmapped
// meanwhile is an error it skips, not a fault. Its system calls are open, read, pread64, close
// and madvise (and futex to wake a waiter on unlock): no mincore, no process_vm_readv, which
// systemd's @system-service filter kills or older ones file under @debug. Where one of them is
// refused (EPERM, EACCES or ENOSYS), it stops and returns NaN (unknown), not 0. It opens its
// files before taking any lock and allocates nothing while holding one: this thread's own arena
// may be the one locked.
// `pending` (when given) receives how many arenas it found linked but not yet seen for a second:
// a call a second or more later releases their tops.
double ReleaseArenaTops(const char* glibc_version, size_t pad, int* pending = nullptr);

}  // namespace fragstat
