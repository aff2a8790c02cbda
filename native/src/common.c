/* common.c: the helper's error shape and argument conversions, shared by every source file. */
#include "keel_native.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ errors */

/* Symbolic errno name; glibc >= 2.32 knows them all, other libcs get the common ones. */
const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name) return name;
#endif
#define E(x) if (err == x) return #x;
  E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
  E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV)
  E(ENOTDIR) E(EISDIR) E(EINVAL) E(EMFILE) E(ENOSPC) E(EROFS) E(ENAMETOOLONG)
  E(ENOSYS) E(ELOOP) E(ENOTTY) E(ETXTBSY) E(ENOTSOCK) E(EMSGSIZE) E(EOPNOTSUPP)
  E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ECONNREFUSED)
#undef E
  return "EUNKNOWN";
}

void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

void set_num(napi_env env, napi_value obj, const char *key, double n) {
  napi_value v;
  napi_create_double(env, n, &v);
  napi_set_named_property(env, obj, key, v);
}

void throw_sys(napi_env env, int err, const char *syscall, const char *path, const char *dest,
               const char *fmt, ...) {
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

bool no_memory(napi_env env) {
  napi_throw_error(env, "ENOMEM", "out of memory");
  return false;
}

/* --------------------------------------------------------------- arguments */

static const char *type_name(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  static const char *names[] = {"undefined", "null",     "boolean",  "number", "string",
                                "symbol",    "object",   "function", "external", "bigint"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

bool bad_arg(napi_env env, const char *fn, const char *what, const char *want, napi_value v) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s must be %s, received %s", fn, what, want, type_name(env, v));
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

bool bad_value(napi_env env, const char *fn, const char *what, const char *want, const char *detail) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s must be %s, received %s", fn, what, want, detail);
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
  return false;
}

bool get_str(napi_env env, napi_value v, const char *fn, const char *what, bool nullable, char **out) {
  size_t len = 0;
  *out = NULL;
  if (nullable && is_nullish(env, v)) return true;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
    return bad_arg(env, fn, what, nullable ? "a string or null" : "a string", v);
  if (!(*out = malloc(len + 1))) return no_memory(env);
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

bool get_int(napi_env env, napi_value v, const char *fn, const char *what, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) return bad_arg(env, fn, what, "a number", v);
  return true;
}

bool get_int_in(napi_env env, napi_value v, const char *fn, const char *what, int64_t min,
                int64_t max, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return bad_arg(env, fn, what, "a number", v);
  if (!(d >= (double)min && d <= (double)max && d == floor(d))) {
    char want[96], got[64];
    snprintf(want, sizeof want, "an integer from %lld to %lld", (long long)min, (long long)max);
    snprintf(got, sizeof got, "%g", d);
    return bad_value(env, fn, what, want, got);
  }
  *out = (int64_t)d;
  return true;
}

bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *v, bool *has) {
  if (napi_get_named_property(env, obj, key, v) != napi_ok) return false;
  *has = !is_nullish(env, *v);
  return true;
}
