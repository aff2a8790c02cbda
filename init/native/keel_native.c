/* keel_native: the syscalls Node lacks, wrapped one-to-one for Keel's PID 1.
 *
 * Every function either returns a value or throws an Error shaped like Node's own
 * system errors: message "SYSCALL(ARGS): CODE (strerror)", properties code, errno
 * (positive, as in <errno.h>), syscall and, where a path is involved, path/dest.
 * Policy (what to mount, when to reboot, whom to reap) stays in TypeScript. */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>

#ifndef SYS_close_range
#define SYS_close_range 436 /* same number on every architecture */
#endif
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif

/* ------------------------------------------------------------------ errors */

/* Symbolic errno name; glibc >= 2.32 knows them all, other libcs get the common ones. */
static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name) return name;
#endif
#define E(x) if (err == x) return #x;
  E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
  E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV)
  E(ENOTDIR) E(EISDIR) E(EINVAL) E(EMFILE) E(ENOSPC) E(EROFS) E(ENAMETOOLONG)
  E(ENOSYS) E(ELOOP) E(ENOTTY) E(ETXTBSY)
#undef E
  return "EUNKNOWN";
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

/* Throws the system error for `err`; `fmt` renders the argument list shown in the message. */
static void throw_sys(napi_env env, int err, const char *syscall, const char *path,
                      const char *dest, const char *fmt, ...) {
  char *args = NULL, *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&args, fmt, ap) < 0) args = NULL;
  va_end(ap);
  const char *code = errno_name(err);
  if (asprintf(&msg, "%s(%s): %s (%s)", syscall, args ? args : "", code, strerror(err)) < 0)
    msg = NULL;
  napi_value code_v, msg_v, error, errno_v;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  napi_create_string_utf8(env, msg ? msg : syscall, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_int32(env, err, &errno_v);
  napi_set_named_property(env, error, "errno", errno_v);
  set_str(env, error, "syscall", syscall);
  if (path) set_str(env, error, "path", path);
  if (dest) set_str(env, error, "dest", dest);
  napi_throw(env, error);
  free(args);
  free(msg);
}

/* --------------------------------------------------------------- arguments */

static const char *type_name(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  static const char *names[] = {"undefined", "null",     "boolean",  "number", "string",
                                "symbol",    "object",   "function", "external", "bigint"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

static bool bad_arg(napi_env env, const char *fn, const char *what, const char *want, napi_value v) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s must be %s, received %s", fn, what, want, type_name(env, v));
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

/* Copies a JS string into a malloc'd C string (NULL for null/undefined when nullable). */
static bool get_str(napi_env env, napi_value v, const char *fn, const char *what, bool nullable,
                    char **out) {
  size_t len = 0;
  *out = NULL;
  if (nullable && is_nullish(env, v)) return true;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
    return bad_arg(env, fn, what, nullable ? "a string or null" : "a string", v);
  *out = malloc(len + 1);
  if (!*out) return napi_throw_error(env, "ENOMEM", "out of memory"), false;
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  /* The kernel would silently stop at an embedded NUL and act on another path. */
  if (strlen(*out) != len) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s must not contain NUL bytes", fn, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  return true;
}

static bool get_int(napi_env env, napi_value v, const char *fn, const char *what, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) return bad_arg(env, fn, what, "a number", v);
  return true;
}

#define ARGS(n)                                              \
  size_t argc = (n);                                         \
  napi_value argv[(n)];                                      \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)


/* ------------------------------------------------------- mounts and roots */

/* mount(2). */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(5);
  char *src = NULL, *tgt = NULL, *fstype = NULL, *data = NULL;
  int64_t flags;
  if (get_str(env, argv[0], "mount", "source", true, &src) &&
      get_str(env, argv[1], "mount", "target", false, &tgt) &&
      get_str(env, argv[2], "mount", "fstype", true, &fstype) &&
      get_int(env, argv[3], "mount", "flags", &flags) &&
      get_str(env, argv[4], "mount", "data", true, &data) &&
      mount(src, tgt, fstype, (unsigned long)flags, data) != 0)
    throw_sys(env, errno, "mount", tgt, NULL, "%s, %s", src ? src : "none", tgt);
  free(src), free(tgt), free(fstype), free(data);
  return NULL;
}

