/* fs.c: the file syscalls Node lacks, for unpacking image layers: mknod(2) for overlayfs
 * whiteouts (character devices 0:0) and the l*xattr(2) calls for opaque directories
 * (trusted.overlay.opaque). The l- variants never follow a symlink: an unpacker must not
 * write through one. */
#include "keel_native.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* Largest value and name list the kernel allows (XATTR_SIZE_MAX, XATTR_LIST_MAX). */
#define XATTR_MAX 65536

/* mknod(path, mode, dev): mode carries the type (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG) and the
 * permission bits (the umask applies, as for mknod(2)); dev is a dev_t as makedev() packs it. */
napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *path = NULL;
  int64_t mode, dev;
  if (get_str(env, argv[0], "mknod", "path", false, &path) &&
      get_int_in(env, argv[1], "mknod", "mode", 0, 0xffffffffLL, &mode) &&
      get_int_in(env, argv[2], "mknod", "dev", 0, (1LL << 53) - 1, &dev) &&
      mknod(path, (mode_t)mode, (dev_t)dev) != 0)
    throw_sys(env, errno, "mknod", path, NULL, "%s, 0%llo, %lld", path, (long long)mode, (long long)dev);
  free(path);
  return NULL;
}

/* The bytes of a Buffer or the UTF-8 of a string; *owned is what to free. */
static bool get_bytes(napi_env env, napi_value v, const char *fn, const char *what, const void **data,
                      size_t *len, char **owned) {
  bool is_buffer = false;
  *owned = NULL;
  napi_is_buffer(env, v, &is_buffer);
  if (is_buffer) {
    void *p;
    napi_get_buffer_info(env, v, &p, len);
    *data = p;
    return true;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok)
    return bad_arg(env, fn, what, "a Buffer or a string", v);
  if (!(*owned = malloc(*len + 1))) return no_memory(env);
  napi_get_value_string_utf8(env, v, *owned, *len + 1, len);
  *data = *owned;
  return true;
}

/* lsetxattr(path, name, value, flags): flags 0, XATTR_CREATE or XATTR_REPLACE. */
napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(4);
  char *path = NULL, *name = NULL, *owned = NULL;
  const void *value = NULL;
  size_t len = 0;
  int64_t flags;
  if (get_str(env, argv[0], "lsetxattr", "path", false, &path) &&
      get_str(env, argv[1], "lsetxattr", "name", false, &name) &&
      get_bytes(env, argv[2], "lsetxattr", "value", &value, &len, &owned) &&
      get_int_in(env, argv[3], "lsetxattr", "flags", 0, XATTR_CREATE | XATTR_REPLACE, &flags) &&
      lsetxattr(path, name, value, len, (int)flags) != 0)
    throw_sys(env, errno, "lsetxattr", path, NULL, "%s, %s, %zu bytes, %lld", path, name, len, (long long)flags);
  free(path), free(name), free(owned);
  return NULL;
}

/* Calls `get` with a buffer that grows until the answer fits (the value may change between the
 * size query and the read, hence the loop on ERANGE). Returns the length, or -1 with errno. */
static ssize_t sized_call(ssize_t (*get)(const char *, const char *, void *, size_t), const char *path,
                          const char *name, char **out) {
  *out = NULL;
  for (;;) {
    ssize_t want = get(path, name, NULL, 0);
    if (want < 0) return -1;
    char *buf = malloc(want > 0 ? (size_t)want : 1);
    if (!buf) return errno = ENOMEM, -1;
    ssize_t n = get(path, name, buf, (size_t)want);
    if (n >= 0) return *out = buf, n;
    free(buf);
    if (errno != ERANGE || want >= XATTR_MAX) return -1;
  }
}

static ssize_t do_lgetxattr(const char *path, const char *name, void *buf, size_t size) {
  return lgetxattr(path, name, buf, size);
}
static ssize_t do_llistxattr(const char *path, const char *name, void *buf, size_t size) {
  (void)name;
  return llistxattr(path, buf, size);
}

/* lgetxattr(path, name): the value as a Buffer; ENODATA when the file has no such attribute. */
napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = NULL, *name = NULL, *buf = NULL;
  napi_value result = NULL;
  if (get_str(env, argv[0], "lgetxattr", "path", false, &path) &&
      get_str(env, argv[1], "lgetxattr", "name", false, &name)) {
    ssize_t n = sized_call(do_lgetxattr, path, name, &buf);
    if (n < 0) throw_sys(env, errno, "lgetxattr", path, NULL, "%s, %s", path, name);
    else napi_create_buffer_copy(env, (size_t)n, buf, NULL, &result);
  }
  free(path), free(name), free(buf);
  return result;
}

/* llistxattr(path): the attribute names (only those this process may see), in the kernel's order. */
napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *path = NULL, *buf = NULL;
  napi_value result = NULL;
  if (get_str(env, argv[0], "llistxattr", "path", false, &path)) {
    ssize_t n = sized_call(do_llistxattr, path, NULL, &buf);
    if (n < 0) {
      throw_sys(env, errno, "llistxattr", path, NULL, "%s", path);
    } else {
      napi_create_array(env, &result);
      uint32_t i = 0;
      for (ssize_t at = 0; at < n; at += (ssize_t)strnlen(buf + at, (size_t)(n - at)) + 1) {
        napi_value s;
        napi_create_string_utf8(env, buf + at, strnlen(buf + at, (size_t)(n - at)), &s);
        napi_set_element(env, result, i++, s);
      }
    }
  }
  free(path), free(buf);
  return result;
}
