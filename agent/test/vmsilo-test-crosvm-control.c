/*
 * A crosvm control socket for vmsilo-balloond's tests: SOCK_SEQPACKET at SOCKET, one JSON request and
 * one JSON answer per packet, as crosvm's vm_control answers `{"BalloonCommand":"Stats"}` (a
 * `{"BalloonStats":{"stats":{…},"balloon_actual":N}}`) and `{"BalloonCommand":{"Adjust":{…}}}` ("Ok").
 * It keeps the balloon's size (Adjust sets it, at once) and reports a guest whose available memory is
 * AVAIL less the balloon. MODE makes it a hostile VMM instead: `huge` answers 300 KiB packets,
 * `garbage` answers what is not JSON, `lie` reports a balloon larger than the VM. Every request it
 * gets is printed on stdout, one line each.
 *
 *   vmsilo-test-crosvm-control SOCKET MEMORY_BYTES AVAIL_BYTES [normal|huge|garbage|lie]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s SOCKET MEMORY_BYTES AVAIL_BYTES [normal|huge|garbage|lie]\n", argv[0]);
    return 2;
  }
  unsigned long long memory = strtoull(argv[2], NULL, 10), avail = strtoull(argv[3], NULL, 10), balloon = 0;
  const char *mode = argc > 4 ? argv[4] : "normal";
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof a.sun_path) return 2;
  strcpy(a.sun_path, argv[1]);
  unlink(argv[1]);
  int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
    perror("listen");
    return 1;
  }
  fprintf(stderr, "listening on %s\n", argv[1]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  static char req[65536], ans[400 * 1024];
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    /* Room for a packet larger than the daemon reads (root may force it past wmem_max). */
    int big = 1 << 20;
    if (setsockopt(c, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0) setsockopt(c, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ssize_t n;
    while ((n = recv(c, req, sizeof req - 1, 0)) > 0) {
      req[n] = '\0';
      printf("%s\n", req);
      size_t len;
      unsigned long long num;
      if (strcmp(mode, "huge") == 0) {
        memset(ans, ' ', sizeof ans);
        memcpy(ans, "\"Ok\"", 4);
        len = 300 * 1024;
      } else if (strcmp(mode, "garbage") == 0) {
        len = (size_t)snprintf(ans, sizeof ans, "{\"BalloonStats\":{\"stats\":{\"available_memory\":1e999,}");
      } else if (strstr(req, "\"Stats\"")) {
        unsigned long long actual = strcmp(mode, "lie") == 0 ? memory * 4 : balloon;
        unsigned long long left = avail > balloon ? avail - balloon : 0;
        len = (size_t)snprintf(ans, sizeof ans,
                               "{\"BalloonStats\":{\"stats\":{\"swap_in\":null,\"swap_out\":null,\"major_faults\":0,\"minor_faults\":0,\"free_memory\":%llu,\"total_memory\":%llu,"
                               "\"available_memory\":%llu,\"disk_caches\":0,\"hugetlb_allocations\":null,\"hugetlb_failures\":null,\"shared_memory\":null,\"unevictable_memory\":null},\"balloon_actual\":%llu}}",
                               left, memory, left, actual);
      } else if (sscanf(req, "{\"BalloonCommand\":{\"Adjust\":{\"num_bytes\":%llu,\"wait_for_success\":false}}}", &num) == 1) {
        balloon = num;
        len = (size_t)snprintf(ans, sizeof ans, "\"Ok\"");
      } else
        len = (size_t)snprintf(ans, sizeof ans, "{\"ErrString\":\"unexpected request\"}");
      if (send(c, ans, len, MSG_NOSIGNAL) < 0) break;
    }
    close(c);
  }
}
