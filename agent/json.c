#include "json.h"

#include <string.h>

/* An iterative tokenizer: an explicit stack of open containers (JSON_MAX_DEPTH), one pass. */
struct parser {
  const char *s;
  size_t len, pos;
  struct json_tok *tok;
  int max, n;
};

static void skip_ws(struct parser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r')) p->pos++;
}

static int add(struct parser *p, enum json_type type, size_t start, size_t len) {
  if (p->n >= p->max) return -1;
  p->tok[p->n] = (struct json_tok){.type = type, .start = start, .len = len, .next = p->n + 1, .count = 0};
  return p->n++;
}

static int hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int string(struct parser *p) {
  size_t start = ++p->pos;
  while (p->pos < p->len) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') {
      int t = add(p, JSON_STRING, start, p->pos - start);
      p->pos++;
      return t;
    }
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (++p->pos >= p->len) return -1;
      char e = p->s[p->pos];
      if (e == 'u') {
        if (p->pos + 4 >= p->len) return -1;
        for (int i = 1; i <= 4; i++)
          if (!hex(p->s[p->pos + i])) return -1;
        p->pos += 4;
      } else if (!strchr("\"\\/bfnrt", e) || e == '\0')
        return -1;
    }
    p->pos++;
  }
  return -1;
}

static int digits(struct parser *p) {
  size_t from = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  return p->pos > from ? 0 : -1;
}

static int number(struct parser *p) {
  size_t start = p->pos;
  if (p->s[p->pos] == '-') p->pos++;
  if (p->pos >= p->len) return -1;
  if (p->s[p->pos] == '0')
    p->pos++;
  else if (digits(p) < 0)
    return -1;
  if (p->pos < p->len && p->s[p->pos] == '.') {
    p->pos++;
    if (digits(p) < 0) return -1;
  }
  if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (digits(p) < 0) return -1;
  }
  return add(p, JSON_NUMBER, start, p->pos - start);
}

static int literal(struct parser *p, const char *word, enum json_type type) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return -1;
  int t = add(p, type, p->pos, n);
  p->pos += n;
  return t;
}

int json_parse(struct json *j, const char *text, size_t len, struct json_tok *tok, int max) {
  struct parser p = {.s = text, .len = len, .tok = tok, .max = max};
  int stack[JSON_MAX_DEPTH];
  int depth = 0;
  /* In an object: 1 when a key is expected next (after '{' or ','), 2 after a key (a ':' then a value). */
  int want_key[JSON_MAX_DEPTH];
  for (;;) {
    skip_ws(&p);
    if (p.pos >= p.len) return -1;
    int parent = depth > 0 ? stack[depth - 1] : -1;
    char c = p.s[p.pos];
    int empty_close = parent >= 0 && tok[parent].count == 0 && ((c == '}' && tok[parent].type == JSON_OBJECT) || (c == ']' && tok[parent].type == JSON_ARRAY));
    int t = -1;
    if (!empty_close) {
      if (parent >= 0 && tok[parent].type == JSON_OBJECT && want_key[depth - 1] == 1) {
        if (c != '"' || (t = string(&p)) < 0) return -1;
        tok[parent].count++;
        skip_ws(&p);
        if (p.pos >= p.len || p.s[p.pos] != ':') return -1;
        p.pos++;
        want_key[depth - 1] = 2;
        continue;
      }
      if (c == '{' || c == '[') {
        if (depth >= JSON_MAX_DEPTH) return -1;
        if ((t = add(&p, c == '{' ? JSON_OBJECT : JSON_ARRAY, p.pos, 0)) < 0) return -1;
        if (parent >= 0 && tok[parent].type == JSON_ARRAY) tok[parent].count++;
        p.pos++;
        want_key[depth] = c == '{' ? 1 : 0;
        stack[depth++] = t;
        continue;
      }
      if (c == '"')
        t = string(&p);
      else if (c == '-' || (c >= '0' && c <= '9'))
        t = number(&p);
      else if (c == 't')
        t = literal(&p, "true", JSON_BOOL);
      else if (c == 'f')
        t = literal(&p, "false", JSON_BOOL);
      else if (c == 'n')
        t = literal(&p, "null", JSON_NULL);
      if (t < 0) return -1;
      if (parent >= 0 && tok[parent].type == JSON_ARRAY) tok[parent].count++;
    }
    /* After a value (or an empty container's open): close containers, or expect a ',' . */
    for (;;) {
      skip_ws(&p);
      if (depth == 0) {
        if (p.pos != p.len) return -1;
        j->text = text;
        j->tok = tok;
        j->n = p.n;
        return 0;
      }
      int open = stack[depth - 1];
      char close = tok[open].type == JSON_OBJECT ? '}' : ']';
      if (p.pos >= p.len) return -1;
      if (p.s[p.pos] == close) {
        p.pos++;
        tok[open].len = p.pos - tok[open].start;
        tok[open].next = p.n;
        depth--;
        continue;
      }
      if (p.s[p.pos] != ',') return -1;
      p.pos++;
      if (tok[open].type == JSON_OBJECT) want_key[depth - 1] = 1;
      break;
    }
  }
}

int json_at(const struct json *j, int t, int i) {
  if (t < 0 || t >= j->n || (j->tok[t].type != JSON_ARRAY && j->tok[t].type != JSON_OBJECT) || i < 0 || i >= j->tok[t].count) return -1;
  int obj = j->tok[t].type == JSON_OBJECT;
  int c = t + 1;
  for (int k = 0; k < i; k++) c = obj ? j->tok[c + 1].next : j->tok[c].next;
  return obj ? c + 1 : c;
}

int json_key_at(const struct json *j, int obj, int i) {
  if (obj < 0 || obj >= j->n || j->tok[obj].type != JSON_OBJECT) return -1;
  int v = json_at(j, obj, i);
  return v < 0 ? -1 : v - 1;
}

int json_is(const struct json *j, int t, const char *s) {
  size_t n = strlen(s);
  return t >= 0 && t < j->n && j->tok[t].type == JSON_STRING && j->tok[t].len == n && memcmp(j->text + j->tok[t].start, s, n) == 0;
}

int json_get(const struct json *j, int obj, const char *key) {
  if (obj < 0 || obj >= j->n || j->tok[obj].type != JSON_OBJECT) return -1;
  int c = obj + 1;
  for (int k = 0; k < j->tok[obj].count; k++) {
    if (json_is(j, c, key)) return c + 1;
    c = j->tok[c + 1].next;
  }
  return -1;
}

int json_u64(const struct json *j, int t, uint64_t *out) {
  if (t < 0 || t >= j->n || j->tok[t].type != JSON_NUMBER) return -1;
  const char *s = j->text + j->tok[t].start;
  size_t n = j->tok[t].len;
  if (n == 0 || n > 19) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v >> 63) return -1;
  *out = v;
  return 0;
}

int json_str(const struct json *j, int t, char *out, size_t cap) {
  if (t < 0 || t >= j->n || j->tok[t].type != JSON_STRING || j->tok[t].len >= cap) return -1;
  const char *s = j->text + j->tok[t].start;
  for (size_t i = 0; i < j->tok[t].len; i++)
    if (s[i] == '\\' || s[i] == '\0') return -1;
  memcpy(out, s, j->tok[t].len);
  out[j->tok[t].len] = '\0';
  return 0;
}
