/*
 * vmsilo-copy-check --max-bytes N --max-entries M: the check of a tar stream a source VM sends, for
 * vm-copy (files moved between VMs through vm-run). Reads the archive on stdin and copies it to
 * stdout, without its end-of-archive blocks (vm-copy joins several archives and ends them
 * itself), when every entry is acceptable:
 * only regular files and directories (no links, devices, fifos or extended headers), names that
 * stay where they are extracted (relative, no "." or ".." components, no empty ones, no control
 * characters such as a newline), at most M entries and N bytes of file data in all, every header's
 * checksum right. Otherwise it says which entry it refused and why, and exits 1: the caller keeps
 * nothing of a refused stream. GNU long names ('L' entries, up to 4095 bytes) are read as names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "parse.h"

#define BLOCK 512
#define NAME_MAX_BYTES 4095

static unsigned char block[BLOCK];

/* Read exactly one block; 0 at a clean end of input, 1 with a block, exit on a short one. */
static int read_block(void) {
  size_t got = 0;
  while (got < BLOCK) {
    ssize_t r = read(STDIN_FILENO, block + got, BLOCK - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      msg("reading the archive: %s", strerror(errno));
      exit(1);
    }
    if (r == 0) {
      if (got == 0) return 0;
      msg("refused: the archive ends inside a block");
      exit(1);
    }
    got += (size_t)r;
  }
  return 1;
}

static void emit(const unsigned char *p, size_t n) {
  if (write_all(STDOUT_FILENO, p, n) < 0) {
    msg("writing the archive: %s", strerror(errno));
    exit(1);
  }
}

static _Noreturn void refuse(const char *name, const char *why) {
  char clean[NAME_MAX_BYTES + 1];
  size_t n = strlen(name);
  clean_text((const unsigned char *)name, n > 200 ? 200 : n, clean);
  msg("refused %s%s: %s", clean[0] ? clean : "(an entry)", n > 200 ? "..." : "", why);
  exit(1);
}

/* An octal header field (NUL or space terminated); -1 when it is not one. */
static long long octal(const unsigned char *f, size_t n) {
  long long v = 0;
  size_t i = 0;
  while (i < n && f[i] == ' ') i++;
  if (i == n || f[i] < '0' || f[i] > '7') return -1;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v > (1LL << 40)) return -1;
    v = v * 8 + (f[i] - '0');
  }
  for (; i < n; i++)
    if (f[i] != ' ' && f[i] != '\0') return -1;
  return v;
}

static int all_zero(void) {
  for (size_t i = 0; i < BLOCK; i++)
    if (block[i]) return 0;
  return 1;
}

/* What is wrong with an entry's name, or NULL. */
static const char *bad_name(const char *name, int dir) {
  size_t n = strlen(name);
  if (n == 0) return "an empty name";
  if (name[0] == '/') return "an absolute name";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return "a name with a control character (a newline, say)";
  char copy[NAME_MAX_BYTES + 1];
  memcpy(copy, name, n + 1);
  if (dir && n > 1 && copy[n - 1] == '/') copy[n - 1] = '\0';
  for (char *c = copy, *end; c; c = end ? end + 1 : NULL) {
    end = strchr(c, '/');
    if (end) *end = '\0';
    if (*c == '\0') return "a name with an empty component";
    if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) return "a name with a \".\" or \"..\" component";
  }
  return NULL;
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  long long max_bytes = -1, max_entries = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    char *end;
    long long v = strtoll(argv[i + 1], &end, 10);
    if (*end || v < 0) v = -1;
    if (strcmp(argv[i], "--max-bytes") == 0) max_bytes = v;
    else if (strcmp(argv[i], "--max-entries") == 0) max_entries = v;
  }
  if (argc != 5 || max_bytes < 0 || max_entries < 0) {
    fprintf(stderr, "usage: %s --max-bytes N --max-entries M <ARCHIVE >CHECKED\n", prog);
    return 2;
  }
  long long bytes = 0, entries = 0;
  char long_name[NAME_MAX_BYTES + 1];
  int have_long = 0;
  for (;;) {
    if (!read_block()) refuse("", "the archive ends without its end-of-archive blocks");
    if (all_zero()) {
      /* The end: the rest of the input must be zero blocks too (tar pads to its record size). */
      long long rest = 0;
      while (read_block()) {
        if (!all_zero()) refuse("", "data after the end of the archive");
        if (++rest > 64) refuse("", "more padding after the end of the archive than tar writes");
      }
      return 0;
    }
    /* The header's checksum: the sum of its bytes, the checksum field counted as spaces. */
    long long sum = 0;
    for (size_t i = 0; i < BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : block[i];
    if (octal(block + 148, 8) != sum) refuse("", "a header with a wrong checksum (not a tar archive?)");
    int posix = memcmp(block + 257, "ustar\0" "00", 8) == 0;
    if (!posix && memcmp(block + 257, "ustar  \0", 8) != 0) refuse("", "a header that is neither ustar nor GNU tar's");
    char name[NAME_MAX_BYTES + 1];
    if (have_long) {
      memcpy(name, long_name, sizeof name);
      have_long = 0;
    } else {
      char nm[101] = "", pre[156] = "";
      memcpy(nm, block, 100);
      if (posix) memcpy(pre, block + 345, 155);
      snprintf(name, sizeof name, "%s%s%s", pre, pre[0] ? "/" : "", nm);
    }
    long long size = octal(block + 124, 12);
    unsigned type = block[156];
    if (size < 0) refuse(name, "a size that is not an octal number (or too large)");
    if (type == 'L') {
      /* GNU: the next entry's name, as this entry's data. */
      if (size < 1 || size > NAME_MAX_BYTES + 1) refuse("", "a long name over 4095 bytes");
      emit(block, BLOCK);
      size_t got = 0;
      for (long long left = size; left > 0; left -= BLOCK) {
        if (!read_block()) refuse("", "the archive ends inside a long name");
        size_t take = (size_t)(left < BLOCK ? left : BLOCK);
        memcpy(long_name + got, block, take);
        got += take;
        emit(block, BLOCK);
      }
      long_name[got < sizeof long_name ? got : sizeof long_name - 1] = '\0';
      if (strlen(long_name) + 1 < got) refuse("", "a long name with a NUL inside");
      have_long = 1;
      continue;
    }
    int dir = type == '5';
    if (!dir && type != '0' && type != '\0') {
      refuse(name, type == '1' ? "a hard link" : type == '2' ? "a symbolic link" : type == '3' || type == '4' ? "a device" : type == '6' ? "a fifo" : type == 'x' || type == 'g' ? "an extended (pax) header" : "an entry that is neither a file nor a directory");
    }
    const char *why = bad_name(name, dir);
    if (why) refuse(name, why);
    if (dir && size != 0) refuse(name, "a directory with data");
    if (++entries > max_entries) {
      char w[96];
      snprintf(w, sizeof w, "more than %lld entries", max_entries);
      refuse(name, w);
    }
    bytes += size;
    if (bytes > max_bytes) {
      char w[96];
      snprintf(w, sizeof w, "more than %lld bytes in all", max_bytes);
      refuse(name, w);
    }
    emit(block, BLOCK);
    for (long long left = size; left > 0; left -= BLOCK) {
      if (!read_block()) refuse(name, "the archive ends inside the file");
      emit(block, BLOCK);
    }
  }
}
