/*
 * vmsilo-balloond: one daemon for the host that moves memory between the host and its running VMs
 * through their balloon devices (docs/balloon.md says the policy and every option).
 *
 * It reads the generated manifest once (share/vmsilo/manifest.json: each VM's `balloon` entry, the
 * VMM's control socket and protocol, its memory and floor), then every poll: the host's memory
 * (MemTotal, MemAvailable) and pressure (PSI "some avg10"), and each running VM's balloon and guest
 * statistics through its VMM: crosvm's control socket (SOCK_SEQPACKET, one JSON request and answer
 * per packet), QMP (qemu) or cloud-hypervisor's HTTP API. A VM whose socket does not answer is not
 * running, and is asked again at the next poll.
 *
 * Everything a VMM sends comes from a process a guest may control: each answer is read into a fixed
 * buffer (MAX_ANSWER), within a deadline (IO_TIMEOUT_MS), parsed by the bounded reader of json.c,
 * and every number is checked against the VM's own size before it is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "json.h"

#define MIB (1024ULL * 1024ULL)
/* The largest answer read from a VMM, and the deadline of one request and its answer. */
#define MAX_ANSWER (256 * 1024)
#define IO_TIMEOUT_MS 1000
#define MAX_TOKENS 16384
#define MAX_VMS 256
#define MAX_MANIFEST (8 * 1024 * 1024)
/* Targets move in whole MiB, and a change smaller than this is not worth a request. */
#define MIN_CHANGE (4 * MIB)
/* What a VM without guest statistics (cloud-hypervisor) gives or gets back per poll: 1/STEP_DIV of its memory. */
#define STEP_DIV 8

enum level { L_ERROR, L_WARN, L_INFO, L_DEBUG };
static const char *const LEVELS[] = {"error", "warn", "info", "debug"};
static enum level log_level = L_INFO;

static void logf_(enum level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(enum level l, const char *fmt, ...) {
  if (l > log_level) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  msg("%s: %s", LEVELS[l], line);
}

enum kind { K_CROSVM, K_QMP, K_CH };

struct vm {
  char name[64];
  char socket[108];
  enum kind kind;
  uint64_t memory, floor;
  /* The balloon size last asked for (bytes), and whether the VM answered at the last poll. */
  uint64_t target;
  int running;
  /* QMP: the connection of the current poll; the guest's last statistics timestamp. */
  int qmp_fd;
  uint64_t last_update;
};

struct stats {
  int have_avail;
  uint64_t avail, actual;
  /* The guest's statistics are newer than at the last poll (QMP reports when they were taken). */
  int fresh;
};

static struct {
  const char *manifest, *psi_path, *meminfo_path;
  int64_t poll_ms, min_poll_ms;
  unsigned critical_host_percent;
  uint64_t critical_guest, bias;
  double psi_ceiling;
  int once;
} opt = {
    .psi_path = "/proc/pressure/memory",
    .meminfo_path = "/proc/meminfo",
    .poll_ms = 2000,
    .min_poll_ms = 250,
    .critical_host_percent = 5,
    .critical_guest = 96 * MIB,
    .bias = 256 * MIB,
    .psi_ceiling = 20,
};

static struct vm vms[MAX_VMS];
static int64_t started_ms;
static int nvms;
static volatile sig_atomic_t stopping;
static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

/* ---- option values: the grammars of src/config/grammar.ts ---- */

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9') return -1;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (max - (uint64_t)(*s - '0')) / 10) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (*s) return -1;
  *out = v;
  return 0;
}

/* "250ms", "2s" → milliseconds. */
static int parse_duration(const char *s, int64_t *out) {
  char num[32];
  size_t n = strlen(s);
  uint64_t mult = 0;
  if (n > 2 && strcmp(s + n - 2, "ms") == 0) mult = 1, n -= 2;
  else if (n > 1 && s[n - 1] == 's') mult = 1000, n -= 1;
  if (!mult || n == 0 || n >= sizeof num) return -1;
  memcpy(num, s, n);
  num[n] = '\0';
  uint64_t v;
  if (parse_uint(num, 86400000, &v) < 0 || v * mult > 86400000 || v == 0) return -1;
  *out = (int64_t)(v * mult);
  return 0;
}

