/*
 * libFuzzer harness: what the agent accepts from a client (parse.c). The input is the client's byte
 * stream: the request (preamble, EXEC header, argv), then the frames that follow it.
 */
#include <stdlib.h>
#include <string.h>

#include "../common.h"
#include "../parse.h"
#include "../protocol.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char why[512];
  long total = request_length(data, size, why, sizeof why);
  if (total <= 0 || (size_t)total > size) return 0;
  size_t alen = (size_t)total - VMR_PREAMBLE_LEN - VMR_HEADER_LEN;
  char *args = xmalloc(alen);
  memcpy(args, data + VMR_PREAMBLE_LEN + VMR_HEADER_LEN, alen);
  char **argv;
  long argc = request_argv(args, alen, &argv, why, sizeof why);
  if (argc > 0) {
    /* Every argument is a string inside the payload, and the list ends with NULL. */
    for (long i = 0; i < argc; i++)
      if (argv[i] < args || argv[i] + strlen(argv[i]) >= args + alen) abort();
    if (argv[argc] != NULL || argv[0][0] == '\0') abort();
    free(argv);
  }
  free(args);
  /* The frames after the request, checked as the agent checks them, until the first refusal. */
  int stdin_eof = 0;
  for (size_t off = (size_t)total; off + VMR_HEADER_LEN <= size;) {
    unsigned type = data[off];
    uint32_t len = get_be32(data + off + 1);
    if (check_client_frame(type, len, stdin_eof, why, sizeof why) < 0) break;
    if (type == VMR_STDIN_EOF) stdin_eof = 1;
    if (size - off - VMR_HEADER_LEN < len) break;
    off += VMR_HEADER_LEN + len;
  }
  return 0;
}
