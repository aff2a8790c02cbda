/* pty.c: pseudo-terminals for `keel run -t` and `keel exec -t`. The master stays with the CLI
 * (CLOEXEC, no controlling tty for us); the child opens the slave by path (spawn's `tty`). */
#include "keel_native.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* openPty(): posix_openpt(O_RDWR|O_NOCTTY|O_CLOEXEC), grantpt, unlockpt, ptsname_r;
 * returns { master, slave }. */
napi_value js_open_pty(napi_env env, napi_callback_info info) {
  int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return throw_sys(env, errno, "posix_openpt", "/dev/ptmx", NULL, "O_RDWR|O_NOCTTY|O_CLOEXEC"), NULL;
  char name[PATH_MAX];
  const char *failed = NULL;
  int err = 0;
  if (grantpt(fd) != 0) failed = "grantpt";
  else if (unlockpt(fd) != 0) failed = "unlockpt";
  else if ((err = ptsname_r(fd, name, sizeof name)) != 0) failed = "ptsname_r", errno = err;
  if (failed) {
    err = errno;
    close(fd);
    return throw_sys(env, err, failed, NULL, NULL, "%d", fd), NULL;
  }
  napi_value result, master;
  napi_create_object(env, &result);
  napi_create_int32(env, fd, &master);
  napi_set_named_property(env, result, "master", master);
  set_str(env, result, "slave", name);
  return result;
}

/* setWindowSize(fd, rows, cols): ioctl(TIOCSWINSZ); the foreground process group gets SIGWINCH. */
napi_value js_set_window_size(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t fd, rows, cols;
  if (!get_int_in(env, argv[0], "setWindowSize", "fd", 0, INT_MAX, &fd) ||
      !get_int_in(env, argv[1], "setWindowSize", "rows", 0, USHRT_MAX, &rows) ||
      !get_int_in(env, argv[2], "setWindowSize", "cols", 0, USHRT_MAX, &cols))
    return NULL;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl((int)fd, TIOCSWINSZ, &ws) != 0)
    throw_sys(env, errno, "ioctl", NULL, NULL, "%d, TIOCSWINSZ, %lldx%lld", (int)fd, (long long)rows, (long long)cols);
  return NULL;
}
