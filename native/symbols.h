// Optional symbol resolution. Every allocator entry point fragstat uses is looked up at run time,
// so the addon loads on any libc and under any allocator, and records no symbol-version
// requirement for functions that may be absent (mallinfo2 is GLIBC_2.33, for instance).
#pragma once

namespace fragstat {

// Looks `name` up in the process's global scope (RTLD_DEFAULT): a preloaded allocator comes first.
// With `versions` (a null-terminated list of symbol versions, e.g. {"GLIBC_2.33", nullptr}), the
// first versioned definition found wins, then the unversioned lookup: a library that interposes
// glibc's functions only under their versioned names (glibc's own libc_malloc_debug.so) is then
// found, where a plain dlsym would skip it for libc's default version. Returns nullptr when the
// symbol is absent.
//
// Test hooks, honoured only when FRAGSTAT_TEST_HOOKS=1 is also set (so they cannot act in
// production by accident): FRAGSTAT_HIDE_SYMBOLS names symbols to report absent ("*" hides every
// allocator symbol), so tests can reproduce a libc without them (musl, say) on a glibc machine;
// FRAGSTAT_FAIL_SYMBOLS swaps in stand-ins that fail as the real function can (malloc_info: -1
// with EINVAL; mallctlbymib: EIO), so tests reach the error paths.
void* ResolveSymbol(const char* name, const char* const* versions = nullptr);

template <typename Fn>
Fn Resolve(const char* name, const char* const* versions = nullptr) {
  return reinterpret_cast<Fn>(ResolveSymbol(name, versions));
}

}  // namespace fragstat
