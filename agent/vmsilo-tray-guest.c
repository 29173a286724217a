/*
 * vmsilo-tray-guest: the guest side of a VM's tray (docs/protocol.md, "The tray protocol").
 *
 *   vmsilo-tray-guest (--listen-vsock PORT | --listen-unix PATH) [--log-level LEVEL]
 *
 * Runs in the guest user's session: it is the session's org.kde.StatusNotifierWatcher, so every
 * StatusNotifierItem of the guest's applications registers with it; it reads each item's title,
 * status, tooltip, icon pixels and com.canonical.dbusmenu menu, follows their change signals, and
 * sends them to the host's vmsilo-tray-host, which connects to it. What the host sends back
 * (activate, scroll, menu events) is called on the item. Everything sent is cut to the protocol's
 * bounds here (strings, icon size, menu size and depth); the host checks it again.
 *
 * On vsock it accepts only peers on a privileged port (below 1024), as the command agent does: on
 * the host only root or a process given CAP_NET_BIND_SERVICE (the VM's tray unit) binds one. A new
 * connection replaces the previous one (the host side restarted).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "common.h"
#include "protocol.h"
#include "tray-conn.h"
#include "tray-proto.h"

#define WATCHER "org.kde.StatusNotifierWatcher"
#define WATCHER_PATH "/StatusNotifierWatcher"
#define SNI "org.kde.StatusNotifierItem"
#define DBUSMENU "com.canonical.dbusmenu"
#define STATUS_FAILURE 1
#define STATUS_USAGE 2
/* The largest icon the guest scales down from (a bigger one is skipped). */
#define MAX_SOURCE_ICON 1024

enum { L_ERROR, L_WARN, L_INFO, L_DEBUG };
static int log_level = L_INFO;
#define LOG(l, ...) ((l) <= log_level ? msg(__VA_ARGS__) : (void)0)

static sd_bus *bus;
static sd_event *event;
static struct tray_conn conn = {.fd = -1};
static sd_event_source *conn_source;
static int vsock_listener;
static uint32_t next_id = 1;

struct gitem {
  int used;
  uint32_t id;
  char service[256], path[256], key[520], menu_path[256];
  sd_bus_slot *item_match, *menu_match;
  int have_item;
  struct tray_item it;
  struct tray_menu *menu;
};
static struct gitem items[TRAY_MAX_ITEMS];
static unsigned char frame_buf[TRAY_MAX_FRAME];

static void usage(FILE *f) {
  fprintf(f, "usage: %s (--listen-vsock PORT | --listen-unix PATH) [--log-level error|warn|info|debug]\n"
             "Collects the session's StatusNotifierItems and serves them to the host's vmsilo-tray-host.\n",
          prog);
}

/* --- to the host ------------------------------------------------------------------------------ */

static void drop_connection(void) {
  if (conn.fd < 0) return;
  sd_event_source_unref(conn_source);
  conn_source = NULL;
  tray_conn_close(&conn);
}

static void send_frame(unsigned type, size_t n) {
  char why[300];
  if (conn.fd < 0) return;
  if (tray_conn_send(&conn, type, frame_buf, n, why, sizeof why) < 0) {
    LOG(L_WARN, "the host connection failed: %s", why);
    drop_connection();
    return;
  }
  if (conn.out.len) sd_event_source_set_io_events(conn_source, EPOLLIN | EPOLLOUT);
}

static void send_item(struct gitem *g) {
  if (g->have_item) send_frame(TRAY_ITEM, tray_encode_item(&g->it, frame_buf));
}
static void send_menu(struct gitem *g) {
  if (g->have_item && g->menu) send_frame(TRAY_MENU, tray_encode_menu(g->menu, frame_buf));
}

/* --- reading an item -------------------------------------------------------------------------- */

static struct gitem *by_id(uint32_t id) {
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used && items[i].id == id) return &items[i];
  return NULL;
}

static int index_of(const char *names[], int n, const char *v) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], v) == 0) return i;
  return -1;
}

