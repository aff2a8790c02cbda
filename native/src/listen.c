/* listen.c: sockets for socket activation (ListenStream=, ListenDatagram=), bound to the
 * address forms of systemd.socket(5) and handed to services with spawn()'s `fds`. */
#include "keel_native.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  union { struct sockaddr sa; struct sockaddr_in in4; struct sockaddr_in6 in6; struct sockaddr_un un; } u;
  socklen_t len;
  bool bare_port; /* "8080": IPv6 any with dual stack, IPv4 any where IPv6 is missing */
  char text[128]; /* how errors name it: "127.0.0.1:80", "[::]:80", "/run/x.sock" */
} listen_addr;

static bool parse_port(const char *s, uint16_t *port) {
  size_t n = strspn(s, "0123456789");
  if (n == 0 || n > 5 || s[n]) return false;
  long v = strtol(s, NULL, 10);
  return v <= 65535 && (*port = (uint16_t)v, true);
}

static void set_in6(listen_addr *a, struct in6_addr ip, uint16_t port) {
  char host[INET6_ADDRSTRLEN];
  a->u.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = ip};
  a->len = sizeof a->u.in6;
  inet_ntop(AF_INET6, &ip, host, sizeof host);
  snprintf(a->text, sizeof a->text, "[%s]:%u", host, port);
}

static void set_in4(listen_addr *a, struct in_addr ip, uint16_t port) {
  char host[INET_ADDRSTRLEN];
  a->u.in4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip};
  a->len = sizeof a->u.in4;
  inet_ntop(AF_INET, &ip, host, sizeof host);
  snprintf(a->text, sizeof a->text, "%s:%u", host, port);
}

/* "HOST:PORT" with an IPv4 host or a bracketed IPv6 one ("[::1]:80"). */
static bool parse_host_port(const char *s, listen_addr *a) {
  char host[INET6_ADDRSTRLEN];
  uint16_t port;
  const char *colon = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
  if (!colon) return false;
  const char *start = s + (s[0] == '[');
  size_t n = (size_t)(colon - start);
  if (s[0] == '[' && *++colon != ':') return false;
  if (n >= sizeof host || !parse_port(colon + 1, &port)) return false;
  memcpy(host, start, n);
  host[n] = '\0';
  struct in6_addr ip6;
  struct in_addr ip4;
  if (s[0] == '[' && inet_pton(AF_INET6, host, &ip6) == 1) return set_in6(a, ip6, port), true;
  if (s[0] != '[' && inet_pton(AF_INET, host, &ip4) == 1) return set_in4(a, ip4, port), true;
  return false;
}

static bool parse_address(napi_env env, const char *s, listen_addr *a) {
  uint16_t port;
  memset(a, 0, sizeof *a);
  if (s[0] == '/' || s[0] == '@') {
    snprintf(a->text, sizeof a->text, "%s", s);
    return unix_addr(env, "listenSocket", "address", s, &a->u.un, &a->len);
  }
  if (parse_port(s, &port)) return a->bare_port = true, set_in6(a, in6addr_any, port), true;
  if (parse_host_port(s, a)) return true;
  char got[96];
  snprintf(got, sizeof got, "\"%.80s\"", s);
  return bad_value(env, "listenSocket", "address",
                   "a port, \"IPv4:port\", \"[IPv6]:port\", an absolute path or \"@name\"", got);
}

/* socket(2) for the address; a bare port falls back to IPv4 when the kernel has no IPv6
 * at all (ipv6.disable=1 answers EAFNOSUPPORT; disable_ipv6 sysctls still allow the socket). */
static int open_socket(napi_env env, listen_addr *a, int type) {
  int fd = socket(a->u.sa.sa_family, type | SOCK_CLOEXEC, 0);
  if (fd < 0 && errno == EAFNOSUPPORT && a->bare_port) {
    set_in4(a, (struct in_addr){htonl(INADDR_ANY)}, ntohs(a->u.in6.sin6_port));
    fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) throw_sys(env, errno, "socket", NULL, NULL, "%s", a->text);
  return fd;
}

static bool set_opt(napi_env env, int fd, const listen_addr *a, int level, int opt, int value, const char *name) {
  if (setsockopt(fd, level, opt, &value, sizeof value) == 0) return true;
  throw_sys(env, errno, "setsockopt", NULL, NULL, "%s, %s", a->text, name);
  return false;
}

/* Options before bind: SO_REUSEADDR lets a restarted listener bind over old TIME_WAIT
 * connections; a bare port clears IPV6_V6ONLY, whose default is the bindv6only sysctl. */
