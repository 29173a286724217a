/*
 * A Wayland client for tests, not shipped: connects where libwayland-client would ($WAYLAND_DISPLAY
 * under $XDG_RUNTIME_DIR, or an absolute path), prints "pid PID" and then each global it is offered,
 * one "global INTERFACE" line each, and exits 0; 1 when it cannot connect.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wayland-client.h>

static void global(void *data, struct wl_registry *registry, uint32_t name, const char *interface, uint32_t version) {
  (void)data, (void)registry, (void)name, (void)version;
  printf("global %s\n", interface);
}

static void global_remove(void *data, struct wl_registry *registry, uint32_t name) {
  (void)data, (void)registry, (void)name;
}

static const struct wl_registry_listener listener = {global, global_remove};

int main(void) {
  struct wl_display *d = wl_display_connect(NULL);
  if (d == NULL) {
    perror("wl_display_connect");
    return 1;
  }
  printf("pid %d\n", (int)getpid());
  struct wl_registry *r = wl_display_get_registry(d);
  wl_registry_add_listener(r, &listener, NULL);
  if (wl_display_roundtrip(d) < 0) return 1;
  wl_display_disconnect(d);
  return 0;
}
