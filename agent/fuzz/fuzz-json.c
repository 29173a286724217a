/*
 * libFuzzer harness: the bounded JSON reader (json.c) that vmsilo-balloond runs over what a VMM
 * answers. Whatever the input, parsing ends within the token budget, and every token of an accepted
 * document lies inside it, with its subtree's end after it; the lookups the daemon makes stay inside.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../json.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static struct json_tok tok[256];
  struct json j;
  if (json_parse(&j, (const char *)data, size, tok, 256) < 0) return 0;
  for (int i = 0; i < j.n; i++) {
    if (tok[i].start > size || tok[i].len > size - tok[i].start) abort();
    if (tok[i].next <= i || tok[i].next > j.n) abort();
  }
  uint64_t v;
  char s[64];
  int r = json_get(&j, 0, "BalloonStats");
  (void)json_u64(&j, json_get(&j, r, "balloon_actual"), &v);
  (void)json_u64(&j, json_get(&j, json_get(&j, r, "stats"), "available_memory"), &v);
  (void)json_is(&j, 0, "Ok");
  for (int i = 0; json_key_at(&j, 0, i) >= 0 && i < 64; i++) (void)json_str(&j, json_key_at(&j, 0, i), s, sizeof s);
  for (int i = 0; json_at(&j, 0, i) >= 0 && i < 64; i++) (void)json_str(&j, json_at(&j, 0, i), s, sizeof s);
  return 0;
}
