/* The tray protocol's parsers and encoders (tray-proto.h; docs/protocol.md, "The tray protocol"). */
#include "tray-proto.h"

#include <stdio.h>
#include <string.h>

#if TRAY_MAX_ITEM_FRAME > TRAY_MAX_FRAME
#error "TRAY_MAX_FRAME must hold an ITEM frame"
#endif

const char *const tray_status_names[TRAY_N_STATUS] = {"Passive", "Active", "NeedsAttention"};
const char *const tray_category_names[TRAY_N_CATEGORY] = {"ApplicationStatus", "Communications", "SystemServices", "Hardware"};
const char *const tray_event_names[TRAY_N_EV] = {"clicked", "opened", "closed", "about-to-show"};

static const unsigned char PREAMBLE[TRAY_PREAMBLE_LEN] = {'V', 'M', 'T', TRAY_VERSION};

void tray_preamble(unsigned char out[TRAY_PREAMBLE_LEN]) { memcpy(out, PREAMBLE, TRAY_PREAMBLE_LEN); }

int tray_check_preamble(const unsigned char *p, char *why, size_t whylen) {
  if (memcmp(p, PREAMBLE, 3) != 0) {
    snprintf(why, whylen, "not the tray protocol (preamble %02x %02x %02x)", p[0], p[1], p[2]);
    return -1;
  }
  if (p[3] != TRAY_VERSION) {
    snprintf(why, whylen, "unsupported tray protocol version %u (this side speaks version %u)", p[3], TRAY_VERSION);
    return -1;
  }
  return 0;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static unsigned char *put32(unsigned char *o, uint32_t v) {
  o[0] = (unsigned char)(v >> 24), o[1] = (unsigned char)(v >> 16), o[2] = (unsigned char)(v >> 8), o[3] = (unsigned char)v;
  return o + 4;
}
static unsigned char *put16(unsigned char *o, uint16_t v) {
  o[0] = (unsigned char)(v >> 8), o[1] = (unsigned char)v;
  return o + 2;
}

void tray_header(unsigned char out[TRAY_HEADER_LEN], unsigned type, uint32_t len) {
  out[0] = (unsigned char)type;
  put32(out + 1, len);
}

int tray_check_header(unsigned type, uint32_t len, int from_guest, char *why, size_t whylen) {
  uint32_t min, max;
  switch (from_guest ? type : type | 0x100u) {
    case TRAY_ITEM: min = 4 + 3 + 3 * 2 + 4, max = TRAY_MAX_ITEM_FRAME; break;
    case TRAY_REMOVE: min = max = 4; break;
    case TRAY_MENU: min = 6, max = TRAY_MAX_MENU_FRAME; break;
    case 0x100u | TRAY_ACTIVATE:
    case 0x100u | TRAY_SECONDARY_ACTIVATE:
    case 0x100u | TRAY_CONTEXT_MENU: min = max = 12; break;
    case 0x100u | TRAY_SCROLL:
    case 0x100u | TRAY_MENU_EVENT: min = max = 9; break;
    default:
      snprintf(why, whylen, "frame type 0x%02x is not one the %s sends", type, from_guest ? "guest" : "host");
      return -1;
  }
  if (len < min || len > max) {
    snprintf(why, whylen, "frame type 0x%02x of %u bytes (expected %u to %u)", type, len, min, max);
    return -1;
  }
  return 0;
}

/* Decode one UTF-8 character at p (n > 0 bytes left): its length, or 0 when invalid. */
static size_t utf8_char(const unsigned char *p, size_t n, uint32_t *cp) {
  unsigned char c = p[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) return *cp = c, 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (p[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  return *cp = v, len;
}

/* Control characters (C0, DEL, C1) and the bidirectional overrides that could disguise a title. */
static int control(uint32_t cp, int newline) {
  if (cp == '\n') return !newline;
  return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int tray_valid_text(const unsigned char *p, size_t n, int newline) {
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_char(p + i, n - i, &cp);
    if (l == 0 || control(cp, newline)) return 0;
    i += l;
  }
  return 1;
}

void tray_clean_text(const char *in, size_t max, int newline, char *out) {
  const unsigned char *p = (const unsigned char *)in;
  size_t n = strlen(in), o = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_char(p + i, n - i, &cp);
    if (l == 0 || control(cp, newline)) {
      if (o + 1 > max) break;
      out[o++] = '?';
      i += l ? l : 1;
      continue;
    }
    if (o + l > max) break;
    memcpy(out + o, p + i, l);
    o += l, i += l;
  }
  out[o] = '\0';
}

/* A reader over one payload: every take checks the bytes are there. */
struct rd {
  const unsigned char *p;
  size_t n, off;
  char *why;
  size_t whylen;
};

static int take(struct rd *r, size_t k, const unsigned char **at, const char *what) {
  if (r->n - r->off < k) {
    snprintf(r->why, r->whylen, "%s: the frame ends %zu bytes early", what, k - (r->n - r->off));
    return -1;
  }
  *at = r->p + r->off;
  r->off += k;
  return 0;
}

static int str(struct rd *r, char *out, size_t max, int newline, const char *what) {
  const unsigned char *at;
  if (take(r, 2, &at, what) < 0) return -1;
  size_t len = be16(at);
  if (len > max) {
    snprintf(r->why, r->whylen, "%s: %zu bytes (at most %zu)", what, len, max);
    return -1;
  }
  if (take(r, len, &at, what) < 0) return -1;
  if (!tray_valid_text(at, len, newline)) {
    snprintf(r->why, r->whylen, "%s: not UTF-8 text without control characters", what);
    return -1;
  }
  memcpy(out, at, len);
  out[len] = '\0';
  return 0;
}

static int done(struct rd *r, const char *what) {
  if (r->off != r->n) {
    snprintf(r->why, r->whylen, "%s: %zu bytes after the end", what, r->n - r->off);
    return -1;
  }
  return 0;
}

int tray_parse_item(const unsigned char *p, size_t n, struct tray_item *it, char *why, size_t whylen) {
  struct rd r = {p, n, 0, why, whylen};
  const unsigned char *at;
  if (take(&r, 7, &at, "item") < 0) return -1;
  it->id = be32(at), it->status = at[4], it->category = at[5], it->flags = at[6];
  if (it->status >= TRAY_N_STATUS || it->category >= TRAY_N_CATEGORY || (it->flags & ~TRAY_F_ALL)) {
    snprintf(why, whylen, "item %u: status %u, category %u or flags 0x%02x out of range", it->id, it->status, it->category, it->flags);
    return -1;
  }
  if (str(&r, it->title, TRAY_MAX_STRING, 0, "item title") < 0 || str(&r, it->tooltip_title, TRAY_MAX_STRING, 0, "item tooltip title") < 0 ||
      str(&r, it->tooltip_text, TRAY_MAX_STRING, 1, "item tooltip text") < 0)
    return -1;
  if (take(&r, 4, &at, "item icon") < 0) return -1;
  it->width = be16(at), it->height = be16(at + 2);
  if (it->width > TRAY_MAX_ICON || it->height > TRAY_MAX_ICON || (it->width == 0) != (it->height == 0)) {
    snprintf(why, whylen, "item %u: icon of %ux%u pixels (at most %ux%u, or 0x0 for none)", it->id, it->width, it->height, TRAY_MAX_ICON, TRAY_MAX_ICON);
    return -1;
  }
  size_t bytes = (size_t)it->width * it->height * 4;
  if (take(&r, bytes, &at, "item icon pixels") < 0) return -1;
  memcpy(it->pixels, at, bytes);
  return done(&r, "item");
}

int tray_parse_remove(const unsigned char *p, size_t n, uint32_t *id, char *why, size_t whylen) {
  if (n != 4) {
    snprintf(why, whylen, "remove: %zu bytes (expected 4)", n);
    return -1;
  }
  *id = be32(p);
  return 0;
}

int tray_parse_menu(const unsigned char *p, size_t n, struct tray_menu *m, char *why, size_t whylen) {
  struct rd r = {p, n, 0, why, whylen};
  const unsigned char *at;
  if (take(&r, 6, &at, "menu") < 0) return -1;
  m->item = be32(at), m->count = be16(at + 4);
  if (m->count > TRAY_MAX_MENU) {
    snprintf(why, whylen, "menu of item %u: %u entries (at most %u)", m->item, m->count, TRAY_MAX_MENU);
    return -1;
  }
  for (unsigned i = 0; i < m->count; i++) {
    struct tray_entry *e = &m->entries[i];
    if (take(&r, 8, &at, "menu entry") < 0) return -1;
    e->id = (int32_t)be32(at), e->parent = be16(at + 4), e->kind = at[6], e->flags = at[7];
    if (e->id <= 0 || e->kind >= TRAY_N_ENTRY || (e->flags & ~TRAY_M_ALL)) {
      snprintf(why, whylen, "menu entry %u: id %d, kind %u or flags 0x%02x out of range", i, e->id, e->kind, e->flags);
      return -1;
    }
    /* A parent is an earlier entry that has a submenu: the menu is a tree by construction. */
    if (e->parent != TRAY_ROOT && (e->parent >= i || !(m->entries[e->parent].flags & TRAY_M_SUBMENU))) {
      snprintf(why, whylen, "menu entry %u: parent %u is not an earlier entry with a submenu", i, e->parent);
      return -1;
    }
    e->depth = e->parent == TRAY_ROOT ? 1 : (uint8_t)(m->entries[e->parent].depth + 1);
    if (e->depth > TRAY_MAX_DEPTH) {
      snprintf(why, whylen, "menu entry %u: nested %u levels deep (at most %u)", i, e->depth, TRAY_MAX_DEPTH);
      return -1;
    }
    for (unsigned j = 0; j < i; j++) {
      if (m->entries[j].id == e->id) {
        snprintf(why, whylen, "menu entry %u: id %d used twice", i, e->id);
        return -1;
      }
    }
    if (str(&r, e->label, TRAY_MAX_LABEL, 0, "menu label") < 0) return -1;
  }
  return done(&r, "menu");
}

int tray_parse_event(unsigned type, const unsigned char *p, size_t n, struct tray_event *ev, char *why, size_t whylen) {
  size_t want = type == TRAY_SCROLL || type == TRAY_MENU_EVENT ? 9 : 12;
  if (n != want) {
    snprintf(why, whylen, "event 0x%02x: %zu bytes (expected %zu)", type, n, want);
    return -1;
  }
  ev->type = type;
  ev->item = be32(p), ev->a = (int32_t)be32(p + 4), ev->b = 0, ev->kind = 0;
  if (want == 12) ev->b = (int32_t)be32(p + 8);
  else ev->kind = p[8];
  if ((type == TRAY_SCROLL && ev->kind > 1) || (type == TRAY_MENU_EVENT && ev->kind >= TRAY_N_EV)) {
    snprintf(why, whylen, "event 0x%02x: kind %u out of range", type, ev->kind);
    return -1;
  }
  return 0;
}

static unsigned char *put_str(unsigned char *o, const char *s) {
  size_t len = strlen(s);
  o = put16(o, (uint16_t)len);
  memcpy(o, s, len);
  return o + len;
}

size_t tray_encode_item(const struct tray_item *it, unsigned char *out) {
  unsigned char *o = put32(out, it->id);
  *o++ = it->status, *o++ = it->category, *o++ = it->flags;
  o = put_str(o, it->title);
  o = put_str(o, it->tooltip_title);
  o = put_str(o, it->tooltip_text);
  o = put16(o, it->width);
  o = put16(o, it->height);
  size_t bytes = (size_t)it->width * it->height * 4;
  memcpy(o, it->pixels, bytes);
  return (size_t)(o + bytes - out);
}

size_t tray_encode_menu(const struct tray_menu *m, unsigned char *out) {
  unsigned char *o = put32(out, m->item);
  o = put16(o, m->count);
  for (unsigned i = 0; i < m->count; i++) {
    const struct tray_entry *e = &m->entries[i];
    o = put32(o, (uint32_t)e->id);
    o = put16(o, e->parent);
    *o++ = e->kind, *o++ = e->flags;
    o = put_str(o, e->label);
  }
  return (size_t)(o - out);
}

size_t tray_encode_event(const struct tray_event *ev, unsigned char *out) {
  unsigned char *o = put32(out, ev->item);
  o = put32(o, (uint32_t)ev->a);
  if (ev->type == TRAY_SCROLL || ev->type == TRAY_MENU_EVENT) *o++ = ev->kind;
  else o = put32(o, (uint32_t)ev->b);
  return (size_t)(o - out);
}