/* The pixmap to send: the largest that fits the protocol's bound, else the smallest, scaled down. */
static int read_pixmaps(sd_bus_message *m, struct tray_item *it) {
  const void *best = NULL;
  int32_t bw = 0, bh = 0;
  int r = sd_bus_message_enter_container(m, 'a', "(iiay)");
  while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "iiay")) > 0) {
    int32_t w, h;
    const void *px;
    size_t size;
    r = sd_bus_message_read(m, "ii", &w, &h);
    if (r >= 0) r = sd_bus_message_read_array(m, 'y', &px, &size);
    if (r >= 0) r = sd_bus_message_exit_container(m);
    if (r < 0 || w <= 0 || h <= 0 || w > MAX_SOURCE_ICON || h > MAX_SOURCE_ICON || size != (size_t)w * (size_t)h * 4) continue;
    int fits = w <= (int32_t)TRAY_MAX_ICON && h <= (int32_t)TRAY_MAX_ICON, best_fits = bw <= (int32_t)TRAY_MAX_ICON && bh <= (int32_t)TRAY_MAX_ICON;
    if (best == NULL || (fits && (!best_fits || w * h > bw * bh)) || (!fits && !best_fits && w * h < bw * bh)) best = px, bw = w, bh = h;
  }
  if (r < 0) return r;
  r = sd_bus_message_exit_container(m);
  if (best == NULL) return r;
  int32_t tw = bw, th = bh;
  if (tw > (int32_t)TRAY_MAX_ICON || th > (int32_t)TRAY_MAX_ICON) {
    if (tw >= th) th = (int32_t)((int64_t)th * TRAY_MAX_ICON / tw), tw = TRAY_MAX_ICON;
    else tw = (int32_t)((int64_t)tw * TRAY_MAX_ICON / th), th = TRAY_MAX_ICON;
    if (tw < 1) tw = 1;
    if (th < 1) th = 1;
  }
  for (int32_t y = 0; y < th; y++)
    for (int32_t x = 0; x < tw; x++)
      memcpy(it->pixels + 4 * (y * tw + x), (const unsigned char *)best + 4 * ((int64_t)y * bh / th * bw + (int64_t)x * bw / tw), 4);
  it->width = (uint16_t)tw, it->height = (uint16_t)th;
  return r;
}

static void set_menu_path(struct gitem *g, const char *path);

