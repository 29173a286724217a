/*
 * vmsilo-tray-host: the host side of a VM's tray (docs/protocol.md, "The tray protocol").
 *
 *   vmsilo-tray-host --vm-name NAME --color #RRGGBB (--vsock CID:PORT | --unix PATH) [--log-level LEVEL]
 *
 * Connects to the guest's vmsilo-tray-guest (on vsock from a privileged source port, which the guest
 * requires; binding one needs CAP_NET_BIND_SERVICE), retrying until it answers, and re-exports each
 * item the guest reports on the user's session bus (DBUS_SESSION_BUS_ADDRESS) as a
 * StatusNotifierItem with a com.canonical.dbusmenu menu: titled "[NAME] …", its icon tinted with
 * the VM's colour and framed in it. What the user does to an item (activate, scroll, menu clicks)
 * goes back to the guest. Each item has a bus connection of its own, so that closing it tells the
 * desktop's StatusNotifierWatcher the item is gone.
 *
 * Everything from the guest is checked by tray-proto.c; a frame that breaks the protocol ends the
 * connection, removes the VM's items and exits 1 (systemd restarts the service). Guest strings go
 * only into titles, tooltips and labels: icon names, theme paths and anything else that would make
 * the host look up a file never come from the guest.
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
#include "tray-conn.h"
#include "tray-proto.h"

#define ITEM_PATH "/StatusNotifierItem"
#define MENU_PATH "/MenuBar"
#define NO_MENU "/NO_DBUSMENU"
#define WATCHER "org.kde.StatusNotifierWatcher"
/* The icon of an item that sends none: a disc in the VM's colour. */
#define FALLBACK_ICON 22u
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000
#define STATUS_PROTOCOL 1
#define STATUS_USAGE 2

enum { L_ERROR, L_WARN, L_INFO, L_DEBUG };
static int log_level = L_INFO;
#define LOG(l, ...) ((l) <= log_level ? msg(__VA_ARGS__) : (void)0)

static const char *vm_name;
static unsigned char color[3];
static enum { T_NONE, T_VSOCK, T_UNIX } transport = T_NONE;
static unsigned long cid, port;
static char unix_path[PATH_MAX], target[PATH_MAX + 64];

static sd_event *event;
static struct tray_conn conn = {.fd = -1};
static sd_event_source *conn_source, *retry_source;
static int retry_ms = RETRY_FIRST_MS, waiting_logged;
/* The user's session bus, held while connected to the guest: items are shown only while it is
 * there, and its end (the user logged out) ends the connection until it is back. */
static sd_bus *session;

struct hitem {
  int used;
  uint32_t guest_id;
  sd_bus *bus;
  struct tray_item it;
  unsigned char icon[TRAY_MAX_ICON * TRAY_MAX_ICON * 4]; /* tinted, or the fallback disc */
  uint16_t icon_w, icon_h;
  struct tray_menu *menu; /* NULL until the guest sends one */
  uint32_t revision;
  char title[TRAY_MAX_STRING + 64], tooltip_title[TRAY_MAX_STRING + 64], id[96];
};
static struct hitem items[TRAY_MAX_ITEMS];

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s --vm-name NAME --color #RRGGBB (--vsock CID:PORT | --unix PATH) [--log-level error|warn|info|debug]\n"
          "Re-exports the tray items of the VM's guest on the user's session bus.\n",
          prog);
}

static int parse_color(const char *s) {
  if (strlen(s) != 7 || s[0] != '#') return -1;
  for (int i = 0; i < 3; i++) {
    unsigned v = 0;
    for (int j = 1; j <= 2; j++) {
      char c = s[1 + 2 * i + j - 1];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + (unsigned)d;
    }
    color[i] = (unsigned char)v;
  }
  return 0;
}

/* The guest's icon, blended half-way to the VM's colour and framed in it (one pixel, opaque), so
 * that even a blank icon says which VM it comes from. */