/* "64M", "1G", "512" (bytes) → bytes. */
static int parse_size(const char *s, uint64_t *out) {
  char num[32];
  size_t n = strlen(s);
  uint64_t mult = 1;
  if (n == 0 || n >= sizeof num) return -1;
  switch (s[n - 1]) {
    case 'K': mult = 1024ULL; n--; break;
    case 'M': mult = MIB; n--; break;
    case 'G': mult = 1024ULL * MIB; n--; break;
    case 'T': mult = 1024ULL * 1024ULL * MIB; n--; break;
  }
  memcpy(num, s, n);
  num[n] = '\0';
  uint64_t v;
  if (parse_uint(num, (1ULL << 50) / mult, &v) < 0) return -1;
  *out = v * mult;
  return 0;
}

/* ---- reading files ---- */

/* Reads at most cap-1 bytes of path, NUL-terminated; the length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n < cap - 1) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  return (ssize_t)n;
}

struct host {
  uint64_t total, avail;
  double psi;
};

static int read_host(struct host *h) {
  char buf[8192];
  if (read_file(opt.meminfo_path, buf, sizeof buf) < 0) return -1;
  h->total = h->avail = 0;
  for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    unsigned long long kib;
    if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) h->total = kib * 1024;
    else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) h->avail = kib * 1024;
  }
  if (h->total == 0) return -1;
  /* No PSI (a kernel without it): no pressure is known, MemAvailable still counts. */
  h->psi = 0;
  if (read_file(opt.psi_path, buf, sizeof buf) >= 0) {
    double v;
    if (sscanf(buf, "some avg10=%lf", &v) == 1 && v >= 0 && v <= 100) h->psi = v;
  }
  return 0;
}

/* ---- talking to the VMMs ---- */

static int connect_unix(const char *path, int type) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) return -1;
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int wait_in(int fd, int64_t deadline) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    int r = poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
  }
}

static char answer[MAX_ANSWER + 1];
static struct json_tok toks[MAX_TOKENS];

/* crosvm: one JSON request, one JSON answer, each one packet (its control socket is SOCK_SEQPACKET). */
static int crosvm_request(struct vm *v, const char *req, struct json *j) {
  int fd = connect_unix(v->socket, SOCK_SEQPACKET);
  if (fd < 0) return -1;
  int64_t deadline = now_ms() + IO_TIMEOUT_MS;
  int ok = -1;
  if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req) && wait_in(fd, deadline) == 0) {
    ssize_t n = recv(fd, answer, MAX_ANSWER, MSG_TRUNC);
    if (n > MAX_ANSWER) logf_(L_WARN, "%s: an answer of %zd bytes from crosvm, more than %d: ignored", v->name, n, MAX_ANSWER);
    else if (n > 0 && json_parse(j, answer, (size_t)n, toks, MAX_TOKENS) == 0) ok = 0;
    else if (n > 0) logf_(L_WARN, "%s: crosvm's answer is not JSON within the limits: ignored", v->name);
  }
  close(fd);
  return ok;
}

static int crosvm_stats(struct vm *v, struct stats *s) {
  struct json j;
  if (crosvm_request(v, "{\"BalloonCommand\":\"Stats\"}", &j) < 0) return -1;
  int r = json_get(&j, 0, "BalloonStats");
  if (json_u64(&j, json_get(&j, r, "balloon_actual"), &s->actual) < 0) return -1;
  s->have_avail = json_u64(&j, json_get(&j, json_get(&j, r, "stats"), "available_memory"), &s->avail) == 0;
  s->fresh = 1;
  return 0;
}

static int crosvm_adjust(struct vm *v, uint64_t bytes) {
  char req[160];
  snprintf(req, sizeof req, "{\"BalloonCommand\":{\"Adjust\":{\"num_bytes\":%llu,\"wait_for_success\":false}}}", (unsigned long long)bytes);
  struct json j;
  if (crosvm_request(v, req, &j) < 0) return -1;
  return json_is(&j, 0, "Ok") ? 0 : -1;
}