static int on_props(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  struct gitem *g = ud;
  if (sd_bus_message_is_method_error(m, NULL)) {
    LOG(L_WARN, "item %s: reading its properties: %s", g->key, sd_bus_message_get_error(m)->message);
    return 0;
  }
  static struct tray_item it;
  memset(&it, 0, sizeof it);
  it.id = g->id;
  char menu[256] = "";
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char *key, *contents, *s;
    char type;
    r = sd_bus_message_read(m, "s", &key);
    if (r >= 0) r = sd_bus_message_peek_type(m, &type, &contents);
    if (r < 0) break;
    int known = 1;
    if (strcmp(contents, "s") == 0 && (!strcmp(key, "Title") || !strcmp(key, "Status") || !strcmp(key, "Category"))) {
      r = sd_bus_message_read(m, "v", "s", &s);
      if (r < 0) break;
      if (!strcmp(key, "Title")) tray_clean_text(s, TRAY_MAX_STRING, 0, it.title);
      else if (!strcmp(key, "Status")) it.status = (uint8_t)(index_of((const char **)tray_status_names, TRAY_N_STATUS, s) < 0 ? TRAY_ACTIVE : index_of((const char **)tray_status_names, TRAY_N_STATUS, s));
      else it.category = (uint8_t)(index_of((const char **)tray_category_names, TRAY_N_CATEGORY, s) < 0 ? 0 : index_of((const char **)tray_category_names, TRAY_N_CATEGORY, s));
    } else if (strcmp(contents, "o") == 0 && !strcmp(key, "Menu")) {
      r = sd_bus_message_read(m, "v", "o", &s);
      if (r >= 0 && strlen(s) < sizeof menu) snprintf(menu, sizeof menu, "%s", s);
    } else if (strcmp(contents, "b") == 0 && !strcmp(key, "ItemIsMenu")) {
      int b;
      r = sd_bus_message_read(m, "v", "b", &b);
      if (r >= 0 && b) it.flags |= TRAY_F_ITEM_IS_MENU;
    } else if (strcmp(contents, "a(iiay)") == 0 && !strcmp(key, "IconPixmap")) {
      r = sd_bus_message_enter_container(m, 'v', "a(iiay)");
      if (r >= 0) r = read_pixmaps(m, &it);
      if (r >= 0) r = sd_bus_message_exit_container(m);
    } else if (strcmp(contents, "(sa(iiay)ss)") == 0 && !strcmp(key, "ToolTip")) {
      const char *title, *text;
      r = sd_bus_message_enter_container(m, 'v', "(sa(iiay)ss)");
      if (r >= 0) r = sd_bus_message_enter_container(m, 'r', "sa(iiay)ss");
      if (r >= 0) r = sd_bus_message_skip(m, "sa(iiay)");
      if (r >= 0) r = sd_bus_message_read(m, "ss", &title, &text);
      if (r >= 0) {
        tray_clean_text(title, TRAY_MAX_STRING, 0, it.tooltip_title);
        tray_clean_text(text, TRAY_MAX_STRING, 1, it.tooltip_text);
      }
      if (r >= 0) r = sd_bus_message_exit_container(m);
      if (r >= 0) r = sd_bus_message_exit_container(m);
    } else {
      known = 0; /* IconName, IconThemePath and the rest: the host uses pixels only */
    }
    if (r >= 0 && !known) r = sd_bus_message_skip(m, "v");
    if (r >= 0) r = sd_bus_message_exit_container(m);
  }
  if (r < 0) {
    LOG(L_WARN, "item %s: unreadable properties: %s", g->key, strerror(-r));
    return 0;
  }
  int has_menu = *menu && strcmp(menu, "/") != 0 && strcmp(menu, "/NO_DBUSMENU") != 0;
  if (has_menu) it.flags |= TRAY_F_HAS_MENU;
  g->it = it;
  g->have_item = 1;
  send_item(g);
  set_menu_path(g, has_menu ? menu : "");
  return 0;
}

static void refresh(struct gitem *g) {
  int r = sd_bus_call_method_async(bus, NULL, g->service, g->path, "org.freedesktop.DBus.Properties", "GetAll", on_props, g, "s", SNI);
  if (r < 0) LOG(L_WARN, "item %s: GetAll: %s", g->key, strerror(-r));
}

static int on_item_signal(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)m, (void)e;
  refresh(ud);
  return 0;
}

/* --- reading a menu --------------------------------------------------------------------------- */

static int read_entry_props(sd_bus_message *m, struct tray_entry *e) {
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char *key, *contents, *s;
    char type;
    r = sd_bus_message_read(m, "s", &key);
    if (r >= 0) r = sd_bus_message_peek_type(m, &type, &contents);
    if (r < 0) break;
    if (!strcmp(contents, "s") && (!strcmp(key, "label") || !strcmp(key, "type") || !strcmp(key, "toggle-type") || !strcmp(key, "children-display"))) {
      r = sd_bus_message_read(m, "v", "s", &s);
      if (r < 0) break;
      if (!strcmp(key, "label")) tray_clean_text(s, TRAY_MAX_LABEL, 0, e->label);
      else if (!strcmp(key, "type")) e->kind = strcmp(s, "separator") == 0 ? TRAY_ENTRY_SEPARATOR : TRAY_ENTRY_STANDARD;
      else if (!strcmp(key, "toggle-type")) e->flags |= !strcmp(s, "checkmark") ? TRAY_M_CHECKMARK : !strcmp(s, "radio") ? TRAY_M_RADIO : 0;
      else if (!strcmp(s, "submenu")) e->flags |= TRAY_M_SUBMENU;
    } else if (!strcmp(contents, "b") && (!strcmp(key, "enabled") || !strcmp(key, "visible"))) {
      int b;
      r = sd_bus_message_read(m, "v", "b", &b);
      if (r >= 0 && !b) e->flags &= (uint8_t)~(!strcmp(key, "enabled") ? TRAY_M_ENABLED : TRAY_M_VISIBLE);
    } else if (!strcmp(contents, "i") && !strcmp(key, "toggle-state")) {
      int32_t v;
      r = sd_bus_message_read(m, "v", "i", &v);
      if (r >= 0 && v == 1) e->flags |= TRAY_M_ON;
    } else {
      r = sd_bus_message_skip(m, "v");
    }
    if (r >= 0) r = sd_bus_message_exit_container(m);
  }
  if (r >= 0) r = sd_bus_message_exit_container(m);
  return r;
}

