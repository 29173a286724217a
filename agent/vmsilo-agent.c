/*
 * vmsilo-agent: the guest side of vm-run (docs/protocol.md).
 *
 *   vmsilo-agent [--user NAME] [--path PATH] [--env NAME=VALUE]...            one connection on stdin/stdout
 *   vmsilo-agent [--user NAME] [--path PATH] [--env NAME=VALUE]... --listen-unix SOCKET   accept loop
 *   vmsilo-agent [--user NAME] [--path PATH] [--env NAME=VALUE]... --listen-systemd       accept loop on fd 3
 *
 * The first form is what systemd's Accept=yes (ListenStream=vsock::5000) gives: one process per
 * connection, the connection on stdin and stdout. The second serves a unix socket, one child per
 * connection, for tests and for transports other than vsock. The third takes the listening socket
 * from systemd (Accept=no) and forks one child per connection: no unit start per connection.
 *
 * On vsock, a connection from a host port at or above 1024 (any local user's) is refused at once,
 * unless --any-peer-port is given (cloud-hypervisor: its host side is a socket file).
 *
 * Per connection: read and validate the whole request (preamble + EXEC frame) before anything runs;
 * fork; in the child start a new session, switch to the user, set the documented environment, cd to
 * the home directory and execvp the argv exactly as received. Stream stdin in, stdout and stderr
 * out, then send the exit status. A client that goes away hangs the command up (SIGHUP, then
 * SIGKILL after HANGUP_GRACE_MS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "parse.h"
#include "protocol.h"

extern char **environ;

/* How long a connection may take to deliver its complete request. */
#define REQUEST_TIMEOUT_MS 10000
/* After a hang-up (client gone, protocol error), how long the command has between SIGHUP and SIGKILL. */
#define HANGUP_GRACE_MS 5000
/* After the exit status went out, how long to wait for the client to close (avoids resets). */
#define DRAIN_TIMEOUT_MS 2000
/* PATH of the command unless --path is given: NixOS first, then the usual FHS directories. */
#define DEFAULT_PATH "/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_GROUPS 256
#define MAX_EXTRA_ENV 64

static const char *opt_user;
static const char *opt_path = DEFAULT_PATH;
static int opt_any_peer_port;
static const char *opt_env[MAX_EXTRA_ENV];
static size_t n_opt_env;

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [--user NAME] [--path PATH] [--env NAME=VALUE]... [--any-peer-port] [--listen-unix SOCKET | --listen-systemd]\n"
          "Serves vm-run requests (docs/protocol.md): one connection on stdin/stdout (systemd\n"
          "Accept=yes), every connection to SOCKET with --listen-unix, or every connection to the\n"
          "socket systemd passes (Accept=no) with --listen-systemd.\n"
          "  --user NAME    run commands as NAME (from /etc/passwd and /etc/group)\n"
          "  --path PATH    the commands' PATH (default %s)\n"
          "  --env N=V      add a variable to the commands' environment (repeatable)\n"
          "  --any-peer-port  accept vsock peers on any port (cloud-hypervisor, whose host side is a\n"
          "                 socket file); by default only privileged ports (below 1024) are accepted\n",
          prog, DEFAULT_PATH);
}

/* ---- identity: /etc/passwd and /etc/group read directly (no NSS: the static build behaves the same) ---- */

struct ident {
  int known;
  uid_t uid;
  gid_t gid;
  char name[256];
  char home[PATH_MAX];
  char shell[PATH_MAX];
  gid_t groups[MAX_GROUPS];
  int ngroups;
};

/* Split a colon-separated line into at most n fields in place; returns the number of fields. */
static int split_fields(char *line, char **f, int n) {
  int i = 0;
  f[i++] = line;
  for (char *p = line; *p && i < n; p++)
    if (*p == ':') {
      *p = '\0';
      f[i++] = p + 1;
    }
  return i;
}

