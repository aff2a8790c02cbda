/* container.c: spawn()'s `container` option. TypeScript decides every mount, device, path and
 * name; this file only parses them (in the parent, where it may allocate) and performs them in
 * the clone()d child, where only async-signal-safe calls are allowed: no malloc, no stdio,
 * stack buffers only. The child's steps, in order:
 *
 *   container_enter: unshare(CLONE_NEWCGROUP) (after the cgroup join, so the namespace is
 *     rooted at the container's cgroup), setns into a prepared network namespace;
 *   container_setup: make every mount private, mount the root (overlay or bind), the listed
 *     mounts below it (mount points resolved with openat2(RESOLVE_IN_ROOT), so a symlink in
 *     the image cannot point a mount outside the root), device nodes and symlinks, hostname,
 *     lo up, pivot_root, masked and read-only paths, a read-only /.
 *
 * The `join` option (keel exec) enters a running container instead. The parent opens
 * /proc/PID/ns/NAME and /proc/PID/root and only then checks that PID is still the process it
 * was asked for (its start time): since that process existed before the opens and still does
 * after them, its pid was never reused in between and every fd is its. The forked child:
 *
 *   join_enter: (not dumpable, in the cgroup: spawn.c) setns() into ipc, uts, net, pid, cgroup
 *     and mnt, in this order, then fchdir + chroot(".") into the process's root; a pid namespace
 *     applies only to children, so it forks once more. The grandchild goes on as any child
 *     (session, fds, cwd, limits, capabilities, credentials, seccomp, execve; join_finish sets
 *     its parent-death signal); the intermediate child closes every fd, waits for it, forwards
 *     SIGTERM, SIGINT and SIGHUP to it and ends as it did (re-raising its signal).
 */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437 /* same number on every architecture */
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_close_range
#define SYS_close_range 436 /* same number on every architecture */
#endif

/* The namespaces `join` enters, in setns order: mnt last, as it changes what paths mean (and
 * the cgroup namespace after the cgroup join, which needs the host's view of the hierarchy). */
static const struct { const char *name, *flag; int type; } JOIN_NS[JOIN_MAX] = {
  {"ipc", "CLONE_NEWIPC", CLONE_NEWIPC}, {"uts", "CLONE_NEWUTS", CLONE_NEWUTS},
  {"net", "CLONE_NEWNET", CLONE_NEWNET}, {"pid", "CLONE_NEWPID", CLONE_NEWPID},
  {"cgroup", "CLONE_NEWCGROUP", CLONE_NEWCGROUP}, {"mnt", "CLONE_NEWNS", CLONE_NEWNS},
  /* After mnt (whose setns needs the host's CAP_SYS_ADMIN, gone once in another user namespace). */
  {"user", "CLONE_NEWUSER", CLONE_NEWUSER},
};

/* ------------------------------------------------------------- parsing */

static void free_mount(ct_mount *m) {
  free(m->source), free(m->target), free(m->fstype), free(m->data);
}

void free_container(container_opts *c) {
  free(c->netns), free(c->root), free(c->hostname);
  if (c->netns_fd >= 0) close(c->netns_fd);
  free_mount(&c->root_mount);
  for (size_t i = 0; i < c->nmounts; i++) free_mount(&c->mounts[i]);
  for (size_t i = 0; i < c->ndevices; i++) free(c->devices[i].path);
  for (size_t i = 0; i < c->nsymlinks; i++) free(c->symlinks[i].path), free(c->symlinks[i].target);
  free(c->mounts), free(c->devices), free(c->symlinks);
  free_strv(c->masked), free_strv(c->readonly);
  free(c->uid_map), free(c->gid_map);
}

static bool is_object(napi_env env, napi_value v, const char *what) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t == napi_object || bad_arg(env, "spawn", what, "an object", v);
}

/* obj[key] as a string (NULL when nullable and null/undefined). */
static bool str_prop(napi_env env, napi_value obj, const char *key, const char *what, bool nullable, char **out) {
  napi_value v;
  bool has;
  *out = NULL;
  return get_prop(env, obj, key, &v, &has) && get_str(env, v, "spawn", what, nullable, out);
}

/* A path inside the container: absolute (the child resolves it below the new root). */
static bool abs_path(napi_env env, const char *what, const char *p) {
  if (!p || p[0] == '/') return true;
  char got[96];
  snprintf(got, sizeof got, "\"%.80s\"", p);
  return bad_value(env, "spawn", what, "an absolute path", got);
}

static bool path_prop(napi_env env, napi_value obj, const char *key, const char *what, bool nullable, char **out) {
  return str_prop(env, obj, key, what, nullable, out) && abs_path(env, what, *out);
}

