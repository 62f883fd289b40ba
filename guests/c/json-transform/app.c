// `json-transform`: filters, projects, sorts and limits a list of JSON
// records (world `pure`), with the same query language as the Rust guest.

#define _GNU_SOURCE  // memmem
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pure.h"

#define SCHEMA                                                                                          \
  "{\"type\":\"object\",\"required\":[\"records\"],\"properties\":{\"records\":{\"type\":\"array\","  \
  "\"items\":{\"type\":\"object\"}},\"where\":{\"type\":\"object\",\"required\":[\"field\",\"op\"]}," \
  "\"select\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"sort_by\":{\"type\":\"string\"}," \
  "\"descending\":{\"type\":\"boolean\"},\"limit\":{\"type\":\"integer\",\"minimum\":0}}}"

typedef exports_airlock_tool_tool_error_t tool_error;

static bool invalid(tool_error *err, const char *message) {
  err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT;
  pure_string_dup(&err->val.invalid_input, message);
  return false;
}

static int rank(const json *v) {
  if (!v) return 0;
  switch (v->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return 2;
    case JSON_NUMBER: return 3;
    case JSON_STRING: return 4;
    default: return 5;
  }
}

static int sign(double d) { return (d > 0) - (d < 0); }

// Strings compare bytewise, which for UTF-8 is code point order (as Rust's).
static int compare(const json *a, const json *b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra - rb;
  if (ra == 2) return a->boolean - b->boolean;
  if (ra == 3) return sign(a->number - b->number);
  if (ra == 4) {
    size_t n = a->length < b->length ? a->length : b->length;
    int c = memcmp(a->text, b->text, n);
    return c ? sign(c) : sign((double)a->length - (double)b->length);
  }
  return 0;
}

typedef struct {
  const char *field, *op;
  const json *value;
} filter;

static bool matches(const filter *f, const json *record) {
  const json *actual = json_get(record, f->field);
  if (strcmp(f->op, "exists") == 0) return actual != NULL;
  bool same = actual && json_equal(actual, f->value);
  if (strcmp(f->op, "eq") == 0) return same;
  if (strcmp(f->op, "ne") == 0) return !same;
  if (strcmp(f->op, "contains") == 0) {
    if (!actual) return false;
    if (actual->type == JSON_STRING && f->value->type == JSON_STRING)
      return memmem(actual->text, actual->length, f->value->text, f->value->length) != NULL || f->value->length == 0;
    if (actual->type == JSON_ARRAY)
      for (size_t i = 0; i < actual->count; i++)
        if (json_equal(actual->items[i], f->value)) return true;
    return false;
  }
  if (!actual) return false;
  int order = compare(actual, f->value);
  if (strcmp(f->op, "gt") == 0) return order > 0;
  if (strcmp(f->op, "ge") == 0) return order >= 0;
  if (strcmp(f->op, "lt") == 0) return order < 0;
  return order <= 0;  // le
}

static const char *sort_field;

// A stable merge sort: qsort is not stable, and equal keys keep input order.
static void sort_records(json **items, size_t count, json **scratch) {
  if (count < 2) return;
  size_t half = count / 2;
  sort_records(items, half, scratch);
  sort_records(items + half, count - half, scratch);
  size_t i = 0, j = half, k = 0;
  while (i < half && j < count)
    scratch[k++] = compare(json_get(items[j], sort_field), json_get(items[i], sort_field)) < 0 ? items[j++] : items[i++];
  while (i < half) scratch[k++] = items[i++];
  while (j < count) scratch[k++] = items[j++];
  memcpy(items, scratch, count * sizeof(json *));
}

