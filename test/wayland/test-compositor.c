/*
 * A Wayland compositor for tests, not shipped: it has no outputs and draws nothing, but implements
 * wp_security_context_manager_v1 as the protocol says and reports, one line per event on stdout,
 * what a test needs to see:
 *
 *   listening PATH                       its own socket is ready
 *   client PID unconfined                a client connected on its own socket
 *   context ENGINE APP-ID INSTANCE-ID    a security context was committed
 *   client PID confined ENGINE APP-ID INSTANCE-ID   a client came in through a context's socket
 *   context-closed APP-ID                the context's close_fd hung up; its socket is no longer served
 *
 *   vmsilo-test-compositor --socket PATH [--no-security-context]
 *
 * --no-security-context leaves the global out, as a compositor without the protocol does. Clients
 * inside a context do not see the manager (nesting is forbidden); a second commit, a metadata field
 * set twice or a listen_fd that is not a listening socket get the protocol's errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <wayland-server.h>

#include "security-context-v1-server-protocol.h"

struct context {
  char *engine, *app_id, *instance_id;
  int listen_fd, close_fd;
  int committed;
  struct wl_event_source *listen_source, *close_source;
  struct wl_list link; /* contexts: committed ones, alive until close_fd hangs up */
};

/* A client and the context it came through (NULL: the compositor's own socket). */
struct client_info {
  struct wl_client *client;
  struct context *context;
  struct wl_listener destroy;
};

static struct wl_display *display;
static struct wl_list contexts;
static struct context *connecting; /* set while a context's client is created */

static const char *or_none(const char *s) { return s ? s : "-"; }

static struct context *context_of(const struct wl_client *client);

static void client_destroyed(struct wl_listener *l, void *data) {
  (void)data;
  struct client_info *info = wl_container_of(l, info, destroy);
  wl_list_remove(&info->destroy.link);
  free(info);
}

static void client_created(struct wl_listener *l, void *data) {
  (void)l;
  struct wl_client *client = data;
  struct client_info *info = calloc(1, sizeof *info);
  info->client = client;
  info->context = connecting;
  info->destroy.notify = client_destroyed;
  wl_client_add_destroy_listener(client, &info->destroy);
  pid_t pid;
  wl_client_get_credentials(client, &pid, NULL, NULL);
  if (connecting)
    printf("client %d confined %s %s %s\n", (int)pid, or_none(connecting->engine), or_none(connecting->app_id), or_none(connecting->instance_id));
  else
    printf("client %d unconfined\n", (int)pid);
  fflush(stdout);
}

static struct context *context_of(const struct wl_client *client) {
  struct wl_listener *l = wl_client_get_destroy_listener((struct wl_client *)client, client_destroyed);
  if (l == NULL) return NULL;
  struct client_info *info = wl_container_of(l, info, destroy);
  return info->context;
}

static void context_free(struct context *c) {
  if (c->listen_source) wl_event_source_remove(c->listen_source);
  if (c->close_source) wl_event_source_remove(c->close_source);
  if (c->listen_fd >= 0) close(c->listen_fd);
  if (c->close_fd >= 0) close(c->close_fd);
  free(c->engine), free(c->app_id), free(c->instance_id);
  free(c);
}

static int on_listen(int fd, uint32_t mask, void *data) {
  (void)mask;
  struct context *c = data;
  int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  if (cfd < 0) return 0;
  connecting = c;
  if (wl_client_create(display, cfd) == NULL) close(cfd);
  connecting = NULL;
  return 0;
}

static int on_close(int fd, uint32_t mask, void *data) {
  (void)fd, (void)mask;
  struct context *c = data;
  printf("context-closed %s\n", or_none(c->app_id));
  fflush(stdout);
  wl_list_remove(&c->link);
  context_free(c);
  return 0;
}

static void set_field(struct wl_resource *r, char **field, const char *value) {
  struct context *c = wl_resource_get_user_data(r);
  if (c->committed) {
    wl_resource_post_error(r, WP_SECURITY_CONTEXT_V1_ERROR_ALREADY_USED, "already committed");
    return;
  }
  if (*field) {
    wl_resource_post_error(r, WP_SECURITY_CONTEXT_V1_ERROR_ALREADY_SET, "already set");
    return;
  }
  *field = strdup(value);
}