static bool num_prop(napi_env env, napi_value obj, const char *key, const char *what, int64_t min, int64_t max, int64_t *out) {
  napi_value v;
  bool has;
  return get_prop(env, obj, key, &v, &has) && get_int_in(env, v, "spawn", what, min, max, out);
}

static bool bool_prop(napi_env env, napi_value obj, const char *key, const char *what, bool *out) {
  napi_value v;
  bool has;
  *out = false;
  if (!get_prop(env, obj, key, &v, &has)) return false;
  if (has && napi_get_value_bool(env, v, out) != napi_ok) return bad_arg(env, "spawn", what, "a boolean", v);
  return true;
}

/* { source, target, fstype, flags, data, mkdir }; the root mount has no target or mkdir. */
static bool parse_mount(napi_env env, napi_value e, ct_mount *m, bool is_root) {
  const char *w = is_root ? "container.rootMount" : "container.mounts[]";
  int64_t flags;
  char *mk = NULL;
  if (!is_object(env, e, w) ||
      !str_prop(env, e, "source", is_root ? "container.rootMount.source" : "container.mounts[].source", true, &m->source) ||
      !str_prop(env, e, "fstype", is_root ? "container.rootMount.fstype" : "container.mounts[].fstype", true, &m->fstype) ||
      !str_prop(env, e, "data", is_root ? "container.rootMount.data" : "container.mounts[].data", true, &m->data) ||
      !num_prop(env, e, "flags", is_root ? "container.rootMount.flags" : "container.mounts[].flags", 0, UINT32_MAX, &flags))
    return false;
  m->flags = (unsigned long)flags;
  if (is_root) return true;
  if (!path_prop(env, e, "target", "container.mounts[].target", false, &m->target) ||
      !str_prop(env, e, "mkdir", "container.mounts[].mkdir", true, &mk))
    return free(mk), false;
  m->mkdir = !mk ? MK_NONE : strcmp(mk, "dir") == 0 ? MK_DIR : strcmp(mk, "file") == 0 ? MK_FILE : -1;
  if (m->mkdir < 0) {
    char got[80];
    snprintf(got, sizeof got, "\"%.64s\"", mk);
    free(mk);
    return bad_value(env, "spawn", "container.mounts[].mkdir", "'dir', 'file' or null", got);
  }
  free(mk);
  return true;
}

static bool parse_device(napi_env env, napi_value e, ct_device *d) {
  char *type = NULL;
  int64_t major, minor, mode;
  if (!is_object(env, e, "container.devices[]") ||
      !path_prop(env, e, "path", "container.devices[].path", false, &d->path) ||
      !str_prop(env, e, "type", "container.devices[].type", false, &type) ||
      !num_prop(env, e, "major", "container.devices[].major", 0, 0xfffff, &major) ||
      !num_prop(env, e, "minor", "container.devices[].minor", 0, 0xfffff, &minor) ||
      !num_prop(env, e, "mode", "container.devices[].mode", 0, 07777, &mode))
    return free(type), false;
  bool chr = strcmp(type, "c") == 0, blk = strcmp(type, "b") == 0;
  free(type);
  if (!chr && !blk) return bad_value(env, "spawn", "container.devices[].type", "'c' or 'b'", "another string");
  d->mode = (mode_t)mode | (chr ? S_IFCHR : S_IFBLK);
  d->dev = makedev((unsigned)major, (unsigned)minor);
  return true;
}

static bool parse_symlink(napi_env env, napi_value e, ct_symlink *s) {
  return is_object(env, e, "container.symlinks[]") &&
         path_prop(env, e, "path", "container.symlinks[].path", false, &s->path) &&
         str_prop(env, e, "target", "container.symlinks[].target", false, &s->target);
}

/* An optional array of objects, each converted by `one` into elements of `size` bytes. */
static bool parse_list(napi_env env, napi_value obj, const char *key, const char *what, size_t size,
                       void **out, size_t *n, bool (*one)(napi_env, napi_value, void *)) {
  napi_value v;
  bool has;
  uint32_t len = 0;
  if (!get_prop(env, obj, key, &v, &has)) return false;
  if (!has) return true;
  if (!get_array(env, v, what, "an array of objects", &len)) return false;
  if (!(*out = calloc(len + 1, size))) return no_memory(env);
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    /* Counted before the conversion, so that free_container frees a partial element too. */
    if (napi_get_element(env, v, i, &e) != napi_ok || (++*n, !one(env, e, (char *)*out + i * size))) return false;
  }
  return true;
}

static bool one_mount(napi_env env, napi_value e, void *p) { return parse_mount(env, e, p, false); }
static bool one_device(napi_env env, napi_value e, void *p) { return parse_device(env, e, p); }
static bool one_symlink(napi_env env, napi_value e, void *p) { return parse_symlink(env, e, p); }

