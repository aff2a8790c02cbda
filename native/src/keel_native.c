/* keel_native: the syscalls Node lacks, wrapped one-to-one for Keel's PID 1.
 *
 * Every function either returns a value or throws an Error shaped like Node's own
 * system errors: message "SYSCALL(ARGS): CODE (strerror)", properties code, errno
 * (positive, as in <errno.h>), syscall and, where a path is involved, path/dest.
 * Policy (what to mount, when to reboot, whom to reap) stays in TypeScript.
 *
 * This file: mounts, roots, reboot, waitpid, interfaces, and the module table. The rest:
 * common.c (errors, arguments), spawn.c + spawn_opts.c (spawn), sockets.c (pipe, unix
 * datagrams), listen.c (socket activation), poll.c (fd watchers on the event loop),
 * pty.c (pseudo-terminals), flock.c (file locks), fs.c (mknod and xattrs for unpacking layers). */
#include "keel_native.h"

#include <errno.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif

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
  K("SIGRTMIN", (uint32_t)SIGRTMIN);
  K("XATTR_CREATE", XATTR_CREATE); K("XATTR_REPLACE", XATTR_REPLACE); /* fs.c */
  K("RB_AUTOBOOT", (uint32_t)LINUX_REBOOT_CMD_RESTART);
  K("RB_POWER_OFF", (uint32_t)LINUX_REBOOT_CMD_POWER_OFF);
  K("RB_HALT_SYSTEM", (uint32_t)LINUX_REBOOT_CMD_HALT);
  K("RB_DISABLE_CAD", (uint32_t)LINUX_REBOOT_CMD_CAD_OFF);
  K("RB_ENABLE_CAD", (uint32_t)LINUX_REBOOT_CMD_CAD_ON);
#undef K
  flock_constants(env, c);
  napi_object_freeze(env, c);
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  napi_property_descriptor props[] = {
      FN("mount", js_mount), FN("umount2", js_umount2), FN("reboot", js_reboot),
      FN("sethostname", js_sethostname), FN("sync", js_sync), FN("chroot", js_chroot),
      FN("chdir", js_chdir), FN("pivotRoot", js_pivot_root), FN("waitpid", js_waitpid),
      FN("spawn", js_spawn), FN("setChildSubreaper", js_set_child_subreaper),
      FN("ifUp", js_if_up), FN("pipe", js_pipe), FN("unixDgramSocket", js_unix_dgram_socket),
      FN("recvCred", js_recv_cred), FN("sendDgram", js_send_dgram),
      FN("listenSocket", js_listen_socket), FN("localPort", js_local_port),
      FN("accept", js_accept),
      FN("watchFd", js_watch_fd), FN("peerCred", js_peer_cred), FN("signalPipe", js_signal_pipe),
      FN("openPty", js_open_pty), FN("setWindowSize", js_set_window_size),
      FN("socketPair", js_socket_pair), FN("recvFd", js_recv_fd),
      FN("flock", js_flock),
      FN("mknod", js_mknod), FN("lsetxattr", js_lsetxattr), FN("lgetxattr", js_lgetxattr),
      FN("llistxattr", js_llistxattr),
      {"constants", NULL, NULL, NULL, NULL, c, napi_enumerable, NULL},
  };
#undef FN
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