/* umount2(2). */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *tgt = NULL;
  int64_t flags;
  if (get_str(env, argv[0], "umount2", "target", false, &tgt) &&
      get_int(env, argv[1], "umount2", "flags", &flags) && umount2(tgt, (int)flags) != 0)
    throw_sys(env, errno, "umount2", tgt, NULL, "%s", tgt);
  free(tgt);
  return NULL;
}

/* Shared shape of chroot(2), chdir(2) and sethostname(2): one string in, nothing out. */
static napi_value one_string(napi_env env, napi_callback_info info, const char *name,
                             int (*call)(const char *), bool is_path) {
  ARGS(1);
  char *s = NULL;
  if (get_str(env, argv[0], name, is_path ? "path" : "name", false, &s) && call(s) != 0)
    throw_sys(env, errno, name, is_path ? s : NULL, NULL, "%s", s);
  free(s);
  return NULL;
}
static int do_sethostname(const char *s) { return sethostname(s, strlen(s)); }
static napi_value js_chroot(napi_env env, napi_callback_info info) {
  return one_string(env, info, "chroot", chroot, true);
}
static napi_value js_chdir(napi_env env, napi_callback_info info) {
  return one_string(env, info, "chdir", chdir, true);
}
static napi_value js_sethostname(napi_env env, napi_callback_info info) {
  return one_string(env, info, "sethostname", do_sethostname, false);
}

/* pivot_root(2); glibc has no wrapper. */
static napi_value js_pivot_root(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *new_root = NULL, *put_old = NULL;
  if (get_str(env, argv[0], "pivotRoot", "newRoot", false, &new_root) &&
      get_str(env, argv[1], "pivotRoot", "putOld", false, &put_old) &&
      syscall(SYS_pivot_root, new_root, put_old) != 0)
    throw_sys(env, errno, "pivot_root", new_root, put_old, "%s, %s", new_root, put_old);
  free(new_root), free(put_old);
  return NULL;
}

/* ------------------------------------------------------ system and procs */

/* reboot(2) with a LINUX_REBOOT_CMD_* value; returns only when the command does. */
static napi_value js_reboot(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t cmd;
  if (get_int(env, argv[0], "reboot", "cmd", &cmd) && reboot((int)cmd) != 0)
    throw_sys(env, errno, "reboot", NULL, NULL, "0x%08x", (unsigned)cmd);
  return NULL;
}

/* sync(2); cannot fail. */
static napi_value js_sync(napi_env env, napi_callback_info info) {
  sync();
  return NULL;
}

/* prctl(PR_SET_CHILD_SUBREAPER, 1): orphans below us are re-parented to us, as to PID 1. */
static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    throw_sys(env, errno, "prctl", NULL, NULL, "PR_SET_CHILD_SUBREAPER, 1");
  return NULL;
}

