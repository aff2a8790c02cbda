/* spawn_opts.c: converts spawn()'s JS options into a spawn_opts, all memory allocated up front. */
#include "spawn.h"
#include "container.h"
#include "sandbox.h"

#include <linux/filter.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const struct { const char *name; int resource; } RLIMITS[] = {
  {"NOFILE", RLIMIT_NOFILE}, {"NPROC", RLIMIT_NPROC}, {"CORE", RLIMIT_CORE},
  {"MEMLOCK", RLIMIT_MEMLOCK}, {"AS", RLIMIT_AS},
};
#define NRLIMITS (sizeof RLIMITS / sizeof *RLIMITS)

const char *rlimit_name(int resource) {
  for (size_t i = 0; i < NRLIMITS; i++)
    if (RLIMITS[i].resource == resource) return RLIMITS[i].name;
  return "?";
}

void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

void free_spawn(spawn_opts *o) {
  free(o->file), free(o->cwd), free(o->tty), free(o->cgroup_procs), free(o->groups);
  free(o->fds), free(o->fd_copies), free(o->rlimits);
  free_strv(o->argv), free_strv(o->envp), free_strv(o->cands);
  free(o->seccomp);
  if (o->ct) free_container(o->ct), free(o->ct);
  if (o->join) free_join(o->join), free(o->join);
  if (o->sb) free_sandbox(o->sb), free(o->sb);
}

/* An array's length, or a TypeError naming `what`. */
bool get_array(napi_env env, napi_value v, const char *what, const char *want, uint32_t *n) {
  bool is_array = false;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array) return bad_arg(env, "spawn", what, want, v);
  return napi_get_array_length(env, v, n) == napi_ok;
}

bool get_strv(napi_env env, napi_value v, const char *what, char ***out) {
  uint32_t n = 0;
  if (!get_array(env, v, what, "an array of strings", &n)) return false;
  if (!(*out = calloc(n + 1, sizeof **out))) return no_memory(env);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, v, i, &e) != napi_ok || !get_str(env, e, "spawn", what, false, &(*out)[i]))
      return false;
  }
  return true;
}

/* An optional integer option; -1 when unset. */
static bool opt_int(napi_env env, napi_value opts, const char *key, int64_t *out) {
  napi_value v;
  bool has;
  *out = -1;
  return get_prop(env, opts, key, &v, &has) && (!has || get_int(env, v, "spawn", key, out));
}

static bool opt_bool(napi_env env, napi_value opts, const char *key, bool *out) {
  napi_value v;
  bool has;
  if (!get_prop(env, opts, key, &v, &has)) return false;
  if (has && napi_get_value_bool(env, v, out) != napi_ok) return bad_arg(env, "spawn", key, "a boolean", v);
  return true;
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

static bool parse_groups(napi_env env, napi_value opts, spawn_opts *o, bool *has) {
  napi_value v;
  uint32_t n = 0;
  if (!get_prop(env, opts, "groups", &v, has)) return false;
  if (!*has) return true;
  if (!get_array(env, v, "groups", "an array of numbers", &n)) return false;
  if (!(o->groups = calloc(n + 1, sizeof *o->groups))) return no_memory(env);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    int64_t g;
    if (napi_get_element(env, v, i, &e) != napi_ok || !get_int(env, e, "spawn", "groups[]", &g)) return false;
    o->groups[o->ngroups++] = (gid_t)g;
  }
  return true;
}

/* fds: parent fds for the child's 3, 4, 5, ... */
static bool parse_fds(napi_env env, napi_value opts, spawn_opts *o) {
  napi_value v;
  bool has;
  uint32_t n = 0;
  if (!get_prop(env, opts, "fds", &v, &has)) return false;
  if (!has) return true;
  if (!get_array(env, v, "fds", "an array of numbers", &n)) return false;
  if (!(o->fds = calloc(n + 1, sizeof *o->fds)) || !(o->fd_copies = calloc(n + 1, sizeof *o->fd_copies)))
    return no_memory(env);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    int64_t fd;
    if (napi_get_element(env, v, i, &e) != napi_ok || !get_int_in(env, e, "spawn", "fds[]", 0, INT32_MAX, &fd))
      return false;
    o->fds[o->nfds++] = (int)fd;
  }
  return true;
}

