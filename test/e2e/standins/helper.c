/*
 * Stand-ins for the helper programs of a VM that cannot run here, linked statically: the GPU and
 * sound units run them with an empty root (TemporaryFileSystem=/) or without W+X memory, where no
 * interpreter runs. (The Wayland security-context helper is the real one: test/wayland/.) One binary, chosen by the name it is called by:
 *
 *   crosvm [--log-level=L] [--no-syslog] device gpu --socket-path P --wayland-sock W --params J
 *       listens on P (the vhost-user GPU backend), after checking that W accepts a connection.
 *       Any other crosvm command line is handed to the crosvm stand-in in Node (STANDIN_NODE
 *       STANDIN_CROSVM_JS), which checks it against upstream's CLI definition and behaves as the
 *       VMM; a `device gpu` command line is accepted only when it is one of the files under
 *       <package>/share/vmsilo-e2e/accepted/ (written by the harness after that check passed).
 *   crosvm usb attach BUS:ADDR:VID:PID DEV_PATH SOCKET | usb detach PORT SOCKET | usb list SOCKET
 *       upstream's positional arguments (../../../../shared/vmm/README.md), checked here; DEV_PATH must
 *       be a character device (crosvm opens it and hands the fd over; a fake node cannot be opened,
 *       so its device number travels instead). The request goes to the running stand-in's control
 *       socket, which keeps the ports (crosvm.ts); its answer is printed as upstream prints
 *       UsbControlResult ("ok 1", "no_available_port", "devices 1 046d c52b", …), exit 0. Native,
 *       as the real client is, so the attach latency measured on it is not a Node start-up.
 *   vhost-device-sound --socket P --backend null|pipewire|alsa [--streams input,output]
 *       listens on P (upstream's clap definition: --socket and --backend required).
 *
 * Each accepts connections and holds them until SIGTERM; it logs what it does on stderr (the
 * unit's journal), prefixed "vmsilo-standin".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

static const char *self = "standin";

static void die(const char *fmt, const char *arg) {
	fprintf(stderr, "vmsilo-standin %s: ", self);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

static struct sockaddr_un address(const char *path) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) die("socket path too long: %s", path);
	strcpy(a.sun_path, path);
	return a;
}

/* Connect to a listening unix socket, as a client of the real program would. */
static int connect_to(const char *path) {
	struct sockaddr_un a = address(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("nobody listens on %s", path);
	return fd;
}

static volatile sig_atomic_t stopping;
static void on_term(int sig) {
	(void)sig;
	stopping = 1;
}

/* Listen on path (as the real backend does: a stale path is an error) and hold every connection. */
static int serve(const char *path, int extra_fd) {
	struct sockaddr_un a = address(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0) die("cannot listen on %s", path);
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "vmsilo-standin %s: listening on %s\n", self, path);
	struct pollfd p[64] = {{.fd = fd, .events = POLLIN}, {.fd = extra_fd, .events = POLLIN}};
	int n = 2;
	char buf[4096];
	while (!stopping) {
		if (poll(p, n, -1) < 0) continue;
		if (p[0].revents & POLLIN) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && n < 64) {
				p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
				fprintf(stderr, "vmsilo-standin %s: frontend connected on %s\n", self, path);
			}
		}
		/* The compositor going away ends the security context, as it ends the real one. */
		if (p[1].revents & (POLLIN | POLLHUP) && read(p[1].fd, buf, sizeof buf) <= 0) die("the compositor closed %s", "its connection");
		for (int i = 2; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
			if (read(p[i].fd, buf, sizeof buf) > 0) continue;
			fprintf(stderr, "vmsilo-standin %s: frontend disconnected from %s\n", self, path);
			close(p[i].fd);
			p[i--] = p[--n];
		}
	}
	fprintf(stderr, "vmsilo-standin %s: stopped\n", self);
	unlink(path);
	return 0;
}

