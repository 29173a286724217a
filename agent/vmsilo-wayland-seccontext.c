/*
 * vmsilo-wayland-seccontext --socket-path PATH --app-id ID --instance-id ID [--wayland-socket SOCKET]
 *
 * Gives one VM's GPU backend its own door into the host's Wayland compositor: it connects to the
 * compositor (SOCKET, else $WAYLAND_DISPLAY, a name under $XDG_RUNTIME_DIR or an absolute path),
 * creates a listening socket at PATH (mode 0600: only the GPU backend, which runs as the same user,
 * connects), and hands it to the compositor as a wp_security_context_v1 listener with the sandbox
 * engine "vmsilo", the app id and the instance id given. Every client that connects through PATH is
 * then inside that context: the compositor knows which VM its windows come from (and may colour
 * them), and withholds what sandboxed clients must not have (among them, a nested context).
 *
 * The context lives as long as this program: the compositor stops listening on PATH when the
 * close_fd pipe it was given hangs up, which is when this process exits. It tells systemd it is
 * ready (READY=1 on $NOTIFY_SOCKET, for Type=notify) once the compositor has processed the commit.
 * SIGTERM and SIGINT end it with status 0 and PATH removed; losing the compositor ends it with 1.
 *
 * Exit status: 0 when stopped, 1 on a failure (the compositor went away or refused the context),
 * 2 on a usage error, 3 when the compositor does not implement the security-context protocol.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <wayland-client.h>

#include "common.h"
#include "security-context-v1-client-protocol.h"

#define SANDBOX_ENGINE "vmsilo"
/* Metadata is opaque to the protocol; this bounds what a unit file can hand us. */
#define MAX_ID 255
#define EXIT_NO_PROTOCOL 3

static void usage(FILE *f) {
  fprintf(f, "usage: %s --socket-path PATH --app-id ID --instance-id ID [--wayland-socket SOCKET]\n", prog);
}

static int bad_usage(const char *why, const char *what) {
  msg("%s%s", why, what);
  usage(stderr);
  return 2;
}

/* Printable ASCII without spaces, 1..MAX_ID bytes: what a compositor can show and log as is. */
static int valid_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_ID) return 0;
  for (; *s; s++)
    if (*s <= ' ' || *s > '~') return 0;
  return 1;
}

static struct wp_security_context_manager_v1 *manager;

static void global(void *data, struct wl_registry *registry, uint32_t name, const char *interface, uint32_t version) {
  (void)data, (void)version;
  if (strcmp(interface, wp_security_context_manager_v1_interface.name) == 0 && manager == NULL)
    manager = wl_registry_bind(registry, name, &wp_security_context_manager_v1_interface, 1);
}

static void global_remove(void *data, struct wl_registry *registry, uint32_t name) {
  (void)data, (void)registry, (void)name;
}

static const struct wl_registry_listener registry_listener = {global, global_remove};

/* A protocol error the compositor raised, or why the connection failed. */
static void connection_error(struct wl_display *d, const char *when) {
  int err = wl_display_get_error(d);
  const struct wl_interface *iface = NULL;
  uint32_t id = 0;
  if (err == EPROTO) {
    uint32_t code = wl_display_get_protocol_error(d, &iface, &id);
    msg("%s: the compositor raised protocol error %u on %s@%u", when, code, iface ? iface->name : "?", id);
  } else {
    msg("%s: the connection to the compositor failed: %s", when, strerror(err));
  }
}