/* An optional array of absolute paths. */
static bool path_list(napi_env env, napi_value obj, const char *key, const char *what, char ***out, size_t *n) {
  napi_value v;
  bool has;
  if (!get_prop(env, obj, key, &v, &has)) return false;
  if (!has) return true;
  if (!get_strv(env, v, what, out)) return false;
  for (*n = 0; (*out)[*n]; ++*n)
    if (!abs_path(env, what, (*out)[*n])) return false;
  return true;
}

bool parse_container(napi_env env, napi_value v, container_opts *c) {
  c->netns_fd = -1;
  napi_value rm;
  bool has;
  if (!is_object(env, v, "container") ||
      !str_prop(env, v, "root", "container.root", false, &c->root) ||
      !abs_path(env, "container.root", c->root) ||
      !get_prop(env, v, "rootMount", &rm, &has) || !parse_mount(env, rm, &c->root_mount, true) ||
      !bool_prop(env, v, "readOnly", "container.readOnly", &c->read_only) ||
      !bool_prop(env, v, "newNetwork", "container.newNetwork", &c->new_net) ||
      !str_prop(env, v, "netns", "container.netns", true, &c->netns) ||
      !str_prop(env, v, "hostname", "container.hostname", true, &c->hostname) ||
      !parse_list(env, v, "mounts", "container.mounts", sizeof(ct_mount), (void **)&c->mounts, &c->nmounts, one_mount) ||
      !parse_list(env, v, "devices", "container.devices", sizeof(ct_device), (void **)&c->devices, &c->ndevices, one_device) ||
      !parse_list(env, v, "symlinks", "container.symlinks", sizeof(ct_symlink), (void **)&c->symlinks, &c->nsymlinks, one_symlink) ||
      !path_list(env, v, "maskedPaths", "container.maskedPaths", &c->masked, &c->nmasked) ||
      !path_list(env, v, "readonlyPaths", "container.readonlyPaths", &c->readonly, &c->nreadonly))
    return false;
  napi_value un;
  if (!get_prop(env, v, "userns", &un, &has)) return false;
  if (has) {
    if (!is_object(env, un, "container.userns") ||
        !str_prop(env, un, "uidMap", "container.userns.uidMap", false, &c->uid_map) ||
        !str_prop(env, un, "gidMap", "container.userns.gidMap", false, &c->gid_map))
      return false;
    /* The kernel takes a map in one write of at most a page, 340 lines of "inside outside count". */
    if (!*c->uid_map || !*c->gid_map || strlen(c->uid_map) >= 4096 || strlen(c->gid_map) >= 4096)
      return bad_value(env, "spawn", "container.userns", "uidMap and gidMap of 1 to 4095 bytes", "an empty or longer map");
  }
  if (c->new_net && c->netns) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "spawn: container.newNetwork and container.netns exclude each other");
    return false;
  }
  if (c->hostname && strlen(c->hostname) > 64)
    return bad_value(env, "spawn", "container.hostname", "at most 64 bytes", "a longer name");
  c->clone_flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (c->new_net ? CLONE_NEWNET : 0);
  /* Opened here, so a bad path fails before any child exists; setns() in the child. */
  if (c->netns && (c->netns_fd = open(c->netns, O_RDONLY | O_CLOEXEC)) < 0) {
    throw_sys(env, errno, "open", c->netns, NULL, "%s", c->netns);
    return false;
  }
  return true;
}

/* ------------------------------------------------------------- `join` */

void free_join(join_opts *j) {
  free(j->start_time);
  for (size_t i = 0; i < JOIN_MAX; i++)
    if (j->ns_fd[i] >= 0) close(j->ns_fd[i]);
  if (j->root_fd >= 0) close(j->root_fd);
}

bool parse_join(napi_env env, napi_value v, join_opts *j) {
  for (size_t i = 0; i < JOIN_MAX; i++) j->ns_fd[i] = -1;
  j->root_fd = -1;
  napi_value ns;
  bool has;
  int64_t pid;
  char **names = NULL;
  if (!is_object(env, v, "join") ||
      !num_prop(env, v, "pid", "join.pid", 1, INT32_MAX, &pid) ||
      !str_prop(env, v, "startTime", "join.startTime", true, &j->start_time) ||
      !get_prop(env, v, "namespaces", &ns, &has) || !get_strv(env, ns, "join.namespaces", &names))
    return free_strv(names), false;
  j->pid = (pid_t)pid;
  bool want[JOIN_MAX] = {false};
  for (char **n = names; *n; n++) {
    size_t k = 0;
    while (k < JOIN_MAX && strcmp(*n, JOIN_NS[k].name) != 0) k++;
    if (k == JOIN_MAX || want[k]) {
      char got[96];
      snprintf(got, sizeof got, "\"%.64s\"%s", *n, k < JOIN_MAX ? " twice" : "");
      free_strv(names);
      return bad_value(env, "spawn", "join.namespaces[]", "one of mnt, uts, ipc, net, pid, cgroup, user (each once)", got);
    }
    want[k] = true;
  }
  free_strv(names);
  for (size_t k = 0; k < JOIN_MAX; k++) {
    if (!want[k]) continue;
    j->ns_type[j->nns] = JOIN_NS[k].type;
    j->ns_name[j->nns++] = JOIN_NS[k].name;
  }
  return true;
}