static bool transform(const json *query, json_buffer *out, tool_error *err) {
  const json *records = json_get(query, "records");
  if (!records || records->type != JSON_ARRAY) return invalid(err, "`records` must be an array of objects");

  filter f = {0};
  const json *where = json_get(query, "where");
  if (where) {
    if (where->type != JSON_OBJECT) return invalid(err, "`where` must be an object");
    const json *field = json_get(where, "field"), *op = json_get(where, "op");
    if (!field || field->type != JSON_STRING) return invalid(err, "`where.field` must be a string");
    if (!op || op->type != JSON_STRING) return invalid(err, "`where.op` must be a string");
    f.field = field->text;
    f.op = op->text;
    f.value = json_get(where, "value");
    const char *ops[] = {"eq", "ne", "gt", "ge", "lt", "le", "contains", "exists"};
    bool known = false;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) known |= strcmp(f.op, ops[i]) == 0;
    char message[256];
    if (!known) {
      snprintf(message, sizeof message, "unknown `where.op` \"%s\": use eq, ne, gt, ge, lt, le, contains or exists", f.op);
      return invalid(err, message);
    }
    if (strcmp(f.op, "exists") != 0 && !f.value) {
      snprintf(message, sizeof message, "`where.op` \"%s\" needs a `where.value`", f.op);
      return invalid(err, message);
    }
  }

  json *matched = json_new(JSON_ARRAY);
  for (size_t i = 0; i < records->count; i++) {
    json *record = records->items[i];
    if (record->type != JSON_OBJECT) {
      char message[64];
      snprintf(message, sizeof message, "records[%zu] is not an object", i);
      return invalid(err, message);
    }
    if (!where || matches(&f, record)) json_push(matched, record);
  }

  const json *sort_by = json_get(query, "sort_by");
  if (sort_by) {
    if (sort_by->type != JSON_STRING) return invalid(err, "`sort_by` must be a field name");
    sort_field = sort_by->text;
    json **scratch = malloc((matched->count + 1) * sizeof(json *));
    if (!scratch) abort();
    sort_records(matched->items, matched->count, scratch);
    const json *descending = json_get(query, "descending");
    if (descending && descending->type == JSON_BOOL && descending->boolean)
      for (size_t i = 0, j = matched->count; i + 1 < j; i++, j--) {
        json *t = matched->items[i];
        matched->items[i] = matched->items[j - 1];
        matched->items[j - 1] = t;
      }
  }

  size_t total = matched->count, limit = total;
  const json *limit_value = json_get(query, "limit");
  if (limit_value) {
    if (limit_value->type != JSON_NUMBER || strpbrk(limit_value->text, ".eE-") != NULL)
      return invalid(err, "`limit` must be a non-negative integer");
    if (limit_value->number < (double)total) limit = (size_t)limit_value->number;
  }
  const json *select = json_get(query, "select");
  if (select) {
    bool names = select->type == JSON_ARRAY;
    for (size_t i = 0; names && i < select->count; i++) names = select->items[i]->type == JSON_STRING;
    if (!names) return invalid(err, "`select` must be an array of field names");
  }

  json *picked = json_new(JSON_ARRAY);
  for (size_t i = 0; i < limit; i++) {
    json *record = matched->items[i];
    if (select) {
      json *projected = json_new(JSON_OBJECT);
      for (size_t k = 0; k < select->count; k++) {
        const json *name = select->items[k];
        json *v = json_get(record, name->text);
        if (v) json_set(projected, name->text, name->length, v);
      }
      record = projected;
    }
    json_push(picked, record);
  }
  json *result = json_new(JSON_OBJECT);
  json_set(result, "count", 5, json_integer((long long)picked->count));
  json_set(result, "matched", 7, json_integer((long long)total));
  json_set(result, "records", 7, picked);
  json_print(out, result);
  return true;
}

void exports_airlock_tool_tool_describe(exports_airlock_tool_tool_descriptor_t *ret) {
  pure_string_dup(&ret->name, "json-transform");
  pure_string_dup(&ret->version, "0.1.0");
  pure_string_dup(&ret->description, "Filters, projects, sorts and limits a list of JSON records.");
  pure_string_dup(&ret->input_schema, SCHEMA);
}

bool exports_airlock_tool_tool_call(pure_string_t *input, pure_string_t *ret, tool_error *err) {
  const char *problem = NULL;
  json *query = json_parse((const char *)input->ptr, input->len, &problem);
  if (!query) {
    char message[128];
    snprintf(message, sizeof message, "input is not JSON: %s", problem);
    return invalid(err, message);
  }
  json_buffer out = {0};
  if (!transform(query, &out, err)) return false;
  ret->ptr = (uint8_t *)out.data;
  ret->len = out.length;
  return true;
}