/* QMP: lines of JSON. Reads the next line that answers a command ("return" or "error"), skipping events. */
static size_t qmp_have, qmp_rest;
/* The buffer holds one VM's QMP stream at a time: what another VM left in it is dropped. */
static int qmp_owner = -1;
static int qmp_answer(struct vm *v, struct json *j, int64_t deadline) {
  for (;;) {
    char *nl = memchr(answer, '\n', qmp_have);
    if (nl) {
      size_t line = (size_t)(nl - answer);
      int parsed = json_parse(j, answer, line && answer[line - 1] == '\r' ? line - 1 : line, toks, MAX_TOKENS);
      int is_answer = parsed == 0 && (json_get(j, 0, "return") >= 0 || json_get(j, 0, "error") >= 0);
      if (parsed == 0 && !is_answer && json_get(j, 0, "event") < 0 && json_get(j, 0, "QMP") < 0) parsed = -1;
      if (parsed < 0) {
        logf_(L_WARN, "%s: QMP sent a line that is not a QMP message within the limits", v->name);
        return -1;
      }
      if (is_answer) {
        /* The answer stays in place for the caller; what follows it is kept for the next command. */
        qmp_rest = line + 1;
        return 0;
      }
      qmp_have -= line + 1;
      memmove(answer, nl + 1, qmp_have);
      continue;
    }
    if (qmp_have >= MAX_ANSWER) {
      logf_(L_WARN, "%s: a QMP line longer than %d bytes", v->name, MAX_ANSWER);
      return -1;
    }
    if (wait_in(v->qmp_fd, deadline) < 0) return -1;
    ssize_t n = recv(v->qmp_fd, answer + qmp_have, MAX_ANSWER - qmp_have, 0);
    if (n <= 0) return -1;
    qmp_have += (size_t)n;
  }
}

static void qmp_close(struct vm *v) {
  if (v->qmp_fd >= 0) close(v->qmp_fd);
  v->qmp_fd = -1;
  qmp_have = qmp_rest = 0;
}

/* One command and its answer; 0 with j holding {"return": …}, -1 on an error answer or a broken connection. */
static int qmp_command(struct vm *v, const char *cmd, struct json *j) {
  int64_t deadline = now_ms() + IO_TIMEOUT_MS;
  if (qmp_owner != v->qmp_fd) qmp_have = qmp_rest = 0;
  qmp_owner = v->qmp_fd;
  if (qmp_rest) {
    qmp_have -= qmp_rest;
    memmove(answer, answer + qmp_rest, qmp_have);
    qmp_rest = 0;
  }
  if (send_all(v->qmp_fd, cmd, strlen(cmd), deadline) < 0) return -1;
  if (qmp_answer(v, j, deadline) < 0) return -1;
  if (json_get(j, 0, "return") < 0) {
    logf_(L_WARN, "%s: QMP refused %.80s", v->name, cmd);
    return -1;
  }
  return 0;
}

static int qmp_open(struct vm *v) {
  if (v->qmp_fd >= 0) return 0;
  v->qmp_fd = connect_unix(v->socket, SOCK_STREAM);
  if (v->qmp_fd < 0) return -1;
  struct json j;
  qmp_have = qmp_rest = 0;
  qmp_owner = v->qmp_fd;
  int64_t deadline = now_ms() + IO_TIMEOUT_MS;
  /* The greeting, then capabilities negotiation, then the guest's statistics every second. */
  for (;;) {
    if (wait_in(v->qmp_fd, deadline) < 0) goto fail;
    ssize_t n = recv(v->qmp_fd, answer + qmp_have, MAX_ANSWER - qmp_have, 0);
    if (n <= 0) goto fail;
    qmp_have += (size_t)n;
    char *nl = memchr(answer, '\n', qmp_have);
    if (nl) {
      qmp_rest = (size_t)(nl - answer) + 1;
      break;
    }
    if (qmp_have >= MAX_ANSWER) goto fail;
  }
  if (qmp_command(v, "{\"execute\":\"qmp_capabilities\"}\n", &j) < 0) goto fail;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/balloon0\",\"property\":\"guest-stats-polling-interval\",\"value\":%lld}}\n",
           (long long)(opt.min_poll_ms >= 1000 ? opt.min_poll_ms / 1000 : 1));
  if (qmp_command(v, cmd, &j) < 0) goto fail;
  return 0;
