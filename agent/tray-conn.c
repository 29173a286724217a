/* One tray protocol connection (tray-conn.h). */
#define _GNU_SOURCE
#include "tray-conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tray_conn_open(struct tray_conn *c, int fd, int from_guest) {
  c->fd = fd;
  c->from_guest = from_guest;
  c->preamble_seen = 0;
  (void)set_nonblock(fd);
  buf_init(&c->in, TRAY_HEADER_LEN + TRAY_MAX_FRAME);
  buf_init(&c->out, 64 * 1024);
  unsigned char p[TRAY_PREAMBLE_LEN];
  tray_preamble(p);
  buf_append(&c->out, p, sizeof p);
}

void tray_conn_close(struct tray_conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  buf_free(&c->in);
  buf_free(&c->out);
}

int tray_conn_flush(struct tray_conn *c, char *why, size_t whylen) {
  if (buf_send(&c->out, c->fd) < 0) {
    snprintf(why, whylen, "send: %s", strerror(errno));
    return -1;
  }
  return 0;
}

int tray_conn_send(struct tray_conn *c, unsigned type, const void *payload, size_t n, char *why, size_t whylen) {
  if (c->out.len + TRAY_HEADER_LEN + n > TRAY_MAX_QUEUED) {
    snprintf(why, whylen, "the peer does not read: %zu bytes queued", c->out.len);
    return -1;
  }
  buf_frame(&c->out, type, payload, n);
  return tray_conn_flush(c, why, whylen);
}

int tray_conn_read(struct tray_conn *c, int (*frame)(unsigned type, const unsigned char *p, size_t n, void *ctx, char *why, size_t whylen), void *ctx,
                   char *why, size_t whylen) {
  for (;;) {
    /* Never more than one frame's worth is buffered: the buffer holds the largest frame whole. */
    size_t want = TRAY_HEADER_LEN + TRAY_MAX_FRAME - c->in.len;
    ssize_t r = want ? buf_read(&c->in, c->fd, want) : 0;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      snprintf(why, whylen, "read: %s", strerror(errno));
      return -1;
    }
    for (;;) {
      const unsigned char *p = c->in.p + c->in.off;
      if (!c->preamble_seen) {
        if (c->in.len < TRAY_PREAMBLE_LEN) break;
        if (tray_check_preamble(p, why, whylen) < 0) return -1;
        buf_consume(&c->in, TRAY_PREAMBLE_LEN);
        c->preamble_seen = 1;
        continue;
      }
      if (c->in.len < TRAY_HEADER_LEN) break;
      uint32_t len = get_be32(p + 1);
      /* Checked from the header, before any of the payload is waited for. */
      if (tray_check_header(p[0], len, c->from_guest, why, whylen) < 0) return -1;
      if (c->in.len < TRAY_HEADER_LEN + len) break;
      if (frame(p[0], p + TRAY_HEADER_LEN, len, ctx, why, whylen) < 0) return -1;
      buf_consume(&c->in, TRAY_HEADER_LEN + len);
    }
    if (r == 0 && want) {
      if (c->in.len) {
        snprintf(why, whylen, "the connection closed inside a frame (%zu bytes of it came)", c->in.len);
        return -1;
      }
      return 1;
    }
    if (r < 0) return 0;
  }
}