static void tint(struct hitem *h) {
  const struct tray_item *it = &h->it;
  if (it->width == 0) {
    h->icon_w = h->icon_h = FALLBACK_ICON;
    const int c2 = FALLBACK_ICON; /* twice the centre, in half pixels */
    for (unsigned y = 0; y < FALLBACK_ICON; y++)
      for (unsigned x = 0; x < FALLBACK_ICON; x++) {
        unsigned char *p = h->icon + 4 * (y * FALLBACK_ICON + x);
        int dx = 2 * (int)x + 1 - c2, dy = 2 * (int)y + 1 - c2;
        int in = dx * dx + dy * dy <= (c2 - 2) * (c2 - 2);
        p[0] = in ? 255 : 0, p[1] = color[0], p[2] = color[1], p[3] = color[2];
      }
    return;
  }
  h->icon_w = it->width, h->icon_h = it->height;
  for (unsigned y = 0; y < it->height; y++)
    for (unsigned x = 0; x < it->width; x++) {
      size_t o = 4 * ((size_t)y * it->width + x);
      const unsigned char *s = it->pixels + o;
      unsigned char *d = h->icon + o;
      int edge = x == 0 || y == 0 || x + 1 == it->width || y + 1 == it->height;
      d[0] = edge ? 255 : s[0];
      for (int k = 0; k < 3; k++) d[1 + k] = edge ? color[k] : (unsigned char)((s[1 + k] + color[k]) / 2);
    }
}

/* --- the StatusNotifierItem ------------------------------------------------------------------ */

static int send_event(const struct tray_event *ev) {
  char why[300];
  unsigned char p[16];
  size_t n = tray_encode_event(ev, p);
  if (conn.fd < 0) return 0;
  if (tray_conn_send(&conn, ev->type, p, n, why, sizeof why) < 0) LOG(L_WARN, "sending an event to the guest: %s", why);
  return 0;
}

static int m_xy(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  struct hitem *h = ud;
  int32_t x, y;
  int r = sd_bus_message_read(m, "ii", &x, &y);
  if (r < 0) return r;
  const char *member = sd_bus_message_get_member(m);
  unsigned type = strcmp(member, "Activate") == 0 ? TRAY_ACTIVATE : strcmp(member, "SecondaryActivate") == 0 ? TRAY_SECONDARY_ACTIVATE : TRAY_CONTEXT_MENU;
  struct tray_event ev = {.type = type, .item = h->guest_id, .a = x, .b = y};
  LOG(L_DEBUG, "%s on item %u", member, h->guest_id);
  send_event(&ev);
  return sd_bus_reply_method_return(m, "");
}

static int m_scroll(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  struct hitem *h = ud;
  int32_t delta;
  const char *orientation;
  int r = sd_bus_message_read(m, "is", &delta, &orientation);
  if (r < 0) return r;
  struct tray_event ev = {.type = TRAY_SCROLL, .item = h->guest_id, .a = delta, .kind = strcasecmp(orientation, "horizontal") == 0};
  send_event(&ev);
  return sd_bus_reply_method_return(m, "");
}

static int p_str(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)e;
  struct hitem *h = ud;
  const char *v = "";
  if (strcmp(prop, "Category") == 0) v = tray_category_names[h->it.category];
  else if (strcmp(prop, "Id") == 0) v = h->id;
  else if (strcmp(prop, "Title") == 0) v = h->title;
  else if (strcmp(prop, "Status") == 0) v = tray_status_names[h->it.status];
  return sd_bus_message_append(reply, "s", v);
}

static int append_pixmap(sd_bus_message *reply, const struct hitem *h) {
  int r = sd_bus_message_open_container(reply, 'a', "(iiay)");
  if (r >= 0) r = sd_bus_message_open_container(reply, 'r', "iiay");
  if (r >= 0) r = sd_bus_message_append(reply, "ii", (int32_t)h->icon_w, (int32_t)h->icon_h);
  if (r >= 0) r = sd_bus_message_append_array(reply, 'y', h->icon, (size_t)h->icon_w * h->icon_h * 4);
  if (r >= 0) r = sd_bus_message_close_container(reply);
  if (r >= 0) r = sd_bus_message_close_container(reply);
  return r;
}

static int p_pixmap(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)e;
  if (strcmp(prop, "IconPixmap") == 0) return append_pixmap(reply, ud);
  return sd_bus_message_append(reply, "a(iiay)", 0);
}

