/*
 * The parsers of untrusted bytes, shared by the programs and the fuzzing harnesses (fuzz/): what
 * the agent accepts from a client, what the client accepts from an agent (and shows on a
 * terminal), and what the proxy accepts from cloud-hypervisor's vsock muxer. No I/O here.
 */
#ifndef VMSILO_PARSE_H
#define VMSILO_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Describe a 4-byte preamble problem in `why`, or return 0 when it is ours. */
int check_preamble(const unsigned char *p, char *why, size_t whylen);

/*
 * The agent's request: preamble and EXEC header, from the first n bytes received. Returns the total
 * length of the request (preamble, header and argv) once the header is there, 0 while more bytes
 * are needed to know, -1 (with `why`) when it is refused.
 */
long request_length(const unsigned char *p, size_t n, char *why, size_t whylen);

/*
 * The EXEC payload (alen bytes at args, alen >= 1): checks it and fills argv (allocated, NULL
 * terminated, pointing into args). Returns the number of arguments, or -1 (with `why`).
 */
long request_argv(char *args, size_t alen, char ***argv, char *why, size_t whylen);

/* A frame header from the client after the request; stdin_eof: STDIN_EOF was seen. 0, or -1 (with `why`). */
int check_client_frame(unsigned type, uint32_t len, int stdin_eof, char *why, size_t whylen);

/* A frame header from the agent (or proxy), as the client checks it. 0, or -1 (with `why`). */
int check_agent_frame(unsigned type, uint32_t len, char *why, size_t whylen);

/* The status an EXIT payload means (exit status, or 128 + signal), or -1 when it is malformed. */
int exit_status(const unsigned char p[2]);

/* Copy ERROR text to out (at most n bytes, NUL-terminated, out holds n + 1) with control characters as '?'. */
void clean_text(const unsigned char *text, size_t n, char *out);

/*
 * cloud-hypervisor's answer to "CONNECT <port>\n", from the first n bytes received (at most
 * HANDSHAKE_LINE_MAX). Returns 0 while the line is incomplete; the length of the line with its
 * newline when it starts with "OK" (the bytes after it belong to the session); -1 (with `why`)
 * for any other answer or a line too long.
 */
#define HANDSHAKE_LINE_MAX 512
long handshake_answer(const unsigned char *p, size_t n, char *why, size_t whylen);

/*
 * Terminal filter: guest output bound for a terminal, with terminal control taken out. Escape
 * sequences (ESC, CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and C1 forms, raw or UTF-8 encoded)
 * are dropped whole; other control characters become '?', except tab, newline, carriage return
 * and backspace. Everything else (UTF-8 text) passes. The state carries over between calls, so a
 * sequence split across frames is still recognised.
 */
struct term_filter {
  unsigned char state, utf8_left, lead_c2;
};
/* Filter n bytes into out, which holds at least n + 1; returns the bytes written. */
size_t term_filter(struct term_filter *f, const unsigned char *in, size_t n, unsigned char *out);

#endif
