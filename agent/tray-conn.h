/*
 * One tray protocol connection on a non-blocking stream socket, shared by vmsilo-tray-guest and
 * vmsilo-tray-host: the preamble, whole frames in, queued frames out (tray-proto.h).
 */
#ifndef VMSILO_TRAY_CONN_H
#define VMSILO_TRAY_CONN_H

#include <stddef.h>
#include "common.h"
#include "tray-proto.h"

/* Frames the peer does not read are queued up to this many bytes; more ends the connection. */
#define TRAY_MAX_QUEUED (4u * 1024u * 1024u)

struct tray_conn {
  int fd;             /* -1: none */
  int from_guest;     /* this side reads the guest's frames (the host) */
  int preamble_seen;
  struct buf in, out;
};

/* Take fd (made non-blocking) and queue our preamble. */
void tray_conn_open(struct tray_conn *c, int fd, int from_guest);
void tray_conn_close(struct tray_conn *c);
/* Queue a frame and send what the socket takes now: 0, or -1 with why (the queue is full, the
 * socket failed). */
int tray_conn_send(struct tray_conn *c, unsigned type, const void *payload, size_t n, char *why, size_t whylen);
/* Send what is queued: 0, or -1 with why. */
int tray_conn_flush(struct tray_conn *c, char *why, size_t whylen);
/* Read what is there and call frame() for each whole, checked frame (it returns 0, or -1 having
 * written why). Returns 0 while the connection goes on, 1 at its end, -1 (with why) on a protocol
 * or socket error. */
int tray_conn_read(struct tray_conn *c, int (*frame)(unsigned type, const unsigned char *p, size_t n, void *ctx, char *why, size_t whylen), void *ctx,
                   char *why, size_t whylen);

#endif