static int p_tooltip(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)prop, (void)e;
  struct hitem *h = ud;
  int r = sd_bus_message_open_container(reply, 'r', "sa(iiay)ss");
  if (r >= 0) r = sd_bus_message_append(reply, "sa(iiay)ss", "", 0, h->tooltip_title, h->it.tooltip_text);
  if (r >= 0) r = sd_bus_message_close_container(reply);
  return r;
}

static int p_menu(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)prop, (void)e;
  struct hitem *h = ud;
  return sd_bus_message_append(reply, "o", h->it.flags & TRAY_F_HAS_MENU ? MENU_PATH : NO_MENU);
}

static int p_misc(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)e;
  struct hitem *h = ud;
  if (strcmp(prop, "ItemIsMenu") == 0) return sd_bus_message_append(reply, "b", (int)(h->it.flags & TRAY_F_ITEM_IS_MENU) != 0);
  return sd_bus_message_append(reply, "i", 0); /* WindowId */
}

/* The names of icons and of their theme's directory are always empty: the guest chooses pixels only. */
static int p_empty(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)prop, (void)ud, (void)e;
  return sd_bus_message_append(reply, "s", "");
}

static const sd_bus_vtable item_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Category", "s", p_str, 0, 0),
    SD_BUS_PROPERTY("Id", "s", p_str, 0, 0),
    SD_BUS_PROPERTY("Title", "s", p_str, 0, 0),
    SD_BUS_PROPERTY("Status", "s", p_str, 0, 0),
    SD_BUS_PROPERTY("WindowId", "i", p_misc, 0, 0),
    SD_BUS_PROPERTY("ItemIsMenu", "b", p_misc, 0, 0),
    SD_BUS_PROPERTY("IconName", "s", p_empty, 0, 0),
    SD_BUS_PROPERTY("IconThemePath", "s", p_empty, 0, 0),
    SD_BUS_PROPERTY("OverlayIconName", "s", p_empty, 0, 0),
    SD_BUS_PROPERTY("AttentionIconName", "s", p_empty, 0, 0),
    SD_BUS_PROPERTY("AttentionMovieName", "s", p_empty, 0, 0),
    SD_BUS_PROPERTY("IconPixmap", "a(iiay)", p_pixmap, 0, 0),
    SD_BUS_PROPERTY("OverlayIconPixmap", "a(iiay)", p_pixmap, 0, 0),
    SD_BUS_PROPERTY("AttentionIconPixmap", "a(iiay)", p_pixmap, 0, 0),
    SD_BUS_PROPERTY("ToolTip", "(sa(iiay)ss)", p_tooltip, 0, 0),
    SD_BUS_PROPERTY("Menu", "o", p_menu, 0, 0),
    SD_BUS_METHOD("Activate", "ii", "", m_xy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SecondaryActivate", "ii", "", m_xy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ContextMenu", "ii", "", m_xy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Scroll", "is", "", m_scroll, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("NewTitle", "", 0),
    SD_BUS_SIGNAL("NewIcon", "", 0),
    SD_BUS_SIGNAL("NewAttentionIcon", "", 0),
    SD_BUS_SIGNAL("NewOverlayIcon", "", 0),
    SD_BUS_SIGNAL("NewToolTip", "", 0),
    SD_BUS_SIGNAL("NewStatus", "s", 0),
    SD_BUS_VTABLE_END,
};

/* --- com.canonical.dbusmenu -------------------------------------------------------------------- */

static int find_entry(const struct tray_menu *m, int32_t id) {
  if (m == NULL) return -1;
  for (unsigned i = 0; i < m->count; i++)
    if (m->entries[i].id == id) return (int)i;
  return -1;
}

