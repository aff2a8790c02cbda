/* sockets.c: pipes for child output and unix datagram sockets for the sd_notify protocol. */
#include "keel_native.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* pipe2(O_CLOEXEC): [read end, write end]. Node can own the read end as
 * `new net.Socket({ fd })`; libuv then sets O_NONBLOCK on it, which does not reach the
 * write end (each end is its own open file description), so the child writes blocking. */
napi_value js_pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    throw_sys(env, errno, "pipe2", NULL, NULL, "O_CLOEXEC");
    return NULL;
  }
  return fd_pair(env, fds);
}

napi_value fd_pair(napi_env env, const int fds[2]) {
  napi_value result, v;
  napi_create_array_with_length(env, 2, &result);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

bool unix_addr(napi_env env, const char *fn, const char *what, const char *path,
               struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(path);
  bool abstract = path[0] == '@';
  /* A path needs room for its terminating NUL. An abstract name ("@x" is a NUL byte and "x"
   * in sun_path) has none: it is exactly as long as addrlen says, so it must not count one. */
  if (!(path[0] == '/' || (abstract && n > 1)) || n > sizeof sa->sun_path - !abstract) {
    char got[160];
    snprintf(got, sizeof got, "\"%.120s\"%s", path, n > 120 ? "..." : "");
    return bad_value(env, fn, what, "an absolute path or \"@name\" (at most 107 bytes)", got);
  }
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path, n);
  if (abstract) sa->sun_path[0] = '\0';
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract);
  return true;
}

bool bind_unix(napi_env env, int fd, const char *path, const struct sockaddr_un *sa, socklen_t len,
               mode_t mode) {
  if (path[0] == '@') {
    if (bind(fd, (const struct sockaddr *)sa, len) == 0) return true;
    throw_sys(env, errno, "bind", NULL, NULL, "%s", path);
    return false;
  }
  /* A socket file outlives its socket; left over from the last boot it would make bind EADDRINUSE. */
  if (unlink(path) < 0 && errno != ENOENT) {
    throw_sys(env, errno, "unlink", path, NULL, "%s", path);
  } else if (bind(fd, (const struct sockaddr *)sa, len) < 0) {
    throw_sys(env, errno, "bind", path, NULL, "%s", path);
  } else if (chmod(path, mode) < 0) {
    /* bind creates the file as 0777 & ~umask; until this chmod, our umask decides who may connect. */
    throw_sys(env, errno, "chmod", path, NULL, "%s, 0%o", path, (unsigned)mode);
  } else {
    return true;
  }
  return false;
}

/* socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC) with SO_PASSCRED, bound to path. */
napi_value js_unix_dgram_socket(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = NULL;
  int64_t mode;
  struct sockaddr_un sa;
  socklen_t len;
  napi_value result = NULL;
  if (!get_str(env, argv[0], "unixDgramSocket", "path", false, &path) ||
      !get_int_in(env, argv[1], "unixDgramSocket", "mode", 0, 07777, &mode) ||
      !unix_addr(env, "unixDgramSocket", "path", path, &sa, &len))
    return free(path), NULL;
  int one = 1, fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_sys(env, errno, "socket", NULL, NULL, "AF_UNIX, SOCK_DGRAM");
  /* With SO_PASSCRED every datagram carries the sender's pid/uid/gid as the kernel saw them,
   * whether or not the sender attached any; sd_notify relies on that pid. Set before bind,
   * so not even the first datagram can arrive without them. */
  } else if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
    throw_sys(env, errno, "setsockopt", NULL, NULL, "%d, SO_PASSCRED", fd);
  } else if (bind_unix(env, fd, path, &sa, len, (mode_t)mode)) {
    napi_create_int32(env, fd, &result);
  }
  if (!result && fd >= 0) close(fd);
  free(path);
  return result;
}

/* Closes any fds a sender passed with SCM_RIGHTS, so no sender can make us leak fds. */
static void close_passed_fds(struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
      close(fd);
    }
  }
}

