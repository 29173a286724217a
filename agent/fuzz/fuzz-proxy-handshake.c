/*
 * libFuzzer harness: the proxy's reading of cloud-hypervisor's answer to CONNECT (parse.c), fed as
 * the proxy's reads deliver it: a growing prefix, one more byte at a time.
 */
#include <stdlib.h>

#include "../parse.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char why[600];
  size_t max = size < HANDSHAKE_LINE_MAX ? size : HANDSHAKE_LINE_MAX;
  for (size_t n = 1; n <= max; n++) {
    long r = handshake_answer(data, n, why, sizeof why);
    if (r > (long)n) abort();
    if (r != 0) return 0;
  }
  return 0;
}
