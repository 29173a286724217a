/*
 * vmsilo-usb-broker: moves host USB devices into and out of VMs (docs/usb.md). One job: it runs as
 * root, started by systemd (vmsilo-usb-attach@VM:BUSPATH.service and its detach twin, which the
 * desktop user may start through polkit; vmsilo-<vm>-usb.service at VM start and on hot-plug; the
 * VM service's ExecStopPost=), and as the user for `list` and `find`, which change nothing.
 *
 *   vmsilo-usb-broker [--sysfs DIR] [--dev DIR] [--run DIR] CONFIG OP ARGS
 *     attach VM:BUSPATH | detach VM:BUSPATH   move one device (the unit's instance, %i)
 *     persist VM     attach every configured device of VM that is plugged in and in no VM
 *     cleanup VM     forget VM's devices (the VM has stopped)
 *     list [--json]  every USB device and the VM it is in
 *     find attach|detach VM ID   bus paths of ID (a bus path or VID:PID, any case) for the CLI
 *
 * It trusts nothing it is given: VM must be a USB-capable VM of CONFIG (the generated file the unit
 * names), BUSPATH a bus path (1-3.2) of a device in sysfs that is not a hub; the device node is
 * derived from sysfs and must be the character device sysfs names. State: RUN/usb-state.json, a
 * JSON array rewritten under flock(RUN/usb-state.lock) by write-temp + rename, so it is valid at
 * every moment. The result of attach/detach also goes to RUN/usb-results/OP-VM:BUSPATH for the
 * CLI. Exit 0 only when the device is where it was asked to be; 1 on refusal or failure; 2 usage.
 * --sysfs/--dev/--run move the roots for tests (the units never pass them).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_VMS 256
#define MAX_DEVS 256
#define MAX_ENTRIES 256
#define STR 128
#define PATHLEN 512

static const char *sysfs = "/sys", *devroot = "/dev", *runroot = "/run/vmsilo";

struct vm {
  char name[64], hypervisor[32], socket[PATHLEN], user[64];
};
struct want {
  char vm[64], vid[8], pid[8], serial[STR];
};
struct config {
  char crosvm[PATHLEN];
  int timeout_s;
  struct vm vms[MAX_VMS];
  int nvms;
  struct want wants[MAX_DEVS];
  int nwants;
};
/* A device as sysfs shows it (strings sanitised to printable ASCII). */
struct dev {
  char devpath[64], vid[8], pid[8], serial[STR], manufacturer[STR], product[STR];
  unsigned busnum, devnum;
  dev_t rdev;
  int hub;
};
/* One state entry: where a device is. port: crosvm's port (0: none); qdev: qemu's device id. */
struct entry {
  char vm[64], devpath[64], vid[8], pid[8], serial[STR], qdev[80];
  unsigned busnum, devnum, port;
};
struct state {
  struct entry e[MAX_ENTRIES];
  int n;
};

static struct config cfg;
static char message[1024];
static int verbose_fd = 1;

/* The one-line result: printed, kept for the result file. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  for (char *p = message; *p; p++)
    if ((unsigned char)*p < 0x20) *p = '?';
  dprintf(verbose_fd, "%s\n", message);
}

static int usage(void) {
  fprintf(stderr, "usage: vmsilo-usb-broker [--sysfs DIR] [--dev DIR] [--run DIR] CONFIG attach|detach VM:BUSPATH | persist|cleanup VM | list [--json] | find attach|detach VM ID\n");
  return 2;
}

/* --- grammars --- */

static int vm_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 32 || !islower((unsigned char)s[0]) || s[n - 1] == '-') return 0;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-')) return 0;
  return 1;
}

/* A bus path: BUS-PORT[.PORT]…, each number 1–255 without leading zeros, at most 7 ports. */
static int devpath_ok(const char *s) {
  int parts = 0;
  const char *p = s;
  if (strlen(s) >= 40) return 0;
  for (;;) {
    if (*p < '1' || *p > '9') return 0;
    unsigned v = 0;
    while (isdigit((unsigned char)*p)) {
      v = v * 10 + (unsigned)(*p++ - '0');
      if (v > 255) return 0;
    }
    parts++;
    if (*p == 0) break;
    if (*p != (parts == 1 ? '-' : '.')) return 0;
    p++;
  }
  return parts >= 2 && parts <= 8;
}

