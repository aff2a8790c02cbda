/* poll.c: watchFd, a readable-readiness watcher on Node's own event loop (a libuv uv_poll_t),
 * so PID 1 can sleep in epoll on fds Node has no class for (the sd_notify socket). */
#include "keel_native.h"

#include <stdlib.h>
#include <uv.h>

/* One watcher. Freed when the last of its owners lets go: the libuv handle (until its close
 * callback) and each of the three JS functions close/ref/unref (until garbage collected),
 * so none of them can ever touch freed memory, whatever the JS side keeps or drops. */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  int fd;
  int owners;
  bool closing;
} watcher;

static void release(watcher *w) {
  if (--w->owners == 0) free(w);
}

static void on_closed(uv_handle_t *handle) {
  watcher *w = handle->data;
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  /* Lets the environment finish exiting if it was waiting for us (see on_env_exit). */
  napi_remove_async_cleanup_hook(w->cleanup);
  release(w);
}

static void stop(watcher *w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

/* A worker thread (or Node itself) tearing down its environment with the watcher still open:
 * close the handle, or uv_loop_close would find it and abort the process. */
static void on_env_exit(napi_async_cleanup_hook_handle handle, void *arg) {
  stop(arg);
}

/* Runs the JS callback as Node runs its own I/O callbacks: napi_make_callback enters the
 * watcher's async context (so AsyncLocalStorage sees the store of watchFd's caller) and
 * runs the nextTick and promise jobs the callback queued right after it. */
static void on_readable(uv_poll_t *handle, int status, int events) {
  watcher *w = handle->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value fn, recv, exc;
  /* status < 0: libuv saw POLLERR, passes UV_EBADF and has stopped the handle for good;
   * the callback still runs, and its next read on the fd reports the actual error. */
  (void)status, (void)events;
  if (w->closing || napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, w->callback, &fn);
  napi_get_global(env, &recv); /* napi_make_callback converts `this` to an object; undefined throws */
  /* An exception thrown by the callback surfaces as 'uncaughtException', as for any I/O
   * callback, instead of staying pending in the env where nobody would see it. */
  if (fn && napi_make_callback(env, w->async, recv, fn, 0, NULL, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &exc) == napi_ok)
    napi_fatal_exception(env, exc);
  napi_close_handle_scope(env, scope);
}

static watcher *watcher_of(napi_env env, napi_callback_info info) {
  void *data = NULL;
  napi_get_cb_info(env, info, NULL, NULL, NULL, &data);
  return data;
}

/* close(): stop watching and free the handle; idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  stop(watcher_of(env, info));
  return NULL;
}

/* unref(): let the process exit while only this watcher is open (uv_unref). */
static napi_value js_unref(napi_env env, napi_callback_info info) {
  watcher *w = watcher_of(env, info);
  if (!w->closing) uv_unref((uv_handle_t *)&w->poll);
  return NULL;
}

/* ref(): keep the process alive while the watcher is open again (uv_ref; the default). */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  watcher *w = watcher_of(env, info);
  if (!w->closing) uv_ref((uv_handle_t *)&w->poll);
  return NULL;
}

static void on_function_gc(napi_env env, void *data, void *hint) {
  release(data);
}

/* Adds obj[name] = a function bound to w, which holds w until it is collected. */
static void add_method(napi_env env, napi_value obj, watcher *w, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, w, &fn);
  w->owners++;
  napi_add_finalizer(env, fn, w, on_function_gc, NULL, NULL);
  napi_set_named_property(env, obj, name, fn);
}

static void free_watcher(uv_handle_t *handle) {
  free(handle->data);
}

/* Starts the uv_poll_t; throws and returns false (w freed) on failure. */
static bool start(napi_env env, watcher *w) {
  uv_loop_t *loop;
  int fd = w->fd, r;
  napi_get_uv_event_loop(env, &loop);
  w->poll.data = w;
  /* uv_poll_init puts the fd in O_NONBLOCK mode, which the whole open file description
   * shares. It fails with EEXIST when libuv already watches the fd (a net.Socket), and with
   * EPERM for a regular file, which epoll refuses (it is always readable). */
  if ((r = uv_poll_init(loop, &w->poll, fd)) < 0) {
    free(w);
    throw_sys(env, -r, "uv_poll_init", NULL, NULL, "%d", fd);
    return false;
  }
  if ((r = uv_poll_start(&w->poll, UV_READABLE, on_readable)) < 0) {
    uv_close((uv_handle_t *)&w->poll, free_watcher);
    throw_sys(env, -r, "uv_poll_start", NULL, NULL, "%d, UV_READABLE", fd);
    return false;
  }
  return true;
}

/* watchFd(fd, callback): calls callback whenever fd is readable, until close(). Like any
 * libuv handle, an open watcher keeps the event loop (and the process) alive unless unref'd. */
napi_value js_watch_fd(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t fd;
  napi_valuetype t = napi_undefined;
  if (!get_int_in(env, argv[0], "watchFd", "fd", 0, INT32_MAX, &fd)) return NULL;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return bad_arg(env, "watchFd", "callback", "a function", argv[1]), NULL;
  watcher *w = calloc(1, sizeof *w);
  if (!w) return no_memory(env), NULL;
  w->env = env, w->fd = (int)fd, w->owners = 1;
  if (!start(env, w)) return NULL;
  napi_value obj, name;
  napi_create_object(env, &obj);
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_create_string_utf8(env, "keel:watchFd", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, obj, name, &w->async);
  napi_add_async_cleanup_hook(env, on_env_exit, w, &w->cleanup);
  add_method(env, obj, w, "close", js_close);
  add_method(env, obj, w, "ref", js_ref);
  add_method(env, obj, w, "unref", js_unref);
  return obj;
}
