/*
 * The tray protocol, version 1 (docs/protocol.md, "The tray protocol", is the reference; keep the
 * two in step): what vmsilo-tray-guest (guest) and vmsilo-tray-host (host) say to each other. The
 * parsers here check every byte; no I/O, no D-Bus, so the fuzzing harness links them alone.
 *
 * Each direction starts with the preamble 'V' 'M' 'T' <version>, then frames:
 * <type: 1 byte> <length: 4 bytes, big-endian> <payload: length bytes>.
 * Numbers are big-endian; a string is <length: 2 bytes> <UTF-8 bytes>.
 */
#ifndef VMSILO_TRAY_PROTO_H
#define VMSILO_TRAY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TRAY_VERSION 1u
#define TRAY_PREAMBLE_LEN 4u
#define TRAY_HEADER_LEN 5u

/* Guest -> host. */
#define TRAY_ITEM 0x01u   /* an item appeared or changed: id, status, category, flags, 3 strings, icon */
#define TRAY_REMOVE 0x02u /* id */
#define TRAY_MENU 0x03u   /* id, the item's whole menu */

/* Host -> guest: what the user did to the re-exported item. */
#define TRAY_ACTIVATE 0x81u           /* id, x, y */
#define TRAY_SECONDARY_ACTIVATE 0x82u /* id, x, y */
#define TRAY_CONTEXT_MENU 0x83u       /* id, x, y */
#define TRAY_SCROLL 0x84u             /* id, delta, orientation */
#define TRAY_MENU_EVENT 0x85u         /* id, menu entry id, kind */

/* Limits. */
#define TRAY_MAX_STRING 512u     /* bytes of a title or tooltip */
#define TRAY_MAX_LABEL 256u      /* bytes of a menu label */
#define TRAY_MAX_ICON 64u        /* pixels of an icon's width and of its height */
#define TRAY_MAX_ITEMS 32u       /* items of one VM at once */
#define TRAY_MAX_MENU 256u       /* entries of one menu */
#define TRAY_MAX_DEPTH 8u        /* levels of submenus */
/* The largest payload of each frame: ITEM (id, 3 bytes, 3 strings, width, height, pixels) and MENU
 * (id, count, entries of id, parent, kind, flags and label). */
#define TRAY_MAX_ITEM_FRAME (4u + 3u + 3u * (2u + TRAY_MAX_STRING) + 4u + TRAY_MAX_ICON * TRAY_MAX_ICON * 4u)
#define TRAY_MAX_MENU_FRAME (4u + 2u + TRAY_MAX_MENU * (4u + 2u + 1u + 1u + 2u + TRAY_MAX_LABEL))
#define TRAY_MAX_FRAME TRAY_MAX_MENU_FRAME

/* Item status and category, as the StatusNotifierItem specification names them. */
enum { TRAY_PASSIVE, TRAY_ACTIVE, TRAY_NEEDS_ATTENTION, TRAY_N_STATUS };
enum { TRAY_APPLICATION_STATUS, TRAY_COMMUNICATIONS, TRAY_SYSTEM_SERVICES, TRAY_HARDWARE, TRAY_N_CATEGORY };
#define TRAY_F_HAS_MENU 0x01u
#define TRAY_F_ITEM_IS_MENU 0x02u
#define TRAY_F_ALL 0x03u
/* Menu entries. */
#define TRAY_ROOT 0xffffu /* parent index of a top-level entry */
enum { TRAY_ENTRY_STANDARD, TRAY_ENTRY_SEPARATOR, TRAY_N_ENTRY };
#define TRAY_M_ENABLED 0x01u
#define TRAY_M_VISIBLE 0x02u
#define TRAY_M_CHECKMARK 0x04u
#define TRAY_M_RADIO 0x08u
#define TRAY_M_ON 0x10u
#define TRAY_M_SUBMENU 0x20u
#define TRAY_M_ALL 0x3fu
/* Menu event kinds (com.canonical.dbusmenu's event ids, and AboutToShow). */
enum { TRAY_EV_CLICKED, TRAY_EV_OPENED, TRAY_EV_CLOSED, TRAY_EV_ABOUT_TO_SHOW, TRAY_N_EV };
extern const char *const tray_status_names[TRAY_N_STATUS];
extern const char *const tray_category_names[TRAY_N_CATEGORY];
extern const char *const tray_event_names[TRAY_N_EV];

struct tray_item {
  uint32_t id;
  uint8_t status, category, flags;
  char title[TRAY_MAX_STRING + 1], tooltip_title[TRAY_MAX_STRING + 1], tooltip_text[TRAY_MAX_STRING + 1];
  uint16_t width, height;               /* 0 x 0: no icon */
  unsigned char pixels[TRAY_MAX_ICON * TRAY_MAX_ICON * 4]; /* ARGB32, network byte order, as in the spec */
};

struct tray_entry {
  int32_t id;
  uint16_t parent; /* index of the parent entry (always an earlier one), or TRAY_ROOT */
  uint8_t kind, flags, depth;
  char label[TRAY_MAX_LABEL + 1];
};

struct tray_menu {
  uint32_t item;
  uint16_t count;
  struct tray_entry entries[TRAY_MAX_MENU];
};

/* The events the host sends. */
struct tray_event {
  unsigned type;
  uint32_t item;
  int32_t a, b; /* x, y; delta; menu entry id */
  uint8_t kind; /* scroll orientation (0 vertical, 1 horizontal); menu event kind */
};

/* 0 when the 4 bytes are our preamble, else -1 with why. */
int tray_check_preamble(const unsigned char *p, char *why, size_t whylen);
void tray_preamble(unsigned char out[TRAY_PREAMBLE_LEN]);
/* A frame header: is the type one the other side may send, its length within bounds? from_guest:
 * the frames the host accepts; else those the guest accepts. 0, or -1 with why. */
int tray_check_header(unsigned type, uint32_t len, int from_guest, char *why, size_t whylen);

/* Payload parsers (after tray_check_header): 0, or -1 with why. */
int tray_parse_item(const unsigned char *p, size_t n, struct tray_item *it, char *why, size_t whylen);
int tray_parse_remove(const unsigned char *p, size_t n, uint32_t *id, char *why, size_t whylen);
int tray_parse_menu(const unsigned char *p, size_t n, struct tray_menu *m, char *why, size_t whylen);
int tray_parse_event(unsigned type, const unsigned char *p, size_t n, struct tray_event *ev, char *why, size_t whylen);

/* Encoders: write the payload into out (room for TRAY_MAX_FRAME), return its length. The item's and
 * menu's strings must already be within bounds (tray_clean_text). */
size_t tray_encode_item(const struct tray_item *it, unsigned char *out);
size_t tray_encode_menu(const struct tray_menu *m, unsigned char *out);
size_t tray_encode_event(const struct tray_event *ev, unsigned char *out);
/* A frame header for a payload of len bytes. */
void tray_header(unsigned char out[TRAY_HEADER_LEN], unsigned type, uint32_t len);

/* What the guest does with any string before sending it: at most max bytes of valid UTF-8, cut at a
 * character boundary, invalid bytes and control characters (but newline when newline is set) as '?'. */
void tray_clean_text(const char *in, size_t max, int newline, char *out);
/* Whether n bytes are text the host accepts (the same rule, checked instead of repaired). */
int tray_valid_text(const unsigned char *p, size_t n, int newline);

#endif