static int hex4_ok(const char *s) {
  if (strlen(s) != 4) return 0;
  for (int i = 0; i < 4; i++)
    if (!isxdigit((unsigned char)s[i])) return 0;
  return 1;
}
static void lower(char *s) {
  for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* --- configuration --- */

static const struct vm *find_vm(const char *name) {
  for (int i = 0; i < cfg.nvms; i++)
    if (!strcmp(cfg.vms[i].name, name)) return &cfg.vms[i];
  return NULL;
}

/* Bounded copy (truncates). */
static void copy(char *dst, size_t cap, const char *src) {
  size_t n = src ? strnlen(src, cap - 1) : 0;
  if (n) memcpy(dst, src, n);
  dst[n] = 0;
}

static int load_config(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) {
    fprintf(stderr, "vmsilo-usb-broker: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  char line[2048];
  cfg.timeout_s = 30;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == '#' || line[0] == 0) continue;
    char *field[6] = {0};
    int n = 0;
    for (char *p = line; n < 6;) {
      field[n++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = 0;
      p = t + 1;
    }
    if (!strcmp(field[0], "crosvm") && n == 2) copy(cfg.crosvm, sizeof cfg.crosvm, field[1]);
    else if (!strcmp(field[0], "timeout") && n == 2) cfg.timeout_s = atoi(field[1]);
    else if (!strcmp(field[0], "vm") && n == 5 && cfg.nvms < MAX_VMS) {
      struct vm *v = &cfg.vms[cfg.nvms++];
      copy(v->name, sizeof v->name, field[1]);
      copy(v->hypervisor, sizeof v->hypervisor, field[2]);
      copy(v->socket, sizeof v->socket, field[3]);
      copy(v->user, sizeof v->user, field[4]);
    } else if (!strcmp(field[0], "device") && n == 5 && cfg.nwants < MAX_DEVS) {
      struct want *w = &cfg.wants[cfg.nwants++];
      copy(w->vm, sizeof w->vm, field[1]);
      copy(w->vid, sizeof w->vid, field[2]);
      copy(w->pid, sizeof w->pid, field[3]);
      copy(w->serial, sizeof w->serial, field[4]);
      lower(w->vid);
      lower(w->pid);
    } else {
      fprintf(stderr, "vmsilo-usb-broker: %s: unknown line\n", path);
      fclose(f);
      return -1;
    }
  }
  fclose(f);
  return 0;
}

/* --- sysfs --- */

/* Reads a small attribute of an open sysfs directory, sanitised; "" when absent. */
static void attr(int dir, const char *name, char *out, size_t cap) {
  out[0] = 0;
  int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, cap - 1);
  close(fd);
  if (n < 0) n = 0;
  out[n] = 0;
  out[strcspn(out, "\n")] = 0;
  for (char *p = out; *p; p++)
    if (*p < 0x20 || *p > 0x7e) *p = '?';
}

static int read_dev(const char *devpath, struct dev *d) {
  char path[PATHLEN], buf[STR];
  memset(d, 0, sizeof *d);
  if (!devpath_ok(devpath)) return -1;
  snprintf(path, sizeof path, "%s/bus/usb/devices/%s", sysfs, devpath);
  /* The entry is sysfs's link to the device's directory; the grammar keeps it inside bus/usb/devices. */
  int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  copy(d->devpath, sizeof d->devpath, devpath);
  attr(dir, "idVendor", d->vid, sizeof d->vid);
  attr(dir, "idProduct", d->pid, sizeof d->pid);
  attr(dir, "serial", d->serial, sizeof d->serial);
  attr(dir, "manufacturer", d->manufacturer, sizeof d->manufacturer);
  attr(dir, "product", d->product, sizeof d->product);
  attr(dir, "busnum", buf, sizeof buf);
  d->busnum = (unsigned)strtoul(buf, NULL, 10);
  attr(dir, "devnum", buf, sizeof buf);
  d->devnum = (unsigned)strtoul(buf, NULL, 10);
  attr(dir, "dev", buf, sizeof buf);
  unsigned ma = 0, mi = 0;
  int devok = sscanf(buf, "%u:%u", &ma, &mi) == 2;
  d->rdev = makedev(ma, mi);
  attr(dir, "bDeviceClass", buf, sizeof buf);
  d->hub = !strcmp(buf, "09");
  close(dir);
  lower(d->vid);
  lower(d->pid);
  if (!hex4_ok(d->vid) || !hex4_ok(d->pid) || d->busnum < 1 || d->busnum > 999 || d->devnum < 1 || d->devnum > 999 || !devok) return -2;
  return 0;
}

