/*
 * libFuzzer harness: what vm-run accepts from an agent or proxy (parse.c), and what its terminal
 * filter lets through. The first byte picks how STDOUT payloads are cut before filtering (a sequence
 * split across frames must be handled like a whole one); the rest is the answer stream.
 */
#include <stdlib.h>

#include "../common.h"
#include "../parse.h"
#include "../protocol.h"

/* Nothing that drives a terminal may come out of the filter: no ESC, DEL or C0 control but tab,
 * newline, carriage return and backspace, and no C1 control (raw, or UTF-8 encoded as C2 80…9F). */
static void check_filtered(const unsigned char *p, size_t n, int *after_c2) {
  for (size_t i = 0; i < n; i++) {
    unsigned char b = p[i];
    if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\b') || b == 0x7f) abort();
    if (*after_c2 && b >= 0x80 && b <= 0x9f) abort();
    *after_c2 = b == 0xc2;
  }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 1 + VMR_PREAMBLE_LEN) return 0;
  size_t cut = 1 + data[0] % 16;
  data++;
  size--;
  char why[512];
  if (check_preamble(data, why, sizeof why) < 0) return 0;
  static unsigned char out[VMR_MAX_DATA + 1];
  struct term_filter f = {0};
  int after_c2 = 0;
  for (size_t off = VMR_PREAMBLE_LEN; off + VMR_HEADER_LEN <= size;) {
    unsigned type = data[off];
    uint32_t len = get_be32(data + off + 1);
    if (check_agent_frame(type, len, why, sizeof why) < 0 || size - off - VMR_HEADER_LEN < len) return 0;
    const unsigned char *p = data + off + VMR_HEADER_LEN;
    if (type == VMR_STDOUT || type == VMR_STDERR) {
      for (size_t at = 0; at < len; at += cut) {
        size_t n = len - at < cut ? len - at : cut;
        size_t m = term_filter(&f, p + at, n, out);
        if (m > n + 1) abort();
        check_filtered(out, m, &after_c2);
      }
    } else if (type == VMR_EXIT) {
      int st = exit_status(p);
      if (st > 255) abort();
      return 0;
    } else {
      char text[VMR_MAX_MESSAGE + 1];
      clean_text(p + 1, len - 1, text);
      return 0;
    }
    off += VMR_HEADER_LEN + len;
  }
  return 0;
}
