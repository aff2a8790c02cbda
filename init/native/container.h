/* container.h: spawn()'s `container` option: the child is clone()d into new namespaces, mounts
 * its root filesystem and the mounts TypeScript listed, pivots into the root and masks paths;
 * spawn.c then finishes as for any child (limits, capabilities, credentials, seccomp, execve). */
#ifndef KEEL_CONTAINER_H
#define KEEL_CONTAINER_H

#include "spawn.h"

#include <sys/types.h>

/* What to create at a mount point that is missing: nothing (fail), a directory, an empty file. */
enum { MK_NONE, MK_DIR, MK_FILE };

typedef struct {
  char *source, *target, *fstype, *data; /* target: absolute, inside the container */
  unsigned long flags;                   /* MS_*; a bind with RDONLY/NOSUID/NODEV/NOEXEC is remounted */
  int mkdir;                             /* MK_* */
} ct_mount;

typedef struct {
  char *path;                            /* inside the container */
  mode_t mode;                           /* S_IFCHR or S_IFBLK | permissions */
  dev_t dev;
} ct_device;

typedef struct { char *path, *target; } ct_symlink;

struct container_opts {
  int clone_flags;                       /* CLONE_NEW* for clone() */
  bool new_net;                          /* CLONE_NEWNET, with lo brought up */
  char *netns;                           /* a network namespace to join instead, and its fd */
  int netns_fd;
  char *root;                            /* host directory the root is mounted on, then pivoted into */
  ct_mount root_mount;                   /* how: an overlay, or a bind of a directory */
  bool read_only;                        /* remount / read-only after the setup */
  ct_mount *mounts;
  ct_device *devices;
  ct_symlink *symlinks;
  size_t nmounts, ndevices, nsymlinks, nmasked, nreadonly;
  char *hostname;
  char **masked, **readonly;             /* after pivot_root: masked (empty), read-only paths */
};

/* Container steps, reported like spawn.c's ST_* (which stay below CT_FIRST). For the CT_PATH_*
 * steps the argument is index | op << 24, op being the OP_* that failed. */
enum { CT_FIRST = 100, CT_DUMPABLE = CT_FIRST, CT_UNSHARE_CGROUP, CT_SETNS, CT_PRIVATE,
       CT_MOUNT_ROOT, CT_OPEN_ROOT, CT_PATH_MOUNT, CT_MOUNT, CT_REMOUNT, CT_PATH_DEVICE,
       CT_MKNOD, CT_PATH_SYMLINK, CT_SYMLINK, CT_HOSTNAME, CT_LO, CT_PIVOT_CHDIR, CT_PIVOT,
       CT_UMOUNT_OLD, CT_CHDIR_ROOT, CT_MASK, CT_RO_PATH, CT_RO_ROOT };
enum { OP_OPEN, OP_MKDIR, OP_CREATE, OP_STATFS };

/* Converts the JS `container` object (in the parent: allocates, opens the netns). */
bool parse_container(napi_env env, napi_value v, container_opts *c);

/* Frees what parse_container allocated and closes the netns fd, also after a partial parse. */
void free_container(container_opts *c);

/* Child, right after joining the cgroup: a cgroup namespace rooted there, the network namespace. */
void container_enter(const spawn_opts *o, int errfd);

/* Child, after the fds are in place: mounts, devices, hostname, pivot_root, masked paths. */
void container_setup(const spawn_opts *o, int errfd);

/* Parent: throws the error of a CT_* step; false when `r` is not a container step. */
bool container_throw(napi_env env, const spawn_opts *o, const child_report *r);

#endif
