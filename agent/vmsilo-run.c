/*
 * vmsilo-run [--raw] SOCKET CMD [ARGS...]: run CMD with ARGS in a VM through its command socket.
 * vm-run [--raw] VM CMD [ARGS...]: the same when invoked under the name vm-run (a symlink): VM must match
 * the VM name grammar, and the socket is $VMSILO_RUN_DIR/VM/command.socket (default /run/vmsilo).
 *
 * Sends the argv exactly (docs/protocol.md), forwards stdin until EOF, writes the command's stdout and
 * stderr to its own (to a terminal without the guest's terminal control sequences, unless --raw;
 * to anything else byte for byte), and exits with the command's exit status (128+N when signal N killed it).
 * Its own failures: 2 usage, 125 the agent could not start the command, 126 not executable,
 * 127 not found, 255 connection or protocol failure (the agent unreachable, a malformed answer).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <limits.h>
#include <unistd.h>

#include "common.h"
#include "parse.h"
#include "protocol.h"
#include "vm-run-usage.h"

static void usage(void) {
  fprintf(stderr,
          "usage: %s [--raw] SOCKET COMMAND [ARGUMENT...]\n"
          "Runs COMMAND in the VM behind the command socket SOCKET; stdin is forwarded, stdout and\n"
          "stderr come back, and the exit status is the command's (128+N if killed by signal N).\n"
          "On a terminal the guest's control sequences are dropped; --raw passes them through.\n"
          "Own statuses: 2 usage, 125 the agent could not start the command, 126 not executable,\n"
          "127 command not found, 255 connection or protocol failure.\n",
          prog);
}

/* Exit after printing a message; the status says which kind of failure it was. */
static _Noreturn void fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void fail(int status, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  msg("%s", line);
  exit(status);
}

#ifndef VMSILO_RUN_DIR
#define VMSILO_RUN_DIR "/run/vmsilo"
#endif

/* The VM name grammar of docs/model.md: ^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$ */
static int valid_vm_name(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 32 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-') return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) return 0;
  return 1;
}

/* Print the VMs that have a command socket under run_dir, for the usage of vm-run. */
static void list_vms(const char *run_dir) {
  char line[4096] = "";
  size_t used = 0;
  DIR *d = opendir(run_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char p[PATH_MAX];
      struct stat st;
      if (!valid_vm_name(e->d_name)) continue;
      snprintf(p, sizeof p, "%s/%s/command.socket", run_dir, e->d_name);
      if (stat(p, &st) < 0 || !S_ISSOCK(st.st_mode)) continue;
      int w = snprintf(line + used, sizeof line - used, "%s%s", used ? ", " : "", e->d_name);
      if (w < 0 || (size_t)w >= sizeof line - used) break;
      used += (size_t)w;
    }
    closedir(d);
  }
  fprintf(stderr, "VMs: %s\n", used ? line : "(none running a command socket)");
}

static int connect_unix(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  if (n >= sizeof sa.sun_path) fail(VMR_STATUS_FAILURE, "socket path too long (%zu bytes, at most %zu): %s", n, sizeof sa.sun_path - 1, path);
  memcpy(sa.sun_path, path, n + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(VMR_STATUS_FAILURE, "socket: %s", strerror(errno));
  while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno == EINTR) continue;
    fail(VMR_STATUS_FAILURE, "cannot connect to the command socket %s: %s", path, strerror(errno));
  }
  return fd;
}

static int status_of_error(unsigned code) {
  switch (code) {
    case VMR_E_NOT_FOUND: return VMR_STATUS_NOT_FOUND;
    case VMR_E_NOT_EXECUTABLE: return VMR_STATUS_NOT_EXECUTABLE;
    case VMR_E_START_FAILED: return VMR_STATUS_START_FAILED;
    default: return VMR_STATUS_FAILURE;
  }
}

/* Print an ERROR frame's text, neutralising control characters so a hostile peer cannot drive the terminal. */
static void print_error(const unsigned char *text, size_t n) {
  char clean[VMR_MAX_MESSAGE + 1];
  clean_text(text, n < VMR_MAX_MESSAGE ? n : VMR_MAX_MESSAGE, clean);
  msg("%s", clean);
}

