#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

const char *prog = "vmsilo";

void set_prog(const char *argv0) {
  if (argv0 == NULL || *argv0 == '\0') return;
  const char *slash = strrchr(argv0, '/');
  prog = slash ? slash + 1 : argv0;
}

void msg(const char *fmt, ...) {
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* One write, so that concurrent writers to the journal do not interleave. */
  char out[8400];
  int m = snprintf(out, sizeof out, "%s: %s\n", prog, line);
  if (m > 0) (void)write_all(STDERR_FILENO, out, (size_t)m < sizeof out ? (size_t)m : sizeof out - 1);
}

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int remaining_ms(int64_t deadline) {
  if (deadline < 0) return -1;
  int64_t left = deadline - now_ms();
  if (left <= 0) return 0;
  return left > 1000000000 ? 1000000000 : (int)left;
}

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int wait_fd(int fd, short events, int timeout) {
  struct pollfd pfd = {.fd = fd, .events = events};
  for (;;) {
    int r = poll(&pfd, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
  }
}

int write_all(int fd, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (wait_fd(fd, POLLOUT, -1) < 0) return -1;
        continue;
      }
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static ssize_t send_or_write(int fd, const void *p, size_t n) {
  ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
  if (w < 0 && errno == ENOTSOCK) w = write(fd, p, n);
  return w;
}

int send_all(int fd, const void *p, size_t n, int64_t deadline) {
  const unsigned char *c = p;
  while (n > 0) {
    ssize_t w = send_or_write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int left = remaining_ms(deadline);
        if (left == 0) {
          errno = ETIMEDOUT;
          return -1;
        }
        if (wait_fd(fd, POLLOUT, left) < 0) return -1;
        continue;
      }
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    msg("out of memory (%zu bytes)", n);
    _exit(VMR_STATUS_FAILURE);
  }
  return p;
}

void buf_init(struct buf *b, size_t cap) {
  b->p = xmalloc(cap);
  b->off = b->len = 0;
  b->cap = cap;
}

void buf_free(struct buf *b) {
  free(b->p);
  b->p = NULL;
  b->off = b->len = b->cap = 0;
}

size_t buf_room(const struct buf *b) { return b->cap - b->len; }

void buf_reserve(struct buf *b, size_t need) {
  if (b->off + b->len + need <= b->cap) return;
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len);
    b->off = 0;
  }
  if (b->len + need > b->cap) {
    size_t cap = b->cap * 2;
    if (cap < b->len + need) cap = b->len + need;
    unsigned char *n = realloc(b->p, cap);
    if (n == NULL) {
      msg("out of memory (%zu bytes)", cap);
      _exit(VMR_STATUS_FAILURE);
    }
    b->p = n;
    b->cap = cap;
  }
}

void buf_append(struct buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->off + b->len, p, n);
  b->len += n;
}

void buf_consume(struct buf *b, size_t n) {
  b->off += n;
  b->len -= n;
  if (b->len == 0) b->off = 0;
}

void buf_frame(struct buf *b, unsigned type, const void *payload, size_t n) {
  unsigned char h[VMR_HEADER_LEN];
  h[0] = (unsigned char)type;
  put_be32(h + 1, (uint32_t)n);
  buf_reserve(b, sizeof h + n);
  buf_append(b, h, sizeof h);
  if (n) buf_append(b, payload, n);
}

void buf_preamble(struct buf *b) {
  const unsigned char p[VMR_PREAMBLE_LEN] = {'V', 'M', 'R', VMR_VERSION};
  buf_append(b, p, sizeof p);
}

void buf_error(struct buf *b, unsigned code, const char *fmt, ...) {
  char text[1 + VMR_MAX_MESSAGE + 1];
  text[0] = (char)code;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text + 1, VMR_MAX_MESSAGE + 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((unsigned)n > VMR_MAX_MESSAGE) n = VMR_MAX_MESSAGE;
  buf_frame(b, VMR_ERROR, text, 1 + (size_t)n);
}

ssize_t buf_read(struct buf *b, int fd, size_t max) {
  buf_reserve(b, max);
  ssize_t r;
  do r = read(fd, b->p + b->off + b->len, max);
  while (r < 0 && errno == EINTR);
  if (r > 0) b->len += (size_t)r;
  return r;
}

int buf_send(struct buf *b, int fd) {
  while (b->len > 0) {
    ssize_t w = send_or_write(fd, b->p + b->off, b->len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    buf_consume(b, (size_t)w);
  }
  return 0;
}

int vsock_bind_privileged(int fd, const char *who, char *why, size_t whylen) {
  const unsigned n = VMR_FIRST_UNPRIVILEGED_PORT - 1;
  unsigned start = (unsigned)getpid() % n;
  for (unsigned i = 0; i < n; i++) {
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 1 + (start + i) % n};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return 0;
    if (errno != EADDRINUSE) {
      int err = errno;
      snprintf(why, whylen, "bind to the privileged vsock port %u: %s%s%s%s", sa.svm_port, strerror(err), err == EACCES ? " (" : "", err == EACCES ? who : "",
               err == EACCES ? " needs CAP_NET_BIND_SERVICE)" : "");
      errno = err;
      return -1;
    }
  }
  snprintf(why, whylen, "bind: every privileged vsock port (1 to %u) is in use", n);
  errno = EADDRINUSE;
  return -1;
}

int unix_listen(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    msg("socket path too long: %s", path);
    return -2;
  }
  strcpy(sa.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0) {
    msg("cannot listen on %s: %s", path, strerror(errno));
    if (lfd >= 0) close(lfd);
    return -1;
  }
  msg("listening on %s", path);
  return lfd;
}

int systemd_listen_fd(void) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid() || strcmp(fds, "1") != 0) {
    msg("--listen-systemd: expected exactly one socket from systemd (LISTEN_PID=%s LISTEN_FDS=%s)", pid ? pid : "unset", fds ? fds : "unset");
    return -1;
  }
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  fcntl(3, F_SETFD, FD_CLOEXEC);
  return 3;
}

int accept_fork_loop(int lfd, int (*serve_one)(int cfd, void *ctx), void *ctx) {
  /* Children are reaped by the kernel; each child restores SIGCHLD for what it starts itself. */
  struct sigaction sc = {.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT};
  sigaction(SIGCHLD, &sc, NULL);
  for (;;) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      msg("accept: %s", strerror(errno));
      return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(lfd);
      struct sigaction dfl = {.sa_handler = SIG_DFL};
      sigaction(SIGCHLD, &dfl, NULL);
      _exit(serve_one(cfd, ctx));
    }
    if (pid < 0) msg("fork: %s", strerror(errno));
    close(cfd);
  }
}

int parse_ulong(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  if (*s < '0' || *s > '9') return -1;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}