/* Look a user up by name (name != NULL) or by uid. */
static int lookup_user(const char *name, uid_t uid, struct ident *id) {
  memset(id, 0, sizeof *id);
  FILE *f = fopen("/etc/passwd", "re");
  if (f == NULL) return -1;
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *fl[7];
    if (split_fields(line, fl, 7) != 7) continue;
    unsigned long u, g;
    if (parse_ulong(fl[2], 0xfffffffeUL, &u) < 0 || parse_ulong(fl[3], 0xfffffffeUL, &g) < 0) continue;
    if (name ? strcmp(fl[0], name) != 0 : (uid_t)u != uid) continue;
    if (strlen(fl[0]) >= sizeof id->name || strlen(fl[5]) >= sizeof id->home || strlen(fl[6]) >= sizeof id->shell) continue;
    id->known = 1;
    id->uid = (uid_t)u;
    id->gid = (gid_t)g;
    strcpy(id->name, fl[0]);
    strcpy(id->home, fl[5]);
    strcpy(id->shell, fl[6]);
    break;
  }
  fclose(f);
  if (!id->known) return -1;
  /* Supplementary groups: the primary group, then every group listing the user as a member. */
  id->groups[id->ngroups++] = id->gid;
  f = fopen("/etc/group", "re");
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) && id->ngroups < MAX_GROUPS) {
    line[strcspn(line, "\n")] = '\0';
    char *fl[4];
    unsigned long g;
    if (split_fields(line, fl, 4) != 4 || parse_ulong(fl[2], 0xfffffffeUL, &g) < 0 || (gid_t)g == id->gid) continue;
    for (char *m = strtok(fl[3], ","); m; m = strtok(NULL, ","))
      if (strcmp(m, id->name) == 0) {
        id->groups[id->ngroups++] = (gid_t)g;
        break;
      }
  }
  fclose(f);
  return 0;
}

/* ---- the child: from fork to execvp ---- */

enum stage { ST_SETGROUPS = 1, ST_SETGID, ST_SETUID, ST_EXEC };
struct child_report {
  int stage;
  int err;
};

static _Noreturn void child_fail(int fd, int stage, int err) {
  struct child_report r = {stage, err};
  ssize_t w;
  do w = write(fd, &r, sizeof r);
  while (w < 0 && errno == EINTR);
  _exit(127);
}

static _Noreturn void run_child(char **argv, char **envp, const struct ident *id, int switch_user, int in_r, int out_w, int err_w, int report) {
  setsid();
  /* Dispositions the agent set (SIGPIPE ignored) and any inherited mask must not reach the command. */
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  dup2(in_r, STDIN_FILENO);
  dup2(out_w, STDOUT_FILENO);
  dup2(err_w, STDERR_FILENO);
  if (switch_user) {
    if (setgroups((size_t)id->ngroups, id->groups) < 0) child_fail(report, ST_SETGROUPS, errno);
    if (setgid(id->gid) < 0) child_fail(report, ST_SETGID, errno);
    if (setuid(id->uid) < 0) child_fail(report, ST_SETUID, errno);
    if (id->uid != 0 && setuid(0) == 0) child_fail(report, ST_SETUID, EPERM);
  }
  if (chdir(id->known && id->home[0] ? id->home : "/") < 0 && chdir("/") < 0) {
    /* Nothing sensible is left; run where we are. */
  }
  umask(022);
  environ = envp;
  execvp(argv[0], argv);
  child_fail(report, ST_EXEC, errno);
}

/* ---- one connection ---- */