/* Per output (stdout, stderr): whether it is filtered (a terminal, without --raw), and the filter's state. */
static int filtering[2];
static struct term_filter filters[2];

static void out(int fd, const unsigned char *p, size_t n) {
  static unsigned char clean[VMR_MAX_DATA + 1];
  if (filtering[fd - 1]) {
    n = term_filter(&filters[fd - 1], p, n, clean);
    p = clean;
  }
  if (write_all(fd, p, n) < 0) fail(VMR_STATUS_FAILURE, "cannot write the command's %s: %s", fd == 1 ? "stdout" : "stderr", strerror(errno));
}

/* How long vm-run --disposable waits for a slot being wiped to become free (docs/disposables.md). */
#define SLOT_WAIT_MS 120000
/* Slots of one disposable VM: <vm>-d1 … <vm>-d16. */
#define MAX_SLOTS 16

static int is_socket(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}
static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Read one byte of the use protocol (docs/disposables.md) within ms; -1 on EOF or time-out. */
static int read_answer(int fd, int ms, char *text, size_t cap) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int64_t deadline = ms < 0 ? -1 : now_ms() + ms;
  for (;;) {
    int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    unsigned char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    if (c == 'F' && text != NULL) {
      /* The reason follows, up to the end of the connection; bounded and cleaned before printing. */
      unsigned char raw[VMR_MAX_MESSAGE];
      size_t got = 0;
      while (got < sizeof raw && (n = read(fd, raw + got, sizeof raw - got)) > 0) got += (size_t)n;
      clean_text(raw, got, text);
      (void)cap;
    }
    return c;
  }
}

/*
 * vm-run --disposable: take a free slot of disposable VM `pattern` under its pool lock, have it
 * started, and return the slot's command socket in `sock_path`. The connection to the slot's use
 * socket stays open, unused, until this process ends, whichever way: its close ends the use, and
 * the slot's use service then stops and wipes the instance.
 */