/* Field 22 of /proc/PID/stat into out (NUL-terminated); false when unreadable. */
static bool start_time_of(pid_t pid, char *out, size_t n) {
  char path[48], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t len;
  do len = read(fd, buf, sizeof buf - 1);
  while (len < 0 && errno == EINTR);
  close(fd);
  if (len <= 0) return false;
  buf[len] = '\0';
  /* The command name (field 2) is in parentheses and may hold spaces: count from after it. */
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ') return false;
  p += 2;
  for (int field = 3; field < 22 && p; field++) if ((p = strchr(p, ' '))) p++;
  if (!p) return false;
  size_t k = strcspn(p, " \n");
  if (k == 0 || k >= n) return false;
  memcpy(out, p, k);
  out[k] = '\0';
  return true;
}

bool join_open(napi_env env, join_opts *j) {
  char path[64];
  bool mnt = false;
  for (size_t i = 0; i < j->nns; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)j->pid, j->ns_name[i]);
    if ((j->ns_fd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
      throw_sys(env, errno, "open", path, NULL, "%s", path);
      return false;
    }
    mnt |= j->ns_type[i] == CLONE_NEWNS;
  }
  if (mnt) {
    snprintf(path, sizeof path, "/proc/%d/root", (int)j->pid);
    if ((j->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
      throw_sys(env, errno, "open", path, NULL, "%s, O_PATH", path);
      return false;
    }
  }
  if (!j->start_time) return true;
  /* After the opens: the process was there before them (the caller saw its start time) and is
   * still there now, so the pid did not change hands in between. */
  char now[32];
  if (start_time_of(j->pid, now, sizeof now) && strcmp(now, j->start_time) == 0) return true;
  snprintf(path, sizeof path, "/proc/%d", (int)j->pid);
  throw_sys(env, ESRCH, "open", path, NULL, "%s: the process that started at %s is gone", path, j->start_time);
  return false;
}

/* ------------------------------------------------------------ the child */

/* "/proc/self/fd/N" into buf (at least 32 bytes), without snprintf. */
void fd_path(char *buf, int fd) {
  static const char prefix[] = "/proc/self/fd/";
  char digits[12];
  int n = 0;
  memcpy(buf, prefix, sizeof prefix - 1);
  do digits[n++] = (char)('0' + fd % 10); while ((fd /= 10) > 0);
  char *p = buf + sizeof prefix - 1;
  while (n) *p++ = digits[--n];
  *p = '\0';
}

