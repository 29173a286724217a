/*
 * vmsilo-vsock-proxy: host side of one vm-run connection (docs/protocol.md, "Host proxy").
 *
 *   vmsilo-vsock-proxy [--timeout SECONDS] [--listen-unix SOCKET | --listen-systemd] (--vsock CID:PORT | --hybrid PATH:PORT | --unix PATH)
 *
 * The client connection is stdin/stdout (systemd Accept=yes, StandardInput=socket); with --listen-unix
 * or --listen-systemd (systemd Accept=no, the listening socket as fd 3) it accepts connections itself
 * and forks one child per connection, which then does exactly the same. Connects to the
 * guest agent, retrying until the deadline only while the connection itself fails (nothing of the
 * session has been sent yet), then copies bytes both ways until both directions are closed; each
 * end-of-stream is passed on as a half-close. A started session is never re-sent (ORIGINAL E.3.5).
 * A client that hangs up completely ends the proxy at once, whatever the guest does.
 *
 * --vsock   AF_VSOCK to CID:PORT (crosvm, qemu: vhost-vsock), from a privileged source port (the
 *           guest agent refuses others; binding one needs CAP_NET_BIND_SERVICE)
 * --hybrid  cloud-hypervisor hybrid vsock: connect to the unix socket PATH, send "CONNECT PORT\n",
 *           expect a line starting "OK", then splice
 * --unix    a unix stream socket (a stand-in transport for tests)
 *
 * When the agent cannot be reached it answers the client itself: the protocol preamble and an ERROR
 * frame (code 5, unreachable) naming the target, the real time waited and the last error. Exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "common.h"
#include "parse.h"
#include "protocol.h"

/* The deadline for reaching the agent when --timeout is not given (the generator passes startTimeout). */
#define DEFAULT_TIMEOUT_S 30
/* Pause between connection attempts: doubles from the first to the last value. */
#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 200
#define SPLICE_BUF (256u * 1024u)

enum transport { T_NONE, T_VSOCK, T_HYBRID, T_UNIX };

static enum transport transport = T_NONE;
static unsigned long cid, port;
static char path[PATH_MAX];
static char target[PATH_MAX + 64];

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [--timeout SECONDS] [--listen-unix SOCKET | --listen-systemd] (--vsock CID:PORT | --hybrid PATH:PORT | --unix PATH)\n"
          "Connects the connection on stdin/stdout (or each connection accepted on SOCKET, or on the\n"
          "socket systemd passes with Accept=no) to the guest agent and copies bytes both ways.\n"
          "Retries only failed connection attempts, until SECONDS (default %d) have passed.\n",
          prog, DEFAULT_TIMEOUT_S);
}

/* Errors that mean "not there yet": the VM is booting, the agent not yet listening, the socket not yet bound. */
static int retryable(int err) {
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ENOENT:
    case ENODEV:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EAGAIN:
    case EPIPE:
      return 1;
    default:
      return 0;
  }
}

struct attempt {
  int fd;          /* the connected socket, or -1 */
  int err;         /* errno of a failure */
  int fatal;       /* do not retry */
  char what[600];  /* description of a failure */
  unsigned char early[HANDSHAKE_LINE_MAX]; /* bytes that followed the OK line */
  size_t nearly;
};

