/*
 * vmsilo-test-sni: a StatusNotifierItem for the tray tests (test/tray/), on the session bus of
 * DBUS_SESSION_BUS_ADDRESS, registered with org.kde.StatusNotifierWatcher (retried until one is there).
 *
 *   vmsilo-test-sni --events FILE [--title T] [--icon W:H:AARRGGBB] [--icon-name N] [--icon-theme-path P]
 *
 * Its menu (com.canonical.dbusmenu at /Menu): 1 "Open", 2 separator, 3 "More" with 4 "Deeper"
 * (a checkmark, on). Every call it gets is appended to FILE as one line ("Activate 10 20",
 * "Scroll 3 vertical", "Event 1 clicked", "AboutToShow 3"). SIGUSR1 appends " again" to the title
 * and emits NewTitle; SIGUSR2 exits (the item disappears with its connection).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static const char *events_path, *icon_name = "", *theme_path = "";
static char title[1024] = "test item";
static int icon_w, icon_h;
static unsigned char *icon;
static sd_bus *bus;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  FILE *f = fopen(events_path, "a");
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fclose(f);
}

static int m_xy(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  int32_t x, y;
  if (sd_bus_message_read(m, "ii", &x, &y) >= 0) note("%s %d %d", sd_bus_message_get_member(m), x, y);
  return sd_bus_reply_method_return(m, "");
}

static int m_scroll(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  int32_t d;
  const char *o;
  if (sd_bus_message_read(m, "is", &d, &o) >= 0) note("Scroll %d %s", d, o);
  return sd_bus_reply_method_return(m, "");
}

static int p_item(sd_bus *b, const char *path, const char *iface, const char *prop, sd_bus_message *r, void *ud, sd_bus_error *e) {
  (void)b, (void)path, (void)iface, (void)ud, (void)e;
  if (!strcmp(prop, "Title")) return sd_bus_message_append(r, "s", title);
  if (!strcmp(prop, "Status")) return sd_bus_message_append(r, "s", "NeedsAttention");
  if (!strcmp(prop, "Category")) return sd_bus_message_append(r, "s", "Communications");
  if (!strcmp(prop, "Id")) return sd_bus_message_append(r, "s", "test");
  if (!strcmp(prop, "IconName")) return sd_bus_message_append(r, "s", icon_name);
  if (!strcmp(prop, "IconThemePath")) return sd_bus_message_append(r, "s", theme_path);
  if (!strcmp(prop, "Menu")) return sd_bus_message_append(r, "o", "/Menu");
  if (!strcmp(prop, "ToolTip")) return sd_bus_message_append(r, "(sa(iiay)ss)", icon_name, 0, "tip title", "tip\ntext");
  /* IconPixmap */
  int k = sd_bus_message_open_container(r, 'a', "(iiay)");
  if (icon && k >= 0) {
    k = sd_bus_message_open_container(r, 'r', "iiay");
    if (k >= 0) k = sd_bus_message_append(r, "ii", icon_w, icon_h);
    if (k >= 0) k = sd_bus_message_append_array(r, 'y', icon, (size_t)icon_w * icon_h * 4);
    if (k >= 0) k = sd_bus_message_close_container(r);
  }
  if (k >= 0) k = sd_bus_message_close_container(r);
  return k;
}

static const sd_bus_vtable item_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Title", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("Status", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("Category", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("Id", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("IconName", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("IconThemePath", "s", p_item, 0, 0),
    SD_BUS_PROPERTY("IconPixmap", "a(iiay)", p_item, 0, 0),
    SD_BUS_PROPERTY("ToolTip", "(sa(iiay)ss)", p_item, 0, 0),
    SD_BUS_PROPERTY("Menu", "o", p_item, 0, 0),
    SD_BUS_METHOD("Activate", "ii", "", m_xy, 0),
    SD_BUS_METHOD("SecondaryActivate", "ii", "", m_xy, 0),
    SD_BUS_METHOD("ContextMenu", "ii", "", m_xy, 0),
    SD_BUS_METHOD("Scroll", "is", "", m_scroll, 0),
    SD_BUS_SIGNAL("NewTitle", "", 0),
    SD_BUS_VTABLE_END,
};

static int node(sd_bus_message *r, int32_t id, const char *label, int sep, int children, int check) {
  int k = sd_bus_message_open_container(r, 'r', "ia{sv}av");
  if (k >= 0) k = sd_bus_message_append(r, "i", id);
  if (k >= 0) k = sd_bus_message_open_container(r, 'a', "{sv}");
  if (k >= 0 && label) k = sd_bus_message_append(r, "{sv}", "label", "s", label);
  if (k >= 0 && sep) k = sd_bus_message_append(r, "{sv}", "type", "s", "separator");
  if (k >= 0 && children) k = sd_bus_message_append(r, "{sv}", "children-display", "s", "submenu");
  if (k >= 0 && check) k = sd_bus_message_append(r, "{sv}{sv}", "toggle-type", "s", "checkmark", "toggle-state", "i", 1);
  if (k >= 0) k = sd_bus_message_close_container(r);
  return k;
}

