/*
 * modalias-match PATTERNS: for each modalias read from stdin (one a line), prints the modules of the
 * "<glob> <module>" lines of PATTERNS (modules.alias without "alias ") that match it, each module
 * once. The test guest's coldplug (test/e2e/guest/init), doing what udev's kmod builtin does in a
 * NixOS guest, at C speed.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX 8192

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: modalias-match PATTERNS < modaliases\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  static char *glob[MAX], *mod[MAX];
  static int printed[MAX];
  int n = 0;
  char line[4096];
  while (n < MAX && fgets(line, sizeof line, f)) {
    char *sp = strchr(line, ' ');
    if (!sp) continue;
    *sp = '\0';
    line[strcspn(sp + 1, "\n") + (size_t)(sp + 1 - line)] = '\0';
    glob[n] = strdup(line);
    mod[n] = strdup(sp + 1);
    n++;
  }
  fclose(f);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = '\0';
    for (int i = 0; i < n; i++) {
      if (printed[i] || fnmatch(glob[i], line, 0) != 0) continue;
      int seen = 0;
      for (int j = 0; j < n && !seen; j++) seen = printed[j] && strcmp(mod[j], mod[i]) == 0;
      printed[i] = 1;
      if (!seen) puts(mod[i]);
    }
  }
  return 0;
}
