#include "parse.h"

#include <stdio.h>
#include <string.h>

#include "common.h"
#include "protocol.h"

int check_preamble(const unsigned char *p, char *why, size_t whylen) {
  if (p[0] != 'V' || p[1] != 'M' || p[2] != 'R') {
    snprintf(why, whylen, "not a vm-run stream: expected the preamble \"VMR\" and a version byte, got bytes 0x%02x 0x%02x 0x%02x 0x%02x", p[0], p[1], p[2], p[3]);
    return -1;
  }
  if (p[3] != VMR_VERSION) {
    snprintf(why, whylen, "unsupported protocol version %u (this side speaks version %u)", p[3], VMR_VERSION);
    return -1;
  }
  return 0;
}

long request_length(const unsigned char *p, size_t n, char *why, size_t whylen) {
  if (n < VMR_PREAMBLE_LEN) return 0;
  if (check_preamble(p, why, whylen) < 0) return -1;
  if (n < VMR_PREAMBLE_LEN + VMR_HEADER_LEN) return 0;
  unsigned type = p[VMR_PREAMBLE_LEN];
  uint32_t len = get_be32(p + VMR_PREAMBLE_LEN + 1);
  if (type != VMR_EXEC) {
    snprintf(why, whylen, "the first frame must be EXEC (type 0x%02x), got type 0x%02x", VMR_EXEC, type);
    return -1;
  }
  if (len == 0) {
    snprintf(why, whylen, "empty argv");
    return -1;
  }
  if (len > VMR_MAX_ARGV_BYTES) {
    snprintf(why, whylen, "argv of %u bytes exceeds the limit of %u bytes", len, VMR_MAX_ARGV_BYTES);
    return -1;
  }
  return (long)(VMR_PREAMBLE_LEN + VMR_HEADER_LEN + len);
}

long request_argv(char *args, size_t alen, char ***argv, char *why, size_t whylen) {
  if (args[alen - 1] != '\0') {
    snprintf(why, whylen, "argv is not NUL-terminated");
    return -1;
  }
  size_t argc = 0;
  for (size_t i = 0; i < alen; i++) argc += args[i] == '\0';
  if (argc > VMR_MAX_ARGC) {
    snprintf(why, whylen, "argv has %zu arguments; the limit is %u", argc, VMR_MAX_ARGC);
    return -1;
  }
  if (args[0] == '\0') {
    snprintf(why, whylen, "argv[0] (the command) is empty");
    return -1;
  }
  char **v = xmalloc((argc + 1) * sizeof *v);
  for (size_t i = 0, k = 0; k < argc; k++) {
    v[k] = args + i;
    i += strlen(args + i) + 1;
  }
  v[argc] = NULL;
  *argv = v;
  return (long)argc;
}

int check_client_frame(unsigned type, uint32_t len, int stdin_eof, char *why, size_t whylen) {
  if (type == VMR_STDIN) {
    if (len < 1 || len > VMR_MAX_DATA) {
      snprintf(why, whylen, "STDIN frame of %u bytes (allowed: 1 to %u)", len, VMR_MAX_DATA);
      return -1;
    }
    if (stdin_eof) {
      snprintf(why, whylen, "STDIN frame after STDIN_EOF");
      return -1;
    }
  } else if (type == VMR_STDIN_EOF) {
    if (len != 0) {
      snprintf(why, whylen, "STDIN_EOF frame with a payload");
      return -1;
    }
    if (stdin_eof) {
      snprintf(why, whylen, "a second STDIN_EOF frame");
      return -1;
    }
  } else if (type == VMR_EXEC) {
    snprintf(why, whylen, "a second EXEC frame");
    return -1;
  } else {
    snprintf(why, whylen, "unknown frame type 0x%02x", type);
    return -1;
  }
  return 0;
}

int check_agent_frame(unsigned type, uint32_t len, char *why, size_t whylen) {
  int ok;
  switch (type) {
    case VMR_STDOUT:
    case VMR_STDERR: ok = len >= 1 && len <= VMR_MAX_DATA; break;
    case VMR_EXIT: ok = len == 2; break;
    case VMR_ERROR: ok = len >= 1 && len <= 1 + VMR_MAX_MESSAGE; break;
    default: snprintf(why, whylen, "unknown frame type 0x%02x", type); return -1;
  }
  if (!ok) {
    snprintf(why, whylen, "frame type 0x%02x with bad length %u", type, len);
    return -1;
  }
  return 0;
}

int exit_status(const unsigned char p[2]) {
  if (p[0] == VMR_EXITED) return p[1];
  if (p[0] == VMR_SIGNALED && p[1] >= 1 && p[1] <= 127) return 128 + p[1];
  return -1;
}

void clean_text(const unsigned char *text, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) out[i] = (text[i] < 0x20 || text[i] == 0x7f) ? '?' : (char)text[i];
  out[n] = '\0';
}

long handshake_answer(const unsigned char *p, size_t n, char *why, size_t whylen) {
  const unsigned char *nl = memchr(p, '\n', n);
  if (nl == NULL) {
    if (n < HANDSHAKE_LINE_MAX) return 0;
    snprintf(why, whylen, "the answer is not a line of at most %d bytes", HANDSHAKE_LINE_MAX);
    return -1;
  }
  size_t linelen = (size_t)(nl - p);
  if (linelen < 2 || memcmp(p, "OK", 2) != 0) {
    char shown[201];
    size_t m = linelen < 200 ? linelen : 200;
    clean_text(p, m, shown);
    snprintf(why, whylen, "unexpected answer: \"%s\"", shown);
    return -1;
  }
  return (long)linelen + 1;
}

