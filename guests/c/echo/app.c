// `echo`: returns its JSON input unchanged (world `pure`).

#include "pure.h"

void exports_airlock_tool_tool_describe(exports_airlock_tool_tool_descriptor_t *ret) {
  pure_string_dup(&ret->name, "echo");
  pure_string_dup(&ret->version, "0.1.0");
  pure_string_dup(&ret->description, "Returns its JSON input unchanged.");
  pure_string_dup(&ret->input_schema, "{}");
}

bool exports_airlock_tool_tool_call(pure_string_t *input, pure_string_t *ret,
                                    exports_airlock_tool_tool_error_t *err) {
  (void)err;
  *ret = *input;  // the input's memory becomes the output's
  return true;
}