static void set_num(napi_env env, napi_value obj, const char *key, double n) {
  napi_value v;
  napi_create_double(env, n, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_num_or_null(napi_env env, napi_value obj, const char *key, bool has, int n) {
  napi_value v;
  if (has) napi_create_int32(env, n, &v);
  else napi_get_null(env, &v);
  napi_set_named_property(env, obj, key, v);
}

/* waitpid(2): null when WNOHANG found nothing, else the decoded status. */
static napi_value js_waitpid(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t pid, options;
  if (!get_int(env, argv[0], "waitpid", "pid", &pid) ||
      !get_int(env, argv[1], "waitpid", "options", &options))
    return NULL;
  int status = 0;
  pid_t r;
  /* A blocking wait can be interrupted by a signal Node handles; just wait again. */
  do r = waitpid((pid_t)pid, &status, (int)options);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    throw_sys(env, errno, "waitpid", NULL, NULL, "%lld", (long long)pid);
    return NULL;
  }
  napi_value result;
  if (r == 0) return napi_get_null(env, &result), result;
  napi_create_object(env, &result);
  set_num(env, result, "pid", r);
  set_num(env, result, "status", status);
  napi_value b;
  napi_get_boolean(env, WIFEXITED(status), &b);
  napi_set_named_property(env, result, "exited", b);
  set_num_or_null(env, result, "code", WIFEXITED(status), WEXITSTATUS(status));
  napi_get_boolean(env, WIFSIGNALED(status), &b);
  napi_set_named_property(env, result, "signaled", b);
  set_num_or_null(env, result, "signal", WIFSIGNALED(status), WTERMSIG(status));
  return result;
}

/* Brings a network interface up (IFF_UP|IFF_RUNNING), like `ip link set NAME up`. */
static napi_value js_if_up(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *name = NULL;
  if (!get_str(env, argv[0], "ifUp", "name", false, &name)) return free(name), NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (strlen(name) >= sizeof ifr.ifr_name) {
    char msg[128];
    snprintf(msg, sizeof msg, "ifUp: name must be shorter than %zu bytes, received \"%.40s\"",
             sizeof ifr.ifr_name, name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return free(name), NULL;
  }
  memcpy(ifr.ifr_name, name, strlen(name));
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_sys(env, errno, "socket", NULL, NULL, "AF_INET, SOCK_DGRAM");
  } else if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    throw_sys(env, errno, "ioctl", NULL, NULL, "SIOCGIFFLAGS, %s", name);
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
      throw_sys(env, errno, "ioctl", NULL, NULL, "SIOCSIFFLAGS, %s", name);
  }
  if (fd >= 0) close(fd);
  free(name);
  return NULL;
}

/* ------------------------------------------------------------------ spawn */

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Everything the child needs, prepared before fork: after fork() in a threaded process
 * only async-signal-safe calls are allowed, so the child must never allocate. */
typedef struct {
  char *file, *cwd, *tty;
  char **argv, **envp, **cands; /* NULL-terminated; cands = execve paths to try in order */
  size_t ncands, ngroups;
  int fds[3];                   /* parent fds for 0,1,2; -1 = the tty, else /dev/null */
  bool setsid, set_groups;
  int64_t uid, gid, umask;      /* -1 = leave alone */
  gid_t *groups;
  unsigned max_fd;              /* bound of the close loop when close_range is missing */
} spawn_opts;

enum { ST_SETSID, ST_OPEN_TTY, ST_TIOCSCTTY, ST_OPEN_NULL, ST_DUP, ST_DUP2, ST_CLOSE,
       ST_CHDIR, ST_SETGROUPS, ST_SETGID, ST_SETUID, ST_EXECVE };

/* What a child writes to the CLOEXEC pipe when it fails before execve succeeds. */
typedef struct { int step, err, arg; } child_report;

static void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

static bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *v, bool *has) {
  if (napi_get_named_property(env, obj, key, v) != napi_ok) return false;
  *has = !is_nullish(env, *v);
  return true;
}

static bool get_strv(napi_env env, napi_value v, const char *what, char ***out) {
  bool is_array = false;
  uint32_t n = 0;
  napi_is_array(env, v, &is_array);
  if (!is_array) return bad_arg(env, "spawn", what, "an array of strings", v);
  napi_get_array_length(env, v, &n);
  if (!(*out = calloc(n + 1, sizeof **out))) return napi_throw_error(env, "ENOMEM", "out of memory"), false;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, v, i, &e) != napi_ok || !get_str(env, e, "spawn", what, false, &(*out)[i]))
      return false;
  }
  return true;
}

static bool opt_int(napi_env env, napi_value opts, const char *key, int64_t *out) {
  napi_value v;
  bool has;
  *out = -1;
  return get_prop(env, opts, key, &v, &has) && (!has || get_int(env, v, "spawn", key, out));
}

