#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *at, *end;
  const char *error;
} parser;

static void *grow(void *items, size_t count, size_t size) {
  // Capacity doubles at powers of two.
  if (count == 0 || (count & (count - 1)) == 0) {
    items = realloc(items, (count == 0 ? 4 : count * 2) * size);
    if (!items) abort();
  }
  return items;
}

json *json_new(json_type type) {
  json *value = calloc(1, sizeof(json));
  if (!value) abort();
  value->type = type;
  return value;
}

json *json_integer(long long n) {
  json *value = json_new(JSON_NUMBER);
  char buffer[32];
  value->length = (size_t)snprintf(buffer, sizeof buffer, "%lld", n);
  value->text = strdup(buffer);
  value->number = (double)n;
  return value;
}

void json_push(json *array, json *value) {
  array->items = grow(array->items, array->count, sizeof(json *));
  array->items[array->count++] = value;
}

json *json_get(const json *object, const char *key) {
  if (!object || object->type != JSON_OBJECT) return NULL;
  size_t length = strlen(key);
  for (size_t i = 0; i < object->count; i++)
    if (object->key_lengths[i] == length && memcmp(object->keys[i], key, length) == 0) return object->items[i];
  return NULL;
}

void json_set(json *object, const char *key, size_t key_length, json *value) {
  for (size_t i = 0; i < object->count; i++)
    if (object->key_lengths[i] == key_length && memcmp(object->keys[i], key, key_length) == 0) {
      object->items[i] = value;
      return;
    }
  object->keys = grow(object->keys, object->count, sizeof(char *));
  object->key_lengths = grow(object->key_lengths, object->count, sizeof(size_t));
  char *copy = malloc(key_length + 1);
  if (!copy) abort();
  memcpy(copy, key, key_length);
  copy[key_length] = 0;
  object->keys[object->count] = copy;
  object->key_lengths[object->count] = key_length;
  json_push(object, value);
}

static void skip_space(parser *p) {
  while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r')) p->at++;
}

static json *fail(parser *p, const char *message) {
  if (!p->error) p->error = message;
  return NULL;
}

static void put_utf8(json_buffer *out, unsigned code);

static int hex4(parser *p) {
  if (p->end - p->at < 4) return -1;
  int value = 0;
  for (int i = 0; i < 4; i++) {
    char c = *p->at++;
    value <<= 4;
    if (c >= '0' && c <= '9') value |= c - '0';
    else if (c >= 'a' && c <= 'f') value |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') value |= c - 'A' + 10;
    else return -1;
  }
  return value;
}

static void append(json_buffer *out, const char *bytes, size_t length) {
  if (out->length + length + 1 > out->capacity) {
    out->capacity = (out->length + length + 1) * 2;
    out->data = realloc(out->data, out->capacity);
    if (!out->data) abort();
  }
  memcpy(out->data + out->length, bytes, length);
  out->length += length;
  out->data[out->length] = 0;
}

static void put_utf8(json_buffer *out, unsigned code) {
  char bytes[4];
  size_t n;
  if (code < 0x80) bytes[0] = (char)code, n = 1;
  else if (code < 0x800) bytes[0] = (char)(0xC0 | code >> 6), bytes[1] = (char)(0x80 | (code & 0x3F)), n = 2;
  else if (code < 0x10000)
    bytes[0] = (char)(0xE0 | code >> 12), bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F)),
    bytes[2] = (char)(0x80 | (code & 0x3F)), n = 3;
  else
    bytes[0] = (char)(0xF0 | code >> 18), bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F)),
    bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F)), bytes[3] = (char)(0x80 | (code & 0x3F)), n = 4;
  append(out, bytes, n);
}

static bool parse_string(parser *p, json_buffer *out) {
  p->at++;  // opening quote
  while (p->at < p->end) {
    unsigned char c = (unsigned char)*p->at++;
    if (c == '"') {
      if (!out->data) append(out, "", 0);
      return true;
    }
    if (c < 0x20) return fail(p, "a control character in a string"), false;
    if (c != '\\') {
      append(out, (const char *)&c, 1);
      continue;
    }
    if (p->at >= p->end) break;
    char e = *p->at++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      const char *decoded = "\"\\/\b\f\n\r\t";
      append(out, &decoded[simple - "\"\\/bfnrt"], 1);
    } else if (e == 'u') {
      int code = hex4(p);
      if (code < 0) return fail(p, "a bad \\u escape"), false;
      if (code >= 0xD800 && code < 0xDC00) {
        if (p->end - p->at < 6 || p->at[0] != '\\' || p->at[1] != 'u') return fail(p, "a lone surrogate"), false;
        p->at += 2;
        int low = hex4(p);
        if (low < 0xDC00 || low > 0xDFFF) return fail(p, "a lone surrogate"), false;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
      } else if (code >= 0xDC00 && code < 0xE000) {
        return fail(p, "a lone surrogate"), false;
      }
      put_utf8(out, (unsigned)code);
    } else {
      return fail(p, "a bad escape"), false;
    }
  }
  return fail(p, "an unterminated string"), false;
}

static json *parse_value(parser *p, int depth);

