// jemalloc heap profiling through mallctl (see profile.h). Names and types are jemalloc 5.x's:
// config.prof, opt.prof (bool), prof.active (bool, rw), prof.lg_sample (size_t),
// prof.dump (const char* written: the file name).
#include "profile.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rss.h"
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

}  // namespace

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