static napi_value datagram_object(napi_env env, struct msghdr *msg, const void *data, size_t len) {
  struct ucred cred = {0, (uid_t)-1, (gid_t)-1};
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof cred))
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
  napi_value result, buf;
  napi_create_object(env, &result);
  /* pid 0: no credentials, or a sender in a pid namespace we cannot see into. */
  set_num(env, result, "pid", cred.pid);
  set_num(env, result, "uid", cred.uid == (uid_t)-1 ? -1 : (double)cred.uid);
  set_num(env, result, "gid", cred.gid == (gid_t)-1 ? -1 : (double)cred.gid);
  napi_create_buffer_copy(env, len, len ? data : "", NULL, &buf);
  napi_set_named_property(env, result, "data", buf);
  return result;
}

/* The length of the next datagram without consuming it: MSG_PEEK|MSG_TRUNC returns the full
 * length even when it exceeds the buffer (for unix sockets since Linux 3.4). */
static ssize_t peek_size(int fd) {
  char probe;
  struct iovec iov = {&probe, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n;
}

/* recvmsg(2) of one datagram with its SCM_CREDENTIALS; never blocks: null when none is queued. */
napi_value js_recv_cred(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  napi_value result = NULL;
  if (!get_int_in(env, argv[0], "recvCred", "fd", 0, INT32_MAX, &fd)) return NULL;
  ssize_t n = peek_size((int)fd);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return napi_get_null(env, &result), result;
  if (n < 0) return throw_sys(env, errno, "recvmsg", NULL, NULL, "%d, MSG_PEEK", (int)fd), NULL;
  void *data = malloc((size_t)n + 1);
  if (!data) return no_memory(env), NULL;
  /* Room for the credentials only: fds passed alongside (SCM_RIGHTS) then do not fit, and the
   * kernel drops them (MSG_CTRUNC) rather than installing them in our table. */
  union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(struct ucred))]; } control;
  struct iovec iov = {data, (size_t)n};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  do n = recvmsg((int)fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    throw_sys(env, errno, "recvmsg", NULL, NULL, "%d", (int)fd);
  } else {
    close_passed_fds(&msg);
    result = datagram_object(env, &msg, data, (size_t)n);
  }
  free(data);
  return result;
}

/* sendto(2) of one datagram to a unix socket path ("/path" or "@abstract"), from a
 * fresh unbound socket; blocks while the receiver's queue is full, as sd_notify does. */
napi_value js_send_dgram(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = NULL, *str = NULL;
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  struct sockaddr_un sa;
  socklen_t salen;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (is_buffer) {
    napi_get_buffer_info(env, argv[1], &data, &len);
  } else if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) == napi_ok) {
    /* The data is not a path: NUL bytes are fine in it, so no get_str. */
    if (!(data = str = malloc(len + 1))) return no_memory(env), NULL;
    napi_get_value_string_utf8(env, argv[1], str, len + 1, &len);
  } else {
    return bad_arg(env, "sendDgram", "data", "a Buffer or a string", argv[1]), NULL;
  }
  if (get_str(env, argv[0], "sendDgram", "path", false, &path) && unix_addr(env, "sendDgram", "path", path, &sa, &salen)) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = -1;
    if (fd < 0) {
      throw_sys(env, errno, "socket", NULL, NULL, "AF_UNIX, SOCK_DGRAM");
    } else {
      do n = sendto(fd, len ? data : "", len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
      while (n < 0 && errno == EINTR);
      if (n < 0) throw_sys(env, errno, "sendto", path, NULL, "%s", path);
      close(fd);
    }
  }
  free(path), free(str);
  return NULL;
}

/* getsockopt(SO_PEERCRED): who is on the other end of a connected unix stream socket, as the
 * kernel recorded it at connect(2). The control socket lets anyone read and only root change. */
napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (!get_int_in(env, argv[0], "peerCred", "fd", 0, INT32_MAX, &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return throw_sys(env, errno, "getsockopt", NULL, NULL, "%d, SO_PEERCRED", (int)fd), NULL;
  napi_value obj;
  napi_create_object(env, &obj);
  set_num(env, obj, "pid", cred.pid);
  set_num(env, obj, "uid", cred.uid);
  set_num(env, obj, "gid", cred.gid);
  return obj;
}
