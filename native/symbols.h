// Optional symbol resolution. Every allocator entry point fragstat uses is looked up at run time,
// so the addon loads on any libc and under any allocator, and records no symbol-version
// requirement for functions that may be absent (mallinfo2 is GLIBC_2.33, for instance).
#pragma once

namespace fragstat {

// Looks `name` up in the process's global scope (RTLD_DEFAULT): a preloaded allocator comes first.
// Returns nullptr when the symbol is absent, or when the environment variable
// FRAGSTAT_HIDE_SYMBOLS names it ("*" hides every allocator symbol). That variable exists so
// tests can reproduce a libc without any of these symbols (musl, say) on a glibc machine.
// Likewise FRAGSTAT_FAIL_SYMBOLS swaps in stand-ins that fail as the real function can
// (malloc_info: -1 with EINVAL; mallctlbymib: EIO), so tests reach the error paths.
void* ResolveSymbol(const char* name);

template <typename Fn>
Fn Resolve(const char* name) {
  return reinterpret_cast<Fn>(ResolveSymbol(name));
}

}  // namespace fragstat