static int append_props(sd_bus_message *r, const struct tray_entry *e) {
  int k = sd_bus_message_open_container(r, 'a', "{sv}");
#define PROP(name, sig, ...) \
  if (k >= 0) k = sd_bus_message_append(r, "{sv}", name, sig, __VA_ARGS__)
  if (e == NULL) {
    PROP("children-display", "s", "submenu");
  } else if (e->kind == TRAY_ENTRY_SEPARATOR) {
    PROP("type", "s", "separator");
    PROP("visible", "b", (int)(e->flags & TRAY_M_VISIBLE) != 0);
  } else {
    PROP("label", "s", e->label);
    PROP("enabled", "b", (int)(e->flags & TRAY_M_ENABLED) != 0);
    PROP("visible", "b", (int)(e->flags & TRAY_M_VISIBLE) != 0);
    if (e->flags & (TRAY_M_CHECKMARK | TRAY_M_RADIO)) {
      PROP("toggle-type", "s", e->flags & TRAY_M_RADIO ? "radio" : "checkmark");
      PROP("toggle-state", "i", (int32_t)((e->flags & TRAY_M_ON) != 0));
    }
    if (e->flags & TRAY_M_SUBMENU) PROP("children-display", "s", "submenu");
  }
#undef PROP
  if (k >= 0) k = sd_bus_message_close_container(r);
  return k;
}

/* One node (ia{sv}av) and its children to `depth` more levels (-1: all); index -1 is the root. */
static int append_node(sd_bus_message *r, const struct tray_menu *m, int index, int depth) {
  const struct tray_entry *e = index < 0 ? NULL : &m->entries[index];
  int k = sd_bus_message_open_container(r, 'r', "ia{sv}av");
  if (k >= 0) k = sd_bus_message_append(r, "i", e ? e->id : 0);
  if (k >= 0) k = append_props(r, e);
  if (k >= 0) k = sd_bus_message_open_container(r, 'a', "v");
  uint16_t self = index < 0 ? TRAY_ROOT : (uint16_t)index;
  for (unsigned i = 0; m && depth != 0 && k >= 0 && i < m->count; i++) {
    if (m->entries[i].parent != self) continue;
    k = sd_bus_message_open_container(r, 'v', "(ia{sv}av)");
    if (k >= 0) k = append_node(r, m, (int)i, depth < 0 ? -1 : depth - 1);
    if (k >= 0) k = sd_bus_message_close_container(r);
  }
  if (k >= 0) k = sd_bus_message_close_container(r);
  if (k >= 0) k = sd_bus_message_close_container(r);
  return k;
}

static int m_get_layout(sd_bus_message *m, void *ud, sd_bus_error *e) {
  struct hitem *h = ud;
  int32_t parent, depth;
  int r = sd_bus_message_read(m, "ii", &parent, &depth);
  if (r < 0) return r;
  int index = parent == 0 ? -1 : find_entry(h->menu, parent);
  if (parent != 0 && index < 0) return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "no menu entry %d", parent);
  sd_bus_message *reply = NULL;
  r = sd_bus_message_new_method_return(m, &reply);
  if (r >= 0) r = sd_bus_message_append(reply, "u", h->revision);
  if (r >= 0) r = append_node(reply, h->menu, index, depth < 0 ? -1 : depth);
  if (r >= 0) r = sd_bus_send(NULL, reply, NULL);
  sd_bus_message_unref(reply);
  return r;
}

static int m_get_group_properties(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  struct hitem *h = ud;
  sd_bus_message *reply = NULL;
  int r = sd_bus_message_new_method_return(m, &reply);
  if (r >= 0) r = sd_bus_message_enter_container(m, 'a', "i");
  if (r >= 0) r = sd_bus_message_open_container(reply, 'a', "(ia{sv})");
  int32_t id;
  while (r >= 0 && (r = sd_bus_message_read(m, "i", &id)) > 0) {
    int i = find_entry(h->menu, id);
    if (i < 0 && id != 0) continue;
    r = sd_bus_message_open_container(reply, 'r', "ia{sv}");
    if (r >= 0) r = sd_bus_message_append(reply, "i", id);
    if (r >= 0) r = append_props(reply, i < 0 ? NULL : &h->menu->entries[i]);
    if (r >= 0) r = sd_bus_message_close_container(reply);
  }
  if (r >= 0) r = sd_bus_message_close_container(reply);
  if (r >= 0) r = sd_bus_send(NULL, reply, NULL);
  sd_bus_message_unref(reply);
  return r;
}