static int connect_nb(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline) {
  if (connect(fd, sa, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return -1;
  struct pollfd pf = {.fd = fd, .events = POLLOUT};
  for (;;) {
    int r = poll(&pf, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    break;
  }
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -1;
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

/* cloud-hypervisor hybrid vsock: "CONNECT <port>\n", then a line "OK <host port>\n". */
static void handshake(struct attempt *a, int64_t deadline) {
  char req[32];
  int n = snprintf(req, sizeof req, "CONNECT %lu\n", port);
  if (send_all(a->fd, req, (size_t)n, deadline) < 0) {
    a->err = errno;
    a->fatal = !retryable(errno);
    snprintf(a->what, sizeof a->what, "sending CONNECT %lu: %s", port, strerror(errno));
    return;
  }
  unsigned char line[HANDSHAKE_LINE_MAX];
  size_t got = 0;
  for (;;) {
    struct pollfd pf = {.fd = a->fd, .events = POLLIN};
    int r = poll(&pf, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      a->err = ETIMEDOUT;
      snprintf(a->what, sizeof a->what, "no answer to CONNECT %lu", port);
      return;
    }
    ssize_t rd = read(a->fd, line + got, sizeof line - got);
    if (rd < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (rd <= 0) {
      /* The muxer closes the stream when the guest refuses the port: the agent is not listening yet. */
      a->err = rd < 0 ? errno : ECONNRESET;
      a->fatal = !retryable(a->err);
      snprintf(a->what, sizeof a->what, "the hybrid vsock socket closed the stream before answering CONNECT %lu (%s)", port, rd < 0 ? strerror(errno) : "guest port not listening yet?");
      return;
    }
    got += (size_t)rd;
    char why[300];
    long linelen = handshake_answer(line, got, why, sizeof why);
    if (linelen == 0) continue;
    if (linelen < 0) {
      a->fatal = 1;
      snprintf(a->what, sizeof a->what, "CONNECT %lu: %s", port, why);
      return;
    }
    a->nearly = got - (size_t)linelen;
    memcpy(a->early, line + linelen, a->nearly);
    return;
  }
}

/*
 * The guest agent accepts only peers on a privileged port (docs/protocol.md): bind one, trying each
 * port below 1024 once from a point that differs per process, so that concurrent proxies rarely meet.
 */
static int bind_privileged(struct attempt *a) {
  if (vsock_bind_privileged(a->fd, "the proxy", a->what, sizeof a->what) == 0) return 0;
  a->err = errno;
  /* Every privileged port taken by other connections right now: they end, so try again. */
  a->fatal = errno != EADDRINUSE;
  return -1;
}

static void try_connect(struct attempt *a, int64_t deadline) {
  a->err = 0;
  a->fatal = 0;
  a->what[0] = '\0';
  a->nearly = 0;
  int family = transport == T_VSOCK ? AF_VSOCK : AF_UNIX;
  a->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (a->fd < 0) {
    a->err = errno;
    a->fatal = 1;
    snprintf(a->what, sizeof a->what, "socket: %s", strerror(errno));
    return;
  }
  int r;
  if (transport == T_VSOCK) {
    if (bind_privileged(a) < 0) {
      close(a->fd);
      a->fd = -1;
      return;
    }
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)cid, .svm_port = (unsigned)port};
    r = connect_nb(a->fd, (struct sockaddr *)&sa, sizeof sa, deadline);
  } else {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    r = connect_nb(a->fd, (struct sockaddr *)&sa, sizeof sa, deadline);
  }
  if (r < 0) {
    a->err = errno;
    a->fatal = !retryable(errno);
    snprintf(a->what, sizeof a->what, "connect: %s", strerror(errno));
  } else if (transport == T_HYBRID) {
    handshake(a, deadline);
  }
  if (a->err || a->fatal) {
    close(a->fd);
    a->fd = -1;
  }
}

/* A client that has closed its connection completely (not just its sending side) is gone. */
static int client_gone(short revents) { return (revents & (POLLHUP | POLLERR)) != 0; }

/* Pause between attempts; ends the process when the client hangs up meanwhile. */
static void pause_ms(int ms) {
  struct pollfd pf = {.fd = STDOUT_FILENO, .events = 0};
  if (poll(&pf, 1, ms) > 0 && client_gone(pf.revents)) {
    msg("the client hung up before the guest agent was reached");
    exit(0);
  }
}

/* Tell the client, in the protocol, why there is no agent; then exit 1. */
static _Noreturn void unreachable(const char *text) {
  msg("%s", text);
  struct buf b;
  buf_init(&b, 64 + VMR_MAX_MESSAGE);
  buf_preamble(&b);
  buf_error(&b, VMR_E_UNREACHABLE, "%s", text);
  (void)send_all(STDOUT_FILENO, b.p + b.off, b.len, now_ms() + 2000);
  exit(1);
}

/* ---- splicing ---- */

struct dir {
  int from, to;
  unsigned char *buf;
  size_t off, len;
  int eof;  /* the source ended (or failed) */
  int done; /* the end was passed on */
};

static void pass_on_end(struct dir *d) {
  if (d->done) return;
  d->done = 1;
  if (shutdown(d->to, SHUT_WR) < 0 && errno == ENOTSOCK) close(d->to);
}

static void pump(struct dir *d, short rev_from, short rev_to) {
  if (!d->eof && d->len == 0 && rev_from) {
    ssize_t r = read(d->from, d->buf, SPLICE_BUF);
    if (r > 0) {
      d->off = 0;
      d->len = (size_t)r;
    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
      d->eof = 1;
    }
  }
  if (d->len > 0 && (rev_to || rev_from)) {
    ssize_t w = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = write(d->to, d->buf + d->off, d->len);
    if (w > 0) {
      d->off += (size_t)w;
      d->len -= (size_t)w;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      /* The receiver is gone: drop this direction. */
      d->len = 0;
      d->eof = 1;
    }
  }
  if (d->eof && d->len == 0) pass_on_end(d);
}

static int splice_loop(int guest, const unsigned char *early, size_t nearly) {
  set_nonblock(STDIN_FILENO);
  set_nonblock(STDOUT_FILENO);
  struct dir up = {.from = STDIN_FILENO, .to = guest, .buf = xmalloc(SPLICE_BUF)};
  struct dir down = {.from = guest, .to = STDOUT_FILENO, .buf = xmalloc(SPLICE_BUF)};
  memcpy(down.buf, early, nearly);
  down.len = nearly;
  while (!(up.done && down.done)) {
    struct pollfd pf[5];
    nfds_t n = 0;
    int iu_f = -1, iu_t = -1, id_f = -1, id_t = -1, ic = -1;
    if (!up.done) {
      if (!up.eof && up.len == 0) iu_f = (int)n, pf[n++] = (struct pollfd){.fd = up.from, .events = POLLIN};
      if (up.len > 0) iu_t = (int)n, pf[n++] = (struct pollfd){.fd = up.to, .events = POLLOUT};
    }
    if (!down.done) {
      if (!down.eof && down.len == 0) id_f = (int)n, pf[n++] = (struct pollfd){.fd = down.from, .events = POLLIN};
      if (down.len > 0) id_t = (int)n, pf[n++] = (struct pollfd){.fd = down.to, .events = POLLOUT};
    }
    if (n == 0) {
      pump(&up, 0, 0);
      pump(&down, 0, 0);
      continue;
    }
    /* Whatever else is polled, a client that hangs up ends the session: a guest that stays silent
     * must not keep this process (and a connection slot of the command socket) for ever. */
    if (!down.done) ic = (int)n, pf[n++] = (struct pollfd){.fd = STDOUT_FILENO, .events = 0};
    if (poll(pf, n, -1) < 0) {
      if (errno == EINTR) continue;
      msg("poll: %s", strerror(errno));
      return 1;
    }
    /* (Silently: a client may close as soon as it has the exit status, before the agent's end arrives.) */
    if (ic >= 0 && client_gone(pf[ic].revents)) return 0;
    pump(&up, iu_f >= 0 ? pf[iu_f].revents : 0, iu_t >= 0 ? pf[iu_t].revents : 0);
    pump(&down, id_f >= 0 ? pf[id_f].revents : 0, id_t >= 0 ? pf[id_t].revents : 0);
  }
  return 0;
}

/* One connection, on stdin and stdout: reach the agent, then splice. */
static int proxy_one(unsigned long timeout_s) {
  int64_t start = now_ms();
  int64_t deadline = start + (int64_t)timeout_s * 1000;
  struct attempt a;
  int attempts = 0, pause = RETRY_FIRST_MS;
  for (;;) {
    attempts++;
    try_connect(&a, deadline);
    if (a.fd >= 0) break;
    int left = remaining_ms(deadline);
    if (a.fatal || left == 0) {
      char text[2048];
      double waited = (double)(now_ms() - start) / 1000.0;
      if (a.fatal)
        snprintf(text, sizeof text, "cannot reach the guest agent at %.300s: %.600s", target, a.what);
      else
        snprintf(text, sizeof text, "gave up reaching the guest agent at %.300s after %.1f s and %d attempts (timeout %lu s); last error: %.600s", target, waited, attempts, timeout_s, a.what);
      unreachable(text);
    }
    pause_ms(pause < left ? pause : left);
    if (pause < RETRY_MAX_MS) pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
  }
  return splice_loop(a.fd, a.early, a.nearly);
}

/* One forked connection of the listening modes: the connection becomes stdin and stdout. */
static int proxy_connection(int cfd, void *ctx) {
  dup2(cfd, STDIN_FILENO);
  dup2(cfd, STDOUT_FILENO);
  if (cfd > STDOUT_FILENO) close(cfd);
  return proxy_one(*(const unsigned long *)ctx);
}

static int listen_unix(const char *lpath, unsigned long timeout_s) {
  int lfd = unix_listen(lpath);
  if (lfd == -2) return 2;
  if (lfd < 0) return 1;
  return accept_fork_loop(lfd, proxy_connection, &timeout_s);
}

/* systemd socket activation with Accept=no: the listening socket is fd 3 (sd_listen_fds(3)). */
static int listen_systemd(unsigned long timeout_s) {
  int lfd = systemd_listen_fd();
  return lfd < 0 ? 1 : accept_fork_loop(lfd, proxy_connection, &timeout_s);
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  unsigned long timeout_s = DEFAULT_TIMEOUT_S;
  const char *listen_path = NULL;
  int listen_sd = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--listen-systemd") == 0) {
      listen_sd = 1;
      continue;
    }
    if (v == NULL) {
      msg("%s: missing value", a);
      usage(stderr);
      return 2;
    }
    i++;
    if (strcmp(a, "--listen-unix") == 0) {
      listen_path = v;
      continue;
    }
    if (strcmp(a, "--timeout") == 0) {
      if (parse_ulong(v, 86400, &timeout_s) < 0) {
        msg("--timeout %s: expected whole seconds from 0 to 86400", v);
        return 2;
      }
      continue;
    }
    if (transport != T_NONE) {
      msg("give exactly one of --vsock, --hybrid, --unix");
      return 2;
    }
    if (strcmp(a, "--vsock") == 0) {
      const char *colon = strchr(v, ':');
      char c[32];
      if (colon == NULL || (size_t)(colon - v) >= sizeof c) goto bad_target;
      memcpy(c, v, (size_t)(colon - v));
      c[colon - v] = '\0';
      if (parse_ulong(c, 0xfffffffeUL, &cid) < 0 || parse_ulong(colon + 1, 0xfffffffeUL, &port) < 0) goto bad_target;
      transport = T_VSOCK;
      snprintf(target, sizeof target, "vsock CID %lu port %lu", cid, port);
    } else if (strcmp(a, "--hybrid") == 0) {
      const char *colon = strrchr(v, ':');
      if (colon == NULL || (size_t)(colon - v) >= sizeof((struct sockaddr_un *)0)->sun_path || colon == v) goto bad_target;
      memcpy(path, v, (size_t)(colon - v));
      path[colon - v] = '\0';
      if (parse_ulong(colon + 1, 0xfffffffeUL, &port) < 0) goto bad_target;
      transport = T_HYBRID;
      snprintf(target, sizeof target, "port %lu through the hybrid vsock socket %s", port, path);
    } else if (strcmp(a, "--unix") == 0) {
      if (*v == '\0' || strlen(v) >= sizeof((struct sockaddr_un *)0)->sun_path) goto bad_target;
      strcpy(path, v);
      transport = T_UNIX;
      snprintf(target, sizeof target, "unix socket %s", path);
    } else {
      msg("bad argument: %s", a);
      usage(stderr);
      return 2;
    }
    continue;
  bad_target:
    msg("%s %s: expected %s", a, v, strcmp(a, "--vsock") == 0 ? "CID:PORT" : strcmp(a, "--hybrid") == 0 ? "PATH:PORT (PATH shorter than 108 bytes)" : "a PATH shorter than 108 bytes");
    return 2;
  }
  if (transport == T_NONE) {
    usage(stderr);
    return 2;
  }

  if (listen_path) return listen_unix(listen_path, timeout_s);
  if (listen_sd) return listen_systemd(timeout_s);
  return proxy_one(timeout_s);
}
