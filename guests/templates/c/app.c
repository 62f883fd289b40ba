// `{{name}}`: an airlock tool (world `{{world}}`). Input {"name": "..."},
// output {"greeting": "Hello, ...!"}. The name is found as text: a real tool
// would use a JSON parser.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{{world_c}}.h"

void exports_airlock_tool_tool_describe(exports_airlock_tool_tool_descriptor_t *ret) {
  {{world_c}}_string_dup(&ret->name, "{{name}}");
  {{world_c}}_string_dup(&ret->version, "0.1.0");
  {{world_c}}_string_dup(&ret->description, "Greets whoever the input names.");
  {{world_c}}_string_dup(&ret->input_schema,
                         "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\"}}}");
}

bool exports_airlock_tool_tool_call({{world_c}}_string_t *input, {{world_c}}_string_t *ret,
                                    exports_airlock_tool_tool_error_t *err) {
  char *text = strndup((const char *)input->ptr, input->len);
  const char *key = strstr(text, "\"name\"");
  const char *start = key ? strchr(key + 6, '"') : NULL;
  const char *end = start ? strchr(start + 1, '"') : NULL;
  if (!end) {
    err->tag = EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT;
    {{world_c}}_string_dup(&err->val.invalid_input, "give {\"name\": \"...\"}");
    free(text);
    return false;
  }
  size_t size = (size_t)(end - start) + 32;
  char *out = malloc(size);
  snprintf(out, size, "{\"greeting\":\"Hello, %.*s!\"}", (int)(end - start - 1), start + 1);
  free(text);
  ret->ptr = (uint8_t *)out;
  ret->len = strlen(out);
  return true;
}
