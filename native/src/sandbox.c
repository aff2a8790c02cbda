/* sandbox.c: spawn()'s `sandbox` option. The forked child gets its own mount namespace, as
 * systemd's services with PrivateTmp= and the like do (namespace.c): unshare(CLONE_NEWNS), then
 * MS_SLAVE|MS_REC on /, so that mounts made later on the host still reach the service while
 * nothing the service mounts reaches the host; then the planned operations, in order. Only
 * async-signal-safe calls here (no malloc, no stdio): the child of a threaded process.
 *
 * Why clone trees first: a bind mount copies its source's mount flags, so once / is read-only
 * (ProtectSystem=strict) a bind of a writable path would be read-only too. open_tree(2) takes a
 * detached copy of a tree as it was (ReadWritePaths=, PrivateTmp='s directories, the device
 * nodes of PrivateDevices=) and move_mount(2) attaches it later, flags unchanged. */
#include "sandbox.h"
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428 /* same number on every architecture */
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* ------------------------------------------------------------- parsing */

static const char *OPS[] = {"clone", "readonly", "attach", "mount", "mask", "symlink"};
#define NOPS (sizeof OPS / sizeof *OPS)

void free_sandbox(sandbox_opts *s) {
  for (size_t i = 0; i < s->nops; i++) {
    sb_op *op = &s->ops[i];
    free(op->source), free(op->target), free(op->fstype), free(op->data);
  }
  free(s->ops), free(s->slots);
}

static bool prop_str(napi_env env, napi_value obj, const char *key, const char *what, bool nullable, char **out) {
  napi_value v;
  bool has;
  if (!get_prop(env, obj, key, &v, &has)) return false;
  if (!has && nullable) return *out = NULL, true;
  return get_str(env, v, "spawn", what, nullable, out);
}

static bool prop_path(napi_env env, napi_value obj, const char *key, const char *what, char **out) {
  if (!prop_str(env, obj, key, what, false, out)) return false;
  if ((*out)[0] == '/') return true;
  char got[96];
  snprintf(got, sizeof got, "\"%.80s\"", *out);
  return bad_value(env, "spawn", what, "an absolute path", got);
}

static bool prop_int(napi_env env, napi_value obj, const char *key, const char *what, int64_t min, int64_t max,
                     int64_t *out) {
  napi_value v;
  bool has;
  if (!get_prop(env, obj, key, &v, &has)) return false;
  if (!has) return *out = 0, true;
  return get_int_in(env, v, "spawn", what, min, max, out);
}

static bool parse_op(napi_env env, napi_value e, sb_op *op, size_t *nslots) {
  napi_value v;
  bool has;
  char *name = NULL, *mk = NULL;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, e, &t);
  if (t != napi_object) return bad_arg(env, "spawn", "sandbox[]", "an object", e);
  if (!prop_str(env, e, "op", "sandbox[].op", false, &name)) return free(name), false;
  size_t k = 0;
  while (k < NOPS && strcmp(name, OPS[k]) != 0) k++;
  if (k == NOPS) {
    char got[80];
    snprintf(got, sizeof got, "\"%.64s\"", name);
    free(name);
    return bad_value(env, "spawn", "sandbox[].op", "one of clone, readonly, attach, mount, mask, symlink", got);
  }
  free(name);
  op->op = (int)k;
  int64_t flags, slot;
  if (!prop_path(env, e, op->op == SB_OP_CLONE ? "path" : "target", "sandbox[].target", &op->target) ||
      !prop_str(env, e, "source", "sandbox[].source", true, &op->source) ||
      !prop_str(env, e, "fstype", "sandbox[].fstype", true, &op->fstype) ||
      !prop_str(env, e, "data", "sandbox[].data", true, &op->data) ||
      !prop_int(env, e, "flags", "sandbox[].flags", 0, UINT32_MAX, &flags) ||
      !prop_int(env, e, "slot", "sandbox[].slot", 0, 4095, &slot) ||
      !get_prop(env, e, "optional", &v, &has))
    return false;
  if (has && napi_get_value_bool(env, v, &op->optional) != napi_ok)
    return bad_arg(env, "spawn", "sandbox[].optional", "a boolean", v);
  op->flags = (unsigned long)flags, op->slot = (int)slot;
  if (op->slot + 1 > (int)*nslots) *nslots = (size_t)op->slot + 1;
  if ((op->op == SB_OP_SYMLINK || op->op == SB_OP_MASK) && !op->source)
    return bad_value(env, "spawn", "sandbox[].source", "a string for a symlink or mask", "null");
  if (!prop_str(env, e, "mkdir", "sandbox[].mkdir", true, &mk)) return free(mk), false;
  op->mkdir = !mk ? MK_NONE : strcmp(mk, "dir") == 0 ? MK_DIR : strcmp(mk, "file") == 0 ? MK_FILE : -1;
  free(mk);
  if (op->mkdir < 0) return bad_value(env, "spawn", "sandbox[].mkdir", "'dir', 'file' or null", "another string");
  return true;
}

