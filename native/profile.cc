// jemalloc heap profiling through mallctl (see profile.h). Names and types are jemalloc 5.x's:
// config.prof, opt.prof (bool), prof.active (bool, rw), prof.lg_sample (size_t),
// prof.dump (const char* written: the file name).
#include "profile.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "clock.h"
#include "symbols.h"

namespace fragstat {

namespace {

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);

MallctlFn Mallctl() { return Resolve<MallctlFn>("mallctl"); }

template <typename T>
bool ReadCtl(MallctlFn mallctl, const char* name, T& out) {
  size_t sz = sizeof(T);
  return mallctl(name, &out, &sz, nullptr, 0) == 0 && sz == sizeof(T);
}

Status MallctlError(const char* what, int rc) {
  return Status::Error("ERR_FRAGSTAT_MALLCTL", std::string("mallctl ") + what + ": " + std::strerror(rc));
}

// --- JavaScript frames ------------------------------------------------------------------------
// The hook runs inside malloc, on any thread, for each sampled allocation: it must not allocate,
// lock or read memory it cannot prove mapped. It reads only the main thread's stack, between the
// hook's own frame and the stack's top, recorded when the hook was installed.

using BacktraceHook = void (*)(void**, unsigned*, unsigned);

std::atomic<uintptr_t> main_stack_low{0};
std::atomic<uintptr_t> main_stack_top{0};
std::atomic<pid_t> main_tid{0};
BacktraceHook default_hook = nullptr;  // written once, on the main thread, before installing

struct Unwound {
  void** vec;
  unsigned* len;
  unsigned max;
  uintptr_t fp;  // the frame pointer register (rbp / x29) in the outermost frame libgcc reached
};

#if defined(__x86_64__)
constexpr int kFramePointerRegister = 6;  // DWARF number of rbp
#elif defined(__aarch64__)
constexpr int kFramePointerRegister = 29;  // x29
#else
constexpr int kFramePointerRegister = -1;
#endif

_Unwind_Reason_Code UnwindStep(struct _Unwind_Context* ctx, void* arg) {
  Unwound* u = static_cast<Unwound*>(arg);
  const uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0 || *u->len >= u->max) return _URC_END_OF_STACK;
  u->vec[(*u->len)++] = reinterpret_cast<void*>(ip);
  if (kFramePointerRegister >= 0) u->fp = _Unwind_GetGR(ctx, kFramePointerRegister);
  return _URC_NO_REASON;
}

void JsBacktrace(void** vec, unsigned* len, unsigned max_len) {
  Unwound u{vec, len, max_len, 0};
  _Unwind_Backtrace(UnwindStep, &u);
  const uintptr_t top = main_stack_top.load(std::memory_order_relaxed);
  if (top == 0 || static_cast<pid_t>(syscall(SYS_gettid)) != main_tid.load(std::memory_order_relaxed)) return;
  // Each frame: [fp] = the caller's fp, [fp + 8] = the return address. Frames only go up the
  // stack; anything outside (this frame, top) ends the walk. On a signal's alternate stack this
  // frame is outside the main stack: no walk then.
  uintptr_t low = reinterpret_cast<uintptr_t>(&u);
  if (low < main_stack_low.load(std::memory_order_relaxed) || low >= top) return;
  uintptr_t fp = u.fp;
  while (*len < max_len && fp > low && fp + 2 * sizeof(uintptr_t) <= top && fp % sizeof(uintptr_t) == 0) {
    const uintptr_t* frame = reinterpret_cast<const uintptr_t*>(fp);
    const uintptr_t ret = frame[1];
    if (ret == 0) break;
    vec[(*len)++] = reinterpret_cast<void*>(ret);
    low = fp;
    fp = frame[0];
  }
}

}  // namespace