/* ---- the terminal filter ---- */

enum { TF_TEXT, TF_ESC, TF_ESC_INTER, TF_CSI, TF_STRING, TF_STRING_ESC };
/* Input classes of the state machine: a byte of text, a C0 control (or DEL), a C1 control. */
enum { IN_TEXT, IN_C0, IN_C1 };

#define ESC 0x1b
#define BEL 0x07
#define CAN 0x18
#define SUB 0x1a
/* C1 controls that open a sequence (their 7-bit forms are ESC + code - 0x40). */
#define C1_DCS 0x90
#define C1_SOS 0x98
#define C1_CSI 0x9b
#define C1_ST 0x9c
#define C1_OSC 0x9d
#define C1_PM 0x9e
#define C1_APC 0x9f

static int opens_string(unsigned c1) { return c1 == C1_DCS || c1 == C1_SOS || c1 == C1_OSC || c1 == C1_PM || c1 == C1_APC; }

/* One input through the state machine; text and kept controls go to out. */
static void tf_step(struct term_filter *f, int cls, unsigned char b, unsigned char *out, size_t *m) {
  for (;;) {
    switch (f->state) {
      case TF_TEXT:
        if (cls == IN_TEXT) out[(*m)++] = b;
        else if (cls == IN_C0 && b == ESC) f->state = TF_ESC;
        else if (cls == IN_C0 && (b == '\t' || b == '\n' || b == '\r' || b == '\b')) out[(*m)++] = b;
        else if (cls == IN_C1 && b == C1_CSI) f->state = TF_CSI;
        else if (cls == IN_C1 && opens_string(b)) f->state = TF_STRING;
        else out[(*m)++] = '?';
        return;
      case TF_ESC:
        if (cls == IN_TEXT && b < 0x80) {
          /* ESC + 0x40…0x5f is the 7-bit form of the C1 control (that byte + 0x40): ESC [ is CSI. */
          if (b == '[') f->state = TF_CSI;
          else if (b >= 0x40 && b <= 0x5f && opens_string(b + 0x40u)) f->state = TF_STRING;
          else if (b >= 0x20 && b <= 0x2f) f->state = TF_ESC_INTER;
          else f->state = TF_TEXT; /* a final byte: a two-byte sequence, dropped */
          return;
        }
        if (cls == IN_C0 && b == ESC) return;
        f->state = TF_TEXT;
        if (cls == IN_C0 && (b == CAN || b == SUB)) return;
        continue; /* anything else cancels the escape and is taken as it comes */
      case TF_ESC_INTER:
        if (cls == IN_TEXT && b >= 0x20 && b <= 0x2f) return;
        f->state = TF_TEXT;
        if (cls == IN_TEXT && b >= 0x30 && b <= 0x7e) return;
        continue;
      case TF_CSI:
        if (cls == IN_TEXT && b >= 0x20 && b <= 0x3f) return; /* parameters and intermediates */
        f->state = TF_TEXT;
        if (cls == IN_TEXT && b >= 0x40 && b <= 0x7e) return; /* the final byte */
        continue;
      case TF_STRING:
        if (cls == IN_C0 && b == ESC) f->state = TF_STRING_ESC;
        else if ((cls == IN_C0 && (b == BEL || b == CAN || b == SUB)) || (cls == IN_C1 && b == C1_ST)) f->state = TF_TEXT;
        return; /* the string's body is dropped */
      default: /* TF_STRING_ESC */
        if (cls == IN_TEXT && b == '\\') {
          f->state = TF_TEXT; /* ST */
          return;
        }
        f->state = TF_ESC; /* as terminals do: the ESC ends the string and starts a sequence */
        continue;
    }
  }
}

size_t term_filter(struct term_filter *f, const unsigned char *in, size_t n, unsigned char *out) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char b = in[i];
    if (f->lead_c2) {
      f->lead_c2 = 0;
      if (b >= 0x80 && b <= 0x9f) {
        tf_step(f, IN_C1, b, out, &m); /* U+0080…U+009F, UTF-8 encoded */
        continue;
      }
      tf_step(f, IN_TEXT, 0xc2, out, &m);
    }
    if (f->utf8_left > 0 && b >= 0x80 && b <= 0xbf) {
      f->utf8_left--;
      tf_step(f, IN_TEXT, b, out, &m);
      continue;
    }
    f->utf8_left = 0;
    if (b == 0xc2) f->lead_c2 = 1;
    else if (b < 0x20 || b == 0x7f) tf_step(f, IN_C0, b, out, &m);
    else if (b >= 0x80 && b <= 0x9f) tf_step(f, IN_C1, b, out, &m); /* a raw 8-bit C1 control */
    else {
      if (b >= 0xc3 && b <= 0xdf) f->utf8_left = 1;
      else if (b >= 0xe0 && b <= 0xef) f->utf8_left = 2;
      else if (b >= 0xf0 && b <= 0xf4) f->utf8_left = 3;
      tf_step(f, IN_TEXT, b, out, &m);
    }
  }
  return m;
}
