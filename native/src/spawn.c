/* spawn.c: fork, set the child up (cgroup, session, fds, limits, credentials), execve.
 * A failure in the child before execve travels back over a CLOEXEC pipe and is thrown
 * in the parent as if the step had failed there. With the `container` option the child is
 * clone()d into new namespaces instead and container.c sets up its root in between; with
 * `join` it enters a running process's namespaces and forks again (container.c), and the
 * grandchild goes on from there (it inherits the pipe, so its failures are reported too). */
#include "spawn.h"
#include "container.h"
#include "console.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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
       ST_SETGROUPS, ST_SETGID, ST_SETUID, ST_NO_NEW_PRIVS, ST_EXECVE, ST_CAPBSET, ST_AMBIENT,
       ST_CAPSET, ST_SECCOMP };

/* ------------------------------------------------------------- the child */

void __attribute__((noreturn)) child_fail(int errfd, int step, int err, int arg) {
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

/* Opens o->tty (O_NOCTTY: TIOCSCTTY comes in place_fds, after setsid) at `top` or above. */
static int open_tty(const spawn_opts *o, int errfd, int top) {
  int fd = open(o->tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) child_fail(errfd, ST_OPEN_TTY, errno, 0);
  if (fd < top) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, top);
    if (moved < 0) child_fail(errfd, ST_DUP, errno, 0);
    close(fd);
    fd = moved;
  }
  return fd;
}

/* Puts stdio on 0-2 and o->fds on 3, 4, ...; `top` is the first fd above the targets; `tty`
 * is o->tty opened already (join mode), or -1 to open it here. */