bool parse_sandbox(napi_env env, napi_value v, sandbox_opts *s) {
  uint32_t n = 0;
  if (!get_array(env, v, "sandbox", "an array of mount operations", &n)) return false;
  if (!(s->ops = calloc(n + 1, sizeof *s->ops))) return no_memory(env);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    /* Counted first, so that free_sandbox frees a partly converted element too. */
    if (napi_get_element(env, v, i, &e) != napi_ok || (++s->nops, !parse_op(env, e, &s->ops[i], &s->nslots)))
      return false;
  }
  if (!(s->slots = malloc((s->nslots + 1) * sizeof *s->slots))) return no_memory(env);
  for (size_t i = 0; i <= s->nslots; i++) s->slots[i] = -1;
  return true;
}

/* ------------------------------------------------------------ the child */

static bool missing(int err) { return err == ENOENT || err == ENOTDIR; }

/* A bind of the tree at `path` onto itself (unless it is /, already a mount of its own in this
 * namespace, and one whose copy the process's root would not see), then read-only throughout. */
static void make_readonly(const sb_op *op, int errfd, int i) {
  bool root = strcmp(op->target, "/") == 0;
  if (!root && mount(op->target, op->target, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (op->optional && missing(errno)) return;
    child_fail(errfd, SB_BIND, errno, i);
  }
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (syscall(SYS_mount_setattr, AT_FDCWD, op->target, AT_RECURSIVE, &attr, sizeof attr) < 0)
    child_fail(errfd, SB_SETATTR, errno, i);
}

/* The mount point, as an O_PATH fd; -1 when it is missing and the op is optional. */
static int mount_point(const sb_op *op, int errfd, int rootfd, int i) {
  int kind;
  int fd = open_in_root(rootfd, op->target, op->mkdir, &kind);
  if (fd >= 0) return fd;
  if (op->optional && missing(errno)) return -1;
  child_fail(errfd, SB_PATH, errno, i | kind << 24);
}

static void do_mount(const sb_op *op, int errfd, int rootfd, int i) {
  int fd = mount_point(op, errfd, rootfd, i);
  if (fd < 0) return;
  char p[32];
  fd_path(p, fd);
  if (mount(op->source, p, op->fstype, op->flags, op->data) < 0) child_fail(errfd, SB_MOUNT, errno, i);
  close(fd);
  unsigned long extra = op->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (!(op->flags & MS_BIND) || !extra) return;
  /* Opened again: the fd above is the covered directory, not the new mount. */
  int k;
  if ((fd = open_in_root(rootfd, op->target, MK_NONE, &k)) < 0) child_fail(errfd, SB_PATH, errno, i | k << 24);
  if (remount_fd(fd, extra) < 0) child_fail(errfd, SB_REMOUNT, errno, i);
  close(fd);
}

/* InaccessiblePaths=: an empty read-only tmpfs of mode 000 over a directory, `source` (an empty
 * file of mode 000) bound read-only over anything else, as systemd's inaccessible nodes. */
static void mask(const sb_op *op, int errfd, int rootfd, int i) {
  struct stat st;
  if (stat(op->target, &st) < 0) {
    if (op->optional && missing(errno)) return;
    child_fail(errfd, SB_STAT, errno, i);
  }
  sb_op m = *op;
  m.optional = false, m.mkdir = MK_NONE;
  if (S_ISDIR(st.st_mode)) {
    m.source = "tmpfs", m.fstype = "tmpfs", m.data = "mode=000";
    m.flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  } else {
    m.fstype = NULL, m.data = NULL, m.flags = MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  }
  do_mount(&m, errfd, rootfd, i);
}

void sandbox_setup(const spawn_opts *o, int errfd) {
  const sandbox_opts *s = o->sb;
  /* Mount points exactly as planned (tmpfs modes come in their data); the umask comes back after. */
  mode_t old_umask = umask(0);
  if (unshare(CLONE_NEWNS) < 0) child_fail(errfd, SB_UNSHARE, errno, 0);
  /* Slave, not private: the host's later mounts (a USB stick, a new /run/user/N) still show. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) child_fail(errfd, SB_SLAVE, errno, 0);
  int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) child_fail(errfd, SB_ROOT, errno, 0);
  for (size_t n = 0; n < s->nops; n++) {
    const sb_op *op = &s->ops[n];
    int i = (int)n, fd;
    switch (op->op) {
    case SB_OP_CLONE:
      fd = (int)syscall(SYS_open_tree, AT_FDCWD, op->target, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
      if (fd < 0 && !(op->optional && missing(errno))) child_fail(errfd, SB_OPEN_TREE, errno, i);
      s->slots[op->slot] = fd;
      break;
    case SB_OP_READONLY: make_readonly(op, errfd, i); break;
    case SB_OP_ATTACH:
      if (s->slots[op->slot] < 0) {
        if (op->optional) break; /* its clone was optional and found nothing */
        child_fail(errfd, SB_EMPTY_SLOT, EBADF, i);
      }
      if ((fd = mount_point(op, errfd, rootfd, i)) < 0) break;
      if (syscall(SYS_move_mount, s->slots[op->slot], "", fd, "",
                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        child_fail(errfd, SB_MOVE, errno, i);
      close(fd);
      close(s->slots[op->slot]);
      s->slots[op->slot] = -1;
      break;
    case SB_OP_MOUNT: do_mount(op, errfd, rootfd, i); break;
    case SB_OP_MASK: mask(op, errfd, rootfd, i); break;
    case SB_OP_SYMLINK:
      if (symlink(op->source, op->target) < 0) child_fail(errfd, SB_SYMLINK, errno, i);
      break;
    }
  }
  for (size_t n = 0; n < s->nslots; n++)
    if (s->slots[n] >= 0) close(s->slots[n]);
  close(rootfd);
  umask(old_umask);
}

