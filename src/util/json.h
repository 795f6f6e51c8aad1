/*
** A small strict JSON reader that keeps integers exact to 64 bits (test
** vectors carry registers and gas above 2^53).  Parses into an arena-backed
** tree; strings are unescaped and NUL-terminated.
*/
#ifndef NUB_JSON_H
#define NUB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum json_type {
  JSON_NULL, JSON_BOOL, JSON_INT, JSON_REAL, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_type;

typedef struct json_value json_value;
struct json_value {
  json_type type;
  bool negative;           /* JSON_INT: sign; magnitude in u */
  bool boolean;
  uint64_t u;              /* JSON_INT magnitude */
  const char *str;         /* JSON_STRING text, JSON_REAL literal */
  size_t len;
  const char *key;         /* member name when inside an object */
  size_t key_len;
  json_value *child;       /* first element / member */
  json_value *next;        /* next sibling */
  size_t count;            /* number of elements / members */
  size_t offset;           /* byte offset of the value in the input */
};

typedef struct json_doc json_doc;

typedef struct json_error {
  size_t offset, line, column;
  char msg[160];
} json_error;

#define JSON_MAX_DEPTH 128

/* Parse exactly one JSON value (surrounding whitespace allowed). */
int json_parse(const char *p, const char *end, json_doc **out, json_error *err);
const json_value *json_root(const json_doc *doc);
void json_free(json_doc *doc);

/* Lookups: NULL when absent or of another type. */
const json_value *json_get(const json_value *obj, const char *key);
const json_value *json_at(const json_value *arr, size_t i);

/* Exact conversions; return false when the value does not fit. */
bool json_to_u64(const json_value *v, uint64_t *out);
bool json_to_i64(const json_value *v, int64_t *out);

#endif
