/* Helpers shared by vmsilo-run, vmsilo-agent and vmsilo-vsock-proxy. */
#ifndef VMSILO_COMMON_H
#define VMSILO_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
/* AF_VSOCK addresses: the agent checks its peer's port, the proxy binds a privileged one. */
#if defined(__has_include)
#if __has_include(<linux/vm_sockets.h>)
#include <linux/vm_sockets.h>
#define HAVE_VM_SOCKETS_H 1
#endif
#endif
#ifndef HAVE_VM_SOCKETS_H
/* The kernel ABI (linux/vm_sockets.h), for libcs built without kernel headers (Debian's musl-gcc). */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct sockaddr_vm {
  sa_family_t svm_family;
  unsigned short svm_reserved1;
  unsigned int svm_port;
  unsigned int svm_cid;
  unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short) - 2 * sizeof(unsigned int)];
};
#define VMADDR_CID_ANY (-1U)
#endif

/* The program name used as the prefix of every message (set from argv[0]). */
extern const char *prog;
void set_prog(const char *argv0);
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* Milliseconds left until `deadline` (0 when past); -1 when deadline < 0 (none). */
int remaining_ms(int64_t deadline);

int set_nonblock(int fd);
/* Write all of p, waiting with poll() when the descriptor is non-blocking. 0, or -1 with errno. */
int write_all(int fd, const void *p, size_t n);
/* Same, on a socket, without SIGPIPE; gives up at `deadline` (-1: none) with ETIMEDOUT. */
int send_all(int fd, const void *p, size_t n, int64_t deadline);

/* A decimal number of at most `max`, digits only (no sign, no space): 0, or -1. */
int parse_ulong(const char *s, unsigned long max, unsigned long *out);

uint32_t get_be32(const unsigned char *p);
void put_be32(unsigned char *p, uint32_t v);

/* A byte buffer: data lives in p[off, off+len). */
struct buf {
  unsigned char *p;
  size_t off, len, cap;
};
void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* Bytes that can still be appended (after compaction). */
size_t buf_room(const struct buf *b);
/* Make room at the end by moving the data to the front; grow to at least `need` free bytes. */
void buf_reserve(struct buf *b, size_t need);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
/* Append a frame (header + payload). */
void buf_frame(struct buf *b, unsigned type, const void *payload, size_t n);
/* Append the preamble of this protocol version. */
void buf_preamble(struct buf *b);
/* Append an ERROR frame with a printf-formatted message (cut at VMR_MAX_MESSAGE bytes). */
void buf_error(struct buf *b, unsigned code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Read once from fd into the buffer's free space (at most `max`). Returns read()'s result. */
ssize_t buf_read(struct buf *b, int fd, size_t max);
/* send() as much of the buffer as the socket takes now. 0, or -1 with errno (EAGAIN is not an error). */
int buf_send(struct buf *b, int fd);

void *xmalloc(size_t n);
/*
 * Bind the AF_VSOCK socket fd to a privileged port (below 1024), which a guest daemon requires of
 * host peers: each such port is tried once, from a point that differs per process, so that
 * concurrent callers rarely meet. 0, or -1 with errno and why (`who` names the caller in the hint
 * that binding needs CAP_NET_BIND_SERVICE); errno EADDRINUSE when every port is taken right now.
 */
int vsock_bind_privileged(int fd, const char *who, char *why, size_t whylen);
/* A listening unix stream socket at path (a stale socket there is replaced); says why on failure
 * and returns -2 when the path is too long, -1 on any other error. */
int unix_listen(const char *path);
/* The one listening socket systemd passes with Accept=no (fd 3, sd_listen_fds(3)), made
 * close-on-exec and its LISTEN_* variables cleared; -1 (having said why) when it is not ours. */
int systemd_listen_fd(void);
/* Accept on lfd for ever, one child process per connection, which exits with serve_one(cfd, ctx);
 * cfd is close-on-exec. Returns 1 when accept fails. */
int accept_fork_loop(int lfd, int (*serve_one)(int cfd, void *ctx), void *ctx);

#endif