/* One rlimit value: a non-negative integer, or Infinity for RLIM_INFINITY. */
static bool get_rlim(napi_env env, napi_value v, const char *what, rlim_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return bad_arg(env, "spawn", what, "a number", v);
  if (d == INFINITY) return *out = RLIM_INFINITY, true;
  int64_t i;
  if (!get_int_in(env, v, "spawn", what, 0, INT64_MAX, &i)) return false;
  *out = (rlim_t)i;
  return true;
}

static bool parse_rlimit(napi_env env, napi_value e, spawn_rlimit *r) {
  napi_value v;
  bool has;
  char *name = NULL;
  napi_valuetype t = napi_undefined;
  napi_typeof(env, e, &t);
  if (t != napi_object) return bad_arg(env, "spawn", "rlimits[]", "an object", e);
  if (!get_prop(env, e, "resource", &v, &has) || !get_str(env, v, "spawn", "rlimits[].resource", false, &name))
    return free(name), false;
  size_t i = 0;
  while (i < NRLIMITS && strcmp(name, RLIMITS[i].name) != 0) i++;
  if (i == NRLIMITS) {
    char got[80];
    snprintf(got, sizeof got, "\"%.64s\"", name);
    free(name);
    return bad_value(env, "spawn", "rlimits[].resource", "one of NOFILE, NPROC, CORE, MEMLOCK, AS", got);
  }
  free(name);
  r->resource = RLIMITS[i].resource;
  return get_prop(env, e, "soft", &v, &has) && get_rlim(env, v, "rlimits[].soft", &r->limit.rlim_cur) &&
         get_prop(env, e, "hard", &v, &has) && get_rlim(env, v, "rlimits[].hard", &r->limit.rlim_max);
}

static bool parse_rlimits(napi_env env, napi_value opts, spawn_opts *o) {
  napi_value v;
  bool has;
  uint32_t n = 0;
  if (!get_prop(env, opts, "rlimits", &v, &has)) return false;
  if (!has) return true;
  if (!get_array(env, v, "rlimits", "an array of { resource, soft, hard }", &n)) return false;
  if (!(o->rlimits = calloc(n + 1, sizeof *o->rlimits))) return no_memory(env);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, v, i, &e) != napi_ok || !parse_rlimit(env, e, &o->rlimits[o->nrlimits++]))
      return false;
  }
  return true;
}

/* The options added for services: fds, cgroup, rlimits, nice, noNewPrivs, pgroup. */
static bool parse_service_opts(napi_env env, napi_value opts, spawn_opts *o) {
  napi_value v;
  bool has;
  char *cgroup = NULL;
  if (!parse_fds(env, opts, o) || !parse_rlimits(env, opts, o) ||
      !opt_bool(env, opts, "noNewPrivs", &o->no_new_privs) || !opt_bool(env, opts, "pgroup", &o->pgroup) ||
      !get_prop(env, opts, "nice", &v, &o->set_nice))
    return false;
  if (o->set_nice) {
    int64_t nice;
    if (!get_int_in(env, v, "spawn", "nice", -20, 19, &nice)) return false;
    o->nice = (int)nice;
  }
  if (!get_prop(env, opts, "cgroup", &v, &has) || !get_str(env, v, "spawn", "cgroup", true, &cgroup))
    return free(cgroup), false;
  if (!cgroup) return true;
  int r = asprintf(&o->cgroup_procs, "%s/cgroup.procs", cgroup);
  free(cgroup);
  if (r < 0) return o->cgroup_procs = NULL, no_memory(env);
  return true;
}

/* The kernel's highest capability number: /proc/sys/kernel/cap_last_cap, else probed. */
static int last_cap(void) {
  char buf[16] = {0};
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    int n = -1;
    bool ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%d", &n) == 1 && n >= 0 && n < 64;
    fclose(f);
    if (ok) return n;
  }
  int c = 0;
  while (c < 64 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0) c++;
  return c - 1;
}