/* execvpe's search, done in the parent: PATH comes from the child's env, not ours. */
static bool build_cands(spawn_opts *o) {
  const char *path = DEFAULT_PATH;
  if (!*o->file || strchr(o->file, '/')) {
    o->ncands = 1;
    return (o->cands = calloc(2, sizeof *o->cands)) && (o->cands[0] = strdup(o->file));
  }
  for (char **e = o->envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
  size_t n = 1;
  for (const char *p = path; *p; p++) n += *p == ':';
  if (!(o->cands = calloc(n + 1, sizeof *o->cands))) return false;
  for (const char *seg = path;; seg++) {
    size_t len = strcspn(seg, ":");
    char *c;
    /* An empty PATH entry means the current directory, as in execvp. */
    if (len == 0 ? !(c = strdup(o->file)) : asprintf(&c, "%.*s/%s", (int)len, seg, o->file) < 0)
      return false;
    o->cands[o->ncands++] = c;
    seg += len;
    if (!*seg) return true;
  }
}

static bool parse_spawn(napi_env env, napi_value opts, spawn_opts *o) {
  napi_value v;
  bool has;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, opts, &t);
  if (t != napi_object) return bad_arg(env, "spawn", "opts", "an object", opts);
  if (!get_prop(env, opts, "file", &v, &has) || !get_str(env, v, "spawn", "file", false, &o->file) ||
      !get_prop(env, opts, "argv", &v, &has) || !get_strv(env, v, "argv", &o->argv) ||
      !get_prop(env, opts, "env", &v, &has) || !get_strv(env, v, "env", &o->envp) ||
      !get_prop(env, opts, "cwd", &v, &has) || !get_str(env, v, "spawn", "cwd", true, &o->cwd) ||
      !get_prop(env, opts, "tty", &v, &has) || !get_str(env, v, "spawn", "tty", true, &o->tty))
    return false;
  static const char *fd_keys[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; i++) {
    int64_t fd;
    if (!opt_int(env, opts, fd_keys[i], &fd)) return false;
    o->fds[i] = fd < 0 || fd > INT32_MAX ? -1 : (int)fd;
  }
  if (!get_prop(env, opts, "setsid", &v, &has)) return false;
  if (has && napi_get_value_bool(env, v, &o->setsid) != napi_ok)
    return bad_arg(env, "spawn", "setsid", "a boolean", v);
  if (!opt_int(env, opts, "uid", &o->uid) || !opt_int(env, opts, "gid", &o->gid) ||
      !opt_int(env, opts, "umask", &o->umask) || !get_prop(env, opts, "groups", &v, &has))
    return false;
  if (has) {
    bool is_array = false;
    uint32_t n = 0;
    if (napi_is_array(env, v, &is_array) != napi_ok || !is_array)
      return bad_arg(env, "spawn", "groups", "an array of numbers", v);
    napi_get_array_length(env, v, &n);
    if (!(o->groups = calloc(n + 1, sizeof *o->groups))) return napi_throw_error(env, "ENOMEM", "out of memory"), false;
    for (uint32_t i = 0; i < n; i++) {
      napi_value e;
      int64_t g;
      if (napi_get_element(env, v, i, &e) != napi_ok || !get_int(env, e, "spawn", "groups[]", &g)) return false;
      o->groups[o->ngroups++] = (gid_t)g;
    }
  }
  /* Dropping to a uid/gid must also drop root's supplementary groups (as Go's os/exec does). */
  o->set_groups = has || o->uid >= 0 || o->gid >= 0;
  struct rlimit rl;
  o->max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (unsigned)rl.rlim_cur : 65536;
  if (!build_cands(o)) return napi_throw_error(env, "ENOMEM", "out of memory"), false;
  return true;
}

static void __attribute__((noreturn)) child_fail(int errfd, int step, int err, int arg) {
  child_report r = {step, err, arg};
  while (write(errfd, &r, sizeof r) < 0 && errno == EINTR) {}
  _exit(127);
}