struct conn {
  int in, out;            /* the connection (often the same socket) */
  struct buf rx, tx;      /* bytes from and to the client */
  pid_t pid;              /* the command; 0 before it started */
  int pidfd;              /* -1 when pidfd_open is unavailable: waitpid polling */
  int exited, wstatus;
  int in_w, out_r, err_r; /* our ends of the command's stdin, stdout, stderr; -1 once closed */
  struct buf pending;     /* stdin bytes not yet taken by the command */
  int stdin_eof, stdin_broken;
  int gone;               /* hung up: the client went away or broke the protocol */
  int killed;
  int64_t kill_deadline;
  int exit_sent;
};

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Send what is queued and an ERROR frame, best effort, within a short deadline. */
static void send_error_now(struct conn *c, unsigned code, const char *text) {
  buf_error(&c->tx, code, "%s", text);
  (void)send_all(c->out, c->tx.p + c->tx.off, c->tx.len, now_ms() + DRAIN_TIMEOUT_MS);
  c->tx.len = 0;
}

/* Close our sending side, then read until the client closes (or DRAIN_TIMEOUT_MS). */
static void finish(struct conn *c) {
  if (shutdown(c->out, SHUT_WR) < 0) close_fd(&c->out);
  int64_t deadline = now_ms() + DRAIN_TIMEOUT_MS;
  unsigned char sink[4096];
  for (;;) {
    struct pollfd pf = {.fd = c->in, .events = POLLIN};
    int r = poll(&pf, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ssize_t n = read(c->in, sink, sizeof sink);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
  }
}

/* Refuse a request before anything ran. */
static int refuse(struct conn *c, const char *why) {
  msg("refused a request, nothing was run: %s", why);
  send_error_now(c, VMR_E_PROTOCOL, why);
  finish(c);
  return 1;
}

static void hang_up(struct conn *c, const char *why) {
  if (c->gone) return;
  c->gone = 1;
  if (c->pid > 0 && !c->exited) {
    msg("%s; hanging up the command (pid %d)", why, (int)c->pid);
    kill(-c->pid, SIGHUP);
    kill(-c->pid, SIGCONT);
    c->kill_deadline = now_ms() + HANGUP_GRACE_MS;
  } else {
    msg("%s", why);
  }
  close_fd(&c->in_w);
  c->pending.len = 0;
  c->tx.len = 0;
}

static void protocol_violation(struct conn *c, const char *why) {
  char text[512];
  snprintf(text, sizeof text, "protocol error: %s", why);
  if (!c->gone) send_error_now(c, VMR_E_PROTOCOL, text);
  hang_up(c, text);
}

static void feed_stdin(struct conn *c) {
  while (c->pending.len > 0 && c->in_w >= 0) {
    ssize_t w = write(c->in_w, c->pending.p + c->pending.off, c->pending.len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      /* The command closed its stdin (EPIPE): further input is discarded. */
      c->stdin_broken = 1;
      c->pending.len = 0;
      close_fd(&c->in_w);
      return;
    }
    buf_consume(&c->pending, (size_t)w);
  }
}

/* Handle the complete frames in rx, stopping while stdin data waits for the command. */
static void handle_frames(struct conn *c) {
  while (!c->gone && c->pending.len == 0 && c->rx.len >= VMR_HEADER_LEN) {
    const unsigned char *f = c->rx.p + c->rx.off;
    unsigned type = f[0];
    uint32_t len = get_be32(f + 1);
    char why[128];
    if (check_client_frame(type, len, c->stdin_eof, why, sizeof why) < 0) return protocol_violation(c, why);
    if (c->rx.len < VMR_HEADER_LEN + len) return;
    if (type == VMR_STDIN) {
      if (!c->stdin_broken) {
        buf_append(&c->pending, f + VMR_HEADER_LEN, len);
        feed_stdin(c);
      }
    } else {
      c->stdin_eof = 1;
      close_fd(&c->in_w);
    }
    buf_consume(&c->rx, VMR_HEADER_LEN + len);
  }
}

static void read_output(struct conn *c, int *fd, unsigned type) {
  unsigned char chunk[VMR_MAX_DATA];
  ssize_t r = read(*fd, chunk, sizeof chunk);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (r <= 0) {
    close_fd(fd);
    return;
  }
  if (!c->gone) buf_frame(&c->tx, type, chunk, (size_t)r);
}

static void reap(struct conn *c) {
  if (c->exited) return;
  int st;
  pid_t r = waitpid(c->pid, &st, WNOHANG);
  if (r == c->pid) {
    c->exited = 1;
    c->wstatus = st;
    close_fd(&c->pidfd);
  }
}

static const char *stage_name(int stage) {
  switch (stage) {
    case ST_SETGROUPS: return "setgroups";
    case ST_SETGID: return "setgid";
    case ST_SETUID: return "setuid";
    default: return "exec";
  }
}

/*
 * On vsock, a host peer on an unprivileged port can be any local user of the host: only a privileged
 * port (which on the host only root or the VM's proxy, given CAP_NET_BIND_SERVICE, can bind) is let
 * in, before anything is read. Other transports (a unix socket, a pipe) are guarded by their files.
 */
static int peer_refused(int fd, char *why, size_t whylen) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (opt_any_peer_port || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_VSOCK) return 0;
  const struct sockaddr_vm *peer = (const struct sockaddr_vm *)&ss;
  if (peer->svm_port < VMR_FIRST_UNPRIVILEGED_PORT) return 0;
  snprintf(why, whylen, "refused the connection from vsock CID %u port %u, nothing was run: only peers on a privileged port (below %u) are accepted; use the VM's command socket on the host",
           peer->svm_cid, peer->svm_port, VMR_FIRST_UNPRIVILEGED_PORT);
  return 1;
}