static void menu_event(struct hitem *h, int32_t id, const char *name) {
  int kind = -1;
  for (int i = 0; i < TRAY_N_EV; i++)
    if (strcmp(name, tray_event_names[i]) == 0) kind = i;
  if (kind < 0 || find_entry(h->menu, id) < 0) return; /* hovered, or an entry the guest never sent */
  struct tray_event ev = {.type = TRAY_MENU_EVENT, .item = h->guest_id, .a = id, .kind = (uint8_t)kind};
  LOG(L_DEBUG, "menu %s of entry %d of item %u", name, id, h->guest_id);
  send_event(&ev);
}

static int m_event(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  int32_t id;
  const char *name;
  int r = sd_bus_message_read(m, "is", &id, &name);
  if (r < 0) return r;
  menu_event(ud, id, name);
  return sd_bus_reply_method_return(m, "");
}

static int m_event_group(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  int r = sd_bus_message_enter_container(m, 'a', "(isvu)");
  while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "isvu")) > 0) {
    int32_t id;
    const char *name;
    r = sd_bus_message_read(m, "is", &id, &name);
    if (r >= 0) menu_event(ud, id, name);
    if (r >= 0) r = sd_bus_message_skip(m, "vu");
    if (r >= 0) r = sd_bus_message_exit_container(m);
  }
  if (r < 0) return r;
  return sd_bus_reply_method_return(m, "ai", 0);
}

static int m_about_to_show(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  int32_t id;
  int r = sd_bus_message_read(m, "i", &id);
  if (r < 0) return r;
  menu_event(ud, id, "about-to-show");
  /* The guest answers with a new MENU when its menu changes; nothing to wait for here. */
  return sd_bus_reply_method_return(m, "b", 0);
}

static int m_about_to_show_group(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  return sd_bus_reply_method_return(m, "aiai", 0, 0);
}

static int p_menu_misc(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)ud, (void)e;
  if (strcmp(prop, "Version") == 0) return sd_bus_message_append(reply, "u", (uint32_t)3);
  if (strcmp(prop, "IconThemePath") == 0) return sd_bus_message_append(reply, "as", 0);
  return sd_bus_message_append(reply, "s", strcmp(prop, "TextDirection") == 0 ? "ltr" : "normal");
}

static int m_get_property(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud;
  return sd_bus_error_setf(e, SD_BUS_ERROR_NOT_SUPPORTED, "use GetGroupProperties");
  (void)m;
}

static const sd_bus_vtable menu_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "u", p_menu_misc, 0, 0),
    SD_BUS_PROPERTY("TextDirection", "s", p_menu_misc, 0, 0),
    SD_BUS_PROPERTY("Status", "s", p_menu_misc, 0, 0),
    SD_BUS_PROPERTY("IconThemePath", "as", p_menu_misc, 0, 0),
    SD_BUS_METHOD("GetLayout", "iias", "u(ia{sv}av)", m_get_layout, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetGroupProperties", "aias", "a(ia{sv})", m_get_group_properties, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetProperty", "is", "v", m_get_property, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Event", "isvu", "", m_event, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("EventGroup", "a(isvu)", "ai", m_event_group, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("AboutToShow", "i", "b", m_about_to_show, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("AboutToShowGroup", "ai", "aiai", m_about_to_show_group, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL("ItemsPropertiesUpdated", "a(ia{sv})a(ias)", 0),
    SD_BUS_SIGNAL("LayoutUpdated", "ui", 0),
    SD_BUS_SIGNAL("ItemActivationRequested", "iu", 0),
    SD_BUS_VTABLE_END,
};

/* --- items on the session bus ------------------------------------------------------------------ */

static int registered(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  struct hitem *h = ud;
  const sd_bus_error *err = sd_bus_message_get_error(m);
  if (err) LOG(L_INFO, "item %u: no StatusNotifierWatcher took it yet (%s); registering again when one appears", h->guest_id, err->message);
  else LOG(L_DEBUG, "item %u registered with the StatusNotifierWatcher", h->guest_id);
  return 0;
}