static void place_fds(const spawn_opts *o, int errfd, int top, int tty) {
  int devnull = -1, src[3];
  if (o->tty) {
    if (tty < 0) tty = open_tty(o, errfd, top);
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

/* Closes every fd from `first` up except `keep` and `keep2` (each >= first, or -1 for none),
 * whatever its FD_CLOEXEC. */
static int close_fds_from(int first, int keep, int keep2, unsigned max_fd) {
  int lo = keep2 >= 0 && keep2 < keep ? keep2 : keep, hi = keep2 >= 0 && keep2 > keep ? keep2 : keep;
  int kept[2] = {lo, hi}, from = first;
  bool ok = true;
  for (int i = 0; i < 2 && ok; i++) {
    if (kept[i] > from) ok = syscall(SYS_close_range, from, kept[i] - 1, 0) == 0;
    if (kept[i] + 1 > from) from = kept[i] + 1;
  }
  if (ok && syscall(SYS_close_range, from, ~0U, 0) == 0) return 0;
  /* close_range came in Linux 5.9, and old container seccomp profiles answer EPERM. */
  if (errno != ENOSYS && errno != EPERM) return -1;
  for (unsigned fd = first; fd < max_fd; fd++)
    if ((int)fd != keep && (int)fd != keep2) close((int)fd);
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

/* Before the credentials (dropping needs CAP_SETPCAP): every capability not kept leaves the
 * bounding set, which caps what any later execve can grant; no ambient ones survive. */
static void drop_bounding(const spawn_opts *o, int errfd) {
  for (int cap = 0; cap <= o->last_cap; cap++)
    if (!(o->caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) child_fail(errfd, ST_CAPBSET, errno, cap);
  /* EINVAL: a kernel before 4.3, without ambient capabilities. */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    child_fail(errfd, ST_AMBIENT, errno, 0);
}

/* After the credentials: for root, effective = permitted = the kept ones (of those we have),
 * inheritable empty (as Docker since CVE-2022-24769); execve then grants root the bounding
 * set. A switch to another uid has already cleared permitted and effective: left so. */
static void set_caps(const spawn_opts *o, int errfd) {
  if (geteuid() != 0) return;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) child_fail(errfd, ST_CAPSET, errno, 0);
  for (int i = 0; i < 2; i++) {
    uint32_t keep = (uint32_t)(o->caps >> (32 * i)) & data[i].permitted;
    data[i].effective = data[i].permitted = keep;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) child_fail(errfd, ST_CAPSET, errno, 0);
}

/* Last before execve, so that nothing of the setup runs under the filter; needs
 * no_new_privs or CAP_SYS_ADMIN (EACCES otherwise). */
static void set_seccomp(const spawn_opts *o, int errfd) {
  struct sock_fprog prog = {o->nseccomp, o->seccomp};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) child_fail(errfd, ST_SECCOMP, errno, 0);
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
  /* The console socket too (spawn_opts is ours to change: this is the child's copy). */
  int console = o->console;
  if (console >= 0 && console < top && (console = fcntl(console, F_DUPFD_CLOEXEC, top)) < 0) child_fail(errfd, CS_DUP, errno, 0);
  /* A copy of Node: until execve, no one (in the container least of all) may open its
   * /proc/PID/exe or ptrace it. execve makes the program dumpable again as usual. */
  if ((o->ct || o->join) && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) child_fail(errfd, CT_DUMPABLE, errno, 0);
  if (o->cgroup_procs) join_cgroup(o, errfd);
  if (o->ct) container_enter(o, errfd);
  /* A terminal path is the caller's (a pty slave under the host's /dev/pts): opened before
   * entering the process's root, whose /dev/pts is another devpts instance. (A container's is
   * opened in place_fds, still before its pivot_root.) */
  int tty = o->tty && o->join ? open_tty(o, errfd, top) : -1;
  /* Returns only in the grandchild, inside the process's namespaces and root. */
  if (o->join) join_enter(o, errfd);
  if ((o->setsid || o->tty || console >= 0) && setsid() < 0) child_fail(errfd, ST_SETSID, errno, 0);
  /* A session leader already leads its own process group, and setpgid would fail EPERM.
   * The parent needs no setpgid of its own against the usual race: spawn() returns only
   * once execve has happened, so the group exists before anyone can signal it. */
  if (o->pgroup && !(o->setsid || o->tty || console >= 0) && setpgid(0, 0) < 0) child_fail(errfd, ST_SETPGID, errno, 0);
  place_fds(o, errfd, top, tty);
  if (close_fds_from(top, errfd, console, o->max_fd) < 0) child_fail(errfd, ST_CLOSE, errno, top);
  if (o->ct) container_setup(o, errfd);
  if (o->sb) sandbox_setup(o, errfd);
  /* In the program's own root now (pivoted into, or entered with `join`): its devpts. */
  if (console >= 0) console_setup(o, errfd, console);
  if (o->cwd && chdir(o->cwd) < 0) child_fail(errfd, ST_CHDIR, errno, 0);
  set_limits(o, errfd);
  if (o->set_caps) drop_bounding(o, errfd);
  set_credentials(o, errfd);
  if (o->join) join_finish(o, errfd);
  if (o->set_caps) set_caps(o, errfd);
  if (o->seccomp) set_seccomp(o, errfd);
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
  if (container_throw(env, o, r) || console_throw(env, o, r) || sandbox_throw(env, o, r)) return;
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
  case ST_CAPBSET: return throw_sys(env, e, "prctl", NULL, NULL, "PR_CAPBSET_DROP, %d", a);
  case ST_AMBIENT: return throw_sys(env, e, "prctl", NULL, NULL, "PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL");
  case ST_CAPSET: return throw_sys(env, e, "capset", NULL, NULL, "0x%llx", (unsigned long long)o->caps);
  case ST_SECCOMP:
    return throw_sys(env, e, "prctl", NULL, NULL, "PR_SET_SECCOMP, SECCOMP_MODE_FILTER, %u instructions", o->nseccomp);
  default: {
    const char *p = a >= 0 && (size_t)a < o->ncands ? o->cands[a] : o->file;
    return throw_sys(env, e, "execve", p, NULL, "%s", p);
  }
  }
}

/* Every fd to hand down must be open now: a closed number could be reused by the error pipe
 * below, and the child would silently get that instead of failing with EBADF. */
static bool check_fds(napi_env env, const spawn_opts *o) {
  for (int t = -1; t < 3 + (int)o->nfds; t++) {
    int fd = t < 0 ? o->console : source_fd(o, t);
    if (fd >= 0 && fcntl(fd, F_GETFD) < 0) {
      throw_sys(env, errno, "fcntl", NULL, NULL, "%d, F_GETFD", fd);
      return false;
    }
  }
  return true;
}

/* Forks (or, for a container, clones into new namespaces: a raw clone without CLONE_VM,
 * fork-like, the child going on on a copy of this stack) and runs child_main; returns the
 * pid, or -1 with the error thrown and the child reaped. */
static pid_t fork_child(napi_env env, const spawn_opts *o) {
  int pipefd[2];
  /* A container with a user namespace talks both ways (its maps are written while it waits). */
  bool userns = o->ct && o->ct->uid_map;
  if ((userns ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipefd) : pipe2(pipefd, O_CLOEXEC)) < 0) {
    throw_sys(env, errno, userns ? "socketpair" : "pipe2", NULL, NULL, "O_CLOEXEC");
    return -1;
  }
  /* Block all signals across fork: a Node handler running in the child would write to
   * libuv's signal pipe, shared with us, and fake a signal in the parent. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = o->ct ? (pid_t)syscall(SYS_clone, (unsigned long)(o->ct->clone_flags | SIGCHLD), NULL, NULL, NULL, 0UL)
                    : fork();
  int fork_err = errno;
  if (pid == 0) child_main(o, pipefd[1]);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    if (o->ct) throw_sys(env, fork_err, "clone", NULL, NULL, "0x%x", (unsigned)o->ct->clone_flags);
    else throw_sys(env, fork_err, "fork", NULL, NULL, "%s", "");
    return -1;
  }
  child_report r;
  ssize_t n;
  bool mapped = false;
  for (;;) {
    do n = read(pipefd[0], &r, sizeof r);  /* EOF: execve succeeded and closed the pipe */
    while (n < 0 && errno == EINTR);
    if (!(userns && n == (ssize_t)sizeof r && r.step == CT_USERNS_READY)) break;
    /* The child waits in its new user namespace for its maps, then for our byte. */
    if (!container_map_user(env, o->ct, pid)) {
      mapped = true; /* the error is thrown already */
      kill(pid, SIGKILL);
      break;
    }
    while (write(pipefd[0], "g", 1) < 0 && errno == EINTR) {}
  }
  close(pipefd[0]);
  if (n != (ssize_t)sizeof r && !mapped) return pid;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!mapped) throw_child(env, o, &r);
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
  /* The namespace fds are opened after check_fds: one could take the number of a closed fd. */
  if (parse_spawn(env, argv[0], &o) && check_fds(env, &o) && (!o.join || join_open(env, o.join)) &&
      (pid = fork_child(env, &o)) > 0)
    napi_create_int32(env, pid, &result);
  free_spawn(&o);
  return result;
}
