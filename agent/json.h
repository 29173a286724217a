/* A small, bounded JSON reader: the balloon daemon's manifest and what VMMs answer (crosvm's control
 * socket, QMP, cloud-hypervisor's API). It tokenizes a whole document into a caller-given array and
 * refuses anything that is not strict JSON (RFC 8259), nests deeper than JSON_MAX_DEPTH or needs more
 * tokens than given: a VMM's answer is untrusted, so nothing in it can make the reader loop, recurse
 * or allocate without bound. Strings are not unescaped: a lookup compares a key byte for byte, and
 * json_str() copies a value only when it has no escapes. */
#ifndef VMSILO_JSON_H
#define VMSILO_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_tok {
  enum json_type type;
  /* Text of the value in the document (a string without its quotes). */
  size_t start, len;
  /* The index after this token's last descendant: where its next sibling starts. */
  int next;
  /* Members of an object (key tokens; each is followed by its value) or elements of an array. */
  int count;
};

struct json {
  const char *text;
  struct json_tok *tok;
  int n;
};

/* Tokenizes text[0, len) into tok[0, max). 0, or -1 when it is not one JSON value within the limits. */
int json_parse(struct json *j, const char *text, size_t len, struct json_tok *tok, int max);
/* The value of member `key` of object token `obj`, or -1 (not an object, no such key). */
int json_get(const struct json *j, int obj, const char *key);
/* The i-th element of an array, or the value of the i-th member of an object; -1 past the end. */
int json_at(const struct json *j, int tok, int i);
/* The key of the i-th member of an object, or -1. */
int json_key_at(const struct json *j, int obj, int i);
/* A non-negative integer below 2^63 (no fraction, no exponent); 0, or -1 when it is not one. */
int json_u64(const struct json *j, int tok, uint64_t *out);
/* A string without escapes, copied NUL-terminated into out[0, cap); 0, or -1 (escapes, too long,
 * a NUL or a control character inside, not a string). */
int json_str(const struct json *j, int tok, char *out, size_t cap);
/* Whether token `tok` is the string `s` (exactly, no escapes). */
int json_is(const struct json *j, int tok, const char *s);

#endif
