/* sandbox.h: spawn()'s `sandbox` option, a service's own mount namespace (systemd.exec(5)'s
 * PrivateTmp=, PrivateDevices=, ProtectSystem=, ProtectHome=, ReadOnlyPaths= and friends).
 * TypeScript plans the mount operations (init/sandbox.ts); sandbox.c performs them in the child,
 * one-to-one and in order, after unshare(CLONE_NEWNS) and MS_SLAVE|MS_REC propagation. */
#ifndef KEEL_SANDBOX_H
#define KEEL_SANDBOX_H

#include "spawn.h"

/* The operations: clone a tree into a slot (open_tree), make a tree read-only (bind onto itself,
 * mount_setattr AT_RECURSIVE), attach a slot (move_mount), mount(2), mask (an empty read-only
 * tmpfs over a directory, `source` bound over anything else), symlink(2). */
enum { SB_OP_CLONE, SB_OP_READONLY, SB_OP_ATTACH, SB_OP_MOUNT, SB_OP_MASK, SB_OP_SYMLINK };

typedef struct {
  int op;
  char *source, *target, *fstype, *data; /* target: the path acted on (clone: the tree cloned) */
  unsigned long flags;                   /* mount: MS_*; a bind with RDONLY/NOSUID/NODEV/NOEXEC is remounted */
  int mkdir;                             /* attach, mount: MK_* for a missing mount point */
  int slot;                              /* clone, attach */
  bool optional;                         /* a missing path skips the operation (systemd's "-" prefix) */
} sb_op;

struct sandbox_opts {
  sb_op *ops;
  size_t nops, nslots;
  int *slots;                            /* nslots fds, -1 until cloned (the child's copy is written) */
};

/* Steps reported like spawn.c's ST_*; the argument is the op's index (| OP_* << 24 for SB_PATH). */
enum { SB_FIRST = 300, SB_UNSHARE = SB_FIRST, SB_SLAVE, SB_ROOT, SB_OPEN_TREE, SB_BIND, SB_SETATTR,
       SB_PATH, SB_MOVE, SB_MOUNT, SB_REMOUNT, SB_STAT, SB_SYMLINK, SB_EMPTY_SLOT };

/* Converts the JS `sandbox` array (parent). */
bool parse_sandbox(napi_env env, napi_value v, sandbox_opts *s);

/* Frees what parse_sandbox allocated, also after a partial parse. */
void free_sandbox(sandbox_opts *s);

/* Child, after the fds are in place and before chdir: the new mount namespace and every op. */
void sandbox_setup(const spawn_opts *o, int errfd);

/* Parent: throws the error of an SB_* step; false when `r` is not one. */
bool sandbox_throw(napi_env env, const spawn_opts *o, const child_report *r);

#endif