static void ctx_destroy(struct wl_client *client, struct wl_resource *r) {
  (void)client;
  wl_resource_destroy(r);
}
static void ctx_engine(struct wl_client *cl, struct wl_resource *r, const char *v) {
  (void)cl;
  set_field(r, &((struct context *)wl_resource_get_user_data(r))->engine, v);
}
static void ctx_app_id(struct wl_client *cl, struct wl_resource *r, const char *v) {
  (void)cl;
  set_field(r, &((struct context *)wl_resource_get_user_data(r))->app_id, v);
}
static void ctx_instance_id(struct wl_client *cl, struct wl_resource *r, const char *v) {
  (void)cl;
  set_field(r, &((struct context *)wl_resource_get_user_data(r))->instance_id, v);
}
static void ctx_commit(struct wl_client *client, struct wl_resource *r) {
  (void)client;
  struct context *c = wl_resource_get_user_data(r);
  if (c->committed) {
    wl_resource_post_error(r, WP_SECURITY_CONTEXT_V1_ERROR_ALREADY_USED, "already committed");
    return;
  }
  c->committed = 1;
  struct wl_event_loop *loop = wl_display_get_event_loop(display);
  c->listen_source = wl_event_loop_add_fd(loop, c->listen_fd, WL_EVENT_READABLE, on_listen, c);
  c->close_source = wl_event_loop_add_fd(loop, c->close_fd, 0, on_close, c);
  wl_list_insert(&contexts, &c->link);
  printf("context %s %s %s\n", or_none(c->engine), or_none(c->app_id), or_none(c->instance_id));
  fflush(stdout);
}

static const struct wp_security_context_v1_interface ctx_impl = {ctx_destroy, ctx_engine, ctx_app_id, ctx_instance_id, ctx_commit};

/* The resource goes; a committed context stays until its close_fd hangs up. */
static void ctx_resource_destroyed(struct wl_resource *r) {
  struct context *c = wl_resource_get_user_data(r);
  if (!c->committed) context_free(c);
}

static void mgr_destroy(struct wl_client *client, struct wl_resource *r) {
  (void)client;
  wl_resource_destroy(r);
}

static void mgr_create_listener(struct wl_client *client, struct wl_resource *r, uint32_t id, int32_t listen_fd, int32_t close_fd) {
  int accepting = 0;
  socklen_t n = sizeof accepting;
  if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &n) < 0 || !accepting) {
    close(listen_fd), close(close_fd);
    wl_resource_post_error(r, WP_SECURITY_CONTEXT_MANAGER_V1_ERROR_INVALID_LISTEN_FD, "listen_fd is not a listening socket");
    return;
  }
  if (context_of(client)) {
    close(listen_fd), close(close_fd);
    wl_resource_post_error(r, WP_SECURITY_CONTEXT_MANAGER_V1_ERROR_NESTED, "nested security contexts are forbidden");
    return;
  }
  struct context *c = calloc(1, sizeof *c);
  c->listen_fd = listen_fd;
  c->close_fd = close_fd;
  wl_list_init(&c->link);
  struct wl_resource *cr = wl_resource_create(client, &wp_security_context_v1_interface, 1, id);
  wl_resource_set_implementation(cr, &ctx_impl, c, ctx_resource_destroyed);
}

static const struct wp_security_context_manager_v1_interface mgr_impl = {mgr_destroy, mgr_create_listener};

static void bind_manager(struct wl_client *client, void *data, uint32_t version, uint32_t id) {
  (void)data;
  struct wl_resource *r = wl_resource_create(client, &wp_security_context_manager_v1_interface, (int)version, id);
  wl_resource_set_implementation(r, &mgr_impl, NULL, NULL);
}

/* What a sandboxed client must not see: the manager itself. */
static bool filter(const struct wl_client *client, const struct wl_global *global, void *data) {
  (void)data;
  return !(context_of(client) && wl_global_get_interface(global) == &wp_security_context_manager_v1_interface);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int with_protocol = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
      path = argv[++i];
    else if (strcmp(argv[i], "--no-security-context") == 0)
      with_protocol = 0;
    else
      path = NULL, i = argc;
  }
  if (path == NULL) {
    fprintf(stderr, "usage: vmsilo-test-compositor --socket PATH [--no-security-context]\n");
    return 2;
  }
  wl_list_init(&contexts);
  display = wl_display_create();
  struct wl_listener created = {.notify = client_created};
  wl_display_add_client_created_listener(display, &created);
  wl_display_set_global_filter(display, filter, NULL);
  if (with_protocol) wl_global_create(display, &wp_security_context_manager_v1_interface, 1, NULL, bind_manager);
  /* A global every client sees, so a test can tell the filter from an empty registry. */
  wl_display_init_shm(display);

  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return 2;
  strcpy(sa.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0 || wl_display_add_socket_fd(display, fd) < 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("listening %s\n", path);
  fflush(stdout);
  wl_display_run(display);
  return 0;
}
