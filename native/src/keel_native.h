/* keel_native.h: what the helper's source files share: the error and argument helpers of
 * common.c and the JS entry points that keel_native.c registers. */
#ifndef KEEL_NATIVE_H
#define KEEL_NATIVE_H

#include <node_api.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* ------------------------------------------------------- common.c: errors */

/* Symbolic errno name ("ENOENT"). */
const char *errno_name(int err);

/* Throws the system error for `err`: message "SYSCALL(ARGS): CODE (strerror)", where `fmt`
 * renders ARGS; properties code, errno, syscall and, when not NULL, path and dest. */
void throw_sys(napi_env env, int err, const char *syscall, const char *path, const char *dest,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Throws TypeError ERR_INVALID_ARG_TYPE "FN: WHAT must be WANT, received TYPE"; returns false. */
bool bad_arg(napi_env env, const char *fn, const char *what, const char *want, napi_value v);

/* Throws TypeError ERR_INVALID_ARG_VALUE "FN: WHAT must be WANT, received DETAIL"; returns false. */
bool bad_value(napi_env env, const char *fn, const char *what, const char *want, const char *detail);

/* Throws the out-of-memory error; returns false. */
bool no_memory(napi_env env);

/* ---------------------------------------------------- common.c: arguments */

bool is_nullish(napi_env env, napi_value v);

/* Copies a JS string into a malloc'd C string (NULL for null/undefined when nullable);
 * rejects embedded NUL bytes. */
bool get_str(napi_env env, napi_value v, const char *fn, const char *what, bool nullable, char **out);

/* A number, truncated to an integer. */
bool get_int(napi_env env, napi_value v, const char *fn, const char *what, int64_t *out);

/* An integer in [min, max]: no fraction, NaN or infinity. */
bool get_int_in(napi_env env, napi_value v, const char *fn, const char *what, int64_t min,
                int64_t max, int64_t *out);

/* obj[key]; `has` is false when it is null or undefined. */
bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *v, bool *has);

/* Sets obj[key] to a string or a number. */
void set_str(napi_env env, napi_value obj, const char *key, const char *val);
void set_num(napi_env env, napi_value obj, const char *key, double n);

#define ARGS(n)                                              \
  size_t argc = (n);                                         \
  napi_value argv[(n)];                                      \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

/* ------------------------------------------------------------- sockets.c */

/* Fills a unix address from "/path" or "@abstract"; throws a TypeError "FN: WHAT must be..."
 * when it is neither or too long. */
bool unix_addr(napi_env env, const char *fn, const char *what, const char *path,
               struct sockaddr_un *sa, socklen_t *len);

/* Binds fd to the address unix_addr made of `path`; for a path (not "@abstract") unlinks a
 * stale socket file first and chmods the new one to `mode`. Throws and returns false on failure. */
bool bind_unix(napi_env env, int fd, const char *path, const struct sockaddr_un *sa, socklen_t len,
               mode_t mode);

/* ------------------------------------------------------------ entry points */

napi_value js_spawn(napi_env env, napi_callback_info info);             /* spawn.c */
napi_value js_pipe(napi_env env, napi_callback_info info);              /* sockets.c */
napi_value js_unix_dgram_socket(napi_env env, napi_callback_info info); /* sockets.c */
napi_value js_signal_pipe(napi_env env, napi_callback_info info);    /* signals.c */
napi_value js_peer_cred(napi_env env, napi_callback_info info);
napi_value js_recv_cred(napi_env env, napi_callback_info info);         /* sockets.c */
napi_value js_send_dgram(napi_env env, napi_callback_info info);        /* sockets.c */
napi_value js_listen_socket(napi_env env, napi_callback_info info);     /* listen.c */
napi_value js_local_port(napi_env env, napi_callback_info info);        /* listen.c */
napi_value js_accept(napi_env env, napi_callback_info info);            /* listen.c */
napi_value js_watch_fd(napi_env env, napi_callback_info info);          /* poll.c */
napi_value js_open_pty(napi_env env, napi_callback_info info);          /* pty.c */
napi_value js_set_window_size(napi_env env, napi_callback_info info);   /* pty.c */
napi_value js_socket_pair(napi_env env, napi_callback_info info);       /* console.c */
/* [fds[0], fds[1]] as a JS array of two numbers (sockets.c). */
napi_value fd_pair(napi_env env, const int fds[2]);
napi_value js_recv_fd(napi_env env, napi_callback_info info);           /* console.c */
napi_value js_flock(napi_env env, napi_callback_info info);             /* flock.c */
/* Adds LOCK_SH, LOCK_EX, LOCK_UN and LOCK_NB to the constants object (flock.c). */
void flock_constants(napi_env env, napi_value c);
napi_value js_mknod(napi_env env, napi_callback_info info);             /* fs.c */
napi_value js_lsetxattr(napi_env env, napi_callback_info info);         /* fs.c */
napi_value js_lgetxattr(napi_env env, napi_callback_info info);         /* fs.c */
napi_value js_llistxattr(napi_env env, napi_callback_info info);        /* fs.c */

#endif
