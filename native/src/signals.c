/* signals.c: signals Node cannot name. The kernel only delivers to PID 1 the signals it handles,
 * and systemd's SIGRTMIN+3/+4/+5 (halt, poweroff, reboot) are not in Node's signal table; a tiny
 * C handler turns each into one byte on a pipe the event loop watches. */
#include "keel_native.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int pipe_w = -1, pipe_r = -1;

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  /* Async-signal-safe; a full pipe drops the byte, and a pending byte is enough. */
  if (write(pipe_w, &b, 1) < 0) { /* nothing to do */ }
  errno = saved;
}

/* signalPipe([sig...]): installs the handler for each signal; returns the read end (O_NONBLOCK),
 * on which each delivery appears as one byte holding the signal number. */
napi_value js_signal_pipe(napi_env env, napi_callback_info info) {
  ARGS(1);
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) return bad_arg(env, "signalPipe", "signals", "an array of signal numbers", argv[0]), NULL;
  if (pipe_r < 0) {
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return throw_sys(env, errno, "pipe2", NULL, NULL, "O_CLOEXEC|O_NONBLOCK"), NULL;
    pipe_r = p[0], pipe_w = p[1];
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    int64_t sig;
    napi_get_element(env, argv[0], i, &v);
    if (!get_int_in(env, v, "signalPipe", "signal", 1, 64, &sig)) return NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction((int)sig, &sa, NULL) < 0) return throw_sys(env, errno, "sigaction", NULL, NULL, "%d", (int)sig), NULL;
  }
  napi_value fd;
  napi_create_int32(env, pipe_r, &fd);
  return fd;
}