static int close_fds_except(int keep, unsigned max_fd) {
  if ((keep == 3 || syscall(SYS_close_range, 3, keep - 1, 0) == 0) &&
      syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
    return 0;
  /* close_range came in Linux 5.9, and old container seccomp profiles answer EPERM. */
  if (errno != ENOSYS && errno != EPERM) return -1;
  for (unsigned fd = 3; fd < max_fd; fd++)
    if ((int)fd != keep) close((int)fd);
  return 0;
}

/* The forked child: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn)) child_main(const spawn_opts *o, int errfd) {
  /* Ignored signals (Node ignores SIGPIPE) and the signal mask survive execve, so a
   * child would inherit them; reset every disposition (errors for SIGKILL etc. ignored). */
  /* The raw syscall, not glibc's sigaction(): glibc refuses signals 32 and 33 (its own
   * SIGCANCEL/SIGSETXID), yet an ignored 32 inherited from our parent would pass to the child. */
  struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.handler = SIG_DFL;
  for (int s = 1; s <= 64; s++) syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
  /* If our fds 0-2 were closed the pipe may sit there; move it clear of the dup2s. */
  if (errfd < 3 && (errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 3)) < 0) _exit(127);
  if ((o->setsid || o->tty) && setsid() < 0) child_fail(errfd, ST_SETSID, errno, 0);
  int tty = -1, devnull = -1, src[3];
  if (o->tty) {
    if ((tty = open(o->tty, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) child_fail(errfd, ST_OPEN_TTY, errno, 0);
    /* Acquire it explicitly (O_NOCTTY above): job control needs a controlling tty. */
    if (ioctl(tty, TIOCSCTTY, 0) < 0) child_fail(errfd, ST_TIOCSCTTY, errno, 0);
  }
  for (int i = 0; i < 3; i++) {
    int fd = o->fds[i] >= 0 ? o->fds[i] : tty;
    if (fd < 0 && devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
      child_fail(errfd, ST_OPEN_NULL, errno, 0);
    /* Copy every source above 2 first, so no dup2 clobbers a later source (stdout: 2,
     * stderr: 1) and none is a no-op dup2(1, 1): that would keep FD_CLOEXEC, which Node sets
     * on its fds 0-16 at startup, and the program would start with stdout closed. */
    if ((src[i] = fcntl(fd < 0 ? devnull : fd, F_DUPFD_CLOEXEC, 3)) < 0) child_fail(errfd, ST_DUP, errno, i);
  }
  for (int i = 0; i < 3; i++)
    if (dup2(src[i], i) < 0) child_fail(errfd, ST_DUP2, errno, i);
  if (close_fds_except(errfd, o->max_fd) < 0) child_fail(errfd, ST_CLOSE, errno, 0);
  if (o->cwd && chdir(o->cwd) < 0) child_fail(errfd, ST_CHDIR, errno, 0);
  if (o->set_groups && setgroups(o->ngroups, o->groups) < 0) child_fail(errfd, ST_SETGROUPS, errno, 0);
  if (o->gid >= 0 && setgid((gid_t)o->gid) < 0) child_fail(errfd, ST_SETGID, errno, 0);
  if (o->uid >= 0 && setuid((uid_t)o->uid) < 0) child_fail(errfd, ST_SETUID, errno, 0);
  if (o->umask >= 0) umask((mode_t)o->umask);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  bool denied = false;
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

static void throw_child(napi_env env, const spawn_opts *o, const child_report *r) {
  int e = r->err, a = r->arg >= 0 && r->arg < 3 ? r->arg : 0;
  switch (r->step) {
  case ST_SETSID: return throw_sys(env, e, "setsid", NULL, NULL, "");
  case ST_OPEN_TTY: return throw_sys(env, e, "open", o->tty, NULL, "%s", o->tty);
  case ST_TIOCSCTTY: return throw_sys(env, e, "ioctl", o->tty, NULL, "TIOCSCTTY, %s", o->tty);
  case ST_OPEN_NULL: return throw_sys(env, e, "open", "/dev/null", NULL, "/dev/null");
  case ST_DUP: return throw_sys(env, e, "fcntl", NULL, NULL, "%d, F_DUPFD_CLOEXEC", o->fds[a]);
  case ST_DUP2: return throw_sys(env, e, "dup2", NULL, NULL, "%d", a);
  case ST_CLOSE: return throw_sys(env, e, "close_range", NULL, NULL, "3, ~0U");
  case ST_CHDIR: return throw_sys(env, e, "chdir", o->cwd, NULL, "%s", o->cwd);
  case ST_SETGROUPS: return throw_sys(env, e, "setgroups", NULL, NULL, "%zu", o->ngroups);
  case ST_SETGID: return throw_sys(env, e, "setgid", NULL, NULL, "%lld", (long long)o->gid);
  case ST_SETUID: return throw_sys(env, e, "setuid", NULL, NULL, "%lld", (long long)o->uid);
  default: {
    const char *p = r->arg >= 0 && (size_t)r->arg < o->ncands ? o->cands[r->arg] : o->file;
    return throw_sys(env, e, "execve", p, NULL, "%s", p);
  }
  }
}

/* Starts a program (fork, set up, execve) and returns its pid; a failure in the child
 * before execve is thrown here, with that child already reaped. */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  ARGS(1);
  spawn_opts o;
  memset(&o, 0, sizeof o);
  napi_value result = NULL;
  int pipefd[2];
  if (!parse_spawn(env, argv[0], &o)) goto out;
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    throw_sys(env, errno, "pipe2", NULL, NULL, "O_CLOEXEC");
    goto out;
  }
  /* Block all signals across fork: a Node handler running in the child would write to
   * libuv's signal pipe, shared with us, and fake a signal in the parent. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  int fork_err = errno;
  if (pid == 0) child_main(&o, pipefd[1]);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    throw_sys(env, fork_err, "fork", NULL, NULL, "");
    goto out;
  }
  child_report r;
  ssize_t n;
  do n = read(pipefd[0], &r, sizeof r);  /* EOF: execve succeeded and closed the pipe */
  while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n == (ssize_t)sizeof r) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    throw_child(env, &o, &r);
  } else {
    napi_create_int32(env, pid, &result);
  }