static int serve(int in, int out) {
  struct conn c = {.in = in, .out = out, .pidfd = -1, .in_w = -1, .out_r = -1, .err_r = -1};
  buf_init(&c.rx, 2 * (VMR_HEADER_LEN + VMR_MAX_DATA));
  buf_init(&c.tx, 4 * (VMR_HEADER_LEN + VMR_MAX_DATA));
  buf_init(&c.pending, VMR_MAX_DATA);
  set_nonblock(in);
  set_nonblock(out);
  char why[512];
  if (peer_refused(in, why, sizeof why)) {
    msg("%s", why);
    buf_preamble(&c.tx);
    send_error_now(&c, VMR_E_PROTOCOL, why);
    return 1;
  }
  /* Our preamble goes out at once: the client knows an agent answered even before its request is complete. */
  buf_preamble(&c.tx);
  (void)buf_send(&c.tx, out);

  /* 1. The request: preamble and EXEC frame, complete and valid, or nothing runs. */
  int64_t deadline = now_ms() + REQUEST_TIMEOUT_MS;
  size_t need = VMR_PREAMBLE_LEN + VMR_HEADER_LEN;
  int known = 0;
  while (c.rx.len < need) {
    struct pollfd pf = {.fd = in, .events = POLLIN};
    int r = poll(&pf, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      snprintf(why, sizeof why, "no complete request within %d s (got %zu of %zu bytes)", REQUEST_TIMEOUT_MS / 1000, c.rx.len, need);
      return refuse(&c, why);
    }
    ssize_t n = buf_read(&c.rx, in, need - c.rx.len > VMR_MAX_DATA ? need - c.rx.len : VMR_HEADER_LEN + VMR_MAX_DATA);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      snprintf(why, sizeof why, "truncated request: the connection %s after %zu of %zu bytes", n < 0 ? strerror(errno) : "closed", c.rx.len, need);
      return refuse(&c, why);
    }
    if (!known) {
      long total = request_length(c.rx.p + c.rx.off, c.rx.len, why, sizeof why);
      if (total < 0) return refuse(&c, why);
      if (total > 0) {
        known = 1;
        need = (size_t)total;
      }
    }
  }
  buf_consume(&c.rx, VMR_PREAMBLE_LEN + VMR_HEADER_LEN);
  size_t alen = need - VMR_PREAMBLE_LEN - VMR_HEADER_LEN;
  char *args = xmalloc(alen);
  memcpy(args, c.rx.p + c.rx.off, alen);
  buf_consume(&c.rx, alen); /* what follows (pipelined STDIN frames) stays in rx */
  char **argv;
  if (request_argv(args, alen, &argv, why, sizeof why) < 0) return refuse(&c, why);

  /* 2. Who runs it, and with which environment. */
  struct ident id;
  int switch_user = 0;
  if (opt_user) {
    if (lookup_user(opt_user, 0, &id) < 0) {
      snprintf(why, sizeof why, "cannot start the command: no user %s in /etc/passwd", opt_user);
      msg("%s", why);
      send_error_now(&c, VMR_E_START_FAILED, why);
      finish(&c);
      return 1;
    }
    switch_user = !(getuid() == id.uid && geteuid() == id.uid);
  } else if (lookup_user(NULL, getuid(), &id) < 0) {
    id.known = 0;
  }
  char *envp[6 + MAX_EXTRA_ENV];
  size_t ne = 0;
  char e_path[PATH_MAX + 8], e_home[PATH_MAX + 8], e_user[300], e_logname[300], e_shell[PATH_MAX + 8];
  snprintf(e_path, sizeof e_path, "PATH=%s", opt_path);
  envp[ne++] = e_path;
  snprintf(e_home, sizeof e_home, "HOME=%s", id.known && id.home[0] ? id.home : "/");
  envp[ne++] = e_home;
  if (id.known) {
    snprintf(e_user, sizeof e_user, "USER=%s", id.name);
    snprintf(e_logname, sizeof e_logname, "LOGNAME=%s", id.name);
    envp[ne++] = e_user;
    envp[ne++] = e_logname;
  }
  snprintf(e_shell, sizeof e_shell, "SHELL=%s", id.known && id.shell[0] ? id.shell : "/bin/sh");
  envp[ne++] = e_shell;
  for (size_t i = 0; i < n_opt_env; i++) envp[ne++] = (char *)opt_env[i];
  envp[ne] = NULL;

  /* 3. Start it. */
  int pin[2], pout[2], perr[2], prep[2];
  if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(prep, O_CLOEXEC) < 0) {
    snprintf(why, sizeof why, "cannot start the command: pipe: %s", strerror(errno));
    msg("%s", why);
    send_error_now(&c, VMR_E_START_FAILED, why);
    finish(&c);
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, sizeof why, "cannot start the command: fork: %s", strerror(errno));
    msg("%s", why);
    send_error_now(&c, VMR_E_START_FAILED, why);
    finish(&c);
    return 1;
  }
  if (pid == 0) run_child(argv, envp, &id, switch_user, pin[0], pout[1], perr[1], prep[1]);
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  close(prep[1]);
  c.pid = pid;
  struct child_report rep;
  ssize_t rn;
  do rn = read(prep[0], &rep, sizeof rep);
  while (rn < 0 && errno == EINTR);
  close(prep[0]);
  if (rn == (ssize_t)sizeof rep) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    close(pin[1]);
    close(pout[0]);
    close(perr[0]);
    unsigned code;
    if (rep.stage == ST_EXEC && rep.err == ENOENT) {
      code = VMR_E_NOT_FOUND;
      snprintf(why, sizeof why, "%.256s: command not found", argv[0]);
    } else if (rep.stage == ST_EXEC) {
      code = VMR_E_NOT_EXECUTABLE;
      snprintf(why, sizeof why, "%.256s: cannot execute: %s", argv[0], strerror(rep.err));
    } else {
      code = VMR_E_START_FAILED;
      snprintf(why, sizeof why, "cannot start the command as %s: %s: %s", opt_user ? opt_user : "?", stage_name(rep.stage), strerror(rep.err));
    }
    msg("%s", why);
    send_error_now(&c, code, why);
    finish(&c);
    return 0;
  }
  c.in_w = pin[1];
  c.out_r = pout[0];
  c.err_r = perr[0];
  set_nonblock(c.in_w);
  set_nonblock(c.out_r);
  set_nonblock(c.err_r);