fail:
  qmp_close(v);
  return -1;
}

static int qmp_stats(struct vm *v, struct stats *s) {
  struct json j;
  if (qmp_open(v) < 0) return -1;
  uint64_t actual;
  if (qmp_command(v, "{\"execute\":\"query-balloon\"}\n", &j) < 0 || json_u64(&j, json_get(&j, json_get(&j, 0, "return"), "actual"), &actual) < 0) goto fail;
  /* qemu reports the guest's memory outside the balloon. */
  if (actual > v->memory) goto fail;
  s->actual = v->memory - actual;
  if (qmp_command(v, "{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/balloon0\",\"property\":\"guest-stats\"}}\n", &j) < 0) goto fail;
  int r = json_get(&j, 0, "return");
  uint64_t update = 0;
  (void)json_u64(&j, json_get(&j, r, "last-update"), &update);
  /* Values the guest never sent are 2^64-1 (json_u64 refuses them: not known). */
  s->have_avail = update != 0 && json_u64(&j, json_get(&j, json_get(&j, r, "stats"), "stat-available-memory"), &s->avail) == 0;
  s->fresh = update != v->last_update;
  v->last_update = update;
  return 0;
fail:
  qmp_close(v);
  return -1;
}

static int qmp_adjust(struct vm *v, uint64_t bytes) {
  char cmd[120];
  struct json j;
  if (qmp_open(v) < 0) return -1;
  snprintf(cmd, sizeof cmd, "{\"execute\":\"balloon\",\"arguments\":{\"value\":%llu}}\n", (unsigned long long)(v->memory - bytes));
  if (qmp_command(v, cmd, &j) < 0) {
    qmp_close(v);
    return -1;
  }
  return 0;
}