out:
  free(o.file), free(o.cwd), free(o.tty), free(o.groups);
  free_strv(o.argv), free_strv(o.envp), free_strv(o.cands);
  return result;
}

/* ------------------------------------------------------------------ module */

static napi_value init(napi_env env, napi_value exports) {
  napi_value c;
  napi_create_object(env, &c);
#define K(name, value) set_num(env, c, name, (double)(value))
  K("MS_RDONLY", MS_RDONLY); K("MS_NOSUID", MS_NOSUID); K("MS_NODEV", MS_NODEV);
  K("MS_NOEXEC", MS_NOEXEC); K("MS_REMOUNT", MS_REMOUNT); K("MS_BIND", MS_BIND);
  K("MS_REC", MS_REC); K("MS_MOVE", MS_MOVE); K("MS_PRIVATE", MS_PRIVATE);
  K("MS_SLAVE", MS_SLAVE); K("MS_SHARED", MS_SHARED); K("MS_RELATIME", MS_RELATIME);
  K("MNT_DETACH", MNT_DETACH); K("MNT_FORCE", MNT_FORCE); K("WNOHANG", WNOHANG);
  K("RB_AUTOBOOT", (uint32_t)LINUX_REBOOT_CMD_RESTART);
  K("RB_POWER_OFF", (uint32_t)LINUX_REBOOT_CMD_POWER_OFF);
  K("RB_HALT_SYSTEM", (uint32_t)LINUX_REBOOT_CMD_HALT);
  K("RB_DISABLE_CAD", (uint32_t)LINUX_REBOOT_CMD_CAD_OFF);
  K("RB_ENABLE_CAD", (uint32_t)LINUX_REBOOT_CMD_CAD_ON);
#undef K
  napi_object_freeze(env, c);
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  napi_property_descriptor props[] = {
      FN("mount", js_mount), FN("umount2", js_umount2), FN("reboot", js_reboot),
      FN("sethostname", js_sethostname), FN("sync", js_sync), FN("chroot", js_chroot),
      FN("chdir", js_chdir), FN("pivotRoot", js_pivot_root), FN("waitpid", js_waitpid),
      FN("spawn", js_spawn), FN("setChildSubreaper", js_set_child_subreaper),
      FN("ifUp", js_if_up),
      {"constants", NULL, NULL, NULL, NULL, c, napi_enumerable, NULL},
  };
#undef FN
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