static void register_item(struct hitem *h) {
  int r = sd_bus_call_method_async(h->bus, NULL, WATCHER, "/StatusNotifierWatcher", WATCHER, "RegisterStatusNotifierItem", registered, h, "s", ITEM_PATH);
  if (r < 0) LOG(L_WARN, "item %u: RegisterStatusNotifierItem: %s", h->guest_id, strerror(-r));
}

/* A watcher that starts after us (the desktop's panel restarted) learns of the items again. */
static int watcher_changed(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)e;
  const char *name, *old, *new;
  if (sd_bus_message_read(m, "sss", &name, &old, &new) >= 0 && !strcmp(name, WATCHER) && *new) register_item(ud);
  return 0;
}

static void remove_item(struct hitem *h) {
  if (h->bus) sd_bus_flush_close_unref(h->bus);
  free(h->menu);
  memset(h, 0, sizeof *h);
}

static void remove_all(void) {
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used) remove_item(&items[i]);
}

static struct hitem *find_item(uint32_t id) {
  for (unsigned i = 0; i < TRAY_MAX_ITEMS; i++)
    if (items[i].used && items[i].guest_id == id) return &items[i];
  return NULL;
}

static int fatal_bus(struct hitem *h, int r, const char *what) {
  msg("item %u: %s on the session bus: %s", h->guest_id, what, strerror(-r));
  remove_item(h);
  return r;
}