Status SetJsBacktrace(bool on) {
  MallctlFn mallctl = Mallctl();
  if (mallctl == nullptr) return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "jemalloc is not loaded");
  if (kFramePointerRegister < 0) {
    return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "JavaScript frames need x86-64 or arm64");
  }
  if (static_cast<pid_t>(syscall(SYS_gettid)) != getpid()) {
    return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE",
                         "JavaScript frames can be enabled on the main thread only");
  }
  if (main_stack_top.load() == 0) {
    // Looked up at run time: linked directly, they would bind to GLIBC_2.32 and 2.34 versions.
    using GetAttrFn = int (*)(pthread_t, pthread_attr_t*);
    using GetStackFn = int (*)(const pthread_attr_t*, void**, size_t*);
    auto get_attr = Resolve<GetAttrFn>("pthread_getattr_np");
    auto get_stack = Resolve<GetStackFn>("pthread_attr_getstack");
    pthread_attr_t attr;
    void* addr = nullptr;
    size_t size = 0;
    if (get_attr == nullptr || get_stack == nullptr || get_attr(pthread_self(), &attr) != 0) {
      return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "cannot read the main thread's stack bounds");
    }
    const int rc = get_stack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0 || addr == nullptr) {
      return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "cannot read the main thread's stack bounds");
    }
    main_tid.store(getpid());
    main_stack_low.store(reinterpret_cast<uintptr_t>(addr));
    main_stack_top.store(reinterpret_cast<uintptr_t>(addr) + size);
  }
  BacktraceHook current = nullptr;
  size_t sz = sizeof(current);
  int rc = mallctl("experimental.hooks.prof_backtrace", &current, &sz, nullptr, 0);
  if (rc != 0) {
    return Status::Error(
        "ERR_FRAGSTAT_PROFILE_UNAVAILABLE",
        std::string("this jemalloc has no experimental.hooks.prof_backtrace (5.3 or later): ") +
            std::strerror(rc));
  }
  if (current != JsBacktrace) default_hook = current;
  BacktraceHook wanted = on ? JsBacktrace : default_hook;
  if (wanted == nullptr || wanted == current) return Status();
  rc = mallctl("experimental.hooks.prof_backtrace", nullptr, nullptr, &wanted, sizeof(wanted));
  if (rc != 0) return MallctlError("experimental.hooks.prof_backtrace", rc);
  return Status();
}

ProfileState ReadProfileState() {
  ProfileState s;
  s.jemalloc = std::strcmp(CurrentBackend().Name(), "jemalloc") == 0;
  MallctlFn mallctl = Mallctl();
  if (!s.jemalloc || mallctl == nullptr) return s;
  bool b = false;
  s.config = ReadCtl(mallctl, "config.prof", b) && b;
  if (!s.config) return s;
  b = false;
  s.enabled = ReadCtl(mallctl, "opt.prof", b) && b;
  if (!s.enabled) return s;
  b = false;
  s.active = ReadCtl(mallctl, "prof.active", b) && b;
  size_t lg = 0;
  if (ReadCtl(mallctl, "prof.lg_sample", lg)) s.lg_sample = static_cast<double>(lg);
  return s;
}

Status SetProfileActive(bool active, bool* previous) {
  MallctlFn mallctl = Mallctl();
  if (mallctl == nullptr) return Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "jemalloc is not loaded");
  bool old = false;
  size_t sz = sizeof(old);
  const int rc = mallctl("prof.active", &old, &sz, &active, sizeof(active));
  if (rc != 0) return MallctlError("prof.active", rc);
  if (previous != nullptr) *previous = old;
  return Status();
}

DumpResult DumpProfile(const std::string& dir) {
  DumpResult r;
  MallctlFn mallctl = Mallctl();
  if (mallctl == nullptr) {
    r.status = Status::Error("ERR_FRAGSTAT_PROFILE_UNAVAILABLE", "jemalloc is not loaded");
    return r;
  }
  std::string path_template = dir + "/fragstat-heap-XXXXXX";
  std::vector<char> path(path_template.begin(), path_template.end());
  path.push_back('\0');
  const int fd = mkstemp(path.data());  // O_EXCL, mode 0600
  if (fd < 0) {
    r.status = Status::Error("ERR_FRAGSTAT_PROFILE_DUMP",
                             "cannot create a temporary file in " + dir + ": " + std::strerror(errno));
    return r;
  }
  const char* name = path.data();
  const double start = NowMs();
  const int rc = mallctl("prof.dump", nullptr, nullptr, &name, sizeof(name));
  r.duration_ms = NowMs() - start;
  if (rc != 0) {
    r.status =
        Status::Error("ERR_FRAGSTAT_PROFILE_DUMP", std::string("mallctl prof.dump: ") + std::strerror(rc));
  } else {
    // jemalloc wrote through its own descriptor (the file existed, so it kept mode 0600); read
    // it back through ours, from the start.
    char buf[65536];
    ssize_t n;
    off_t off = 0;
    while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
      r.text.append(buf, static_cast<size_t>(n));
      off += n;
    }
    if (n < 0) {
      r.status = Status::Error("ERR_FRAGSTAT_PROFILE_DUMP",
                               std::string("reading the dump back: ") + std::strerror(errno));
      r.text.clear();
    }
  }
  close(fd);
  unlink(path.data());
  return r;
}

std::string Demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (out == nullptr) return std::string();
  std::string s = status == 0 ? std::string(out) : std::string();
  std::free(out);
  return s;
}

}  // namespace fragstat
