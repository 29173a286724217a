/*
 * vmsilo-test-vsock: AF_VSOCK ends for the tests of the agent's peer-port rule (test/e2e/vsock-ports).
 *
 *   vmsilo-test-vsock listen PORT PROGRAM [ARG...]
 *       a stand-in for a systemd socket unit with Accept=no: listens on vsock PORT (any CID) and
 *       execs PROGRAM with the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID set (sd_listen_fds(3)).
 *   vmsilo-test-vsock connect CID:PORT SOURCE-PORT
 *       connects from SOURCE-PORT (0: the kernel's choice, which is never below 1024), then copies
 *       stdin to the connection and the connection to stdout until the peer closes. The end of stdin
 *       is not passed on (the vm-run protocol does not take a half-close as the end of input).
 *
 * Test use only. Exit status: 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int die(const char *what) {
  fprintf(stderr, "vmsilo-test-vsock: %s: %s\n", what, strerror(errno));
  return 1;
}

static int listen_exec(unsigned port, char **argv) {
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) return die("listen");
  if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0)) return die("dup2");
  char pid[32];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  setenv("LISTEN_PID", pid, 1);
  setenv("LISTEN_FDS", "1", 1);
  fprintf(stderr, "vmsilo-test-vsock: listening on vsock port %u\n", port);
  execvp(argv[0], argv);
  return die(argv[0]);
}

static int connect_copy(unsigned cid, unsigned port, unsigned source) {
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (fd < 0) return die("socket");
  if (source) {
    struct sockaddr_vm own = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = source};
    if (bind(fd, (struct sockaddr *)&own, sizeof own) < 0) return die("bind");
  }
  struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return die("connect");
  char buf[65536];
  int in_open = 1;
  for (;;) {
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    if (poll(pf, in_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return die("poll");
    }
    if (pf[0].revents) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return n < 0 ? die("read") : 0;
      if (write(STDOUT_FILENO, buf, (size_t)n) != n) return die("write");
    }
    if (in_open && pf[1].revents) {
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) in_open = 0;
      else if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
        /* A peer that refuses closes without reading: what it said before is still to be read. */
        if (errno != EPIPE && errno != ECONNRESET) return die("send");
        in_open = 0;
      }
    }
  }
}

int main(int argc, char **argv) {
  unsigned cid, port, source;
  if (argc >= 4 && strcmp(argv[1], "listen") == 0 && sscanf(argv[2], "%u", &port) == 1) return listen_exec(port, argv + 3);
  if (argc == 4 && strcmp(argv[1], "connect") == 0 && sscanf(argv[2], "%u:%u", &cid, &port) == 2 && sscanf(argv[3], "%u", &source) == 1)
    return connect_copy(cid, port, source);
  fprintf(stderr, "usage: vmsilo-test-vsock listen PORT PROGRAM [ARG...] | connect CID:PORT SOURCE-PORT\n");
  return 2;
}