/* capabilities (a bigint mask of those to keep) and seccomp (a Buffer of struct sock_filter). */
static bool parse_security_opts(napi_env env, napi_value opts, spawn_opts *o) {
  napi_value v;
  bool has;
  if (!get_prop(env, opts, "capabilities", &v, &o->set_caps)) return false;
  if (o->set_caps) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, v, &o->caps, &lossless) != napi_ok)
      return bad_arg(env, "spawn", "capabilities", "a bigint", v);
    if (!lossless) return bad_value(env, "spawn", "capabilities", "a bigint from 0n to 2n ** 64n - 1n", "a value out of range");
    o->last_cap = last_cap();
  }
  if (!get_prop(env, opts, "seccomp", &v, &has)) return false;
  if (!has) return true;
  bool is_buffer = false;
  void *data;
  size_t len;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, v, &data, &len) != napi_ok)
    return bad_arg(env, "spawn", "seccomp", "a Buffer", v);
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    char got[64];
    snprintf(got, sizeof got, "%zu bytes", len);
    return bad_value(env, "spawn", "seccomp", "1 to 4096 struct sock_filter (8 bytes each)", got);
  }
  if (!(o->seccomp = malloc(len))) return no_memory(env);
  memcpy(o->seccomp, data, len);
  o->nseccomp = (unsigned short)(len / sizeof(struct sock_filter));
  return true;
}

bool parse_spawn(napi_env env, napi_value opts, spawn_opts *o) {
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
    o->stdio[i] = fd < 0 || fd > INT32_MAX ? -1 : (int)fd;
  }
  if (!opt_bool(env, opts, "setsid", &o->setsid) || !opt_int(env, opts, "uid", &o->uid) ||
      !opt_int(env, opts, "gid", &o->gid) || !opt_int(env, opts, "umask", &o->umask) ||
      !parse_groups(env, opts, o, &has))
    return false;
  int64_t console, rows, cols;
  if (!opt_int(env, opts, "console", &console) || !opt_int(env, opts, "consoleRows", &rows) ||
      !opt_int(env, opts, "consoleCols", &cols))
    return false;
  if (console > INT32_MAX || rows > 65535 || cols > 65535)
    return bad_value(env, "spawn", "console", "a socket fd and a window size of at most 65535 rows and columns", "a value out of range");
  o->console = (int)console;
  o->console_rows = rows < 0 ? 0 : (unsigned short)rows, o->console_cols = cols < 0 ? 0 : (unsigned short)cols;
  if (o->console >= 0 && o->tty) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "spawn: tty and console exclude each other");
    return false;
  }
  /* Dropping to a uid/gid must also drop root's supplementary groups (as Go's os/exec does). */
  o->set_groups = has || o->uid >= 0 || o->gid >= 0;
  if (!parse_service_opts(env, opts, o) || !parse_security_opts(env, opts, o)) return false;
  if (!get_prop(env, opts, "container", &v, &has)) return false;
  if (has) {
    if (!(o->ct = calloc(1, sizeof *o->ct))) return no_memory(env);
    if (!parse_container(env, v, o->ct)) return false;
  }
  if (!get_prop(env, opts, "join", &v, &has)) return false;
  if (has) {
    if (o->ct) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "spawn: container and join exclude each other");
      return false;
    }
    if (!(o->join = calloc(1, sizeof *o->join))) return no_memory(env);
    if (!parse_join(env, v, o->join)) return false;
  }
  if (!get_prop(env, opts, "sandbox", &v, &has)) return false;
  if (has) {
    if (o->ct || o->join) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "spawn: sandbox excludes container and join");
      return false;
    }
    if (!(o->sb = calloc(1, sizeof *o->sb))) return no_memory(env);
    if (!parse_sandbox(env, v, o->sb)) return false;
  }
  struct rlimit rl;
  o->max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (unsigned)rl.rlim_cur : 65536;
  if (!build_cands(o)) return no_memory(env);
  /* Socket activation: sd_listen_fds() checks LISTEN_PID against getpid(), a pid that exists only
   * after fork. Give the entry room; the child writes its own pid into it before execve. */
  for (char **e = o->envp; *e; e++) {
    if (strncmp(*e, "LISTEN_PID=", 11) != 0) continue;
    char *room = realloc(*e, 32);
    if (!room) return no_memory(env);
    *e = o->listen_pid = room;
    break;
  }
  return true;
}
