/* spawn.h: spawn()'s options as the forked child reads them; spawn_opts.c fills them in. */
#ifndef KEEL_SPAWN_H
#define KEEL_SPAWN_H

#include "keel_native.h"

#include <sys/resource.h>
#include <sys/types.h>

typedef struct {
  int resource;                 /* RLIMIT_* */
  struct rlimit limit;
} spawn_rlimit;

/* The container part of the options (namespaces, mounts, pivot_root); container.h. */
typedef struct container_opts container_opts;

/* The `sandbox` option: a service's own mount namespace and its mount operations; sandbox.h. */
typedef struct sandbox_opts sandbox_opts;

/* The `join` option: the namespaces of a running process (keel exec); container.h. */
typedef struct join_opts join_opts;

/* Everything the child needs, prepared before fork: after fork() in a threaded process
 * only async-signal-safe calls are allowed, so the child must never allocate. */
typedef struct {
  char *file, *cwd, *tty;
  char *cgroup_procs;           /* "<cgroup>/cgroup.procs" to join, or NULL */
  char **argv, **envp, **cands; /* NULL-terminated; cands = execve paths to try in order */
  size_t ncands, ngroups, nfds, nrlimits;
  int stdio[3];                 /* parent fds for 0,1,2; -1 = the tty, else /dev/null */
  int *fds;                     /* parent fds for 3, 4, ... (nfds of them) */
  int *fd_copies;               /* the child's scratch space for copies of fds */
  spawn_rlimit *rlimits;
  bool setsid, set_groups, pgroup, no_new_privs, set_nice;
  int nice;
  int64_t uid, gid, umask;      /* -1 = leave alone */
  gid_t *groups;
  char *listen_pid;              /* the envp entry "LISTEN_PID=..." (room for 20 digits), or NULL */
  unsigned max_fd;              /* bound of the close loop when close_range is missing */
  bool set_caps;                /* capabilities given: keep only `caps` (bounding set, capset) */
  uint64_t caps;                /* bit n = capability n */
  int last_cap;                 /* the kernel's highest capability, read by the parent */
  void *seccomp;                /* struct sock_filter[nseccomp], installed just before execve */
  unsigned short nseccomp;
  container_opts *ct;           /* NULL: a plain fork; else clone into new namespaces */
  join_opts *join;              /* NULL, or fork, enter a process's namespaces, fork again */
  sandbox_opts *sb;             /* NULL, or a new mount namespace set up before chdir */
  int console;                  /* -1, or a unix stream socket: the child opens a pty in its own
                                   root (after pivot_root / entering it), sends the master over it
                                   (SCM_RIGHTS) and takes the slave as 0-2 and controlling tty */
  unsigned short console_rows, console_cols; /* the pty's window size, set before the program starts */
} spawn_opts;

/* What a child writes to the CLOEXEC pipe when it fails before execve succeeds: the step
 * (an ST_* of spawn.c or a CT_* of container.h), its errno and an argument (an index or fd). */
typedef struct { int step, err, arg; } child_report;

/* Reports a failed step to the parent over the pipe and exits 127; child side only. */
void __attribute__((noreturn)) child_fail(int errfd, int step, int err, int arg);

/* An array's length, or a TypeError "spawn: WHAT must be WANT". */
bool get_array(napi_env env, napi_value v, const char *what, const char *want, uint32_t *n);

/* A NULL-terminated malloc'd copy of an array of strings; free_strv frees one (or NULL). */
bool get_strv(napi_env env, napi_value v, const char *what, char ***out);
void free_strv(char **v);

/* Converts the JS options object; throws (and returns false) on a bad option. */
bool parse_spawn(napi_env env, napi_value opts, spawn_opts *o);

/* Frees what parse_spawn allocated, also after a partial parse. */
void free_spawn(spawn_opts *o);

/* "NOFILE" for RLIMIT_NOFILE and so on. */
const char *rlimit_name(int resource);

#endif