/* The value of --name (or --name=value) in argv, or NULL; any option not in known is refused. */
static const char *opt(int argc, char **argv, int from, const char *name, const char *const *known) {
	const char *v = NULL;
	size_t len = strlen(name);
	for (int i = from; i < argc; i++) {
		const char *a = argv[i];
		int ok = 0;
		for (const char *const *k = known; *k; k++)
			if (!strncmp(a, *k, strlen(*k)) && (a[strlen(*k)] == 0 || a[strlen(*k)] == '=')) ok = 1;
		if (!ok) die("unexpected argument: %s", a);
		if (!strchr(a, '=')) i++;
		if (!strncmp(a, name, len) && (a[len] == '=' || a[len] == 0)) v = a[len] == '=' ? a + len + 1 : (i < argc ? argv[i] : NULL);
	}
	return v;
}

static const char *need(const char *v, const char *name) {
	if (!v || !*v) die("missing %s", name);
	return v;
}

/* argv[1..] as the harness writes an accepted command line: each argument followed by a NUL. */
static int accepted(int argc, char **argv) {
	char exe[4096], dir[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0) return 0;
	exe[n] = 0;
	*strrchr(exe, '/') = 0; /* .../bin */
	*strrchr(exe, '/') = 0; /* the package */
	snprintf(dir, sizeof dir, "%s/share/vmsilo-e2e/accepted", exe);
	DIR *d = opendir(dir);
	if (!d) return 0;
	size_t want = 0;
	for (int i = 1; i < argc; i++) want += strlen(argv[i]) + 1;
	char *line = malloc(want + 1), *q = line;
	for (int i = 1; i < argc; i++) q = stpcpy(q, argv[i]) + 1;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		if (e->d_name[0] == '.') continue;
		char path[4500], got[65536];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t len = read(fd, got, sizeof got);
		close(fd);
		found = len == (ssize_t)want && !memcmp(got, line, want);
	}
	closedir(d);
	free(line);
	return found;
}

static int hexes(const char *s, size_t n) {
	for (size_t k = 0; k < n; k++)
		if (!isxdigit((unsigned char)s[k])) return 0;
	return s[n] == 0 || s[n] == ':';
}

/* `crosvm usb …`: one request line to the VMM's control socket, its one-line answer printed. */
static int control_client(const char *path, const char *json);

static int usb(int argc, char **argv) {
	self = "crosvm usb";
	char req[512];
	const char *socket_path;
	if (argc == 4 && !strcmp(argv[0], "attach")) {
		unsigned bus, addr;
		char *colon = strrchr(argv[1], ':');
		if (sscanf(argv[1], "%u:%u:", &bus, &addr) != 2 || !colon || colon - argv[1] < 7 || !hexes(colon - 4, 4) || !hexes(colon + 1, 4)) die("BUS_ID:ADDR:VID:PID expected, got %s", argv[1]);
		struct stat st;
		if (stat(argv[2], &st) < 0 || !S_ISCHR(st.st_mode)) die("usb device path %s: not a character device", argv[2]);
		snprintf(req, sizeof req, "usb attach %.4s %s %u:%u %s\n", colon - 4, colon + 1, major(st.st_rdev), minor(st.st_rdev), argv[2]);
		socket_path = argv[3];
	} else if (argc == 3 && !strcmp(argv[0], "detach")) {
		char *end;
		unsigned long port = strtoul(argv[1], &end, 10);
		if (*end || end == argv[1] || port > 255) die("PORT (a number) expected, got %s", argv[1]);
		snprintf(req, sizeof req, "usb detach %lu\n", port);
		socket_path = argv[2];
	} else if (argc == 2 && !strcmp(argv[0], "list")) {
		snprintf(req, sizeof req, "usb list\n");
		socket_path = argv[1];
	} else die("%s", "usage: crosvm usb attach BUS_ID:ADDR:VID:PID DEV_PATH SOCKET | detach PORT SOCKET | list SOCKET");
	/* One packet each way on the control socket (SOCK_SEQPACKET, control_server below), without the newline. */
	req[strcspn(req, "\n")] = '\0';
	return control_client(socket_path, req);
}