static int cmp_dev(const void *a, const void *b) {
  return strcmp(((const struct dev *)a)->devpath, ((const struct dev *)b)->devpath);
}

/* Every device (not interfaces, not root hubs), sorted by bus path. */
static int enumerate(struct dev *out, int cap) {
  char path[PATHLEN];
  snprintf(path, sizeof path, "%s/bus/usb/devices", sysfs);
  DIR *d = opendir(path);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap)
    if (devpath_ok(e->d_name) && read_dev(e->d_name, &out[n]) == 0) n++;
  closedir(d);
  qsort(out, (size_t)n, sizeof *out, cmp_dev);
  return n;
}

/* The device node sysfs names, checked to be that character device (not a link, not a file). */
static int dev_node(const struct dev *d, char *node, size_t cap) {
  struct stat st;
  snprintf(node, cap, "%s/bus/usb/%03u/%03u", devroot, d->busnum, d->devnum);
  if (lstat(node, &st) < 0) {
    say("Error: device %s has no device node %s", d->devpath, node);
    return -1;
  }
  if (!S_ISCHR(st.st_mode) || st.st_rdev != d->rdev) {
    say("Error: %s is not the character device %u:%u that sysfs names for %s", node, major(d->rdev), minor(d->rdev), d->devpath);
    return -1;
  }
  return 0;
}