/* One layout node; entries past the protocol's bounds (count, depth) are left out with their children. */
static int read_node(sd_bus_message *m, struct tray_menu *menu, int parent, unsigned depth) {
  int r = sd_bus_message_enter_container(m, 'r', "ia{sv}av");
  int32_t id;
  if (r >= 0) r = sd_bus_message_read(m, "i", &id);
  struct tray_entry e = {.id = id, .flags = TRAY_M_ENABLED | TRAY_M_VISIBLE};
  if (r >= 0) r = read_entry_props(m, &e);
  if (r < 0) return r;
  int self = -1; /* the root */
  if (depth > 0) {
    int dup = 0;
    for (unsigned i = 0; i < menu->count; i++) dup |= menu->entries[i].id == id;
    if (id <= 0 || dup || depth > TRAY_MAX_DEPTH || menu->count >= TRAY_MAX_MENU || (parent >= 0 && !(menu->entries[parent].flags & TRAY_M_SUBMENU))) {
      self = -2; /* left out */
    } else {
      e.parent = parent < 0 ? TRAY_ROOT : (uint16_t)parent;
      self = menu->count;
      menu->entries[menu->count++] = e;
    }
  }
  r = sd_bus_message_enter_container(m, 'a', "v");
  while (r >= 0 && (r = sd_bus_message_enter_container(m, 'v', "(ia{sv}av)")) > 0) {
    if (self >= 0) menu->entries[self].flags |= TRAY_M_SUBMENU;
    if (self == -2 || depth + 1 > TRAY_MAX_DEPTH) r = sd_bus_message_skip(m, "(ia{sv}av)");
    else r = read_node(m, menu, self, depth + 1);
    if (r >= 0) r = sd_bus_message_exit_container(m);
  }
  if (r >= 0) r = sd_bus_message_exit_container(m);
  if (r >= 0) r = sd_bus_message_exit_container(m);
  return r;
}

static int on_layout(sd_bus_message *m, void *ud, sd_bus_error *err) {
  (void)err;
  struct gitem *g = ud;
  if (sd_bus_message_is_method_error(m, NULL)) {
    LOG(L_WARN, "item %s: reading its menu: %s", g->key, sd_bus_message_get_error(m)->message);
    return 0;
  }
  static struct tray_menu menu;
  memset(&menu, 0, sizeof menu);
  menu.item = g->id;
  uint32_t revision;
  int r = sd_bus_message_read(m, "u", &revision);
  if (r >= 0) r = read_node(m, &menu, -1, 0);
  if (r < 0) {
    LOG(L_WARN, "item %s: unreadable menu: %s", g->key, strerror(-r));
    return 0;
  }
  if (g->menu == NULL) g->menu = xmalloc(sizeof *g->menu);
  *g->menu = menu;
  send_menu(g);
  return 0;
}

static void fetch_menu(struct gitem *g) {
  int r = sd_bus_call_method_async(bus, NULL, g->service, g->menu_path, DBUSMENU, "GetLayout", on_layout, g, "iias", (int32_t)0, (int32_t)-1, 0);
  if (r < 0) LOG(L_WARN, "item %s: GetLayout: %s", g->key, strerror(-r));
}

static int on_menu_signal(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  const char *member = sd_bus_message_get_member(m);
  if (member && (!strcmp(member, "LayoutUpdated") || !strcmp(member, "ItemsPropertiesUpdated"))) fetch_menu(ud);
  return 0;
}

