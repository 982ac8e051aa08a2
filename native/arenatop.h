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
#pragma once

#include <cstddef>

namespace fragstat {

// Whether the layout this relies on is known for this glibc ("2.36"): 2.27 to 2.42.
bool ArenaTopsSupported(const char* glibc_version);

// Releases the pages of every thread arena's top chunk beyond `pad` bytes and returns the resident
// bytes released (counted with mincore before the madvise). Call only when ArenaTopsSupported()
// and glibc serves malloc. Takes each arena's lock with a try-lock (an arena in use is skipped,
// never waited for); reads everything it has not locked through process_vm_readv, so a heap
// unmapped meanwhile is an error it skips, not a fault.
double ReleaseArenaTops(const char* glibc_version, size_t pad);

}  // namespace fragstat
