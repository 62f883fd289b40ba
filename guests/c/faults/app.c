// `faults` (fixture): fails on request, so the conformance suite can check
// that every language maps errors and meets limits the same way.
//
// Input: {"error": "invalid-input"|"denied"|"failed", "message": "..."}
// returns that error; {"spin": true} never returns; {"allocate_mb": N} keeps
// N MiB alive and reports it. The input is matched as text: this fixture
// needs no JSON parser.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

typedef exports_airlock_tool_tool_error_t tool_error;

static char **volatile held;

// The string value of "key" in `input`, without escapes, or NULL.
static char *text_of(const char *input, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *start = strstr(input, pattern);
  if (!start) return NULL;
  start += strlen(pattern);
  const char *end = strchr(start, '"');
  return end ? strndup(start, (size_t)(end - start)) : NULL;
}

void exports_airlock_tool_tool_describe(exports_airlock_tool_tool_descriptor_t *ret) {
  pure_string_dup(&ret->name, "faults");
  pure_string_dup(&ret->version, "0.1.0");
  pure_string_dup(&ret->description, "Fixture: returns the error it is asked for, spins, or allocates.");
  pure_string_dup(&ret->input_schema, "{}");
}

bool exports_airlock_tool_tool_call(pure_string_t *input, pure_string_t *ret, tool_error *err) {
  char *text = strndup((const char *)input->ptr, input->len);
  char *kind = text_of(text, "error");
  if (kind) {
    char *message = text_of(text, "message");
    pure_string_t *slot = &err->val.failed;
    if (strcmp(kind, "invalid-input") == 0) err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT, slot = &err->val.invalid_input;
    else if (strcmp(kind, "denied") == 0) err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_DENIED, slot = &err->val.denied;
    else err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED;
    pure_string_dup(slot, message ? message : "");
    return false;
  }
  if (strstr(text, "\"spin\":true")) {
    for (volatile int spinning = 1; spinning;) {
    }
  }
  const char *allocate = strstr(text, "\"allocate_mb\":");
  if (allocate) {
    long blocks = strtol(allocate + strlen("\"allocate_mb\":"), NULL, 10), kept = 0;
    for (; kept < blocks; kept++) {
      char **block = malloc(1 << 20);
      if (!block) break;
      memset(block, 1, 1 << 20);
      *block = (char *)held;  // a chain from a global: the compiler cannot drop it
      held = block;
    }
    if (kept < blocks) {
      err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED;
      pure_string_dup(&err->val.failed, "out of memory");
      return false;
    }
    char out[64];
    snprintf(out, sizeof out, "{\"allocated_mb\":%ld}", kept);
    pure_string_dup(ret, out);
    return true;
  }
  err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT;
  pure_string_dup(&err->val.invalid_input, "give `error`, `spin` or `allocate_mb`");
  return false;
}
