/*
 * vmsilo-slot-use --systemctl PATH --unit UNIT --marker PATH: hold one disposable slot for one use
 * (docs/disposables.md). systemd starts it with the slot's use socket (Accept=no, fd 3) once
 * vm-run --disposable has connected. It takes that one connection, creates MARKER (a command runs
 * in the slot), answers 'T' (taken), starts UNIT, the slot's VM service (systemctl start), answers
 * 'R' once the service is active, or 'F' and why when it did not start, and then holds the slot
 * until the peer's end of the connection closes: when vm-run ends, however it ends (kill -9 too),
 * since the kernel closes its descriptors. Then it removes MARKER and exits; its unit's
 * ExecStopPost= stops the VM, which wipes the instance. What the peer sends is read and dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* How long a started service waits for the connection that started it. */
#define ACCEPT_WAIT_MS 10000

static const char *marker;

static _Noreturn void finish(int status) {
  if (marker) unlink(marker);
  exit(status);
}

/* Read and drop what the peer sent; 1 when its end is closed. */
static int peer_closed(int cfd) {
  char drop[512];
  for (;;) {
    ssize_t r = recv(cfd, drop, sizeof drop, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r == 0) return 1;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
  }
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  const char *systemctl = NULL, *unit = NULL, *mark = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--systemctl") == 0) systemctl = argv[i + 1];
    else if (strcmp(argv[i], "--unit") == 0) unit = argv[i + 1];
    else if (strcmp(argv[i], "--marker") == 0) mark = argv[i + 1];
    else systemctl = NULL, i = argc;
  }
  if (argc != 7 || systemctl == NULL || unit == NULL || mark == NULL) {
    fprintf(stderr, "usage: %s --systemctl PATH --unit UNIT --marker PATH\n", prog);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = systemd_listen_fd();
  if (lfd < 0) return 2;
  struct pollfd lp = {.fd = lfd, .events = POLLIN};
  int n;
  while ((n = poll(&lp, 1, ACCEPT_WAIT_MS)) < 0 && errno == EINTR) {
  }
  if (n <= 0) {
    msg("no connection to take within %d ms", ACCEPT_WAIT_MS);
    return 1;
  }
  int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (cfd < 0) {
    msg("accept: %s", strerror(errno));
    return 1;
  }
  /* Later connections wait in the socket's queue until this use, and its wipe, are over. */
  close(lfd);
  int m = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (m < 0) {
    msg("cannot create %s: %s", mark, strerror(errno));
    return 1;
  }
  close(m);
  marker = mark;
  if (send_all(cfd, "T", 1, now_ms() + 5000) < 0) finish(0);

  pid_t pid = fork();
  if (pid < 0) {
    msg("fork: %s", strerror(errno));
    finish(1);
  }
  if (pid == 0) {
    execl(systemctl, "systemctl", "start", "--", unit, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      msg("waitpid: %s", strerror(errno));
      finish(1);
    }
    /* A client gone while the VM boots: the use is over (ExecStopPost= stops what started). */
    struct pollfd cp = {.fd = cfd, .events = POLLIN | POLLRDHUP};
    if (poll(&cp, 1, 100) > 0 && peer_closed(cfd)) {
      msg("the client left while %s was starting", unit);
      finish(0);
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char why[256];
    int len = snprintf(why, sizeof why, "F%s did not start (systemctl start: %s %d); to read why: journalctl -u %s", unit,
                       WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), unit);
    if (len < 0) len = 1;
    if ((size_t)len >= sizeof why) len = (int)sizeof why - 1;
    msg("%s", why + 1);
    send_all(cfd, why, (size_t)len, now_ms() + 5000);
    finish(1);
  }
  if (send_all(cfd, "R", 1, now_ms() + 5000) < 0) finish(0);
  for (;;) {
    struct pollfd cp = {.fd = cfd, .events = POLLIN | POLLRDHUP};
    if (poll(&cp, 1, -1) < 0) {
      if (errno == EINTR) continue;
      msg("poll: %s", strerror(errno));
      finish(1);
    }
    if (peer_closed(cfd)) finish(0);
  }
}
