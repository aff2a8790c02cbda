/* spawn.c: fork, set the child up (cgroup, session, fds, limits, credentials), execve.
 * A failure in the child before execve travels back over a CLOEXEC pipe and is thrown
 * in the parent as if the step had failed there. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436 /* same number on every architecture */
#endif

/* The step that failed, reported with its errno and an argument (an index or fd). */
enum { ST_CGROUP_OPEN, ST_CGROUP_WRITE, ST_SETSID, ST_SETPGID, ST_OPEN_TTY, ST_TIOCSCTTY,
       ST_OPEN_NULL, ST_DUP, ST_DUP2, ST_CLOSE, ST_CHDIR, ST_SETRLIMIT, ST_SETPRIORITY,
       ST_SETGROUPS, ST_SETGID, ST_SETUID, ST_NO_NEW_PRIVS, ST_EXECVE };

/* What a child writes to the CLOEXEC pipe when it fails before execve succeeds. */
typedef struct { int step, err, arg; } child_report;

/* ------------------------------------------------------------- the child */

static void __attribute__((noreturn)) child_fail(int errfd, int step, int err, int arg) {
  child_report r = {step, err, arg};
  while (write(errfd, &r, sizeof r) < 0 && errno == EINTR) {}
  _exit(127);
}

/* Ignored signals (Node ignores SIGPIPE) and the signal mask survive execve, so a child
 * would inherit them; reset every disposition (errors for SIGKILL etc. ignored). */
static void reset_signals(void) {
  /* The raw syscall, not glibc's sigaction(): glibc refuses signals 32 and 33 (its own
   * SIGCANCEL/SIGSETXID), yet an ignored 32 inherited from our parent would pass to the child. */
  struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.handler = SIG_DFL;
  for (int s = 1; s <= 64; s++) syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
}

/* Moves into the cgroup first thing, so that everything the service ever runs (this setup
 * included) is charged to it and a kill of the cgroup finds all of it. "0" means "me". */
static void join_cgroup(const spawn_opts *o, int errfd) {
  int fd = open(o->cgroup_procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) child_fail(errfd, ST_CGROUP_OPEN, errno, 0);
  /* EBUSY here is cgroup v2's "no internal processes" rule: the group has controllers
   * enabled in its cgroup.subtree_control, so processes may only live in its leaves. */
  if (write(fd, "0", 1) != 1) child_fail(errfd, ST_CGROUP_WRITE, errno, 0);
  close(fd);
}

/* The parent fd that becomes the child's fd `target`: stdio[] for 0-2, fds[] from 3. */
static int source_fd(const spawn_opts *o, int target) {
  return target < 3 ? o->stdio[target] : o->fds[target - 3];
}

