// Runs a command under a seccomp filter shaped like systemd's SystemCallFilter= allow-list:
// every system call libseccomp knows for this architecture that is NOT named in the allow-list
// file kills the process (SIGSYS, as systemd's default action does); the rest are allowed. Calls
// named with --errno are refused with EPERM instead, as under SystemCallErrorNumber=EPERM;
// calls named with --allow are allowed too (as extra names after the set in SystemCallFilter=).
// A name given to --errno as name@N=V or name@N>=V is refused only when its argument N (from 0)
// equals V or is at least V, and several conditions must all hold: madvise@2=4@1>=8388608
// refuses MADV_DONTNEED of 8 MiB or more, pread64@3>=4294967296 refuses reads at offsets of 4 GiB
// and up (/proc/self/mem at a heap address, not a library's file), so the process still starts.
//
//   seccomp-run <allow-list file> [--allow name,...] [--errno name[@N=V]...,...] -- command [args...]
//
// The allow-list file holds one name per line ('#' starts a comment), for example
// test/fixtures/system-service-syscalls.txt. Build: cc seccomp-run.c -lseccomp.
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *allowed[2048];
static int n_allowed;

static int listed(const char *name, char **list, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0) return 1;
  return 0;
}

// Index of the --errno entry for `name` (bare or with a condition), or -1.
static int refusal(const char *name, char **list, int n) {
  const size_t len = strlen(name);
  for (int i = 0; i < n; i++)
    if (strncmp(list[i], name, len) == 0 && (list[i][len] == '\0' || list[i][len] == '@')) return i;
  return -1;
}

static int add_refusal(scmp_filter_ctx ctx, int nr, const char *spec) {
  struct scmp_arg_cmp cmp[6];
  unsigned n = 0;
  for (const char *at = strchr(spec, '@'); at != NULL && n < 6; at = strchr(at + 1, '@')) {
    char *rest = NULL;
    const unsigned arg = (unsigned)strtoul(at + 1, &rest, 10);
    const int ge = strncmp(rest, ">=", 2) == 0;
    const unsigned long long value = strtoull(rest + (ge ? 2 : 1), NULL, 0);
    cmp[n++] = SCMP_CMP(arg, ge ? SCMP_CMP_GE : SCMP_CMP_EQ, value);
  }
  return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, n, cmp);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: seccomp-run <allow-list> [--allow a,b] [--errno a,b] -- command [args...]\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (f == NULL) {
    perror(argv[1]);
    return 2;
  }
  char line[256];
  while (fgets(line, sizeof line, f) != NULL && n_allowed < 2048) {
    line[strcspn(line, "\r\n#")] = '\0';
    if (line[0] != '\0') allowed[n_allowed++] = strdup(line);
  }
  fclose(f);
  char *refused[64];
  int n_refused = 0;
  int i = 2;
  while (i + 1 < argc && (strcmp(argv[i], "--errno") == 0 || strcmp(argv[i], "--allow") == 0)) {
    const int errno_list = strcmp(argv[i], "--errno") == 0;
    for (char *name = strtok(argv[i + 1], ","); name != NULL; name = strtok(NULL, ",")) {
      if (errno_list && n_refused < 64) refused[n_refused++] = name;
      if (!errno_list && n_allowed < 2048) allowed[n_allowed++] = name;
    }
    i += 2;
  }
  if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
    fprintf(stderr, "seccomp-run: expected -- command\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) return 2;
  int killed = 0;
  for (int nr = 0; nr < 1024; nr++) {
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name == NULL) continue;
    int rc = 0;
    int r = refusal(name, refused, n_refused);
    if (r >= 0) {
      rc = add_refusal(ctx, nr, refused[r]);
    } else if (!listed(name, allowed, n_allowed)) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0);
      killed++;
    }
    free(name);
    if (rc != 0) {
      fprintf(stderr, "seccomp-run: rule for %d: %s\n", nr, strerror(-rc));
      return 2;
    }
  }
  int rc = seccomp_load(ctx);
  if (rc != 0) {
    fprintf(stderr, "seccomp-run: seccomp_load: %s\n", strerror(-rc));
    return 2;
  }
  seccomp_release(ctx);
  if (getenv("SECCOMP_RUN_VERBOSE") != NULL)
    fprintf(stderr, "seccomp-run: %d calls kill, %d refused with EPERM\n", killed, n_refused);
  execvp(argv[i + 1], argv + i + 1);
  perror(argv[i + 1]);
  return 127;
}