static void set_menu_path(struct gitem *g, const char *path) {
  if (strcmp(path, g->menu_path) != 0) {
    g->menu_match = sd_bus_slot_unref(g->menu_match);
    snprintf(g->menu_path, sizeof g->menu_path, "%s", path);
    if (*path) sd_bus_match_signal(bus, &g->menu_match, g->service, path, DBUSMENU, NULL, on_menu_signal, g);
  }
  if (*path) fetch_menu(g);
}

/* --- the watcher ------------------------------------------------------------------------------ */

static void remove_item(struct gitem *g) {
  LOG(L_INFO, "item %s (%u) is gone", g->key, g->id);
  unsigned char p[4];
  put_be32(p, g->id);
  memcpy(frame_buf, p, 4);
  if (g->have_item) send_frame(TRAY_REMOVE, 4);
  sd_bus_emit_signal(bus, WATCHER_PATH, WATCHER, "StatusNotifierItemUnregistered", "s", g->key);
  sd_bus_slot_unref(g->item_match);
  sd_bus_slot_unref(g->menu_match);
  free(g->menu);
  memset(g, 0, sizeof *g);
  sd_bus_emit_properties_changed(bus, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems", NULL);
}

static int m_register_item(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud;
  const char *arg, *sender = sd_bus_message_get_sender(m);
  int r = sd_bus_message_read(m, "s", &arg);
  if (r < 0) return r;
  char service[256], path[256];
  if (arg[0] == '/') snprintf(service, sizeof service, "%s", sender), snprintf(path, sizeof path, "%s", arg);
  else snprintf(service, sizeof service, "%s", arg), snprintf(path, sizeof path, "/StatusNotifierItem");
  if (!sd_bus_object_path_is_valid(path) || strlen(arg) >= sizeof service) return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "not a service name or object path: %s", arg);
  /* Items are followed by their unique name, whose end says the item is gone. */
  if (service[0] != ':') {
    sd_bus_message *reply = NULL;
    const char *owner;
    r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", e, &reply, "s", service);
    if (r < 0) return r;
    r = sd_bus_message_read(reply, "s", &owner);
    if (r >= 0) snprintf(service, sizeof service, "%s", owner);
    sd_bus_message_unref(reply);
    if (r < 0) return r;
  }
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used && !strcmp(items[i].service, service) && !strcmp(items[i].path, path)) return sd_bus_reply_method_return(m, "");
  struct gitem *g = NULL;
  for (unsigned i = 0; i < TRAY_MAX_ITEMS && !g; i++)
    if (!items[i].used) g = &items[i];
  if (g == NULL) return sd_bus_error_setf(e, SD_BUS_ERROR_LIMITS_EXCEEDED, "at most %u tray items", TRAY_MAX_ITEMS);
  memset(g, 0, sizeof *g);
  g->used = 1;
  g->id = next_id++;
  snprintf(g->service, sizeof g->service, "%s", service);
  snprintf(g->path, sizeof g->path, "%s", path);
  snprintf(g->key, sizeof g->key, "%s%s", service, path);
  r = sd_bus_match_signal(bus, &g->item_match, service, path, SNI, NULL, on_item_signal, g);
  if (r < 0) {
    memset(g, 0, sizeof *g);
    return r;
  }
  LOG(L_INFO, "item %s registered (%u)", g->key, g->id);
  refresh(g);
  sd_bus_emit_signal(bus, WATCHER_PATH, WATCHER, "StatusNotifierItemRegistered", "s", g->key);
  sd_bus_emit_properties_changed(bus, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems", NULL);
  return sd_bus_reply_method_return(m, "");
}

static int m_register_host(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  return sd_bus_reply_method_return(m, "");
}

static int p_items(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)prop, (void)ud, (void)e;
  int r = sd_bus_message_open_container(reply, 'a', "s");
  for (unsigned i = 0; r >= 0 && i < TRAY_MAX_ITEMS; i++)
    if (items[i].used) r = sd_bus_message_append(reply, "s", items[i].key);
  if (r >= 0) r = sd_bus_message_close_container(reply);
  return r;
}

