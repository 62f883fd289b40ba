// A small JSON document model for the C json-transform tool: parse, compare,
// print. Memory is never freed: a component instance lives for one call.
#ifndef AIRLOCK_JSON_H
#define AIRLOCK_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json;
struct json {
  json_type type;
  bool boolean;
  double number;
  // Numbers keep their text, so output repeats the input exactly.
  char *text;
  size_t length;  // bytes of `text` (strings, numbers)
  json **items;   // array elements or object values
  char **keys;    // object keys (NUL-terminated)
  size_t *key_lengths;
  size_t count;
};

// Parses `length` bytes; on failure returns NULL and sets *error.
json *json_parse(const char *text, size_t length, const char **error);
// The value of `key` in an object, or NULL.
json *json_get(const json *object, const char *key);
// Sets `key` in an object (replacing an existing value).
void json_set(json *object, const char *key, size_t key_length, json *value);
json *json_new(json_type type);
json *json_integer(long long value);
void json_push(json *array, json *value);
// Deep equality; numbers compare by value.
bool json_equal(const json *a, const json *b);
// Appends the compact JSON text of `value` to a growing buffer.
typedef struct {
  char *data;
  size_t length, capacity;
} json_buffer;
void json_print(json_buffer *out, const json *value);

#endif
