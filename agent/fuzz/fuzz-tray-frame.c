/*
 * libFuzzer harness: the tray protocol's parsers (tray-proto.c), fed a stream as each side reads
 * it: the preamble, then frames, each header checked before its payload and the payload parsed by
 * its type. The first byte picks the reading side (host: the guest's frames; guest: the host's).
 * A parsed item or menu that breaks the protocol's bounds is a finding, and so is one that does
 * not encode back to exactly the bytes it came from.
 */
#include <stdlib.h>
#include <string.h>

#include "../tray-proto.h"

static struct tray_item item;
static struct tray_menu menu;
static unsigned char again[TRAY_MAX_FRAME];

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char why[600];
  if (size < 1 + TRAY_PREAMBLE_LEN) return 0;
  int from_guest = data[0] & 1;
  data++, size--;
  if (tray_check_preamble(data, why, sizeof why) < 0) return 0;
  size_t off = TRAY_PREAMBLE_LEN;
  while (size - off >= TRAY_HEADER_LEN) {
    const unsigned char *h = data + off;
    unsigned type = h[0];
    uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    if (tray_check_header(type, len, from_guest, why, sizeof why) < 0) return 0;
    if (size - off - TRAY_HEADER_LEN < len) return 0;
    const unsigned char *p = h + TRAY_HEADER_LEN;
    off += TRAY_HEADER_LEN + len;
    if (!from_guest) {
      struct tray_event ev;
      if (tray_parse_event(type, p, len, &ev, why, sizeof why) < 0) return 0;
      if (tray_encode_event(&ev, again) != len || memcmp(again, p, len) != 0) abort();
    } else if (type == TRAY_ITEM) {
      if (tray_parse_item(p, len, &item, why, sizeof why) < 0) return 0;
      if (item.width > TRAY_MAX_ICON || strlen(item.title) > TRAY_MAX_STRING) abort();
      if (tray_encode_item(&item, again) != len || memcmp(again, p, len) != 0) abort();
    } else if (type == TRAY_MENU) {
      if (tray_parse_menu(p, len, &menu, why, sizeof why) < 0) return 0;
      for (unsigned i = 0; i < menu.count; i++)
        if (menu.entries[i].depth > TRAY_MAX_DEPTH || (menu.entries[i].parent != TRAY_ROOT && menu.entries[i].parent >= i)) abort();
      if (tray_encode_menu(&menu, again) != len || memcmp(again, p, len) != 0) abort();
    } else {
      uint32_t id;
      if (tray_parse_remove(p, len, &id, why, sizeof why) < 0) return 0;
    }
  }
  return 0;
}