static bool configure(napi_env env, int fd, const listen_addr *a, int type) {
  int family = a->u.sa.sa_family;
  if (family != AF_UNIX && type == SOCK_STREAM &&
      !set_opt(env, fd, a, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"))
    return false;
  return !(family == AF_INET6 && a->bare_port) || set_opt(env, fd, a, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY, 0");
}

/* Before listen(2), so that no one connects while the file still has its first owner. */
static bool chown_socket(napi_env env, const char *address, int64_t uid, int64_t gid) {
  if ((uid < 0 && gid < 0) || address[0] != '/') return true;
  if (lchown(address, (uid_t)uid, (gid_t)gid) == 0) return true;
  throw_sys(env, errno, "lchown", address, NULL, "%s, %lld, %lld", address, (long long)uid, (long long)gid);
  return false;
}

static bool bind_listen(napi_env env, int fd, const listen_addr *a, int type, const char *address,
                        mode_t mode, int backlog, int64_t uid, int64_t gid) {
  if (a->u.sa.sa_family == AF_UNIX) {
    if (!bind_unix(env, fd, address, &a->u.un, a->len, mode) || !chown_socket(env, address, uid, gid)) return false;
  } else if (bind(fd, &a->u.sa, a->len) < 0) {
    throw_sys(env, errno, "bind", NULL, NULL, "%s", a->text);
    return false;
  }
  if (type != SOCK_STREAM || listen(fd, backlog) == 0) return true;
  throw_sys(env, errno, "listen", NULL, NULL, "%s, %d", a->text, backlog);
  return false;
}

/* An optional integer option of listenSocket in [min, max]; *out keeps its default when unset. */
static bool opt_in(napi_env env, napi_value opts, const char *key, int64_t min, int64_t max, int64_t *out) {
  napi_value v;
  bool has;
  return get_prop(env, opts, key, &v, &has) && (!has || get_int_in(env, v, "listenSocket", key, min, max, out));
}

/* Options: mode of a unix socket file (default 0666), listen backlog (default SOMAXCONN), owner
 * and group of the socket file (SocketUser=, SocketGroup=; default -1, left as created). */
static bool listen_opts(napi_env env, napi_value opts, int64_t *mode, int64_t *backlog, int64_t *uid, int64_t *gid) {
  *mode = 0666, *backlog = SOMAXCONN, *uid = -1, *gid = -1;
  if (is_nullish(env, opts)) return true;
  return opt_in(env, opts, "mode", 0, 07777, mode) && opt_in(env, opts, "backlog", 0, INT32_MAX, backlog) &&
         opt_in(env, opts, "uid", 0, UINT32_MAX - 1, uid) && opt_in(env, opts, "gid", 0, UINT32_MAX - 1, gid);
}

/* A bound (and, for streams, listening) CLOEXEC socket in the kernel's default blocking mode. */
napi_value js_listen_socket(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *kind = NULL, *address = NULL;
  int64_t mode, backlog, uid, gid;
  listen_addr a;
  napi_value result = NULL;
  if (!get_str(env, argv[0], "listenSocket", "kind", false, &kind) ||
      !get_str(env, argv[1], "listenSocket", "address", false, &address) ||
      !listen_opts(env, argv[2], &mode, &backlog, &uid, &gid))
    goto out;
  int type = strcmp(kind, "stream") == 0 ? SOCK_STREAM : strcmp(kind, "dgram") == 0 ? SOCK_DGRAM : -1;
  if (type < 0) {
    char got[48];
    snprintf(got, sizeof got, "\"%.32s\"", kind);
    bad_value(env, "listenSocket", "kind", "\"stream\" or \"dgram\"", got);
    goto out;
  }
  if (!parse_address(env, address, &a)) goto out;
  int fd = open_socket(env, &a, type);
  if (fd < 0) goto out;
  if (configure(env, fd, &a, type) && bind_listen(env, fd, &a, type, address, (mode_t)mode, (int)backlog, uid, gid))
    napi_create_int32(env, fd, &result);
  else
    close(fd);
out:
  free(kind), free(address);
  return result;
}

/* getsockname(2)'s port of an IPv4 or IPv6 socket (to learn what port 0 was given). */
napi_value js_local_port(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  napi_value result = NULL;
  if (!get_int_in(env, argv[0], "localPort", "fd", 0, INT32_MAX, &fd)) return NULL;
  if (getsockname((int)fd, (struct sockaddr *)&ss, &len) < 0)
    throw_sys(env, errno, "getsockname", NULL, NULL, "%d", (int)fd);
  else if (ss.ss_family == AF_INET)
    napi_create_uint32(env, ntohs(((struct sockaddr_in *)&ss)->sin_port), &result);
  else if (ss.ss_family == AF_INET6)
    napi_create_uint32(env, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), &result);
  else /* a unix socket has no port */
    throw_sys(env, EAFNOSUPPORT, "getsockname", NULL, NULL, "%d", (int)fd);
  return result;
}

/* An address as text and port into obj[KEY + "Address"] and obj[KEY + "Port"]. */
static void set_addr(napi_env env, napi_value obj, const char *addr_key, const char *port_key,
                     const struct sockaddr_storage *ss) {
  char host[INET6_ADDRSTRLEN] = "";
  unsigned port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host), port = ntohs(in->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host), port = ntohs(in6->sin6_port);
  }
  set_str(env, obj, addr_key, host);
  set_num(env, obj, port_key, port);
}

/* accept4(2) of one connection (CLOEXEC, blocking whatever the listener's O_NONBLOCK), with both
 * ends' addresses for naming the service instance (Accept=yes); null when none is pending. */
napi_value js_accept(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t lfd;
  napi_value result = NULL;
  if (!get_int_in(env, argv[0], "accept", "fd", 0, INT32_MAX, &lfd)) return NULL;
  int fd;
  do fd = accept4((int)lfd, NULL, NULL, SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return napi_get_null(env, &result), result;
  if (fd < 0) return throw_sys(env, errno, "accept4", NULL, NULL, "%d, SOCK_CLOEXEC", (int)lfd), NULL;
  struct sockaddr_storage local, remote;
  socklen_t llen = sizeof local, rlen = sizeof remote;
  memset(&local, 0, sizeof local), memset(&remote, 0, sizeof remote);
  if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0 || getpeername(fd, (struct sockaddr *)&remote, &rlen) < 0) {
    /* A peer may already be gone (ENOTCONN); the connection is then still ours to hand on. */
    remote.ss_family = local.ss_family;
  }
  napi_create_object(env, &result);
  set_num(env, result, "fd", fd);
  int f = local.ss_family;
  set_str(env, result, "family", f == AF_INET ? "inet" : f == AF_INET6 ? "inet6" : f == AF_UNIX ? "unix" : "other");
  set_addr(env, result, "localAddress", "localPort", &local);
  set_addr(env, result, "remoteAddress", "remotePort", &remote);
  return result;
}