static int p_watcher(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)ud, (void)e;
  if (!strcmp(prop, "ProtocolVersion")) return sd_bus_message_append(reply, "i", (int32_t)0);
  return sd_bus_message_append(reply, "b", 1); /* the host is the item's host */
}

static const sd_bus_vtable watcher_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("RegisterStatusNotifierItem", "s", "", m_register_item, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RegisterStatusNotifierHost", "s", "", m_register_host, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("RegisteredStatusNotifierItems", "as", p_items, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("IsStatusNotifierHostRegistered", "b", p_watcher, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("ProtocolVersion", "i", p_watcher, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_SIGNAL("StatusNotifierItemRegistered", "s", 0),
    SD_BUS_SIGNAL("StatusNotifierItemUnregistered", "s", 0),
    SD_BUS_SIGNAL("StatusNotifierHostRegistered", "", 0),
    SD_BUS_SIGNAL("StatusNotifierHostUnregistered", "", 0),
    SD_BUS_VTABLE_END,
};

static int on_name_owner(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  const char *name, *old, *new;
  if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0 || *new) return 0;
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used && !strcmp(items[i].service, name)) remove_item(&items[i]);
  return 0;
}

/* --- the host's events ------------------------------------------------------------------------ */

static int on_frame(unsigned type, const unsigned char *p, size_t n, void *ctx, char *why, size_t whylen) {
  (void)ctx;
  struct tray_event ev;
  if (tray_parse_event(type, p, n, &ev, why, whylen) < 0) return -1;
  struct gitem *g = by_id(ev.item);
  if (g == NULL) return 0; /* an item that has just gone */
  LOG(L_DEBUG, "event 0x%02x for item %s", type, g->key);
  int r;
  switch (type) {
    case TRAY_ACTIVATE: r = sd_bus_call_method_async(bus, NULL, g->service, g->path, SNI, "Activate", NULL, NULL, "ii", ev.a, ev.b); break;
    case TRAY_SECONDARY_ACTIVATE: r = sd_bus_call_method_async(bus, NULL, g->service, g->path, SNI, "SecondaryActivate", NULL, NULL, "ii", ev.a, ev.b); break;
    case TRAY_CONTEXT_MENU: r = sd_bus_call_method_async(bus, NULL, g->service, g->path, SNI, "ContextMenu", NULL, NULL, "ii", ev.a, ev.b); break;
    case TRAY_SCROLL: r = sd_bus_call_method_async(bus, NULL, g->service, g->path, SNI, "Scroll", NULL, NULL, "is", ev.a, ev.kind ? "horizontal" : "vertical"); break;
    default:
      if (!*g->menu_path) return 0;
      if (ev.kind == TRAY_EV_ABOUT_TO_SHOW) r = sd_bus_call_method_async(bus, NULL, g->service, g->menu_path, DBUSMENU, "AboutToShow", NULL, NULL, "i", ev.a);
      else r = sd_bus_call_method_async(bus, NULL, g->service, g->menu_path, DBUSMENU, "Event", NULL, NULL, "isvu", ev.a, tray_event_names[ev.kind], "i", (int32_t)0, (uint32_t)0);
  }
  if (r < 0) LOG(L_WARN, "item %s: forwarding event 0x%02x: %s", g->key, type, strerror(-r));
  return 0;
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *ud) {
  (void)s, (void)fd, (void)ud;
  char why[600];
  int r = 0;
  if (revents & EPOLLOUT) r = tray_conn_flush(&conn, why, sizeof why);
  if (r == 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) r = tray_conn_read(&conn, on_frame, NULL, why, sizeof why);
  if (r != 0) {
    if (r < 0) LOG(L_WARN, "dropping the host connection: %s", why);
    else LOG(L_INFO, "the host closed the connection");
    drop_connection();
    return 0;
  }
  sd_event_source_set_io_events(conn_source, EPOLLIN | (conn.out.len ? EPOLLOUT : 0));
  return 0;
}

