#pragma once

namespace fragstat {

// Resident set size in bytes from /proc/self/statm, read with pread on a descriptor opened once
// and kept (thread-safe). A child after fork() reads its own figure, not its parent's, and the
// descriptor is closed when the addon is unloaded. NaN when /proc is not readable.
double ReadRssBytes();

// The same figure, opening and closing /proc/self/statm on every call (for the benchmark that
// justifies keeping the descriptor open).
double ReadRssBytesReopen();

}  // namespace fragstat