static int export_item(struct hitem *h) {
  int r = sd_bus_open_user(&h->bus);
  if (r < 0) return fatal_bus(h, r, "connecting");
  if ((r = sd_bus_attach_event(h->bus, event, 0)) < 0) return fatal_bus(h, r, "attaching");
  if ((r = sd_bus_add_object_vtable(h->bus, NULL, ITEM_PATH, "org.kde.StatusNotifierItem", item_vtable, h)) < 0) return fatal_bus(h, r, "exporting the item");
  if ((r = sd_bus_add_object_vtable(h->bus, NULL, MENU_PATH, "com.canonical.dbusmenu", menu_vtable, h)) < 0) return fatal_bus(h, r, "exporting the menu");
  if ((r = sd_bus_match_signal(h->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged", watcher_changed, h)) < 0)
    return fatal_bus(h, r, "watching for a StatusNotifierWatcher");
  register_item(h);
  const char *unique = "?";
  (void)sd_bus_get_unique_name(h->bus, &unique);
  LOG(L_INFO, "item %u (%s) exported as %s%s", h->guest_id, h->title, unique, ITEM_PATH);
  return 0;
}

static int on_item(const unsigned char *p, size_t n, char *why, size_t whylen) {
  static struct tray_item it;
  if (tray_parse_item(p, n, &it, why, whylen) < 0) return -1;
  struct hitem *h = find_item(it.id);
  int fresh = h == NULL;
  if (fresh) {
    for (unsigned i = 0; i < TRAY_MAX_ITEMS && !h; i++)
      if (!items[i].used) h = &items[i];
    if (h == NULL) {
      snprintf(why, whylen, "item %u: more than %u items at once", it.id, TRAY_MAX_ITEMS);
      return -1;
    }
  }
  int title_changed = fresh || strcmp(h->it.title, it.title) != 0, status_changed = fresh || h->it.status != it.status;
  h->used = 1;
  h->guest_id = it.id;
  h->it = it;
  snprintf(h->title, sizeof h->title, "[%s] %s", vm_name, it.title);
  snprintf(h->tooltip_title, sizeof h->tooltip_title, "[%s] %s", vm_name, *it.tooltip_title ? it.tooltip_title : it.title);
  snprintf(h->id, sizeof h->id, "vmsilo-%s-%u", vm_name, it.id);
  tint(h);
  if (fresh) return export_item(h) < 0 ? 0 : 0; /* a bus failure loses this item, not the others */
  if (title_changed) sd_bus_emit_signal(h->bus, ITEM_PATH, "org.kde.StatusNotifierItem", "NewTitle", "");
  if (status_changed) sd_bus_emit_signal(h->bus, ITEM_PATH, "org.kde.StatusNotifierItem", "NewStatus", "s", tray_status_names[it.status]);
  sd_bus_emit_signal(h->bus, ITEM_PATH, "org.kde.StatusNotifierItem", "NewIcon", "");
  sd_bus_emit_signal(h->bus, ITEM_PATH, "org.kde.StatusNotifierItem", "NewToolTip", "");
  return 0;
}

static int on_menu(const unsigned char *p, size_t n, char *why, size_t whylen) {
  static struct tray_menu m;
  if (tray_parse_menu(p, n, &m, why, whylen) < 0) return -1;
  struct hitem *h = find_item(m.item);
  if (h == NULL) {
    snprintf(why, whylen, "menu of item %u, which the guest has not sent", m.item);
    return -1;
  }
  if (h->menu == NULL) h->menu = xmalloc(sizeof *h->menu);
  *h->menu = m;
  h->revision++;
  sd_bus_emit_signal(h->bus, MENU_PATH, "com.canonical.dbusmenu", "LayoutUpdated", "ui", h->revision, (int32_t)0);
  return 0;
}

static int on_frame(unsigned type, const unsigned char *p, size_t n, void *ctx, char *why, size_t whylen) {
  (void)ctx;
  if (type == TRAY_ITEM) return on_item(p, n, why, whylen);
  if (type == TRAY_MENU) return on_menu(p, n, why, whylen);
  uint32_t id;
  if (tray_parse_remove(p, n, &id, why, whylen) < 0) return -1;
  struct hitem *h = find_item(id);
  if (h == NULL) {
    snprintf(why, whylen, "remove of item %u, which the guest has not sent", id);
    return -1;
  }
  LOG(L_INFO, "item %u removed", id);
  remove_item(h);
  return 0;
}

/* --- the guest connection ---------------------------------------------------------------------- */

static void schedule_connect(void);

static void drop_connection(void) {
  sd_event_source_unref(conn_source);
  conn_source = NULL;
  tray_conn_close(&conn);
  remove_all();
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *ud) {
  (void)s, (void)fd, (void)ud;
  char why[600];
  int r = 0;
  if (revents & EPOLLOUT) r = tray_conn_flush(&conn, why, sizeof why);
  if (r == 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) r = tray_conn_read(&conn, on_frame, NULL, why, sizeof why);
  if (r < 0) {
    msg("refused what the guest sent, removing the VM's items: %s", why);
    drop_connection();
    sd_event_exit(event, STATUS_PROTOCOL);
    return 0;
  }
  if (r == 1) {
    LOG(L_INFO, "the guest's tray daemon closed the connection; its items are removed, reconnecting");
    drop_connection();
    retry_ms = RETRY_FIRST_MS;
    schedule_connect();
    return 0;
  }
  sd_event_source_set_io_events(conn_source, EPOLLIN | (conn.out.len ? EPOLLOUT : 0));
  return 0;
}

static int try_connect(char *why, size_t whylen) {
  int fd = socket(transport == T_VSOCK ? AF_VSOCK : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return -1;
  }
  int r;
  if (transport == T_VSOCK) {
    /* From a privileged source port, which the guest daemon requires. */
    if (vsock_bind_privileged(fd, "vmsilo-tray-host", why, whylen) < 0) {
      close(fd);
      return -1;
    }
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)cid, .svm_port = (unsigned)port};
    r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  } else {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, unix_path, strlen(unix_path) + 1);
    r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  }
  if (r < 0) {
    snprintf(why, whylen, "connect: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static int session_gone(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)m, (void)ud, (void)e;
  LOG(L_INFO, "the session bus closed; the VM's items are removed until it is back");
  drop_connection();
  session = sd_bus_flush_close_unref(session);
  retry_ms = RETRY_FIRST_MS;
  schedule_connect();
  return 0;
}

static int open_session(char *why, size_t whylen) {
  int r = sd_bus_open_user(&session);
  if (r >= 0) r = sd_bus_attach_event(session, event, 0);
  if (r >= 0) r = sd_bus_match_signal(session, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local", "Disconnected", session_gone, NULL);
  if (r < 0) {
    const char *addr = getenv("DBUS_SESSION_BUS_ADDRESS");
    snprintf(why, whylen, "the user's session bus (%s): %s", addr ? addr : "$XDG_RUNTIME_DIR/bus", strerror(-r));
    session = sd_bus_flush_close_unref(session);
    return -1;
  }
  return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud) {
  (void)s, (void)usec, (void)ud;
  char why[400];
  int fd = session || open_session(why, sizeof why) == 0 ? try_connect(why, sizeof why) : -1;
  if (fd < 0) {
    if (waiting_logged++) LOG(L_DEBUG, "%s", why);
    else if (session) LOG(L_INFO, "waiting for the guest's tray daemon at %s (%s)", target, why);
    else LOG(L_INFO, "waiting for %s", why);
    retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
    schedule_connect();
    return 0;
  }
  waiting_logged = 0;
  LOG(L_INFO, "connected to the guest's tray daemon at %s", target);
  tray_conn_open(&conn, fd, 1);
  int r = sd_event_add_io(event, &conn_source, fd, EPOLLIN | EPOLLOUT, on_conn, NULL);
  if (r < 0) {
    msg("watching the connection: %s", strerror(-r));
    sd_event_exit(event, STATUS_PROTOCOL);
  }
  return 0;
}

static void schedule_connect(void) {
  uint64_t now;
  sd_event_now(event, CLOCK_MONOTONIC, &now);
  sd_event_source_unref(retry_source);
  retry_source = NULL;
  int r = sd_event_add_time(event, &retry_source, CLOCK_MONOTONIC, now + (uint64_t)retry_ms * 1000, 10000, on_retry, NULL);
  if (r < 0) {
    msg("timer: %s", strerror(-r));
    sd_event_exit(event, STATUS_PROTOCOL);
  }
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  const char *color_arg = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (v == NULL) {
      usage(stderr);
      return STATUS_USAGE;
    }
    i++;
    if (strcmp(a, "--vm-name") == 0) vm_name = v;
    else if (strcmp(a, "--color") == 0) color_arg = v;
    else if (strcmp(a, "--log-level") == 0) {
      const char *levels[] = {"error", "warn", "info", "debug"};
      log_level = -1;
      for (int l = 0; l < 4; l++)
        if (strcmp(v, levels[l]) == 0) log_level = l;
      if (log_level < 0) {
        msg("--log-level: expected error, warn, info or debug, got \"%s\"", v);
        return STATUS_USAGE;
      }
    } else if (strcmp(a, "--vsock") == 0) {
      char *colon = strchr(v, ':');
      if (colon == NULL) {
        usage(stderr);
        return STATUS_USAGE;
      }
      *colon = '\0';
      if (parse_ulong(v, 0xffffffffUL, &cid) < 0 || parse_ulong(colon + 1, 0xffffffffUL, &port) < 0) {
        msg("--vsock: expected CID:PORT");
        return STATUS_USAGE;
      }
      transport = T_VSOCK;
      snprintf(target, sizeof target, "vsock CID %lu port %lu", cid, port);
    } else if (strcmp(a, "--unix") == 0) {
      if (strlen(v) >= sizeof((struct sockaddr_un *)0)->sun_path) {
        msg("--unix: path too long");
        return STATUS_USAGE;
      }
      snprintf(unix_path, sizeof unix_path, "%s", v);
      transport = T_UNIX;
      snprintf(target, sizeof target, "unix socket %s", v);
    } else {
      usage(stderr);
      return STATUS_USAGE;
    }
  }
  if (vm_name == NULL || color_arg == NULL || transport == T_NONE) {
    usage(stderr);
    return STATUS_USAGE;
  }
  if (parse_color(color_arg) < 0) {
    msg("--color: expected #RRGGBB, got \"%s\"", color_arg);
    return STATUS_USAGE;
  }
  int r = sd_event_default(&event);
  if (r < 0) {
    msg("sd_event: %s", strerror(-r));
    return STATUS_PROTOCOL;
  }
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  sigprocmask(SIG_BLOCK, &ss, NULL);
  sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
  sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
  signal(SIGPIPE, SIG_IGN);
  retry_ms = 0;
  schedule_connect();
  retry_ms = RETRY_FIRST_MS;
  r = sd_event_loop(event);
  if (conn.fd >= 0) drop_connection();
  remove_all();
  return r < 0 ? STATUS_PROTOCOL : r;
}
