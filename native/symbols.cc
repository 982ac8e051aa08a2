#include "symbols.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

// Since glibc 2.34 dlsym lives in libc.so.6 with the default version GLIBC_2.34, and a build on a
// new distribution would bind to it, so the prebuilt addon would refuse to load on older systems
// that official Node binaries support (they need GLIBC_2.28 at most). The original version is
// still exported by every glibc (libdl.so.2 before 2.34, libc.so.6 after), so bind to it.
#if defined(__GLIBC__)
#if defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif
#endif

namespace fragstat {

namespace {

bool IsHidden(const char* name) {
  const char* hide = std::getenv("FRAGSTAT_HIDE_SYMBOLS");
  if (hide == nullptr || *hide == '\0') return false;
  const size_t len = std::strlen(name);
  const char* p = hide;
  while (*p != '\0') {
    const char* end = std::strchr(p, ',');
    const size_t n = end ? static_cast<size_t>(end - p) : std::strlen(p);
    if ((n == 1 && *p == '*') || (n == len && std::strncmp(p, name, n) == 0)) return true;
    if (end == nullptr) break;
    p = end + 1;
  }
  return false;
}

}  // namespace

void* ResolveSymbol(const char* name) {
  if (IsHidden(name)) return nullptr;
  return dlsym(RTLD_DEFAULT, name);
}

}  // namespace fragstat
