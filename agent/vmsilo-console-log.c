/*
 * vmsilo-console-log FILE
 *
 * Appends what it reads on stdin (the console relay's copy of the guest's console output) to FILE,
 * keeping FILE at most LOG_LIMIT bytes: before a write would pass it, FILE is cut to its newest
 * LOG_LIMIT / 2 bytes (truncate-and-keep-tail, in place), so a guest flooding its console cannot fill
 * /run. FILE must exist and be a regular file (the unit creates it, the user's, in a directory only
 * root can change); it is opened without following links. Memory is two fixed buffers.
 *
 * It never stops reading before end of input: a failed write loses console output (one message on
 * stderr), never the console, whose relay would otherwise die writing to a closed pipe.
 * Exit status: 0 at end of input, 1 when FILE is refused or stdin fails, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

/* docs/model.md (console.log). */
#define LOG_LIMIT (1024 * 1024)
#define CHUNK (64 * 1024)

/* What stdin gave, and what keep_tail moves: the program's memory. */
static unsigned char in[CHUNK], moved[CHUNK];

static int pwrite_all(int fd, const unsigned char *p, size_t n, off_t at) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, at);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w, n -= (size_t)w, at += w;
  }
  return 0;
}

/* Moves the newest `keep` bytes of the `size` bytes of fd to its start and cuts it there. */
static int keep_tail(int fd, off_t size, off_t keep) {
  for (off_t done = 0; done < keep;) {
    size_t n = (size_t)(keep - done < CHUNK ? keep - done : CHUNK);
    ssize_t r = pread(fd, moved, n, size - keep + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (pwrite_all(fd, moved, (size_t)r, done) < 0) return -1;
    done += r;
  }
  return ftruncate(fd, keep);
}

/* Appends p[0..n) to fd, cutting fd first when it would pass LOG_LIMIT. */
static int append(int fd, const unsigned char *p, size_t n) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -1;
  off_t size = st.st_size;
  if (size + (off_t)n > LOG_LIMIT) {
    off_t keep = size < LOG_LIMIT / 2 ? size : LOG_LIMIT / 2;
    if (keep_tail(fd, size, keep) < 0) return -1;
    size = keep;
  }
  return pwrite_all(fd, p, n, size);
}

int main(int argc, char **argv) {
  set_prog("vmsilo-console-log");
  if (argc != 2) {
    fprintf(stderr, "usage: vmsilo-console-log FILE  (appends stdin to FILE, keeping it under %d bytes)\n", LOG_LIMIT);
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    msg("cannot open %s: %s", argv[1], strerror(errno));
    return 1;
  }
  if (!S_ISREG(st.st_mode)) {
    msg("%s is not a regular file", argv[1]);
    return 1;
  }
  int failing = 0;
  for (;;) {
    ssize_t r = read(STDIN_FILENO, in, sizeof in);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      msg("reading stdin: %s", strerror(errno));
      return 1;
    }
    if (r == 0) return 0;
    if (append(fd, in, (size_t)r) < 0) {
      if (!failing) msg("writing %s: %s (console output is lost until a write succeeds)", argv[1], strerror(errno));
      failing = 1;
    } else {
      failing = 0;
    }
  }
}