/* openat2 below rootfd as if it were "/": ".." and absolute symlinks stay inside it. */
static int open_in(int rootfd, const char *path, int flags, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags;
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* An O_PATH fd of `path` inside the root, creating what is missing (mkdir -p, and the last
 * component as a directory or an empty file per `kind`); -1 with errno and *op on failure. */
int open_in_root(int rootfd, const char *path, int kind, int *op) {
  *op = OP_OPEN;
  int fd = open_in(rootfd, path, O_PATH | O_CLOEXEC, 0);
  if (fd >= 0 || errno != ENOENT || kind == MK_NONE) return fd;
  char buf[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof buf) return errno = ENAMETOOLONG, -1;
  memcpy(buf, path, len + 1);
  int parent = open_in(rootfd, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (parent < 0) return -1;
  for (size_t i = 0;;) {
    while (buf[i] == '/') i++;
    if (!buf[i]) return parent;
    size_t start = i, end;
    while (buf[i] && buf[i] != '/') i++;
    for (end = i; buf[end] == '/'; end++) {}
    bool last = !buf[end];
    char saved = buf[i];
    buf[i] = '\0';
    /* Each prefix is resolved from the root again, so a symlink met on the way resolves
     * inside the root too; only a plain name is ever created, in an already resolved parent. */
    int next = open_in(rootfd, buf, O_PATH | O_CLOEXEC, 0);
    if (next < 0 && errno == ENOENT) {
      int r;
      if (last && kind == MK_FILE) {
        *op = OP_CREATE;
        if ((r = openat(parent, buf + start, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) >= 0) close(r);
      } else {
        *op = OP_MKDIR;
        r = mkdirat(parent, buf + start, 0755);
      }
      if (r < 0 && errno != EEXIST) {
        int e = errno;
        close(parent);
        return errno = e, -1;
      }
      *op = OP_OPEN;
      next = open_in(rootfd, buf, O_PATH | O_CLOEXEC, 0);
    }
    int e = errno;
    close(parent);
    if (next < 0) return errno = e, -1;
    parent = next;
    buf[i] = saved;
  }
}

/* The per-mount flags statfs reports, as MS_* flags for a bind remount that keeps them. */
static unsigned long kept_flags(unsigned long f) {
  unsigned long m = 0;
  if (f & ST_NOSUID) m |= MS_NOSUID;
  if (f & ST_NODEV) m |= MS_NODEV;
  if (f & ST_NOEXEC) m |= MS_NOEXEC;
  if (f & ST_NOATIME) m |= MS_NOATIME;
  if (f & ST_NODIRATIME) m |= MS_NODIRATIME;
  if (f & ST_RELATIME) m |= MS_RELATIME;
  return m;
}

/* Adds `extra` (MS_RDONLY, ...) to the mount at fd's path: a bind ignores them on creation. */
int remount_fd(int fd, unsigned long extra) {
  struct statfs st;
  char p[32];
  fd_path(p, fd);
  if (fstatfs(fd, &st) < 0) return -1;
  return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | extra | kept_flags((unsigned long)st.f_flags), NULL);
}

static int remount_path(const char *path, unsigned long extra) {
  struct statfs st;
  if (statfs(path, &st) < 0) return -1;
  return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | extra | kept_flags((unsigned long)st.f_flags), NULL);
}

#define BIND_EXTRA (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

static void mount_one(const container_opts *c, int errfd, int rootfd, size_t i) {
  const ct_mount *m = &c->mounts[i];
  int op, fd = open_in_root(rootfd, m->target, m->mkdir, &op);
  if (fd < 0) child_fail(errfd, CT_PATH_MOUNT, errno, (int)i | op << 24);
  char p[32];
  fd_path(p, fd);
  if (mount(m->source, p, m->fstype, m->flags, m->data) < 0) child_fail(errfd, CT_MOUNT, errno, (int)i);
  close(fd);
  if (!(m->flags & MS_BIND) || !(m->flags & BIND_EXTRA)) return;
  /* Opened again: the fd above is the covered directory, not the new mount. */
  if ((fd = open_in_root(rootfd, m->target, MK_NONE, &op)) < 0) child_fail(errfd, CT_PATH_MOUNT, errno, (int)i | op << 24);
  if (remount_fd(fd, m->flags & BIND_EXTRA) < 0) child_fail(errfd, CT_REMOUNT, errno, (int)i);
  close(fd);
}

/* The resolved parent directory of `path` (created if missing) and the last component. */
static int open_parent(int rootfd, const char *path, const char **name, int *op) {
  char dir[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof dir) return *op = OP_OPEN, errno = ENAMETOOLONG, -1;
  const char *slash = strrchr(path, '/');
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  memcpy(dir, path, n);
  dir[n] = '\0';
  *name = slash + 1;
  return open_in_root(rootfd, dir, MK_DIR, op);
}

static void make_nodes(const container_opts *c, int errfd, int rootfd) {
  const char *name;
  int op, fd;
  for (size_t i = 0; i < c->ndevices; i++) {
    const ct_device *d = &c->devices[i];
    if ((fd = open_parent(rootfd, d->path, &name, &op)) < 0) child_fail(errfd, CT_PATH_DEVICE, errno, (int)i | op << 24);
    if (mknodat(fd, name, d->mode, d->dev) < 0) child_fail(errfd, CT_MKNOD, errno, (int)i);
    close(fd);
  }
  for (size_t i = 0; i < c->nsymlinks; i++) {
    const ct_symlink *s = &c->symlinks[i];
    if ((fd = open_parent(rootfd, s->path, &name, &op)) < 0) child_fail(errfd, CT_PATH_SYMLINK, errno, (int)i | op << 24);
    if (symlinkat(s->target, fd, name) < 0) child_fail(errfd, CT_SYMLINK, errno, (int)i);
    close(fd);
  }
}

/* `ip link set lo up` in the new network namespace, as Docker's --network none has it. */
static void lo_up(int errfd) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) child_fail(errfd, CT_LO, errno, 0);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) child_fail(errfd, CT_LO, errno, 1);
  close(s);
}

/* runc's pivot_root(".", "."): the old root ends up stacked on the new one at "/", and the
 * detaching unmount of "." removes it; no directory for the old root is needed. */
