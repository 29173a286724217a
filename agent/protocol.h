/*
 * The vm-run wire protocol, version 1 (docs/protocol.md is the reference; keep the two in step).
 *
 * Each direction of the stream starts with a 4-byte preamble: 'V' 'M' 'R' <version>.
 * Then frames: <type: 1 byte> <length: 4 bytes, big-endian> <payload: length bytes>.
 */
#ifndef VMSILO_PROTOCOL_H
#define VMSILO_PROTOCOL_H

#define VMR_VERSION 1u
#define VMR_PREAMBLE_LEN 4u
#define VMR_HEADER_LEN 5u

/* Client -> agent. */
#define VMR_EXEC 0x01u      /* argv: each argument followed by one NUL byte */
#define VMR_STDIN 0x02u     /* 1..VMR_MAX_DATA bytes of the command's stdin */
#define VMR_STDIN_EOF 0x03u /* empty: end of the command's stdin */

/* Agent (or host proxy) -> client. */
#define VMR_STDOUT 0x81u /* 1..VMR_MAX_DATA bytes */
#define VMR_STDERR 0x82u /* 1..VMR_MAX_DATA bytes */
#define VMR_EXIT 0x83u   /* 2 bytes: kind, value */
#define VMR_ERROR 0x84u  /* 1 byte code, then 0..VMR_MAX_MESSAGE bytes of UTF-8 text */

/* VMR_EXIT kinds. */
#define VMR_EXITED 0u   /* value = exit status 0..255 */
#define VMR_SIGNALED 1u /* value = signal number 1..127 */

/* VMR_ERROR codes, and the status vmsilo-run exits with for each. */
#define VMR_E_PROTOCOL 1u       /* 255: malformed, truncated or oversized request; version mismatch */
#define VMR_E_NOT_FOUND 2u      /* 127: execvp failed with ENOENT */
#define VMR_E_NOT_EXECUTABLE 3u /* 126: execvp failed otherwise */
#define VMR_E_START_FAILED 4u   /* 125: the agent could not set the command up (fork, user, pipes) */
#define VMR_E_UNREACHABLE 5u    /* 255: sent by the host proxy: the guest agent could not be reached */

/* Limits. */
#define VMR_MAX_ARGV_BYTES (1024u * 1024u) /* EXEC payload, NULs included */
#define VMR_MAX_ARGC 4096u
#define VMR_MAX_DATA 65536u
#define VMR_MAX_MESSAGE 4096u

/* On vsock, the agent accepts only host peers on a privileged port (below this one): on the host only
 * root, or a process given CAP_NET_BIND_SERVICE (the proxy), can bind one. */
#define VMR_FIRST_UNPRIVILEGED_PORT 1024u

/* Exit statuses of vmsilo-run besides the command's own. */
#define VMR_STATUS_USAGE 2
#define VMR_STATUS_START_FAILED 125
#define VMR_STATUS_NOT_EXECUTABLE 126
#define VMR_STATUS_NOT_FOUND 127
#define VMR_STATUS_FAILURE 255

#endif