/* cloud-hypervisor: HTTP/1.1 over its API socket, one request per connection. The body, in j. */
static int ch_request(struct vm *v, const char *method, const char *path, const char *body, struct json *j) {
  int fd = connect_unix(v->socket, SOCK_STREAM);
  if (fd < 0) return -1;
  char req[512];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", method, path, strlen(body), body);
  int64_t deadline = now_ms() + IO_TIMEOUT_MS;
  size_t have = 0;
  int ok = -1;
  if (n <= 0 || (size_t)n >= sizeof req || send_all(fd, req, (size_t)n, deadline) < 0) goto out;
  for (;;) {
    char *end = memmem(answer, have, "\r\n\r\n", 4);
    if (end) {
      answer[have] = '\0';
      int status;
      if (sscanf(answer, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 200 || status > 299) {
        logf_(L_WARN, "%s: cloud-hypervisor answered %s %s with %.40s", v->name, method, path, answer);
        goto out;
      }
      size_t head = (size_t)(end - answer) + 4;
      const char *cl = strcasestr(answer, "\r\ncontent-length:");
      long long want = -1;
      if (cl && cl < end && (sscanf(cl + 17, " %lld", &want) != 1 || want < 0 || want > MAX_ANSWER)) goto out;
      if (want >= 0 && have - head >= (size_t)want) {
        if (want == 0) {
          ok = 0;
          j->n = 0;
        } else
          ok = json_parse(j, answer + head, (size_t)want, toks, MAX_TOKENS);
        goto out;
      }
    }
    if (have >= MAX_ANSWER) goto out;
    if (wait_in(fd, deadline) < 0) goto out;
    ssize_t r = recv(fd, answer + have, MAX_ANSWER - have, 0);
    if (r < 0) goto out;
    if (r == 0) {
      /* Closed without a length: the body is what came. */
      char *e = memmem(answer, have, "\r\n\r\n", 4);
      if (e) {
        size_t head = (size_t)(e - answer) + 4;
        ok = have == head ? (j->n = 0, 0) : json_parse(j, answer + head, have - head, toks, MAX_TOKENS);
      }
      goto out;
    }
    have += (size_t)r;
  }
out:
  close(fd);
  if (ok < 0) logf_(L_DEBUG, "%s: no usable answer to %s %s", v->name, method, path);
  return ok;
}

static int ch_stats(struct vm *v, struct stats *s) {
  struct json j;
  uint64_t size;
  if (ch_request(v, "GET", "/api/v1/vm.info", "", &j) < 0 || j.n == 0) return -1;
  /* The balloon's size as configured last (vm.resize updates it); cloud-hypervisor's balloon has no statistics queue. */
  if (json_u64(&j, json_get(&j, json_get(&j, json_get(&j, 0, "config"), "balloon"), "size"), &size) < 0 || size > v->memory) return -1;
  uint64_t actual_mem;
  if (json_u64(&j, json_get(&j, 0, "memory_actual_size"), &actual_mem) == 0 && actual_mem <= v->memory) size = v->memory - actual_mem;
  s->actual = size;
  s->have_avail = 0;
  s->fresh = 1;
  return 0;
}

static int ch_adjust(struct vm *v, uint64_t bytes) {
  char body[64];
  struct json j;
  snprintf(body, sizeof body, "{\"desired_balloon\":%llu}", (unsigned long long)bytes);
  return ch_request(v, "PUT", "/api/v1/vm.resize", body, &j);
}

static int get_stats(struct vm *v, struct stats *s) {
  memset(s, 0, sizeof *s);
  int r = v->kind == K_CROSVM ? crosvm_stats(v, s) : v->kind == K_QMP ? qmp_stats(v, s) : ch_stats(v, s);
  if (r == 0 && s->actual > v->memory) return -1;
  if (r == 0 && s->have_avail && s->avail > v->memory) s->have_avail = 0;
  return r;
}

static int adjust(struct vm *v, uint64_t bytes) {
  return v->kind == K_CROSVM ? crosvm_adjust(v, bytes) : v->kind == K_QMP ? qmp_adjust(v, bytes) : ch_adjust(v, bytes);
}

/* ---- the manifest ---- */

static int load_manifest(void) {
  char *text = xmalloc(MAX_MANIFEST + 1);
  ssize_t n = read_file(opt.manifest, text, MAX_MANIFEST + 1);
  if (n < 0 || n >= MAX_MANIFEST) {
    msg("cannot read the manifest %s: %s", opt.manifest, n < 0 ? strerror(errno) : "too large");
    free(text);
    return -1;
  }
  int max = 1 << 20;
  struct json_tok *t = xmalloc(sizeof *t * (size_t)max);
  struct json j;
  int rc = -1;
  if (json_parse(&j, text, (size_t)n, t, max) < 0) {
    msg("the manifest %s is not JSON within the limits", opt.manifest);
    goto out;
  }
  int list = json_get(&j, 0, "vms");
  for (int i = 0; json_key_at(&j, list, i) >= 0; i++) {
    int b = json_get(&j, json_at(&j, list, i), "balloon");
    if (b < 0 || j.tok[b].type == JSON_NULL) continue;
    if (nvms >= MAX_VMS) {
      msg("the manifest has more than %d VMs with a balloon", MAX_VMS);
      goto out;
    }
    struct vm *v = &vms[nvms];
    char kind[32];
    uint64_t mem, floor_;
    if (json_str(&j, json_key_at(&j, list, i), v->name, sizeof v->name) < 0 || json_str(&j, json_get(&j, b, "socket"), v->socket, sizeof v->socket) < 0 ||
        json_str(&j, json_get(&j, b, "control"), kind, sizeof kind) < 0 || json_u64(&j, json_get(&j, b, "memory"), &mem) < 0 ||
        json_u64(&j, json_get(&j, b, "floor"), &floor_) < 0 || mem == 0 || floor_ > mem || mem > (1ULL << 24)) {
      msg("the manifest's balloon entry of VM %d is not as vmsilo-gen writes it", i);
      goto out;
    }
    if (strcmp(kind, "crosvm") == 0) v->kind = K_CROSVM;
    else if (strcmp(kind, "qmp") == 0) v->kind = K_QMP;
    else if (strcmp(kind, "cloud-hypervisor") == 0) v->kind = K_CH;
    else {
      msg("VM %s: unknown balloon control %s", v->name, kind);
      goto out;
    }
    v->memory = mem * MIB;
    v->floor = floor_ * MIB;
    v->qmp_fd = -1;
    nvms++;
  }
  rc = 0;
out:
  free(t);
  free(text);
  return rc;
}

/* ---- the policy (docs/balloon.md) ---- */

static uint64_t clamp_target(const struct vm *v, int64_t want) {
  int64_t max = (int64_t)(v->memory - v->floor);
  if (want < 0) want = 0;
  if (want > max) want = max;
  return (uint64_t)want / MIB * MIB;
}

/* One poll: returns whether anything is moving (the next poll then comes sooner). */
static int poll_once(void) {
  struct host h;
  if (read_host(&h) < 0) {
    logf_(L_ERROR, "cannot read %s", opt.meminfo_path);
    return 0;
  }
  double p = h.psi / opt.psi_ceiling;
  if (p > 1) p = 1;
  int critical = h.avail * 100 < (uint64_t)opt.critical_host_percent * h.total || h.psi >= opt.psi_ceiling;
  /* The spare memory each guest keeps: the bias when the host is calm, down to the critical level under pressure. */
  uint64_t slack = critical ? opt.critical_guest : (uint64_t)((double)opt.bias - (double)(opt.bias > opt.critical_guest ? opt.bias - opt.critical_guest : 0) * p);
  int busy = critical;
  logf_(L_DEBUG, "poll t=%lld host total=%llu avail=%llu psi=%.2f critical=%d slack=%llu", (long long)(now_ms() - started_ms), (unsigned long long)h.total, (unsigned long long)h.avail, h.psi, critical, (unsigned long long)slack);
  for (int i = 0; i < nvms; i++) {
    /* qemu serves one QMP client at a time: the previous VM's connection goes before the next, and
     * the last one after the poll, so the stop script's own client is never kept waiting. */
    if (i > 0) qmp_close(&vms[i - 1]);
    struct vm *v = &vms[i];
    struct stats s;
    if (get_stats(v, &s) < 0) {
      if (v->running) logf_(L_INFO, "%s: not answering (stopped?)", v->name);
      v->running = 0;
      continue;
    }
    if (!v->running) {
      logf_(L_INFO, "%s: running, balloon %llu MiB", v->name, (unsigned long long)(s.actual / MIB));
      v->target = s.actual;
    }
    v->running = 1;
    int64_t want = (int64_t)v->target;
    const char *why = "hold";
    if (s.have_avail) {
      /* What the balloon has yet to take (or give): the guest's available memory does not show it yet. */
      int64_t pending = (int64_t)v->target - (int64_t)s.actual;
      int64_t avail = (int64_t)s.avail - pending;
      if (avail < (int64_t)opt.critical_guest) {
        /* A guest under pressure gets memory back at once, up to the bias, whatever the host's state. */
        want = (int64_t)v->target - ((int64_t)opt.bias - avail);
        why = "guest-pressure";
        busy = 1;
      } else if (avail < (int64_t)slack) {
        want = (int64_t)v->target - ((int64_t)slack - avail);
        why = "deflate";
      } else if (s.fresh && avail > (int64_t)slack) {
        want = (int64_t)v->target + (avail - (int64_t)slack);
        why = critical ? "host-critical" : "inflate";
      }
    } else {
      /* No guest statistics: only the host's pressure moves the balloon, a step at a time; the
       * guest's deflate-on-OOM keeps it alive. */
      int64_t step = (int64_t)(v->memory / STEP_DIV);
      if (critical || p >= 0.5) want = (int64_t)v->target + step, why = "host-pressure";
      else if (p == 0) want = (int64_t)v->target - step, why = "host-calm";
    }
    uint64_t t = clamp_target(v, want);
    logf_(L_DEBUG, "vm=%s avail=%lld actual=%llu target=%llu want=%llu why=%s", v->name, s.have_avail ? (long long)s.avail : -1LL, (unsigned long long)s.actual, (unsigned long long)v->target,
          (unsigned long long)t, why);
    uint64_t diff = t > v->target ? t - v->target : v->target - t;
    if (diff < MIN_CHANGE && !(t == 0 && v->target != 0) && !(t == v->memory - v->floor && v->target != t)) continue;
    if (diff == 0) continue;
    if (adjust(v, t) < 0) {
      logf_(L_WARN, "%s: could not set the balloon to %llu MiB", v->name, (unsigned long long)(t / MIB));
      continue;
    }
    logf_(L_INFO, "%s: balloon %llu -> %llu MiB (%s; guest available %lld MiB, host available %llu MiB, psi %.2f)", v->name, (unsigned long long)(v->target / MIB), (unsigned long long)(t / MIB), why,
          s.have_avail ? (long long)(s.avail / MIB) : -1LL, (unsigned long long)(h.avail / MIB), h.psi);
    v->target = t;
    busy = 1;
  }
  if (nvms > 0) qmp_close(&vms[nvms - 1]);
  return busy;
}

static void usage(void) {
  fprintf(stderr,
          "usage: vmsilo-balloond --manifest FILE [--log-level error|warn|info|debug] [--poll-interval D] [--min-poll-interval D]\n"
          "         [--critical-host-percent N] [--critical-guest-available SIZE] [--guest-available-bias SIZE] [--psi-ceiling N]\n"
          "         [--psi-path FILE] [--meminfo-path FILE] [--once]\n"
          "  D: a duration like 2s or 250ms; SIZE: like 96M or 1G\n");
  exit(2);
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t u;
    int bad = 0;
    if (strcmp(a, "--once") == 0) {
      opt.once = 1;
      continue;
    }
    if (!val) usage();
    if (strcmp(a, "--manifest") == 0) opt.manifest = val;
    else if (strcmp(a, "--psi-path") == 0) opt.psi_path = val;
    else if (strcmp(a, "--meminfo-path") == 0) opt.meminfo_path = val;
    else if (strcmp(a, "--log-level") == 0) {
      bad = 1;
      for (int l = 0; l <= L_DEBUG; l++)
        if (strcmp(val, LEVELS[l]) == 0) log_level = (enum level)l, bad = 0;
    } else if (strcmp(a, "--poll-interval") == 0) bad = parse_duration(val, &opt.poll_ms);
    else if (strcmp(a, "--min-poll-interval") == 0) bad = parse_duration(val, &opt.min_poll_ms);
    else if (strcmp(a, "--critical-host-percent") == 0) bad = parse_uint(val, 99, &u) < 0 || u == 0, opt.critical_host_percent = (unsigned)u;
    else if (strcmp(a, "--critical-guest-available") == 0) bad = parse_size(val, &opt.critical_guest);
    else if (strcmp(a, "--guest-available-bias") == 0) bad = parse_size(val, &opt.bias);
    else if (strcmp(a, "--psi-ceiling") == 0) bad = parse_uint(val, 100, &u) < 0 || u == 0, opt.psi_ceiling = (double)u;
    else {
      fprintf(stderr, "%s: unknown option %s\n", prog, a);
      usage();
    }
    if (bad) {
      fprintf(stderr, "%s: bad value for %s: %s\n", prog, a, val);
      usage();
    }
    i++;
  }
  if (!opt.manifest) usage();
  if (opt.min_poll_ms > opt.poll_ms) {
    fprintf(stderr, "%s: --min-poll-interval must not be longer than --poll-interval\n", prog);
    return 2;
  }
  if (opt.bias < opt.critical_guest) {
    fprintf(stderr, "%s: --guest-available-bias must not be below --critical-guest-available\n", prog);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (load_manifest() < 0) return 1;
  started_ms = now_ms();
  logf_(L_INFO, "%d VMs with a balloon; poll every %lld ms (%lld ms under pressure)", nvms, (long long)opt.poll_ms, (long long)opt.min_poll_ms);
  while (!stopping) {
    int busy = poll_once();
    if (opt.once) break;
    struct host h;
    double p = read_host(&h) == 0 ? h.psi / opt.psi_ceiling : 0;
    if (p > 1) p = 1;
    int64_t wait = busy ? opt.min_poll_ms : opt.poll_ms - (int64_t)((double)(opt.poll_ms - opt.min_poll_ms) * p);
    struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
    while (!stopping && nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
  }
  for (int i = 0; i < nvms; i++) qmp_close(&vms[i]);
  logf_(L_INFO, "stopping");
  return 0;
}
