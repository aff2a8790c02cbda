/* container.h: spawn()'s `container` option: the child is clone()d into new namespaces, mounts
 * its root filesystem and the mounts TypeScript listed, pivots into the root and masks paths;
 * spawn.c then finishes as for any child (limits, capabilities, credentials, seccomp, execve).
 * And its `join` option (`keel exec`): the child enters the namespaces of a running process,
 * forks once more (a pid namespace applies only to children) and waits for the grandchild,
 * which finishes as for any child. */
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
  char *uid_map, *gid_map;               /* non-NULL: a user namespace, entered last (see container_setup) */
};

/* The namespaces `join` may enter, at most one fd each. */
#define JOIN_MAX 7

typedef struct join_opts {
  pid_t pid;                             /* the process whose namespaces are joined */
  char *start_time;                      /* field 22 of its /proc/PID/stat, checked once the fds are open; or NULL */
  size_t nns;
  int ns_type[JOIN_MAX];                 /* CLONE_NEW*, in setns order (mnt last) */
  const char *ns_name[JOIN_MAX];         /* "mnt", ...: static strings */
  int ns_fd[JOIN_MAX];                   /* /proc/PID/ns/NAME, opened by join_open; -1 before */
  int root_fd;                           /* /proc/PID/root (O_PATH) when mnt is joined, else -1 */
} join_opts;

/* Container steps, reported like spawn.c's ST_* (which stay below CT_FIRST). For the CT_PATH_*
 * steps the argument is index | op << 24, op being the OP_* that failed. The CT_JOIN_* steps
 * are the `join` option's (CT_DUMPABLE too). */
enum { CT_FIRST = 100, CT_DUMPABLE = CT_FIRST, CT_UNSHARE_CGROUP, CT_SETNS, CT_PRIVATE,
       CT_MOUNT_ROOT, CT_OPEN_ROOT, CT_PATH_MOUNT, CT_MOUNT, CT_REMOUNT, CT_PATH_DEVICE,
       CT_MKNOD, CT_PATH_SYMLINK, CT_SYMLINK, CT_HOSTNAME, CT_LO, CT_PIVOT_CHDIR, CT_PIVOT,
       CT_UMOUNT_OLD, CT_CHDIR_ROOT, CT_MASK, CT_RO_PATH, CT_RO_ROOT,
       CT_JOIN_SETNS, CT_JOIN_ROOT, CT_JOIN_FORK, CT_JOIN_PDEATHSIG,
       CT_USERNS, CT_USERNS_READY, CT_USERNS_ROOT };
enum { OP_OPEN, OP_MKDIR, OP_CREATE, OP_STATFS };

/* Shared with sandbox.c (child side, async-signal-safe): "/proc/self/fd/N" into buf (32 bytes);
 * an O_PATH fd of `path` resolved below rootfd as "/", creating a missing mount point per `kind`
 * (MK_*; -1 with errno and *op, an OP_*, on failure); a bind remount of fd's mount adding `extra`
 * MS_* flags and keeping the others. Parent side: the syscall an OP_* stands for. */
void fd_path(char *buf, int fd);
int open_in_root(int rootfd, const char *path, int kind, int *op);
int remount_fd(int fd, unsigned long extra);
const char *op_syscall(int op);

/* Converts the JS `container` object (in the parent: allocates, opens the netns). */
bool parse_container(napi_env env, napi_value v, container_opts *c);

/* Frees what parse_container allocated and closes the netns fd, also after a partial parse. */
void free_container(container_opts *c);

/* Child, right after joining the cgroup: a cgroup namespace rooted there, the network namespace. */
void container_enter(const spawn_opts *o, int errfd);

/* Child, after the fds are in place: mounts, devices, hostname, pivot_root, masked paths; with
 * a user namespace, then unshare(CLONE_NEWUSER), a CT_USERNS_READY report, a wait for the
 * parent's byte on errfd (the maps are written by then) and setresuid/setresgid(0): everything
 * above was done as the host's root, the program runs as the namespace's. */
void container_setup(const spawn_opts *o, int errfd);

/* Parent, on a CT_USERNS_READY report: writes the child's uid_map and gid_map; false with the
 * error thrown when it cannot. */
bool container_map_user(napi_env env, const container_opts *c, pid_t pid);

/* Converts the JS `join` object (parent; nothing opened yet). */
bool parse_join(napi_env env, napi_value v, join_opts *j);

/* Parent, right before the fork: opens /proc/PID/ns/NAME (and /proc/PID/root) and then checks
 * that PID is still the process that started at start_time, so every fd is that process's. */
bool join_open(napi_env env, join_opts *j);

/* Closes what join_open opened, also after a partial open or parse. */
void free_join(join_opts *j);

/* Child, after joining the cgroup: setns() into each namespace (mnt last), fchdir + chroot(".")
 * into the process's root, then fork. Returns only in the grandchild (in the pid namespace too);
 * the intermediate child waits for it, forwarding SIGTERM/SIGINT/SIGHUP, and ends as it did. */
void join_enter(const spawn_opts *o, int errfd);

/* Grandchild, after the credentials (which would clear it): SIGKILL when the intermediate child
 * dies, so that a killed `exec` does not leave its program running in the container. */
void join_finish(const spawn_opts *o, int errfd);

/* Parent: throws the error of a CT_* step; false when `r` is not a container step. */
bool container_throw(napi_env env, const spawn_opts *o, const child_report *r);

#endif