#ifdef SYS_pidfd_open
  c.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif

  /* 4. Stream until the command exited and its output ended (or the client went away). */
  const size_t tx_high = 2 * (VMR_HEADER_LEN + VMR_MAX_DATA);
  for (;;) {
    handle_frames(&c);
    if (c.pidfd < 0) reap(&c);
    if (c.exited && c.gone) break;
    if (c.exited && c.out_r < 0 && c.err_r < 0 && !c.gone && !c.exit_sent) {
      unsigned char st[2];
      if (WIFSIGNALED(c.wstatus)) {
        st[0] = VMR_SIGNALED;
        st[1] = (unsigned char)WTERMSIG(c.wstatus);
      } else {
        st[0] = VMR_EXITED;
        st[1] = (unsigned char)WEXITSTATUS(c.wstatus);
      }
      buf_frame(&c.tx, VMR_EXIT, st, 2);
      c.exit_sent = 1;
      close_fd(&c.in_w);
    }
    if (c.exit_sent && c.tx.len == 0) break;

    struct pollfd pf[6];
    int ix_in = -1, ix_out = -1, ix_w = -1, ix_o = -1, ix_e = -1, ix_pid = -1;
    nfds_t n = 0;
    if (!c.gone && !c.exit_sent) {
      /* Read more only when the buffered frames are used up; otherwise just watch for a hang-up. */
      int complete = c.rx.len >= VMR_HEADER_LEN && c.rx.len >= VMR_HEADER_LEN + get_be32(c.rx.p + c.rx.off + 1);
      ix_in = (int)n;
      pf[n++] = (struct pollfd){.fd = c.in, .events = (short)(c.pending.len == 0 && !complete ? POLLIN : POLLRDHUP)};
    }
    if (!c.gone && c.tx.len > 0) {
      ix_out = (int)n;
      pf[n++] = (struct pollfd){.fd = c.out, .events = POLLOUT};
    }
    if (c.in_w >= 0 && c.pending.len > 0) {
      ix_w = (int)n;
      pf[n++] = (struct pollfd){.fd = c.in_w, .events = POLLOUT};
    }
    if (c.out_r >= 0 && (c.gone || c.tx.len < tx_high)) {
      ix_o = (int)n;
      pf[n++] = (struct pollfd){.fd = c.out_r, .events = POLLIN};
    }
    if (c.err_r >= 0 && (c.gone || c.tx.len < tx_high)) {
      ix_e = (int)n;
      pf[n++] = (struct pollfd){.fd = c.err_r, .events = POLLIN};
    }
    if (c.pidfd >= 0 && !c.exited) {
      ix_pid = (int)n;
      pf[n++] = (struct pollfd){.fd = c.pidfd, .events = POLLIN};
    }
    int timeout = -1;
    if (c.pidfd < 0 && !c.exited) timeout = 20;
    if (c.gone && !c.killed && !c.exited) {
      int left = remaining_ms(c.kill_deadline);
      if (timeout < 0 || left < timeout) timeout = left;
    }
    int r = poll(pf, n, timeout);
    if (r < 0 && errno != EINTR) {
      msg("poll: %s", strerror(errno));
      break;
    }
    if (c.gone && !c.killed && !c.exited && remaining_ms(c.kill_deadline) == 0) {
      msg("the command (pid %d) outlived the hang-up by %d s; killing it", (int)c.pid, HANGUP_GRACE_MS / 1000);
      kill(-c.pid, SIGKILL);
      c.killed = 1;
    }
    if (r <= 0) continue;
    if (ix_pid >= 0 && pf[ix_pid].revents) reap(&c);
    if (ix_o >= 0 && pf[ix_o].revents) read_output(&c, &c.out_r, VMR_STDOUT);
    if (ix_e >= 0 && pf[ix_e].revents) read_output(&c, &c.err_r, VMR_STDERR);
    if (ix_w >= 0 && pf[ix_w].revents) feed_stdin(&c);
    if (ix_out >= 0 && pf[ix_out].revents && buf_send(&c.tx, c.out) < 0) {
      snprintf(why, sizeof why, "cannot send to the client: %s", strerror(errno));
      hang_up(&c, why);
    }
    if (ix_in >= 0 && pf[ix_in].revents && !c.gone) {
      if (pf[ix_in].events & POLLIN) {
        ssize_t rd = buf_read(&c.rx, c.in, VMR_HEADER_LEN + VMR_MAX_DATA);
        if (rd == 0) hang_up(&c, c.stdin_eof ? "the client closed the connection before the exit status" : "the client closed the connection (no STDIN_EOF)");
        else if (rd < 0 && errno != EAGAIN && errno != EINTR) {
          snprintf(why, sizeof why, "reading from the client: %s", strerror(errno));
          hang_up(&c, why);
        }
      } else if (pf[ix_in].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
        hang_up(&c, "the client closed the connection");
      }
    }
  }
  close_fd(&c.in_w);
  close_fd(&c.out_r);
  close_fd(&c.err_r);
  if (c.exit_sent) {
    finish(&c);
    return 0;
  }
  return 1;
}