static int crosvm(int argc, char **argv) {
	int i = 1;
	while (i < argc && (!strncmp(argv[i], "--log-level=", 12) || !strcmp(argv[i], "--no-syslog"))) i++;
	if (i + 1 < argc && !strcmp(argv[i], "device") && !strcmp(argv[i + 1], "gpu")) {
		self = "crosvm device gpu";
		if (!accepted(argc, argv)) die("%s: not a command line the harness checked against upstream's CLI definition", "refused");
		static const char *const known[] = {"--socket-path", "--wayland-sock", "--params", NULL};
		const char *socket_path = need(opt(argc, argv, i + 2, "--socket-path", known), "--socket-path");
		int wayland = connect_to(need(opt(argc, argv, i + 2, "--wayland-sock", known), "--wayland-sock"));
		return serve(socket_path, wayland);
	}
	if (i < argc && !strcmp(argv[i], "usb")) return usb(argc - i - 1, argv + i + 1);
	/* The Node half runs this binary again as the control socket's two ends (control_server, control_client). */
	static char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		setenv("VMSILO_STANDIN_HELPER", exe, 1);
	}
	char *args[argc + 2];
	args[0] = STANDIN_NODE;
	args[1] = STANDIN_CROSVM_JS;
	for (int k = 1; k <= argc; k++) args[k + 1] = argv[k];
	execv(args[0], args);
	die("cannot run %s", STANDIN_NODE);
	return 2;
}

/*
 * crosvm's control socket is SOCK_SEQPACKET, one JSON message per packet (base::Tube), which Node
 * cannot open. `vmsilo-standin-control-server SOCKET` listens there for the Node half: each request
 * packet becomes a line on stdout, and the line it reads back on stdin is sent as the answer packet.
 * `vmsilo-standin-control-client SOCKET JSON` is the other end, as crosvm's own subcommands are:
 * one request, the answer printed; exit 1 when nobody answers.
 */
static int control_server(const char *path) {
	struct sockaddr_un a = address(path);
	unlink(path);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) die("cannot listen on %s", path);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fprintf(stderr, "vmsilo-standin crosvm: control socket %s\n", path);
	static char req[65536], line[65536];
	FILE *in = stdin;
	for (;;) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) continue;
		ssize_t n;
		while ((n = recv(c, req, sizeof req - 1, 0)) > 0) {
			req[n] = '\0';
			if (memchr(req, '\n', (size_t)n)) break; /* one line each way to the Node half */
			printf("%s\n", req);
			fflush(stdout);
			if (!fgets(line, sizeof line, in)) return 0;
			size_t len = strcspn(line, "\n");
			if (send(c, line, len, MSG_NOSIGNAL) < 0) break;
		}
		close(c);
	}
}

static int control_client(const char *path, const char *json) {
	struct sockaddr_un a = address(path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("cannot connect to the control socket %s", path);
	if (send(fd, json, strlen(json), MSG_NOSIGNAL) < 0) die("cannot send to %s", path);
	static char ans[65536];
	ssize_t n = recv(fd, ans, sizeof ans - 1, 0);
	if (n <= 0) die("no answer on %s", path);
	ans[n] = '\0';
	printf("%s\n", ans);
	return 0;
}

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (!strcmp(name, "crosvm")) return crosvm(argc, argv);
	self = name;
	if (!strcmp(name, "vmsilo-standin-control-server") && argc == 2) return control_server(argv[1]);
	if (!strcmp(name, "vmsilo-standin-control-client") && argc == 3) return control_client(argv[1], argv[2]);
	if (!strcmp(name, "vhost-device-sound")) {
		static const char *const known[] = {"--socket", "--backend", "--streams", NULL};
		const char *backend = need(opt(argc, argv, 1, "--backend", known), "--backend");
		if (strcmp(backend, "null") && strcmp(backend, "pipewire") && strcmp(backend, "alsa")) die("unknown backend %s", backend);
		const char *streams = opt(argc, argv, 1, "--streams", known);
		if (streams && strcmp(streams, "input") && strcmp(streams, "output") && strcmp(streams, "input,output")) die("bad --streams %s", streams);
		return serve(need(opt(argc, argv, 1, "--socket", known), "--socket"), -1);
	}
	die("unknown stand-in %s", name);
	return 2;
}