/* Puts stdio on 0-2 and o->fds on 3, 4, ...; `top` is the first fd above the targets. */
static void place_fds(const spawn_opts *o, int errfd, int top) {
  int tty = -1, devnull = -1, src[3];
  if (o->tty) {
    if ((tty = open(o->tty, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) child_fail(errfd, ST_OPEN_TTY, errno, 0);
    /* Acquire it explicitly (O_NOCTTY above): job control needs a controlling tty. */
    if (ioctl(tty, TIOCSCTTY, 0) < 0) child_fail(errfd, ST_TIOCSCTTY, errno, 0);
  }
  /* Copy every source to `top` or above first, so no dup2 clobbers a later source (stdout: 2,
   * stderr: 1; fds: [4, 3]) and none is a no-op dup2(1, 1): that would keep FD_CLOEXEC, which
   * Node sets on its fds 0-16 at startup, and the program would start with that fd closed. */
  for (int i = 0; i < 3; i++) {
    int fd = o->stdio[i] >= 0 ? o->stdio[i] : tty;
    if (fd < 0 && devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
      child_fail(errfd, ST_OPEN_NULL, errno, 0);
    if ((src[i] = fcntl(fd < 0 ? devnull : fd, F_DUPFD_CLOEXEC, top)) < 0) child_fail(errfd, ST_DUP, errno, i);
  }
  for (size_t j = 0; j < o->nfds; j++)
    if ((o->fd_copies[j] = fcntl(o->fds[j], F_DUPFD_CLOEXEC, top)) < 0)
      child_fail(errfd, ST_DUP, errno, 3 + (int)j);
  /* dup2 clears FD_CLOEXEC on the target: these are the only fds the program inherits. */
  for (int i = 0; i < top; i++)
    if (dup2(i < 3 ? src[i] : o->fd_copies[i - 3], i) < 0) child_fail(errfd, ST_DUP2, errno, i);
}

/* Closes every fd from `first` up except `keep` (> first), whatever its FD_CLOEXEC. */
static int close_fds_from(int first, int keep, unsigned max_fd) {
  if ((keep == first || syscall(SYS_close_range, first, keep - 1, 0) == 0) &&
      syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
    return 0;
  /* close_range came in Linux 5.9, and old container seccomp profiles answer EPERM. */
  if (errno != ENOSYS && errno != EPERM) return -1;
  for (unsigned fd = first; fd < max_fd; fd++)
    if ((int)fd != keep) close((int)fd);
  return 0;
}

/* Limits and priority, set while still privileged: raising a hard limit needs
 * CAP_SYS_RESOURCE and a negative nice CAP_SYS_NICE. After place_fds, because a lower
 * RLIMIT_NOFILE would make dup2 to a higher target fail (fds already open stay valid). */
static void set_limits(const spawn_opts *o, int errfd) {
  /* RLIMIT_NPROC is checked against the uid we switch to only at execve (since Linux 3.1
   * setuid no longer fails): an over-limit user makes execve fail with EAGAIN. */
  for (size_t i = 0; i < o->nrlimits; i++)
    if (setrlimit(o->rlimits[i].resource, &o->rlimits[i].limit) < 0) child_fail(errfd, ST_SETRLIMIT, errno, (int)i);
  if (o->set_nice && setpriority(PRIO_PROCESS, 0, o->nice) < 0) child_fail(errfd, ST_SETPRIORITY, errno, 0);
}

static void set_credentials(const spawn_opts *o, int errfd) {
  if (o->set_groups && setgroups(o->ngroups, o->groups) < 0) child_fail(errfd, ST_SETGROUPS, errno, 0);
  if (o->gid >= 0 && setgid((gid_t)o->gid) < 0) child_fail(errfd, ST_SETGID, errno, 0);
  if (o->uid >= 0 && setuid((uid_t)o->uid) < 0) child_fail(errfd, ST_SETUID, errno, 0);
  if (o->umask >= 0) umask((mode_t)o->umask);
  /* No setuid/setgid bit or file capability can raise privileges past execve from here on;
   * the flag is inherited by every descendant and cannot be cleared. */
  if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(errfd, ST_NO_NEW_PRIVS, errno, 0);
}

/* Writes getpid() into the LISTEN_PID= entry: async-signal-safe, no allocation. */
static void set_listen_pid(const spawn_opts *o) {
  char digits[24];
  int n = 0;
  for (pid_t pid = getpid(); n == 0 || pid > 0; pid /= 10) digits[n++] = (char)('0' + pid % 10);
  char *p = o->listen_pid + 11;
  while (n) *p++ = digits[--n];
  *p = '\0';
}

static void __attribute__((noreturn)) exec_cands(const spawn_opts *o, int errfd) {
  bool denied = false;
  if (o->listen_pid) set_listen_pid(o);
  int denied_at = -1;
  for (size_t i = 0; i < o->ncands; i++) {
    execve(o->cands[i], o->argv, o->envp);
    if (errno == EACCES) {
      if (!denied) denied = true, denied_at = (int)i;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
               errno != ETIMEDOUT) {
      child_fail(errfd, ST_EXECVE, errno, (int)i); /* execvp stops searching on these too */
    }
  }
  child_fail(errfd, ST_EXECVE, denied ? EACCES : ENOENT, denied_at);
}

/* The forked child: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn)) child_main(const spawn_opts *o, int errfd) {
  int top = 3 + (int)o->nfds;
  reset_signals();
  /* The pipe may sit where a target goes (our fds 0-2 closed, or fds given); move it clear. */
  if (errfd < top && (errfd = fcntl(errfd, F_DUPFD_CLOEXEC, top)) < 0) _exit(127);
  if (o->cgroup_procs) join_cgroup(o, errfd);
  if ((o->setsid || o->tty) && setsid() < 0) child_fail(errfd, ST_SETSID, errno, 0);
  /* A session leader already leads its own process group, and setpgid would fail EPERM.
   * The parent needs no setpgid of its own against the usual race: spawn() returns only
   * once execve has happened, so the group exists before anyone can signal it. */
  if (o->pgroup && !(o->setsid || o->tty) && setpgid(0, 0) < 0) child_fail(errfd, ST_SETPGID, errno, 0);
  place_fds(o, errfd, top);
  if (close_fds_from(top, errfd, o->max_fd) < 0) child_fail(errfd, ST_CLOSE, errno, top);
  if (o->cwd && chdir(o->cwd) < 0) child_fail(errfd, ST_CHDIR, errno, 0);
  set_limits(o, errfd);
  set_credentials(o, errfd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  exec_cands(o, errfd);
}

/* ------------------------------------------------------------ the parent */

static void rlim_str(char *buf, size_t n, rlim_t v) {
  if (v == RLIM_INFINITY) snprintf(buf, n, "infinity");
  else snprintf(buf, n, "%llu", (unsigned long long)v);
}

static void throw_child(napi_env env, const spawn_opts *o, const child_report *r) {
  int e = r->err, a = r->arg;
  switch (r->step) {
  case ST_CGROUP_OPEN: return throw_sys(env, e, "open", o->cgroup_procs, NULL, "%s", o->cgroup_procs);
  case ST_CGROUP_WRITE: return throw_sys(env, e, "write", o->cgroup_procs, NULL, "%s", o->cgroup_procs);
  case ST_SETSID: return throw_sys(env, e, "setsid", NULL, NULL, "%s", "");
  case ST_SETPGID: return throw_sys(env, e, "setpgid", NULL, NULL, "0, 0");
  case ST_OPEN_TTY: return throw_sys(env, e, "open", o->tty, NULL, "%s", o->tty);
  case ST_TIOCSCTTY: return throw_sys(env, e, "ioctl", o->tty, NULL, "TIOCSCTTY, %s", o->tty);
  case ST_OPEN_NULL: return throw_sys(env, e, "open", "/dev/null", NULL, "/dev/null");
  case ST_DUP: return throw_sys(env, e, "fcntl", NULL, NULL, "%d, F_DUPFD_CLOEXEC", source_fd(o, a));
  case ST_DUP2: return throw_sys(env, e, "dup2", NULL, NULL, "%d", a);
  case ST_CLOSE: return throw_sys(env, e, "close_range", NULL, NULL, "%d, ~0U", a);
  case ST_CHDIR: return throw_sys(env, e, "chdir", o->cwd, NULL, "%s", o->cwd);
  case ST_SETRLIMIT: {
    const spawn_rlimit *l = &o->rlimits[a];
    char soft[24], hard[24];
    rlim_str(soft, sizeof soft, l->limit.rlim_cur), rlim_str(hard, sizeof hard, l->limit.rlim_max);
    return throw_sys(env, e, "setrlimit", NULL, NULL, "RLIMIT_%s, %s, %s", rlimit_name(l->resource), soft, hard);
  }
  case ST_SETPRIORITY: return throw_sys(env, e, "setpriority", NULL, NULL, "PRIO_PROCESS, 0, %d", o->nice);
  case ST_SETGROUPS: return throw_sys(env, e, "setgroups", NULL, NULL, "%zu", o->ngroups);
  case ST_SETGID: return throw_sys(env, e, "setgid", NULL, NULL, "%lld", (long long)o->gid);
  case ST_SETUID: return throw_sys(env, e, "setuid", NULL, NULL, "%lld", (long long)o->uid);
  case ST_NO_NEW_PRIVS: return throw_sys(env, e, "prctl", NULL, NULL, "PR_SET_NO_NEW_PRIVS, 1");
  default: {
    const char *p = a >= 0 && (size_t)a < o->ncands ? o->cands[a] : o->file;
    return throw_sys(env, e, "execve", p, NULL, "%s", p);
  }
  }
}

/* Every fd to hand down must be open now: a closed number could be reused by the error pipe
 * below, and the child would silently get that instead of failing with EBADF. */
static bool check_fds(napi_env env, const spawn_opts *o) {
  for (int t = 0; t < 3 + (int)o->nfds; t++) {
    int fd = source_fd(o, t);
    if (fd >= 0 && fcntl(fd, F_GETFD) < 0) {
      throw_sys(env, errno, "fcntl", NULL, NULL, "%d, F_GETFD", fd);
      return false;
    }
  }
  return true;
}

/* Forks and runs child_main; returns the pid, or -1 with the error thrown and the child reaped. */
static pid_t fork_child(napi_env env, const spawn_opts *o) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    throw_sys(env, errno, "pipe2", NULL, NULL, "O_CLOEXEC");
    return -1;
  }
  /* Block all signals across fork: a Node handler running in the child would write to
   * libuv's signal pipe, shared with us, and fake a signal in the parent. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  int fork_err = errno;
  if (pid == 0) child_main(o, pipefd[1]);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    throw_sys(env, fork_err, "fork", NULL, NULL, "%s", "");
    return -1;
  }
  child_report r;
  ssize_t n;
  do n = read(pipefd[0], &r, sizeof r);  /* EOF: execve succeeded and closed the pipe */
  while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n != (ssize_t)sizeof r) return pid;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  throw_child(env, o, &r);
  return -1;
}

/* Starts a program (fork, set up, execve) and returns its pid; a failure in the child
 * before execve is thrown here, with that child already reaped. */
napi_value js_spawn(napi_env env, napi_callback_info info) {
  ARGS(1);
  spawn_opts o;
  memset(&o, 0, sizeof o);
  napi_value result = NULL;
  pid_t pid;
  if (parse_spawn(env, argv[0], &o) && check_fds(env, &o) && (pid = fork_child(env, &o)) > 0)
    napi_create_int32(env, pid, &result);
  free_spawn(&o);
  return result;
}