static int on_accept(sd_event_source *s, int lfd, uint32_t revents, void *ud) {
  (void)s, (void)revents, (void)ud;
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
  if (fd < 0) return 0;
  if (vsock_listener) {
    const struct sockaddr_vm *vm = (const struct sockaddr_vm *)&peer;
    if (peer.ss_family != AF_VSOCK || vm->svm_port >= VMR_FIRST_UNPRIVILEGED_PORT) {
      LOG(L_WARN, "refused the connection from vsock CID %u port %u: only peers on a privileged port (below 1024) are accepted", vm->svm_cid, vm->svm_port);
      close(fd);
      return 0;
    }
  }
  if (conn.fd >= 0) LOG(L_INFO, "a new host connection replaces the previous one");
  drop_connection();
  tray_conn_open(&conn, fd, 0);
  int r = sd_event_add_io(event, &conn_source, fd, EPOLLIN | EPOLLOUT, on_conn, NULL);
  if (r < 0) {
    LOG(L_ERROR, "watching the host connection: %s", strerror(-r));
    tray_conn_close(&conn);
    return 0;
  }
  LOG(L_INFO, "the host connected");
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used) send_item(&items[i]), send_menu(&items[i]);
  return 0;
}

static int listen_on(const char *vsock_port, const char *unix_path) {
  if (unix_path) return unix_listen(unix_path);
  char *end;
  errno = 0;
  unsigned long p = strtoul(vsock_port, &end, 10);
  if (errno || *end || *vsock_port < '0' || *vsock_port > '9' || p > 0xffffffffUL) {
    msg("--listen-vsock: expected a port number, got \"%s\"", vsock_port);
    return -2;
  }
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned)p};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
    msg("listening on vsock port %lu: %s", p, strerror(errno));
    return -1;
  }
  vsock_listener = 1;
  return fd;
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  const char *vsock_port = NULL, *unix_path = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (v == NULL) {
      usage(stderr);
      return STATUS_USAGE;
    }
    i++;
    if (!strcmp(a, "--listen-vsock")) vsock_port = v;
    else if (!strcmp(a, "--listen-unix")) unix_path = v;
    else if (!strcmp(a, "--log-level")) {
      const char *levels[] = {"error", "warn", "info", "debug"};
      log_level = index_of(levels, 4, v);
      if (log_level < 0) {
        msg("--log-level: expected error, warn, info or debug, got \"%s\"", v);
        return STATUS_USAGE;
      }
    } else {
      usage(stderr);
      return STATUS_USAGE;
    }
  }
  if (!vsock_port == !unix_path) {
    usage(stderr);
    return STATUS_USAGE;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(vsock_port, unix_path);
  if (lfd < 0) return lfd == -2 ? STATUS_USAGE : STATUS_FAILURE;
  int r = sd_event_default(&event);
  if (r >= 0) r = sd_bus_open_user(&bus);
  if (r < 0) {
    msg("connecting to the session bus: %s", strerror(-r));
    return STATUS_FAILURE;
  }
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  sigprocmask(SIG_BLOCK, &ss, NULL);
  sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
  sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
  if ((r = sd_bus_attach_event(bus, event, 0)) >= 0 && (r = sd_bus_add_object_vtable(bus, NULL, WATCHER_PATH, WATCHER, watcher_vtable, NULL)) >= 0 &&
      (r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner, NULL)) >= 0 &&
      (r = sd_event_add_io(event, NULL, lfd, EPOLLIN, on_accept, NULL)) >= 0)
    r = sd_bus_request_name(bus, WATCHER, 0);
  if (r < 0) {
    msg("becoming the session's %s: %s", WATCHER, strerror(-r));
    return STATUS_FAILURE;
  }
  LOG(L_INFO, "serving the session's tray items on %s %s", unix_path ? "unix socket" : "vsock port", unix_path ? unix_path : vsock_port);
  r = sd_event_loop(event);
  return r < 0 ? STATUS_FAILURE : r;
}