/* sd_notify(3)'s datagram, without libsystemd: nothing to do when not started by systemd. */
static int notify_ready(void) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || *path == '\0') return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path) {
    msg("NOTIFY_SOCKET is not a unix socket address: %s", path);
    return -1;
  }
  memcpy(sa.sun_path, path, n);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  static const char ready[] = "READY=1\nSTATUS=Security context created\n";
  ssize_t w = fd < 0 ? -1 : sendto(fd, ready, sizeof ready - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
  int saved = errno;
  if (fd >= 0) close(fd);
  if (w < 0) {
    msg("cannot notify systemd at %s: %s", path, strerror(saved));
    return -1;
  }
  unsetenv("NOTIFY_SOCKET");
  return 0;
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  set_prog(argv[0]);
  const char *socket_path = NULL, *app_id = NULL, *instance_id = NULL, *wayland = NULL;
  for (int i = 1; i < argc; i++) {
    const char **slot = strcmp(argv[i], "--socket-path") == 0  ? &socket_path
                        : strcmp(argv[i], "--app-id") == 0     ? &app_id
                        : strcmp(argv[i], "--instance-id") == 0 ? &instance_id
                        : strcmp(argv[i], "--wayland-socket") == 0 ? &wayland
                                                                   : NULL;
    if (strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (slot == NULL) return bad_usage("unknown argument: ", argv[i]);
    if (i + 1 == argc) return bad_usage("missing value of ", argv[i]);
    if (*slot != NULL) return bad_usage("given twice: ", argv[i]);
    *slot = argv[++i];
  }
  if (socket_path == NULL || app_id == NULL || instance_id == NULL) return bad_usage("--socket-path, --app-id and --instance-id are required", "");
  if (socket_path[0] != '/') return bad_usage("--socket-path must be absolute: ", socket_path);
  if (!valid_id(app_id)) return bad_usage("--app-id must be 1-255 printable ASCII characters without spaces: ", app_id);
  if (!valid_id(instance_id)) return bad_usage("--instance-id must be 1-255 printable ASCII characters without spaces: ", instance_id);
  if (wayland != NULL && *wayland == '\0') return bad_usage("--wayland-socket is empty", "");

  struct wl_display *display = wl_display_connect(wayland);
  if (display == NULL) {
    const char *name = wayland ? wayland : getenv("WAYLAND_DISPLAY") ? getenv("WAYLAND_DISPLAY") : "wayland-0";
    msg("cannot connect to the Wayland compositor at %s (XDG_RUNTIME_DIR=%s): %s", name, getenv("XDG_RUNTIME_DIR") ? getenv("XDG_RUNTIME_DIR") : "unset", strerror(errno));
    return 1;
  }
  struct wl_registry *registry = wl_display_get_registry(display);
  wl_registry_add_listener(registry, &registry_listener, NULL);
  if (wl_display_roundtrip(display) < 0) {
    connection_error(display, "listing the compositor's globals");
    return 1;
  }
  if (manager == NULL) {
    msg("the compositor does not implement the Wayland security-context protocol (no %s global); it cannot tell this VM's windows from the host's, so the VM gets no display. Use a compositor whose globals (wayland-info) include it", wp_security_context_manager_v1_interface.name);
    return EXIT_NO_PROTOCOL;
  }

  int lfd = unix_listen(socket_path);
  if (lfd < 0) return 1;
  if (chmod(socket_path, 0600) < 0) {
    msg("cannot chmod %s: %s", socket_path, strerror(errno));
    unlink(socket_path);
    return 1;
  }
  /* The compositor stops listening when the write end, held until exit, closes. */
  int close_pipe[2];
  if (pipe2(close_pipe, O_CLOEXEC) < 0) {
    msg("pipe: %s", strerror(errno));
    unlink(socket_path);
    return 1;
  }
  struct wp_security_context_v1 *context = wp_security_context_manager_v1_create_listener(manager, lfd, close_pipe[0]);
  wp_security_context_v1_set_sandbox_engine(context, SANDBOX_ENGINE);
  wp_security_context_v1_set_app_id(context, app_id);
  wp_security_context_v1_set_instance_id(context, instance_id);
  wp_security_context_v1_commit(context);
  /* The compositor has its own copies of both now. */
  if (wl_display_roundtrip(display) < 0) {
    connection_error(display, "creating the security context");
    unlink(socket_path);
    return 1;
  }
  close(lfd);
  close(close_pipe[0]);
  wp_security_context_v1_destroy(context);
  wp_security_context_manager_v1_destroy(manager);
  wl_registry_destroy(registry);
  if (wl_display_flush(display) < 0) {
    connection_error(display, "creating the security context");
    unlink(socket_path);
    return 1;
  }
  msg("security context created: sandbox engine %s, app id %s, instance id %s, listening on %s", SANDBOX_ENGINE, app_id, instance_id, socket_path);

  sigset_t block, unblocked;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &unblocked);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (notify_ready() < 0) {
    unlink(socket_path);
    return 1;
  }

  /* Resident: watch the connection so that a compositor that goes away ends the context visibly. */
  int status = 0;
  struct pollfd p = {.fd = wl_display_get_fd(display), .events = POLLIN};
  while (!stop) {
    int r = ppoll(&p, 1, NULL, &unblocked);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      msg("poll: %s", strerror(errno));
      status = 1;
      break;
    }
    if (wl_display_dispatch(display) < 0) {
      connection_error(display, "the security context ended");
      status = 1;
      break;
    }
  }
  unlink(socket_path);
  close(close_pipe[1]);
  wl_display_disconnect(display);
  if (status == 0) msg("stopped; the security context is gone");
  return status;
}