/* --- state --- */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) fprintf(f, "\\u%04x", (unsigned char)*s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

static void json_entry(FILE *f, const struct entry *e) {
  fputs("{\"vm\":", f);
  json_str(f, e->vm);
  fputs(",\"devpath\":", f);
  json_str(f, e->devpath);
  fputs(",\"vid\":", f);
  json_str(f, e->vid);
  fputs(",\"pid\":", f);
  json_str(f, e->pid);
  fputs(",\"serial\":", f);
  json_str(f, e->serial);
  fprintf(f, ",\"busnum\":\"%u\",\"devnum\":\"%u\",\"port\":", e->busnum, e->devnum);
  if (e->port) fprintf(f, "%u", e->port);
  else fputs("null", f);
  fputs(",\"qdev\":", f);
  if (e->qdev[0]) json_str(f, e->qdev);
  else fputs("null", f);
  fputc('}', f);
}

/* A parser for the broker's own format: an array of flat objects of strings, numbers and null. */
struct cursor {
  const char *p;
};
static void ws(struct cursor *c) {
  while (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r') c->p++;
}
static int parse_str(struct cursor *c, char *out, size_t cap) {
  size_t n = 0;
  if (*c->p != '"') return -1;
  c->p++;
  while (*c->p != '"') {
    int ch = (unsigned char)*c->p++;
    if (ch == 0) return -1;
    if (ch == '\\') {
      ch = (unsigned char)*c->p++;
      if (ch == 'u') {
        unsigned v;
        if (sscanf(c->p, "%4x", &v) != 1) return -1;
        c->p += 4;
        ch = v < 0x80 ? (int)v : '?';
      } else if (ch != '"' && ch != '\\' && ch != '/') return -1;
    }
    if (n + 1 < cap) out[n++] = (char)ch;
  }
  c->p++;
  out[n] = 0;
  return 0;
}

static int parse_state(const char *text, struct state *s) {
  struct cursor c = {text};
  s->n = 0;
  ws(&c);
  if (*c.p++ != '[') return -1;
  ws(&c);
  if (*c.p == ']') return 0;
  for (;;) {
    if (s->n >= MAX_ENTRIES) return -1;
    struct entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    ws(&c);
    if (*c.p++ != '{') return -1;
    for (;;) {
      char key[32], val[STR];
      ws(&c);
      if (parse_str(&c, key, sizeof key) < 0) return -1;
      ws(&c);
      if (*c.p++ != ':') return -1;
      ws(&c);
      val[0] = 0;
      unsigned num = 0;
      if (*c.p == '"') {
        if (parse_str(&c, val, sizeof val) < 0) return -1;
      } else if (!strncmp(c.p, "null", 4)) c.p += 4;
      else if (isdigit((unsigned char)*c.p)) num = (unsigned)strtoul(c.p, (char **)&c.p, 10);
      else return -1;
      if (!strcmp(key, "vm")) copy(e->vm, sizeof e->vm, val);
      else if (!strcmp(key, "devpath")) copy(e->devpath, sizeof e->devpath, val);
      else if (!strcmp(key, "vid")) copy(e->vid, sizeof e->vid, val);
      else if (!strcmp(key, "pid")) copy(e->pid, sizeof e->pid, val);
      else if (!strcmp(key, "serial")) copy(e->serial, sizeof e->serial, val);
      else if (!strcmp(key, "qdev")) copy(e->qdev, sizeof e->qdev, val);
      else if (!strcmp(key, "busnum")) e->busnum = (unsigned)strtoul(val, NULL, 10);
      else if (!strcmp(key, "devnum")) e->devnum = (unsigned)strtoul(val, NULL, 10);
      else if (!strcmp(key, "port")) e->port = num;
      ws(&c);
      if (*c.p == ',') {
        c.p++;
        continue;
      }
      if (*c.p++ != '}') return -1;
      break;
    }
    if (!vm_name_ok(e->vm) || !devpath_ok(e->devpath)) return -1;
    ws(&c);
    if (*c.p == ',') {
      c.p++;
      continue;
    }
    if (*c.p++ != ']') return -1;
    ws(&c);
    return *c.p ? -1 : 0;
  }
}

static char state_path[PATHLEN], lock_path[PATHLEN];

/* Reads the state; a missing file is an empty list. */
static int read_state(struct state *s) {
  static char text[MAX_ENTRIES * 600];
  s->n = 0;
  int fd = open(state_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n < 0) return -1;
  text[n] = 0;
  if (parse_state(text, s) < 0) {
    say("Error: %s is not a list of USB devices", state_path);
    return -1;
  }
  return 0;
}

static int write_state(const struct state *s) {
  char tmp[PATHLEN + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", state_path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
  if (!f) {
    say("Error: cannot write %s: %s", tmp, strerror(errno));
    return -1;
  }
  fputc('[', f);
  for (int i = 0; i < s->n; i++) {
    if (i) fputc(',', f);
    json_entry(f, &s->e[i]);
  }
  fputs("]\n", f);
  if (fflush(f) || fchmod(fd, 0644) || fclose(f) || rename(tmp, state_path)) {
    say("Error: cannot write %s: %s", state_path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

static int lock_state(void) {
  int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX) < 0) {
    say("Error: cannot lock %s: %s", lock_path, strerror(errno));
    return -1;
  }
  return fd;
}

static int find_entry(const struct state *s, const char *devpath) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->e[i].devpath, devpath)) return i;
  return -1;
}
static void drop_entry(struct state *s, int i) {
  memmove(&s->e[i], &s->e[i + 1], sizeof s->e[0] * (size_t)(s->n - i - 1));
  s->n--;
}

/* --- backends --- */

static int is_socket(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Runs crosvm with argv, its output (bounded) in out; returns its exit status or -1. */
static int run_crosvm(char *const argv[], char *out, size_t cap) {
  int p[2];
  out[0] = 0;
  if (pipe2(p, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(p[1]);
  size_t n = 0;
  ssize_t r;
  char sink[256];
  while ((r = read(p[0], n + 1 < cap ? out + n : sink, n + 1 < cap ? cap - 1 - n : sizeof sink)) > 0)
    if (n + 1 < cap) n += (size_t)r;
  close(p[0]);
  out[n] = 0;
  while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
  for (char *c = out; *c; c++)
    if (*c == '\n' || (unsigned char)*c < 0x20) *c = ' ';
  int status;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A QMP session: connect, greeting, capabilities. */
static int qmp_open(const char *socket_path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof a.sun_path) return -1;
  strcpy(a.sun_path, socket_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

/* Reads lines until one that holds "return" or "error" (events and the greeting are skipped);
 * 0 on return, -1 otherwise with qemu's error description in err. */
static char qmp_buf[16384];
static size_t qmp_have;
static int qmp_answer(int fd, char *err, size_t cap, int64_t deadline_ms) {
  char *buf = qmp_buf;
  size_t have = qmp_have;
  for (;;) {
    char *nl = memchr(buf, '\n', have);
    if (nl) {
      *nl = 0;
      int ret = strstr(buf, "\"return\"") != NULL, bad = strstr(buf, "\"error\"") != NULL;
      if (bad) {
        const char *d = strstr(buf, "\"desc\": \"");
        if (!d) d = strstr(buf, "\"desc\":\"");
        copy(err, cap, d ? strchr(d + 7, '"') + 1 : buf);
        err[strcspn(err, "\"")] = 0;
      }
      size_t used = (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, have - used);
      have -= used;
      qmp_have = have;
      if (bad) return -1;
      if (ret) return 0;
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left = deadline_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (have >= sizeof qmp_buf - 1 || left <= 0 || poll(&pf, 1, (int)left) <= 0) {
      copy(err, cap, "no answer from qemu");
      return -1;
    }
    ssize_t r = read(fd, buf + have, sizeof qmp_buf - 1 - have);
    if (r <= 0) {
      copy(err, cap, "qemu closed the QMP connection");
      return -1;
    }
    have += (size_t)r;
  }
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One QMP command (a JSON object text) after the handshake; 0 when qemu returned. */
static int qmp(const struct vm *v, const char *command, char *err, size_t cap) {
  int fd = qmp_open(v->socket);
  if (fd < 0) {
    snprintf(err, cap, "cannot connect to %s: %s", v->socket, strerror(errno));
    return -1;
  }
  int64_t deadline = mono_ms() + 1000L * cfg.timeout_s;
  qmp_have = 0; /* a new connection: nothing left of the last one */
  const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
  int rc = -1;
  if (write(fd, caps, strlen(caps)) == (ssize_t)strlen(caps) && qmp_answer(fd, err, cap, deadline) == 0 && write(fd, command, strlen(command)) == (ssize_t)strlen(command))
    rc = qmp_answer(fd, err, cap, deadline);
  close(fd);
  return rc;
}

/* qemu opens the node itself (libusb, as the VM's user): hand it over, and back to root after. */
static int give_node(const char *node, const char *user) {
  struct passwd *pw = user[0] ? getpwnam(user) : NULL;
  uid_t uid = pw ? pw->pw_uid : 0;
  gid_t gid = pw ? pw->pw_gid : 0;
  if (user[0] && !pw) return -1;
  return fchownat(AT_FDCWD, node, uid, gid, AT_SYMLINK_NOFOLLOW);
}

static void qdev_id(const char *devpath, char *out, size_t cap) {
  snprintf(out, cap, "vmsilo-usb-%s", devpath);
}

/* Detaches an entry's device from its VM; errors are said; a VM that is gone has nothing to detach. */
static int backend_detach(const struct entry *e) {
  const struct vm *v = find_vm(e->vm);
  if (!v || !is_socket(v->socket)) return 0;
  char out[512];
  if (!strcmp(v->hypervisor, "crosvm")) {
    char port[16];
    snprintf(port, sizeof port, "%u", e->port);
    char *argv[] = {cfg.crosvm, "usb", "detach", port, (char *)v->socket, NULL};
    int st = run_crosvm(argv, out, sizeof out);
    if (st != 0 || strncmp(out, "ok", 2) != 0) {
      say("Error: crosvm usb detach of %s from %s failed: %s", e->devpath, e->vm, out[0] ? out : "no answer");
      return -1;
    }
    return 0;
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"%s\"}}\n", e->qdev);
  if (qmp(v, cmd, out, sizeof out) < 0 && !strstr(out, "not found")) {
    say("Error: qemu device_del of %s from %s failed: %s", e->devpath, e->vm, out);
    return -1;
  }
  char node[PATHLEN];
  snprintf(node, sizeof node, "%s/bus/usb/%03u/%03u", devroot, e->busnum, e->devnum);
  give_node(node, "");
  return 0;
}

static int backend_attach(const struct vm *v, const struct dev *d, const char *node, struct entry *e) {
  char out[512];
  memset(e, 0, sizeof *e);
  copy(e->vm, sizeof e->vm, v->name);
  copy(e->devpath, sizeof e->devpath, d->devpath);
  copy(e->vid, sizeof e->vid, d->vid);
  copy(e->pid, sizeof e->pid, d->pid);
  copy(e->serial, sizeof e->serial, d->serial);
  e->busnum = d->busnum;
  e->devnum = d->devnum;
  if (!strcmp(v->hypervisor, "crosvm")) {
    char id[64];
    snprintf(id, sizeof id, "%u:%u:%s:%s", d->busnum, d->devnum, d->vid, d->pid);
    char *argv[] = {cfg.crosvm, "usb", "attach", id, (char *)node, (char *)v->socket, NULL};
    int st = run_crosvm(argv, out, sizeof out);
    unsigned port = 0;
    /* crosvm prints its answer and exits 0 even when it refused (no_available_port …). */
    if (st != 0 || sscanf(out, "ok %u", &port) != 1 || port == 0) {
      say("Error: crosvm usb attach of %s to %s failed: %s", d->devpath, v->name, out[0] ? out : "no answer");
      return -1;
    }
    e->port = port;
    return 0;
  }
  qdev_id(d->devpath, e->qdev, sizeof e->qdev);
  if (give_node(node, v->user) < 0) {
    say("Error: cannot hand %s to %s's user %s: %s", node, v->name, v->user, strerror(errno));
    return -1;
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"usb-host\",\"id\":\"%s\",\"bus\":\"vmsilo-xhci.0\",\"hostbus\":%u,\"hostaddr\":%u}}\n", e->qdev, d->busnum, d->devnum);
  if (qmp(v, cmd, out, sizeof out) < 0) {
    give_node(node, "");
    say("Error: qemu device_add of %s to %s failed: %s", d->devpath, v->name, out);
    return -1;
  }
  return 0;
}

/* --- operations --- */

/* The VM, if USB-capable and running; else says why. */
static const struct vm *usable_vm(const char *name) {
  const struct vm *v = vm_name_ok(name) ? find_vm(name) : NULL;
  if (!v) {
    say("Error: %s is not a configured VM", name);
    return NULL;
  }
  if (strcmp(v->hypervisor, "crosvm") && strcmp(v->hypervisor, "qemu")) {
    say("Error: VM %s uses %s, which has no USB passthrough", name, v->hypervisor);
    return NULL;
  }
  if (!v->socket[0]) {
    say("Error: VM %s has no USB controller (qemu.usb is off and it has no usbDevices)", name);
    return NULL;
  }
  if (!is_socket(v->socket)) {
    say("Error: VM %s is not running", name);
    return NULL;
  }
  return v;
}

/* With the lock held: moves devpath into v (from another VM first). */
static int attach_locked(const struct vm *v, const struct dev *d, struct state *s) {
  char node[PATHLEN];
  if (dev_node(d, node, sizeof node) < 0) return -1;
  int i = find_entry(s, d->devpath);
  if (i >= 0 && !strcmp(s->e[i].vm, v->name) && s->e[i].busnum == d->busnum && s->e[i].devnum == d->devnum) {
    say("%s:%s (%s) is already attached to %s", d->vid, d->pid, d->devpath, v->name);
    return 0;
  }
  if (i >= 0) {
    if (backend_detach(&s->e[i]) < 0) return -1;
    drop_entry(s, i);
    if (write_state(s) < 0) return -1;
  }
  struct entry e;
  if (backend_attach(v, d, node, &e) < 0) return -1;
  s->e[s->n++] = e;
  if (write_state(s) < 0) return -1;
  if (e.port) say("Attached %s:%s (%s) to %s on port %u", d->vid, d->pid, d->devpath, v->name, e.port);
  else say("Attached %s:%s (%s) to %s as %s", d->vid, d->pid, d->devpath, v->name, e.qdev);
  return 0;
}

/* Splits VM:BUSPATH (the unit's %i). */
static int split_instance(const char *inst, char *vm, char *devpath) {
  const char *colon = strchr(inst, ':');
  if (!colon || colon - inst >= 64 || strlen(colon + 1) >= 64) return -1;
  memcpy(vm, inst, (size_t)(colon - inst));
  vm[colon - inst] = 0;
  strcpy(devpath, colon + 1);
  return vm_name_ok(vm) && devpath_ok(devpath) ? 0 : -1;
}

static int op_attach(const char *vmname, const char *devpath) {
  const struct vm *v = usable_vm(vmname);
  if (!v) return 1;
  struct dev d;
  int r = read_dev(devpath, &d);
  if (r == -1) {
    say("Error: no USB device at %s", devpath);
    return 1;
  }
  if (r < 0) {
    say("Error: %s is not a complete USB device in sysfs", devpath);
    return 1;
  }
  if (d.hub) {
    say("Error: %s is a USB hub; attach the devices behind it instead", devpath);
    return 1;
  }
  int lk = lock_state();
  struct state s;
  if (lk < 0 || read_state(&s) < 0) return 1;
  return attach_locked(v, &d, &s) < 0 ? 1 : 0;
}

static int op_detach(const char *vmname, const char *devpath) {
  if (!vm_name_ok(vmname) || !find_vm(vmname)) {
    say("Error: %s is not a configured VM", vmname);
    return 1;
  }
  int lk = lock_state();
  struct state s;
  if (lk < 0 || read_state(&s) < 0) return 1;
  int i = find_entry(&s, devpath);
  if (i < 0 || strcmp(s.e[i].vm, vmname)) {
    say("Error: device %s is not attached to %s", devpath, vmname);
    return 1;
  }
  if (backend_detach(&s.e[i]) < 0) return 1;
  struct entry e = s.e[i];
  drop_entry(&s, i);
  if (write_state(&s) < 0) return 1;
  say("Detached %s:%s (%s) from %s", e.vid, e.pid, e.devpath, vmname);
  return 0;
}

static int wanted(const struct want *w, const struct dev *d) {
  return !strcmp(w->vid, d->vid) && !strcmp(w->pid, d->pid) && (!w->serial[0] || !strcmp(w->serial, d->serial));
}

static int op_persist(const char *vmname) {
  const struct vm *v = vm_name_ok(vmname) ? find_vm(vmname) : NULL;
  if (!v) {
    say("Error: %s is not a configured VM", vmname);
    return 1;
  }
  /* The VMM creates its control socket shortly after its service started. */
  int64_t deadline = mono_ms() + 1000L * cfg.timeout_s, start = mono_ms();
  while (!is_socket(v->socket) && mono_ms() < deadline) usleep(20000);
  if (!usable_vm(vmname)) {
    say("Error: VM %s has no control socket %s after %lld ms", vmname, v->socket, (long long)(mono_ms() - start));
    return 1;
  }
  static struct dev devs[MAX_DEVS];
  int n = enumerate(devs, MAX_DEVS), failed = 0, lk = lock_state();
  struct state s;
  if (lk < 0 || read_state(&s) < 0) return 1;
  for (int i = 0; i < n; i++) {
    if (devs[i].hub || find_entry(&s, devs[i].devpath) >= 0) continue;
    for (int j = 0; j < cfg.nwants; j++)
      if (!strcmp(cfg.wants[j].vm, vmname) && wanted(&cfg.wants[j], &devs[i])) {
        if (attach_locked(v, &devs[i], &s) < 0) failed = 1;
        break;
      }
  }
  return failed;
}

static int op_cleanup(const char *vmname) {
  const struct vm *v = vm_name_ok(vmname) ? find_vm(vmname) : NULL;
  if (!v) {
    say("Error: %s is not a configured VM", vmname);
    return 1;
  }
  int lk = lock_state();
  struct state s;
  if (lk < 0 || read_state(&s) < 0) return 1;
  int dropped = 0;
  for (int i = s.n - 1; i >= 0; i--)
    if (!strcmp(s.e[i].vm, vmname)) {
      if (s.e[i].qdev[0]) {
        char node[PATHLEN];
        snprintf(node, sizeof node, "%s/bus/usb/%03u/%03u", devroot, s.e[i].busnum, s.e[i].devnum);
        give_node(node, "");
      }
      drop_entry(&s, i);
      dropped++;
    }
  if (dropped && write_state(&s) < 0) return 1;
  say("Forgot %d USB device(s) of %s", dropped, vmname);
  return 0;
}

static const char *or_dash(const char *s) {
  return s[0] ? s : "-";
}

static int op_list(int json) {
  static struct dev devs[MAX_DEVS];
  int n = enumerate(devs, MAX_DEVS);
  struct state s;
  if (read_state(&s) < 0) s.n = 0;
  if (json) fputc('[', stdout);
  else printf("%-10s %-12s %-14s %-16s %-24s %s\n", "VID:PID", "BUS-PATH", "SERIAL", "MANUFACTURER", "PRODUCT", "VM");
  for (int i = 0; i < n; i++) {
    int k = find_entry(&s, devs[i].devpath);
    const char *vm = k >= 0 ? s.e[k].vm : "";
    if (json) {
      struct entry e = {0};
      fputs(i ? ",{\"vid\":" : "{\"vid\":", stdout);
      json_str(stdout, devs[i].vid);
      fputs(",\"pid\":", stdout);
      json_str(stdout, devs[i].pid);
      fputs(",\"devpath\":", stdout);
      json_str(stdout, devs[i].devpath);
      fputs(",\"serial\":", stdout);
      json_str(stdout, devs[i].serial);
      fputs(",\"manufacturer\":", stdout);
      json_str(stdout, devs[i].manufacturer);
      fputs(",\"product\":", stdout);
      json_str(stdout, devs[i].product);
      fputs(",\"vm\":", stdout);
      if (vm[0]) json_str(stdout, vm);
      else fputs("null", stdout);
      fputc('}', stdout);
      (void)e;
    } else
      printf("%s:%s  %-12s %-14s %-16s %-24s %s\n", devs[i].vid, devs[i].pid, devs[i].devpath, or_dash(devs[i].serial), or_dash(devs[i].manufacturer), or_dash(devs[i].product), or_dash(vm));
  }
  if (json) fputs("]\n", stdout);
  return 0;
}

/* The bus paths ID names, for the CLI: present devices (attach) or VM's attached ones (detach). */
static int op_find(const char *what, const char *vmname, const char *id) {
  char vid[8] = "", pid[8] = "";
  int by_path = devpath_ok(id);
  if (!by_path) {
    const char *colon = strchr(id, ':');
    if (!colon || colon - id != 4 || !hex4_ok(colon + 1)) {
      fprintf(stderr, "Error: %s is neither a bus path (like 1-3.2) nor VID:PID (like 046d:c52b)\n", id);
      return 2;
    }
    memcpy(vid, id, 4);
    vid[4] = 0;
    copy(pid, sizeof pid, colon + 1);
    if (!hex4_ok(vid)) return 2;
    lower(vid);
    lower(pid);
  }
  int found = 0;
  if (!strcmp(what, "attach")) {
    static struct dev devs[MAX_DEVS];
    int n = enumerate(devs, MAX_DEVS);
    for (int i = 0; i < n; i++)
      if (by_path ? !strcmp(devs[i].devpath, id) : !strcmp(devs[i].vid, vid) && !strcmp(devs[i].pid, pid)) {
        printf("%s\n", devs[i].devpath);
        found++;
      }
    if (!found) fprintf(stderr, "Error: no USB device %s %s\n", by_path ? "at" : "matching", id);
  } else if (!strcmp(what, "detach")) {
    struct state s;
    if (read_state(&s) < 0) return 1;
    for (int i = 0; i < s.n; i++)
      if (!strcmp(s.e[i].vm, vmname) && (by_path ? !strcmp(s.e[i].devpath, id) : !strcmp(s.e[i].vid, vid) && !strcmp(s.e[i].pid, pid))) {
        printf("%s\n", s.e[i].devpath);
        found++;
      }
    if (!found) fprintf(stderr, "Error: no USB device %s is attached to %s\n", id, vmname);
  } else return usage();
  return found ? 0 : 1;
}

/* The result for the CLI, replaced atomically: "<status> <message>". */
static void write_result(const char *op, const char *inst, int status) {
  char dir[PATHLEN], path[PATHLEN * 2], tmp[PATHLEN * 2 + 32];
  snprintf(dir, sizeof dir, "%s/usb-results", runroot);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/%s-%s", dir, op, inst);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  dprintf(fd, "%d %s\n", status, message);
  fchmod(fd, 0644);
  close(fd);
  if (rename(tmp, path) < 0) unlink(tmp);
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
    if (!strcmp(argv[i], "--sysfs")) sysfs = argv[i + 1];
    else if (!strcmp(argv[i], "--dev")) devroot = argv[i + 1];
    else if (!strcmp(argv[i], "--run")) runroot = argv[i + 1];
    else return usage();
  }
  if (argc - i < 2) return usage();
  snprintf(state_path, sizeof state_path, "%s/usb-state.json", runroot);
  snprintf(lock_path, sizeof lock_path, "%s/usb-state.lock", runroot);
  if (load_config(argv[i]) < 0) return 1;
  const char *op = argv[i + 1];
  char **rest = argv + i + 2;
  int nrest = argc - i - 2;
  if (!strcmp(op, "list")) {
    if (nrest > 1 || (nrest == 1 && strcmp(rest[0], "--json"))) return usage();
    return op_list(nrest == 1);
  }
  if (!strcmp(op, "find")) return nrest == 3 ? op_find(rest[0], rest[1], rest[2]) : usage();
  if (nrest != 1) return usage();
  if (!strcmp(op, "persist")) return op_persist(rest[0]);
  if (!strcmp(op, "cleanup")) return op_cleanup(rest[0]);
  if (strcmp(op, "attach") && strcmp(op, "detach")) return usage();
  char vm[64], devpath[64];
  int status;
  if (split_instance(rest[0], vm, devpath) < 0) {
    say("Error: %.80s is not VM:BUSPATH (a configured VM and a bus path like 1-3.2)", rest[0]);
    return 1;
  }
  status = !strcmp(op, "attach") ? op_attach(vm, devpath) : op_detach(vm, devpath);
  write_result(op, rest[0], status);
  return status;
}