static void pivot(int errfd, int rootfd) {
  if (fchdir(rootfd) < 0) child_fail(errfd, CT_PIVOT_CHDIR, errno, 0);
  if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(errfd, CT_PIVOT, errno, 0);
  if (umount2(".", MNT_DETACH) < 0) child_fail(errfd, CT_UMOUNT_OLD, errno, 0);
  if (chdir("/") < 0) child_fail(errfd, CT_CHDIR_ROOT, errno, 0);
}

/* Docker's masked paths (a file gets /dev/null, a directory an empty read-only tmpfs) and
 * read-only paths (bound onto themselves, remounted read-only); missing ones are skipped. */
static void mask_paths(const container_opts *c, int errfd) {
  for (size_t i = 0; i < c->nmasked; i++) {
    const char *p = c->masked[i];
    struct stat st;
    if (stat(p, &st) < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      child_fail(errfd, CT_MASK, errno, (int)i);
    }
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
                                : mount("/dev/null", p, NULL, MS_BIND, NULL);
    if (r < 0) child_fail(errfd, CT_MASK, errno, (int)i);
  }
  for (size_t i = 0; i < c->nreadonly; i++) {
    const char *p = c->readonly[i];
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      child_fail(errfd, CT_RO_PATH, errno, (int)i);
    }
    if (remount_path(p, MS_RDONLY) < 0) child_fail(errfd, CT_RO_PATH, errno, (int)i);
  }
}

void container_enter(const spawn_opts *o, int errfd) {
  if (unshare(CLONE_NEWCGROUP) < 0) child_fail(errfd, CT_UNSHARE_CGROUP, errno, 0);
  if (o->ct->netns_fd >= 0 && setns(o->ct->netns_fd, CLONE_NEWNET) < 0) child_fail(errfd, CT_SETNS, errno, 0);
}

/* The last step of the setup, once everything that needs the host's root is done: a user
 * namespace of our own, mapped by the parent (which alone may map ids other than our own), and
 * its root as our ids. The mounts, pid and network namespaces stay the host root's, so the
 * capabilities we keep work only on what this namespace owns. */
static void enter_userns(int errfd) {
  if (unshare(CLONE_NEWUSER) < 0) child_fail(errfd, CT_USERNS, errno, 0);
  child_report ready = {CT_USERNS_READY, 0, 0};
  if (write(errfd, &ready, sizeof ready) != (ssize_t)sizeof ready) _exit(127);
  char go;
  ssize_t n;
  while ((n = read(errfd, &go, 1)) < 0 && errno == EINTR) {}
  if (n != 1) _exit(127); /* the parent could not map us, and says why */
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) child_fail(errfd, CT_USERNS_ROOT, errno, 0);
}

void container_setup(const spawn_opts *o, int errfd) {
  const container_opts *c = o->ct;
  /* Device modes and mount points exactly as given; the caller's umask comes back at the end. */
  mode_t old_umask = umask(0);
  /* Nothing mounted from here on may propagate back to the host's mount namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail(errfd, CT_PRIVATE, errno, 0);
  const ct_mount *r = &c->root_mount;
  if (mount(r->source, c->root, r->fstype, r->flags, r->data) < 0) child_fail(errfd, CT_MOUNT_ROOT, errno, 0);
  int rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) child_fail(errfd, CT_OPEN_ROOT, errno, 0);
  for (size_t i = 0; i < c->nmounts; i++) mount_one(c, errfd, rootfd, i);
  make_nodes(c, errfd, rootfd);
  if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) child_fail(errfd, CT_HOSTNAME, errno, 0);
  if (c->new_net) lo_up(errfd);
  pivot(errfd, rootfd);
  close(rootfd);
  mask_paths(c, errfd);
  if (c->read_only && remount_path("/", MS_RDONLY) < 0) child_fail(errfd, CT_RO_ROOT, errno, 0);
  umask(old_umask);
  if (c->uid_map) enter_userns(errfd);
}

bool container_map_user(napi_env env, const container_opts *c, pid_t pid) {
  const char *maps[2] = {c->uid_map, c->gid_map}, *names[2] = {"uid_map", "gid_map"};
  for (int i = 0; i < 2; i++) {
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, names[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(maps[i]);
    ssize_t n = fd < 0 ? -1 : write(fd, maps[i], len);
    int err = errno;
    if (fd >= 0) close(fd);
    if (n == (ssize_t)len) continue;
    throw_sys(env, n < 0 ? err : EIO, fd < 0 ? "open" : "write", path, NULL, "%s: %s", path, maps[i]);
    return false;
  }
  return true;
}

/* The grandchild, for the intermediate child's signal handler; and the intermediate's own pid,
 * for the grandchild's check that its parent is still there. */
static volatile pid_t join_child;
static pid_t join_parent;

static void forward_signal(int sig) {
  int e = errno;
  kill(join_child, sig);
  errno = e;
}

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP};

