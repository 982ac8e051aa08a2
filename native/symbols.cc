#include "symbols.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstdio>
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

// True when the comma-separated list in environment variable `var` names `name` ("*" names all).
bool Listed(const char* var, const char* name) {
  const char* list = std::getenv(var);
  if (list == nullptr || *list == '\0') return false;
  const size_t len = std::strlen(name);
  const char* p = list;
  while (*p != '\0') {
    const char* end = std::strchr(p, ',');
    const size_t n = end ? static_cast<size_t>(end - p) : std::strlen(p);
    if ((n == 1 && *p == '*') || (n == len && std::strncmp(p, name, n) == 0)) return true;
    if (end == nullptr) break;
    p = end + 1;
  }
  return false;
}

// Stand-ins that fail as the real functions can, for FRAGSTAT_FAIL_SYMBOLS.
int FailingMallocInfo(int, FILE*) {
  errno = EINVAL;
  return -1;
}
int FailingMallctlByMib(const size_t*, size_t, void*, size_t*, void*, size_t) { return EIO; }

struct StandIn {
  const char* name;
  void* fn;
};
const StandIn kFailing[] = {
    {"malloc_info", reinterpret_cast<void*>(&FailingMallocInfo)},
    {"mallctlbymib", reinterpret_cast<void*>(&FailingMallctlByMib)},
};

// The test hooks act only when FRAGSTAT_TEST_HOOKS=1 is set too: a stray FRAGSTAT_HIDE_SYMBOLS
// in a production environment changes nothing.
bool TestHooks() {
  const char* on = std::getenv("FRAGSTAT_TEST_HOOKS");
  return on != nullptr && std::strcmp(on, "1") == 0;
}

using DlvsymFn = void* (*)(void*, const char*, const char*);

}  // namespace

void* ResolveSymbol(const char* name, const char* const* versions) {
  const bool hooks = TestHooks();
  if (hooks && Listed("FRAGSTAT_HIDE_SYMBOLS", name)) return nullptr;
  void* fn = nullptr;
  // dlvsym is looked up rather than linked: musl has none, and the addon must load there.
  static const DlvsymFn dlvsym_fn = reinterpret_cast<DlvsymFn>(dlsym(RTLD_DEFAULT, "dlvsym"));
  if (versions != nullptr && dlvsym_fn != nullptr) {
    for (const char* const* v = versions; *v != nullptr && fn == nullptr; v++) {
      fn = dlvsym_fn(RTLD_DEFAULT, name, *v);
    }
  }
  if (fn == nullptr) fn = dlsym(RTLD_DEFAULT, name);
  if (fn != nullptr && hooks && Listed("FRAGSTAT_FAIL_SYMBOLS", name)) {
    for (const StandIn& s : kFailing) {
      if (std::strcmp(s.name, name) == 0) return s.fn;
    }
  }
  return fn;
}

}  // namespace fragstat
