/*
 * vmsilo-test-accept SOCKET PROGRAM [ARG...]: a stand-in for a systemd socket unit with Accept=yes.
 *
 * Listens on the unix socket SOCKET; for every connection forks and execs PROGRAM with the
 * connection as its stdin and stdout (stderr inherited), as systemd does for StandardInput=socket.
 * Prints "listening on SOCKET" to stderr once connections are accepted. Test and benchmark use only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s SOCKET PROGRAM [ARG...]\n", argv[0]);
    return 2;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof sa.sun_path) {
    fprintf(stderr, "%s: socket path too long\n", argv[0]);
    return 2;
  }
  strcpy(sa.sun_path, argv[1]);
  struct stat st;
  if (lstat(argv[1], &st) == 0 && S_ISSOCK(st.st_mode)) unlink(argv[1]);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0) {
    fprintf(stderr, "%s: cannot listen on %s: %s\n", argv[0], argv[1], strerror(errno));
    return 1;
  }
  struct sigaction sc = {.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT};
  sigaction(SIGCHLD, &sc, NULL);
  fprintf(stderr, "vmsilo-test-accept: listening on %s\n", argv[1]);
  for (;;) {
    int c = accept4(lfd, NULL, NULL, 0);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      fprintf(stderr, "%s: accept: %s\n", argv[0], strerror(errno));
      return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
      struct sigaction dfl = {.sa_handler = SIG_DFL};
      sigaction(SIGCHLD, &dfl, NULL);
      dup2(c, STDIN_FILENO);
      dup2(c, STDOUT_FILENO);
      if (c > STDOUT_FILENO) close(c);
      execvp(argv[2], argv + 2);
      fprintf(stderr, "%s: exec %s: %s\n", argv[0], argv[2], strerror(errno));
      _exit(127);
    }
    close(c);
  }
}
