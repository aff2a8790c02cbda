/* console.c: the `console` option of spawn() (console.h), and the socket calls that carry a pty
 * master from the child to the caller: socketPair() and recvFd(). */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41) /* Linux 4.13 */
#endif

/* The slave without a path lookup where the kernel can (TIOCGPTPEER); else by its number under
 * /dev/pts, which is the devpts next to the ptmx we opened (pts/ptmx, or /dev/ptmx since 4.7). */
static int open_peer(int master) {
  int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0 || (errno != EINVAL && errno != ENOTTY)) return fd;
  unsigned n;
  if (ioctl(master, TIOCGPTN, &n) < 0) return -1;
  char path[32];
  snprintf(path, sizeof path, "/dev/pts/%u", n);
  return open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static int send_fd(int sock, int fd) {
  char byte = 'm';
  struct iovec iov = {&byte, 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t r;
  while ((r = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  return r == 1 ? 0 : -1;
}

void console_setup(const spawn_opts *o, int errfd, int sock) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) child_fail(errfd, CS_OPEN, errno, 0);
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) child_fail(errfd, CS_UNLOCK, errno, 0);
  int slave = open_peer(master);
  if (slave < 0) child_fail(errfd, CS_PEER, errno, 0);
  /* Before the program runs, so that it reads the caller's size from the start. */
  if (o->console_rows && o->console_cols) {
    struct winsize ws = {.ws_row = o->console_rows, .ws_col = o->console_cols};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) child_fail(errfd, CS_SIZE, errno, 0);
  }
  if (send_fd(sock, master) < 0) child_fail(errfd, CS_SEND, errno, 0);
  close(master);
  close(sock);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) child_fail(errfd, CS_CTTY, errno, 0);
  for (int i = 0; i < 3; i++)
    if (o->stdio[i] < 0 && dup2(slave, i) < 0) child_fail(errfd, CS_DUP2, errno, i);
  if (slave > 2) close(slave);
}

bool console_throw(napi_env env, const spawn_opts *o, const child_report *r) {
  int e = r->err;
  switch (r->step) {
  case CS_DUP: throw_sys(env, e, "fcntl", NULL, NULL, "%d, F_DUPFD_CLOEXEC (console)", o->console); break;
  case CS_OPEN: throw_sys(env, e, "open", "/dev/ptmx", NULL, "/dev/ptmx (inside)"); break;
  case CS_UNLOCK: throw_sys(env, e, "ioctl", "/dev/ptmx", NULL, "TIOCSPTLCK"); break;
  case CS_PEER: throw_sys(env, e, "ioctl", "/dev/ptmx", NULL, "TIOCGPTPEER"); break;
  case CS_SIZE: throw_sys(env, e, "ioctl", NULL, NULL, "TIOCSWINSZ, %ux%u", o->console_rows, o->console_cols); break;
  case CS_SEND: throw_sys(env, e, "sendmsg", NULL, NULL, "%d, SCM_RIGHTS (console)", o->console); break;
  case CS_CTTY: throw_sys(env, e, "ioctl", NULL, NULL, "TIOCSCTTY (console)"); break;
  case CS_DUP2: throw_sys(env, e, "dup2", NULL, NULL, "console, %d", r->arg); break;
  default: return false;
  }
  return true;
}

/* socketPair(): a connected AF_UNIX SOCK_STREAM pair, both CLOEXEC. */
napi_value js_socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return throw_sys(env, errno, "socketpair", NULL, NULL, "AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"), NULL;
  return fd_pair(env, fds);
}

/* recvFd(sock): the fd of one SCM_RIGHTS message (made CLOEXEC), or null when none is queued
 * (never blocks); throws if the message carried no fd. */
napi_value js_recv_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t sock;
  if (!get_int_in(env, argv[0], "recvFd", "fd", 0, INT_MAX, &sock)) return NULL;
  char byte;
  struct iovec iov = {&byte, 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  while ((n = recvmsg((int)sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  napi_value result;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return napi_get_null(env, &result), result;
  if (n < 0) return throw_sys(env, errno, "recvmsg", NULL, NULL, "%d, SCM_RIGHTS", (int)sock), NULL;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
    return throw_sys(env, EBADMSG, "recvmsg", NULL, NULL, "%d: %s", (int)sock, n == 0 ? "the other end closed without sending an fd" : "no fd in the message"), NULL;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  napi_create_int32(env, fd, &result);
  return result;
}