/* ------------------------------------------------------------ the parent */

static const char *nn(const char *s) { return s ? s : "none"; }

bool sandbox_throw(napi_env env, const spawn_opts *o, const child_report *r) {
  const sandbox_opts *s = o->sb;
  int e = r->err, i = r->arg & 0xffffff, kind = r->arg >> 24;
  if (!s || r->step < SB_FIRST || r->step > SB_EMPTY_SLOT) return false;
  if (r->step <= SB_ROOT) {
    if (r->step == SB_UNSHARE) throw_sys(env, e, "unshare", NULL, NULL, "CLONE_NEWNS");
    else if (r->step == SB_SLAVE) throw_sys(env, e, "mount", "/", NULL, "none, /, MS_REC|MS_SLAVE");
    else throw_sys(env, e, "open", "/", NULL, "/, O_PATH");
    return true;
  }
  if (i < 0 || (size_t)i >= s->nops) return false;
  const sb_op *op = &s->ops[i];
  const char *t = op->target;
  switch (r->step) {
  case SB_OPEN_TREE: throw_sys(env, e, "open_tree", t, NULL, "%s, OPEN_TREE_CLONE|AT_RECURSIVE", t); break;
  case SB_BIND: throw_sys(env, e, "mount", t, NULL, "%s, %s, MS_BIND|MS_REC", t, t); break;
  case SB_SETATTR: throw_sys(env, e, "mount_setattr", t, NULL, "%s, AT_RECURSIVE, MOUNT_ATTR_RDONLY", t); break;
  case SB_PATH: throw_sys(env, e, op_syscall(kind), t, NULL, "%s (mount point)", t); break;
  case SB_MOVE: throw_sys(env, e, "move_mount", t, NULL, "slot %d, %s", op->slot, t); break;
  case SB_MOUNT:
    if (op->op == SB_OP_MASK) throw_sys(env, e, "mount", t, NULL, "(mask) %s", t);
    else throw_sys(env, e, "mount", t, NULL, "%s, %s, %s, 0x%lx", nn(op->source), t, nn(op->fstype), op->flags);
    break;
  case SB_REMOUNT: throw_sys(env, e, "mount", t, NULL, "%s, MS_REMOUNT|MS_BIND, 0x%lx", t, op->flags); break;
  case SB_STAT: throw_sys(env, e, "stat", t, NULL, "%s", t); break;
  case SB_SYMLINK: throw_sys(env, e, "symlink", t, NULL, "%s, %s", op->source, t); break;
  case SB_EMPTY_SLOT: throw_sys(env, e, "move_mount", t, NULL, "slot %d was never cloned, %s", op->slot, t); break;
  default: return false;
  }
  return true;
}