/* The intermediate child: holds no fd (the pipe's EOF must come from the grandchild's execve;
 * our stdio must not stay open in a process that runs nothing), waits, ends as the grandchild. */
static void __attribute__((noreturn)) supervise(const spawn_opts *o) {
  if (syscall(SYS_close_range, 0, ~0U, 0) < 0)
    for (unsigned fd = 0; fd < o->max_fd; fd++) close((int)fd);
  /* Its own process group: a terminal's ^C reaches the program once, through whoever
   * forwards signals to us (keel exec does), not also directly. */
  setpgid(0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++) sigaction(FORWARDED[i], &sa, NULL);
  /* Blocked since before our fork: what arrived meanwhile is forwarded now. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int status;
  pid_t r;
  while ((r = waitpid(join_child, &status, 0)) < 0 && errno == EINTR) {}
  if (r < 0) _exit(127);
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  /* Die of the same signal, without a core dump of this copy of the caller. */
  struct rlimit none_core = {0, 0};
  setrlimit(RLIMIT_CORE, &none_core);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++)
    if (FORWARDED[i] == sig) sigaction(sig, &sa, NULL);
  kill(getpid(), sig);
  _exit(128 + sig);
}

void join_enter(const spawn_opts *o, int errfd) {
  const join_opts *j = o->join;
  for (size_t i = 0; i < j->nns; i++)
    if (setns(j->ns_fd[i], j->ns_type[i]) < 0) child_fail(errfd, CT_JOIN_SETNS, errno, (int)i);
  /* setns(mnt) leaves us at the namespace's root mount, which need not be the process's root:
   * take exactly its root, so that cwd and the PATH search resolve inside the container. */
  if (j->root_fd >= 0) {
    if (fchdir(j->root_fd) < 0) child_fail(errfd, CT_JOIN_ROOT, errno, 0);
    if (chroot(".") < 0) child_fail(errfd, CT_JOIN_ROOT, errno, 1);
  }
  join_parent = getpid();
  /* A raw clone, fork-like: no atfork handlers run in this copy of a threaded process. */
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0UL);
  if (pid < 0) child_fail(errfd, CT_JOIN_FORK, errno, 0);
  if (pid == 0) return;
  join_child = pid;
  supervise(o);
}

void join_finish(const spawn_opts *o, int errfd) {
  (void)o;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_fail(errfd, CT_JOIN_PDEATHSIG, errno, 0);
  /* The intermediate child may have died before that: we would have been re-parented (to the
   * namespace's init, or a subreaper). Outside our pid namespace it reads as ppid 0. */
  pid_t pp = getppid();
  if (pp != 0 && pp != join_parent) child_fail(errfd, CT_JOIN_PDEATHSIG, ESRCH, 1);
}

/* ------------------------------------------------------------ the parent */

const char *op_syscall(int op) {
  return op == OP_MKDIR ? "mkdirat" : op == OP_CREATE ? "openat" : "openat2";
}

static const char *nn(const char *s) { return s ? s : "none"; }

/* Throws a "SYSCALL(ROOT/PATH)"-shaped error, the path as the host sees it before pivot_root. */
static void throw_in_root(napi_env env, int err, const char *syscall, const char *root, const char *path, const char *what) {
  char *full = NULL;
  if (asprintf(&full, "%s%s", root, path) < 0) full = NULL;
  throw_sys(env, err, syscall, full ? full : path, NULL, "%s%s", full ? full : path, what);
  free(full);
}

/* The `join` steps' errors, paths as the parent sees them. */
static bool join_throw(napi_env env, const join_opts *j, const child_report *rep) {
  int e = rep->err, a = rep->arg;
  char path[64];
  switch (rep->step) {
  case CT_DUMPABLE: throw_sys(env, e, "prctl", NULL, NULL, "PR_SET_DUMPABLE, 0"); break;
  case CT_JOIN_SETNS: {
    if (a < 0 || (size_t)a >= j->nns) return false;
    size_t k = 0;
    while (k < JOIN_MAX && JOIN_NS[k].type != j->ns_type[a]) k++;
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)j->pid, j->ns_name[a]);
    throw_sys(env, e, "setns", path, NULL, "%s, %s", path, k < JOIN_MAX ? JOIN_NS[k].flag : "?");
    break;
  }
  case CT_JOIN_ROOT:
    snprintf(path, sizeof path, "/proc/%d/root", (int)j->pid);
    throw_sys(env, e, a ? "chroot" : "fchdir", path, NULL, "%s", path);
    break;
  case CT_JOIN_FORK:
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)j->pid);
    throw_sys(env, e, "clone", path, NULL, "SIGCHLD, into the namespaces of %s", path);
    break;
  case CT_JOIN_PDEATHSIG:
    if (a) throw_sys(env, e, "getppid", NULL, NULL, "the intermediate child is gone");
    else throw_sys(env, e, "prctl", NULL, NULL, "PR_SET_PDEATHSIG, SIGKILL");
    break;
  default: return false;
  }
  return true;
}

