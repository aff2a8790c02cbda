/* flock.c: advisory whole-file locks (flock(2)), which the kernel drops when the last fd of the
 * open file description closes, so a lock dies with its process: no pid to trust, no stale file. */
#include "keel_native.h"

#include <errno.h>
#include <sys/file.h>

/* flock(2): true once the lock is taken (or dropped, for LOCK_UN); false only when LOCK_NB found
 * it held (EWOULDBLOCK). Without LOCK_NB it blocks the calling thread: never on PID 1's event loop. */
napi_value js_flock(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t fd, op;
  if (!get_int_in(env, argv[0], "flock", "fd", 0, INT32_MAX, &fd) ||
      !get_int_in(env, argv[1], "flock", "operation", 0, LOCK_SH | LOCK_EX | LOCK_UN | LOCK_NB, &op))
    return NULL;
  int r;
  /* A blocking wait can be interrupted by a signal Node handles; just wait again. */
  do r = flock((int)fd, (int)op);
  while (r < 0 && errno == EINTR);
  napi_value result;
  if (r < 0 && errno == EWOULDBLOCK && (op & LOCK_NB)) return napi_get_boolean(env, false, &result), result;
  if (r < 0) {
    throw_sys(env, errno, "flock", NULL, NULL, "%d, %s%s", (int)fd,
              op & LOCK_UN ? "LOCK_UN" : op & LOCK_EX ? "LOCK_EX" : "LOCK_SH", op & LOCK_NB ? "|LOCK_NB" : "");
    return NULL;
  }
  return napi_get_boolean(env, true, &result), result;
}

/* The LOCK_* operations, for the module's constants. */
void flock_constants(napi_env env, napi_value c) {
  set_num(env, c, "LOCK_SH", LOCK_SH);
  set_num(env, c, "LOCK_EX", LOCK_EX);
  set_num(env, c, "LOCK_UN", LOCK_UN);
  set_num(env, c, "LOCK_NB", LOCK_NB);
}