static void take_slot(const char *run_dir, const char *pattern, char *sock_path, size_t cap) {
  char path[PATH_MAX], slot[64];
  if (!valid_vm_name(pattern)) {
    msg("unknown disposable VM: (not a VM name)");
    exit(VMR_STATUS_USAGE);
  }
  int count = 0;
  for (int i = 1; i <= MAX_SLOTS; i++) {
    snprintf(path, sizeof path, "%s/%s-d%d/use.socket", run_dir, pattern, i);
    if (is_socket(path)) count = i;
  }
  snprintf(path, sizeof path, "%s/%s/pool.lock", run_dir, pattern);
  int lock = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (count == 0 || lock < 0) {
    msg("unknown disposable VM (or its slots' use sockets are not active): %s", pattern);
    exit(VMR_STATUS_USAGE);
  }
  int64_t start = now_ms(), deadline = start + SLOT_WAIT_MS;
  int use = -1, taken = 0;
  for (;;) {
    while (flock(lock, LOCK_EX) < 0)
      if (errno != EINTR) fail(VMR_STATUS_FAILURE, "cannot lock %s: %s", path, strerror(errno));
    /* Free slots, the booted (preloaded) ones first; a slot being wiped is waited for. */
    int wiping = 0, pick = 0;
    for (int pass = 0; pass < 2 && pick == 0; pass++) {
      for (int i = 1; i <= count && pick == 0; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s-d%d/use", run_dir, pattern, i);
        if (exists(p)) {
          snprintf(p, sizeof p, "%s/%s-d%d/use/in-use", run_dir, pattern, i);
          if (pass == 0 && !exists(p)) wiping++;
          continue;
        }
        snprintf(p, sizeof p, "%s/%s-d%d/definition", run_dir, pattern, i);
        if (pass == 1 || exists(p)) pick = i;
      }
    }
    if (pick) {
      snprintf(slot, sizeof slot, "%s-d%d", pattern, pick);
      snprintf(path, sizeof path, "%s/%s/use.socket", run_dir, slot);
      use = connect_unix(path);
      /* Taken once the slot's use service holds the connection: then no one else sees it free. */
      taken = read_answer(use, 10000, NULL, 0) == 'T';
      flock(lock, LOCK_UN);
      if (taken) break;
      fail(VMR_STATUS_START_FAILED, "slot %s of disposable VM %s did not take the request (journalctl -u vmsilo-%s_use.service)", slot, pattern, slot);
    }
    flock(lock, LOCK_UN);
    if (wiping == 0)
      fail(VMR_STATUS_START_FAILED, "all %d slots of disposable VM %s are in use; wait for a command to end, or raise disposable.slots", count, pattern);
    if (remaining_ms(deadline) == 0)
      fail(VMR_STATUS_START_FAILED, "no slot of disposable VM %s became free in %lld s (%d being wiped)", pattern, (long long)((now_ms() - start) / 1000), wiping);
    poll(NULL, 0, 100);
  }
  char why[VMR_MAX_MESSAGE + 1] = "";
  int a = read_answer(use, -1, why, sizeof why);
  if (a != 'R') fail(VMR_STATUS_START_FAILED, "slot %s of disposable VM %s did not start: %s", slot, pattern, a == 'F' ? why : "its use service ended");
  if ((size_t)snprintf(sock_path, cap, "%s/%s/command.socket", run_dir, slot) >= cap) fail(VMR_STATUS_FAILURE, "run directory path too long");
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  int raw = 0, disposable = 0;
  /* Options before the VM, in any order; vmsilo-run (the socket form) takes only --raw. */
  while (argc > 1 && (strcmp(argv[1], "--raw") == 0 || (strcmp(argv[1], "--disposable") == 0 && strcmp(prog, "vm-run") == 0))) {
    if (argv[1][2] == 'r') raw = 1;
    else disposable = 1;
    argv++;
    argc--;
  }
  filtering[0] = !raw && isatty(STDOUT_FILENO);
  filtering[1] = !raw && isatty(STDERR_FILENO);
  char vm_socket[PATH_MAX];
  if (strcmp(prog, "vm-run") == 0) {
    const char *run_dir = getenv("VMSILO_RUN_DIR");
    if (run_dir == NULL || *run_dir == '\0') run_dir = VMSILO_RUN_DIR;
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
      fputs(VM_RUN_USAGE, stdout);
      return 0;
    }
    if (argc < 3) {
      fputs(VM_RUN_USAGE, stderr);
      list_vms(run_dir);
      return VMR_STATUS_USAGE;
    }
    struct stat st;
    if (disposable) {
      take_slot(run_dir, argv[1], vm_socket, sizeof vm_socket);
    } else if (!valid_vm_name(argv[1]) || (size_t)snprintf(vm_socket, sizeof vm_socket, "%s/%s/command.socket", run_dir, argv[1]) >= sizeof vm_socket ||
               stat(vm_socket, &st) < 0 || !S_ISSOCK(st.st_mode)) {
      msg("unknown VM (or its command socket is not active): %s", valid_vm_name(argv[1]) ? argv[1] : "(not a VM name)");
      list_vms(run_dir);
      return VMR_STATUS_USAGE;
    } else {
      /* A disposable slot runs commands only while taken: an idle (preloaded) one stays fresh. */
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s/%s/use.socket", run_dir, argv[1]);
      int slot = is_socket(p);
      snprintf(p, sizeof p, "%s/%s/use/in-use", run_dir, argv[1]);
      if (slot && !exists(p)) {
        msg("%s is a slot of a disposable VM and not in use: run vm-run --disposable with its disposable VM's name", argv[1]);
        return VMR_STATUS_USAGE;
      }
    }
    argv[1] = vm_socket;
  } else if (argc < 3) {
    usage();
    return VMR_STATUS_USAGE;
  }
  /* The request: preamble and EXEC frame, checked against the limits the agent enforces. */
  size_t count = (size_t)argc - 2, bytes = 0;
  if (count > VMR_MAX_ARGC) fail(VMR_STATUS_FAILURE, "too many arguments: %zu (the limit is %u)", count, VMR_MAX_ARGC);
  if (argv[2][0] == '\0') fail(VMR_STATUS_FAILURE, "the command name is empty");
  for (int i = 2; i < argc; i++) {
    bytes += strlen(argv[i]) + 1;
    if (bytes > VMR_MAX_ARGV_BYTES) fail(VMR_STATUS_FAILURE, "the arguments exceed %u bytes", VMR_MAX_ARGV_BYTES);
  }
  struct buf tx, rx;
  buf_init(&tx, VMR_PREAMBLE_LEN + VMR_HEADER_LEN + bytes + VMR_HEADER_LEN + VMR_MAX_DATA);
  buf_init(&rx, 2 * (VMR_HEADER_LEN + VMR_MAX_DATA));
  buf_preamble(&tx);
  unsigned char h[VMR_HEADER_LEN] = {VMR_EXEC};
  put_be32(h + 1, (uint32_t)bytes);
  buf_append(&tx, h, sizeof h);
  for (int i = 2; i < argc; i++) buf_append(&tx, argv[i], strlen(argv[i]) + 1);

  int sock = connect_unix(argv[1]);
  if (set_nonblock(sock) < 0) fail(VMR_STATUS_FAILURE, "fcntl: %s", strerror(errno));

  int stdin_done = 0, send_dead = 0, got_preamble = 0;
  unsigned char chunk[VMR_MAX_DATA];
  for (;;) {
    struct pollfd pf[2];
    nfds_t n = 0;
    pf[n++] = (struct pollfd){.fd = sock, .events = (short)(POLLIN | (tx.len && !send_dead ? POLLOUT : 0))};
    int want_stdin = !stdin_done && !send_dead && tx.len == 0;
    if (want_stdin) pf[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(pf, n, -1) < 0) {
      if (errno == EINTR) continue;
      fail(VMR_STATUS_FAILURE, "poll: %s", strerror(errno));
    }
    if (want_stdin && pf[1].revents) {
      /* poll said readable: one read() returns what is there without blocking (stdin stays blocking). */
      ssize_t r = read(STDIN_FILENO, chunk, sizeof chunk);
      if (r > 0) {
        buf_frame(&tx, VMR_STDIN, chunk, (size_t)r);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (r < 0 && errno != EBADF) msg("reading stdin: %s; sending end of input", strerror(errno));
        buf_frame(&tx, VMR_STDIN_EOF, NULL, 0);
        stdin_done = 1;
      }
    }
    if (pf[0].revents & POLLOUT) {
      if (buf_send(&tx, sock) < 0) {
        /* The agent is gone or stopped reading; what it already sent (an ERROR, say) is still read. */
        send_dead = 1;
        tx.len = 0;
      }
    }
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = buf_read(&rx, sock, VMR_HEADER_LEN + VMR_MAX_DATA);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        const char *why = r < 0 ? strerror(errno) : "closed";
        if (!got_preamble && rx.len == 0)
          fail(VMR_STATUS_FAILURE, "the command channel %s closed without an answer (%s); did the VM or its proxy fail to start? (journalctl -u 'vmsilo-*')", argv[1], why);
        fail(VMR_STATUS_FAILURE, "the connection to the agent ended before the command's exit status (%s)", why);
      }
      /* Handle every complete frame in the buffer. */
      for (;;) {
        if (!got_preamble) {
          if (rx.len < VMR_PREAMBLE_LEN) break;
          char why[256];
          if (check_preamble(rx.p + rx.off, why, sizeof why) < 0) fail(VMR_STATUS_FAILURE, "protocol error from the agent: %s", why);
          buf_consume(&rx, VMR_PREAMBLE_LEN);
          got_preamble = 1;
          continue;
        }
        if (rx.len < VMR_HEADER_LEN) break;
        const unsigned char *f = rx.p + rx.off;
        unsigned type = f[0];
        uint32_t len = get_be32(f + 1);
        char why[128];
        if (check_agent_frame(type, len, why, sizeof why) < 0) fail(VMR_STATUS_FAILURE, "protocol error from the agent: %s", why);
        if (rx.len < VMR_HEADER_LEN + len) break;
        const unsigned char *p = f + VMR_HEADER_LEN;
        if (type == VMR_STDOUT || type == VMR_STDERR) {
          out(type == VMR_STDOUT ? STDOUT_FILENO : STDERR_FILENO, p, len);
        } else if (type == VMR_EXIT) {
          int status = exit_status(p);
          if (status >= 0) return status;
          fail(VMR_STATUS_FAILURE, "protocol error from the agent: bad exit frame (%u, %u)", p[0], p[1]);
        } else {
          print_error(p + 1, len - 1);
          return status_of_error(p[0]);
        }
        buf_consume(&rx, VMR_HEADER_LEN + len);
      }
    }
  }
}