bool container_throw(napi_env env, const spawn_opts *o, const child_report *rep) {
  const container_opts *c = o->ct;
  int e = rep->err, a = rep->arg & 0xffffff, op = rep->arg >> 24;
  if (rep->step < CT_FIRST) return false;
  if (o->join) return join_throw(env, o->join, rep);
  if (!c) return false;
  switch (rep->step) {
  case CT_DUMPABLE: throw_sys(env, e, "prctl", NULL, NULL, "PR_SET_DUMPABLE, 0"); break;
  case CT_UNSHARE_CGROUP: throw_sys(env, e, "unshare", NULL, NULL, "CLONE_NEWCGROUP"); break;
  case CT_SETNS: throw_sys(env, e, "setns", c->netns, NULL, "%s, CLONE_NEWNET", c->netns); break;
  case CT_PRIVATE: throw_sys(env, e, "mount", "/", NULL, "none, /, MS_REC|MS_PRIVATE"); break;
  case CT_MOUNT_ROOT:
    throw_sys(env, e, "mount", c->root, NULL, "%s, %s, %s", nn(c->root_mount.source), c->root, nn(c->root_mount.fstype));
    break;
  case CT_OPEN_ROOT: throw_sys(env, e, "open", c->root, NULL, "%s, O_PATH", c->root); break;
  case CT_PATH_MOUNT: throw_in_root(env, e, op_syscall(op), c->root, c->mounts[a].target, ""); break;
  case CT_MOUNT: {
    const ct_mount *m = &c->mounts[a];
    char *full = NULL;
    if (asprintf(&full, "%s%s", c->root, m->target) < 0) full = NULL;
    throw_sys(env, e, "mount", full ? full : m->target, NULL, "%s, %s, %s", nn(m->source), full ? full : m->target, nn(m->fstype));
    free(full);
    break;
  }
  case CT_REMOUNT: throw_in_root(env, e, "mount", c->root, c->mounts[a].target, ", MS_REMOUNT|MS_BIND"); break;
  case CT_PATH_DEVICE: throw_in_root(env, e, op_syscall(op), c->root, c->devices[a].path, " (parent directory)"); break;
  case CT_MKNOD: throw_in_root(env, e, "mknod", c->root, c->devices[a].path, ""); break;
  case CT_PATH_SYMLINK: throw_in_root(env, e, op_syscall(op), c->root, c->symlinks[a].path, " (parent directory)"); break;
  case CT_SYMLINK: throw_in_root(env, e, "symlink", c->root, c->symlinks[a].path, ""); break;
  case CT_HOSTNAME: throw_sys(env, e, "sethostname", NULL, NULL, "%s", c->hostname); break;
  case CT_LO: throw_sys(env, e, "ioctl", NULL, NULL, "%s, lo", a ? "SIOCSIFFLAGS" : "SIOCGIFFLAGS"); break;
  case CT_PIVOT_CHDIR: throw_sys(env, e, "chdir", c->root, NULL, "%s", c->root); break;
  case CT_PIVOT: throw_sys(env, e, "pivot_root", c->root, NULL, "., . in %s", c->root); break;
  case CT_UMOUNT_OLD: throw_sys(env, e, "umount2", NULL, NULL, "., MNT_DETACH (the old root)"); break;
  case CT_CHDIR_ROOT: throw_sys(env, e, "chdir", "/", NULL, "/"); break;
  case CT_MASK: throw_sys(env, e, "mount", c->masked[a], NULL, "(mask) %s", c->masked[a]); break;
  case CT_RO_PATH: throw_sys(env, e, "mount", c->readonly[a], NULL, "%s, %s, MS_BIND|MS_RDONLY", c->readonly[a], c->readonly[a]); break;
  case CT_RO_ROOT: throw_sys(env, e, "mount", "/", NULL, "none, /, MS_REMOUNT|MS_BIND|MS_RDONLY"); break;
  case CT_USERNS: throw_sys(env, e, "unshare", NULL, NULL, "CLONE_NEWUSER"); break;
  case CT_USERNS_ROOT: throw_sys(env, e, "setresuid", NULL, NULL, "0, 0, 0 (in the user namespace)"); break;
  default: return false;
  }
  return true;
}