static int m_layout(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  sd_bus_message *r = NULL;
  int k = sd_bus_message_new_method_return(m, &r);
  if (k >= 0) k = sd_bus_message_append(r, "u", 1);
  if (k >= 0) k = node(r, 0, NULL, 0, 1, 0);
  if (k >= 0) k = sd_bus_message_open_container(r, 'a', "v");
  const struct { int32_t id; const char *label; int sep; } top[] = {{1, "Open", 0}, {2, NULL, 1}};
  for (unsigned i = 0; k >= 0 && i < 2; i++) {
    k = sd_bus_message_open_container(r, 'v', "(ia{sv}av)");
    if (k >= 0) k = node(r, top[i].id, top[i].label, top[i].sep, 0, 0);
    if (k >= 0) k = sd_bus_message_append(r, "av", 0);
    if (k >= 0) k = sd_bus_message_close_container(r);
    if (k >= 0) k = sd_bus_message_close_container(r);
  }
  if (k >= 0) k = sd_bus_message_open_container(r, 'v', "(ia{sv}av)");
  if (k >= 0) k = node(r, 3, "More", 0, 1, 0);
  if (k >= 0) k = sd_bus_message_open_container(r, 'a', "v");
  if (k >= 0) k = sd_bus_message_open_container(r, 'v', "(ia{sv}av)");
  if (k >= 0) k = node(r, 4, "Deeper", 0, 0, 1);
  if (k >= 0) k = sd_bus_message_append(r, "av", 0);
  for (int i = 0; k >= 0 && i < 5; i++) k = sd_bus_message_close_container(r);
  if (k >= 0) k = sd_bus_message_close_container(r); /* root's av */
  if (k >= 0) k = sd_bus_message_close_container(r); /* root */
  if (k >= 0) k = sd_bus_send(NULL, r, NULL);
  sd_bus_message_unref(r);
  return k;
}

static int m_event(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  int32_t id;
  const char *name;
  if (sd_bus_message_read(m, "is", &id, &name) >= 0) note("Event %d %s", id, name);
  return sd_bus_reply_method_return(m, "");
}

static int m_about(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  int32_t id;
  if (sd_bus_message_read(m, "i", &id) >= 0) note("AboutToShow %d", id);
  return sd_bus_reply_method_return(m, "b", 0);
}

static const sd_bus_vtable menu_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("GetLayout", "iias", "u(ia{sv}av)", m_layout, 0),
    SD_BUS_METHOD("Event", "isvu", "", m_event, 0),
    SD_BUS_METHOD("AboutToShow", "i", "b", m_about, 0),
    SD_BUS_VTABLE_END,
};

static int on_registered(sd_bus_message *m, void *ud, sd_bus_error *e);
static sd_event_source *retry;
static int try_register(sd_event_source *s, uint64_t usec, void *ud) {
  (void)s, (void)usec, (void)ud;
  sd_bus_call_method_async(bus, NULL, "org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher", "RegisterStatusNotifierItem", on_registered, NULL, "s", "/StatusNotifierItem");
  return 0;
}
static int on_registered(sd_bus_message *m, void *ud, sd_bus_error *e) {
  (void)ud, (void)e;
  if (sd_bus_message_is_method_error(m, NULL)) {
    uint64_t now;
    sd_event_now(sd_bus_get_event(bus), CLOCK_MONOTONIC, &now);
    sd_event_source_unref(retry);
    sd_event_add_time(sd_bus_get_event(bus), &retry, CLOCK_MONOTONIC, now + 50000, 1000, try_register, NULL);
    return 0;
  }
  note("registered");
  return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *ud) {
  (void)s, (void)si, (void)ud;
  strncat(title, " again", sizeof title - strlen(title) - 1);
  sd_bus_emit_signal(bus, "/StatusNotifierItem", "org.kde.StatusNotifierItem", "NewTitle", "");
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--events")) events_path = v;
    else if (!strcmp(a, "--title")) snprintf(title, sizeof title, "%s", v);
    else if (!strcmp(a, "--icon-name")) icon_name = v;
    else if (!strcmp(a, "--icon-theme-path")) theme_path = v;
    else if (!strcmp(a, "--icon")) {
      unsigned long argb;
      if (sscanf(v, "%d:%d:%lx", &icon_w, &icon_h, &argb) != 3 || icon_w <= 0 || icon_h <= 0 || icon_w > 4096 || icon_h > 4096) return 2;
      icon = malloc((size_t)icon_w * icon_h * 4);
      for (long p = 0; p < (long)icon_w * icon_h; p++)
        for (int b = 0; b < 4; b++) icon[4 * p + b] = (unsigned char)(argb >> (24 - 8 * b));
    } else return 2;
  }
  if (!events_path) return 2;
  sd_event *ev;
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGUSR1);
  sigaddset(&ss, SIGUSR2);
  sigaddset(&ss, SIGTERM);
  sigprocmask(SIG_BLOCK, &ss, NULL);
  if (sd_event_default(&ev) < 0 || sd_bus_open_user(&bus) < 0 || sd_bus_attach_event(bus, ev, 0) < 0) return 1;
  sd_event_add_signal(ev, NULL, SIGUSR1, on_usr1, NULL);
  sd_event_add_signal(ev, NULL, SIGUSR2, NULL, NULL);
  sd_event_add_signal(ev, NULL, SIGTERM, NULL, NULL);
  if (sd_bus_add_object_vtable(bus, NULL, "/StatusNotifierItem", "org.kde.StatusNotifierItem", item_vtable, NULL) < 0 ||
      sd_bus_add_object_vtable(bus, NULL, "/Menu", "com.canonical.dbusmenu", menu_vtable, NULL) < 0)
    return 1;
  try_register(NULL, 0, NULL);
  return sd_event_loop(ev) < 0;
}