static json *parse_number(parser *p) {
  const char *start = p->at;
  if (p->at < p->end && *p->at == '-') p->at++;
  if (p->at >= p->end || *p->at < '0' || *p->at > '9') return fail(p, "an unexpected character");
  if (*p->at == '0') p->at++;
  else while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
  if (p->at < p->end && *p->at == '.') {
    p->at++;
    if (p->at >= p->end || *p->at < '0' || *p->at > '9') return fail(p, "a bad number");
    while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
  }
  if (p->at < p->end && (*p->at == 'e' || *p->at == 'E')) {
    p->at++;
    if (p->at < p->end && (*p->at == '+' || *p->at == '-')) p->at++;
    if (p->at >= p->end || *p->at < '0' || *p->at > '9') return fail(p, "a bad number");
    while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
  }
  json *value = json_new(JSON_NUMBER);
  value->length = (size_t)(p->at - start);
  value->text = strndup(start, value->length);
  value->number = strtod(value->text, NULL);
  return value;
}

static bool literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(p->end - p->at) < n || memcmp(p->at, word, n) != 0) return false;
  p->at += n;
  return true;
}

static json *parse_value(parser *p, int depth) {
  if (depth > 128) return fail(p, "nesting deeper than 128");
  skip_space(p);
  if (p->at >= p->end) return fail(p, "an unexpected end of input");
  char c = *p->at;
  if (c == '"') {
    json_buffer text = {0};
    if (!parse_string(p, &text)) return NULL;
    json *value = json_new(JSON_STRING);
    value->text = text.data;
    value->length = text.length;
    return value;
  }
  if (c == '[' || c == '{') {
    bool object = c == '{';
    json *value = json_new(object ? JSON_OBJECT : JSON_ARRAY);
    p->at++;
    skip_space(p);
    if (p->at < p->end && *p->at == (object ? '}' : ']')) {
      p->at++;
      return value;
    }
    for (;;) {
      json_buffer key = {0};
      if (object) {
        skip_space(p);
        if (p->at >= p->end || *p->at != '"') return fail(p, "an object key that is not a string");
        if (!parse_string(p, &key)) return NULL;
        skip_space(p);
        if (p->at >= p->end || *p->at++ != ':') return fail(p, "a missing ':'");
      }
      json *item = parse_value(p, depth + 1);
      if (!item) return NULL;
      if (object) json_set(value, key.data, key.length, item);
      else json_push(value, item);
      skip_space(p);
      if (p->at < p->end && *p->at == ',') {
        p->at++;
        continue;
      }
      if (p->at < p->end && *p->at == (object ? '}' : ']')) {
        p->at++;
        return value;
      }
      return fail(p, object ? "a missing ',' or '}'" : "a missing ',' or ']'");
    }
  }
  bool truth = literal(p, "true");
  if (truth || literal(p, "false")) {
    json *value = json_new(JSON_BOOL);
    value->boolean = truth;
    return value;
  }
  if (literal(p, "null")) return json_new(JSON_NULL);
  return parse_number(p);
}

json *json_parse(const char *text, size_t length, const char **error) {
  parser p = {text, text + length, NULL};
  json *value = parse_value(&p, 0);
  skip_space(&p);
  if (value && p.at != p.end) value = fail(&p, "trailing characters");
  *error = p.error;
  return value;
}

bool json_equal(const json *a, const json *b) {
  if (a->type != b->type) return false;
  switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->number == b->number;
    case JSON_STRING: return a->length == b->length && memcmp(a->text, b->text, a->length) == 0;
    case JSON_ARRAY:
      if (a->count != b->count) return false;
      for (size_t i = 0; i < a->count; i++)
        if (!json_equal(a->items[i], b->items[i])) return false;
      return true;
    case JSON_OBJECT:
      if (a->count != b->count) return false;
      for (size_t i = 0; i < a->count; i++) {
        json *other = json_get(b, a->keys[i]);
        if (!other || !json_equal(a->items[i], other)) return false;
      }
      return true;
  }
  return false;
}

static void print_string(json_buffer *out, const char *text, size_t length) {
  append(out, "\"", 1);
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == '"' || c == '\\') {
      char escaped[2] = {'\\', (char)c};
      append(out, escaped, 2);
    } else if (c < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof escaped, "\\u%04x", c);
      append(out, escaped, 6);
    } else {
      append(out, (const char *)&c, 1);
    }
  }
  append(out, "\"", 1);
}

void json_print(json_buffer *out, const json *value) {
  switch (value->type) {
    case JSON_NULL: append(out, "null", 4); break;
    case JSON_BOOL: value->boolean ? append(out, "true", 4) : append(out, "false", 5); break;
    case JSON_NUMBER: append(out, value->text, value->length); break;
    case JSON_STRING: print_string(out, value->text, value->length); break;
    case JSON_ARRAY:
    case JSON_OBJECT: {
      bool object = value->type == JSON_OBJECT;
      append(out, object ? "{" : "[", 1);
      for (size_t i = 0; i < value->count; i++) {
        if (i) append(out, ",", 1);
        if (object) {
          print_string(out, value->keys[i], value->key_lengths[i]);
          append(out, ":", 1);
        }
        json_print(out, value->items[i]);
      }
      append(out, object ? "}" : "]", 1);
    }
  }
}