/* ---- process set-up ---- */

static void keep_std_fds_open(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
}

static int serve_connection(int cfd, void *ctx) {
  (void)ctx;
  return serve(cfd, cfd);
}

static int listen_unix(const char *path) {
  int lfd = unix_listen(path);
  if (lfd == -2) return 1;
  if (lfd < 0) return 1;
  return accept_fork_loop(lfd, serve_connection, NULL);
}

/* systemd socket activation with Accept=no: the listening socket is fd 3 (sd_listen_fds(3)). */
static int listen_systemd(void) {
  int lfd = systemd_listen_fd();
  return lfd < 0 ? 1 : accept_fork_loop(lfd, serve_connection, NULL);
}

static int valid_env(const char *s) {
  static const char *const reserved[] = {"PATH=", "HOME=", "USER=", "LOGNAME=", "SHELL="};
  const char *eq = strchr(s, '=');
  if (eq == NULL || eq == s) return 0;
  for (const char *p = s; p < eq; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' || (p > s && *p >= '0' && *p <= '9'))) return 0;
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
    if (strncmp(s, reserved[i], strlen(reserved[i])) == 0) return 0;
  return 1;
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  const char *listen_path = NULL;
  int listen_sd = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--user") == 0 && v) {
      opt_user = v;
      i++;
    } else if (strcmp(a, "--path") == 0 && v) {
      opt_path = v;
      i++;
    } else if (strcmp(a, "--env") == 0 && v) {
      if (!valid_env(v) || n_opt_env == MAX_EXTRA_ENV) {
        msg("--env %s: expected NAME=VALUE with NAME not one of PATH HOME USER LOGNAME SHELL (at most %d)", v, MAX_EXTRA_ENV);
        return 2;
      }
      opt_env[n_opt_env++] = v;
      i++;
    } else if (strcmp(a, "--listen-unix") == 0 && v) {
      listen_path = v;
      i++;
    } else if (strcmp(a, "--listen-systemd") == 0) {
      listen_sd = 1;
    } else if (strcmp(a, "--any-peer-port") == 0) {
      opt_any_peer_port = 1;
    } else {
      msg("bad argument: %s", a);
      usage(stderr);
      return 2;
    }
  }
  if (strlen(opt_path) >= PATH_MAX) {
    msg("--path is too long");
    return 2;
  }
  keep_std_fds_open();
  signal(SIGPIPE, SIG_IGN);
  if (listen_path) return listen_unix(listen_path);
  if (listen_sd) return listen_systemd();
  /* inetd style: the connection is stdin and stdout. Move it off 0 and 1 so no command inherits it. */
  int in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  int out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0) {
    msg("no connection on stdin/stdout: %s", strerror(errno));
    return 1;
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    close(null);
  }
  return serve(in, out);
}
