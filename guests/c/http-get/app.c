// `http-get`: fetches a URL through wasi:http (world `network`) and returns
// {"status": N, "body": "..."}. Input: {"url": "http://host/path"} (the URL
// is found as text: this tool needs no JSON parser).
//
// Every request goes through airlock's egress policy: a request the
// operator did not grant fails with HTTP-request-denied (or
// destination-IP-prohibited), which this tool reports as `denied`.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"

#define MAX_BODY (1 << 20)

typedef exports_airlock_tool_tool_error_t tool_error;

static bool fail(tool_error *err, uint8_t tag, const char *message) {
  err->tag = tag;
  network_string_dup(&err->val.failed, message);  // every case holds a string
  return false;
}

static bool http_error(tool_error *err, const wasi_http_types_error_code_t *code) {
  switch (code->tag) {
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED:
      return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_DENIED, "HTTP-request-denied");
    case WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED:
      return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_DENIED, "destination-IP-prohibited");
  }
  char message[64];
  snprintf(message, sizeof message, "the request failed (wasi:http error %u)", code->tag);
  return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED, message);
}

static void put(char **out, size_t *length, const char *bytes, size_t n) {
  *out = realloc(*out, *length + n + 1);
  if (!*out) abort();
  memcpy(*out + *length, bytes, n);
  *length += n;
}

// The body as a JSON string: quotes, backslashes and control bytes escaped.
static void put_json_string(char **out, size_t *length, const uint8_t *bytes, size_t n) {
  put(out, length, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    char escaped[8];
    if (bytes[i] == '"' || bytes[i] == '\\') snprintf(escaped, sizeof escaped, "\\%c", bytes[i]);
    else if (bytes[i] < 0x20) snprintf(escaped, sizeof escaped, "\\u%04x", bytes[i]);
    else escaped[0] = (char)bytes[i], escaped[1] = 0;
    put(out, length, escaped, strlen(escaped));
  }
  put(out, length, "\"", 1);
}

static bool fetch(const char *url, network_string_t *ret, tool_error *err) {
  const char *rest = strstr(url, "://");
  if (!rest) return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT, "the url has no `scheme://`");
  char *scheme_name = strndup(url, (size_t)(rest - url));
  rest += 3;
  size_t authority_length = strcspn(rest, "/?");
  char *authority = strndup(rest, authority_length);
  const char *path = rest[authority_length] ? rest + authority_length : "/";

  wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_OTHER};
  if (strcmp(scheme_name, "http") == 0) scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTP;
  else if (strcmp(scheme_name, "https") == 0) scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTPS;
  else network_string_dup(&scheme.val.other, scheme_name);
  wasi_http_types_method_t method = {.tag = WASI_HTTP_TYPES_METHOD_GET};
  network_string_t authority_text, path_text;
  network_string_dup(&authority_text, authority);
  network_string_dup(&path_text, path);

  wasi_http_types_own_outgoing_request_t request =
      wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
  wasi_http_types_borrow_outgoing_request_t borrowed = wasi_http_types_borrow_outgoing_request(request);
  wasi_http_types_method_outgoing_request_set_method(borrowed, &method);
  wasi_http_types_method_outgoing_request_set_scheme(borrowed, &scheme);
  wasi_http_types_method_outgoing_request_set_authority(borrowed, &authority_text);
  wasi_http_types_method_outgoing_request_set_path_with_query(borrowed, &path_text);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_request_body(borrowed, &body);

  wasi_http_outgoing_handler_own_future_incoming_response_t pending;
  wasi_http_outgoing_handler_error_code_t code;
  if (!wasi_http_outgoing_handler_handle(request, NULL, &pending, &code)) return http_error(err, &code);
  wasi_http_types_error_code_t finish_error;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_error);

  wasi_http_types_borrow_future_incoming_response_t future = wasi_http_types_borrow_future_incoming_response(pending);
  wasi_io_poll_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(future);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t result;
  if (!wasi_http_types_method_future_incoming_response_get(future, &result) || result.is_err)
    return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED, "the response was not ready after blocking");
  if (result.val.ok.is_err) return http_error(err, &result.val.ok.val.err);
  wasi_http_types_own_incoming_response_t response = result.val.ok.val.ok;
  wasi_http_types_borrow_incoming_response_t response_ref = wasi_http_types_borrow_incoming_response(response);
  unsigned status = wasi_http_types_method_incoming_response_status(response_ref);

  wasi_http_types_own_incoming_body_t incoming;
  wasi_http_types_own_input_stream_t stream;
  if (!wasi_http_types_method_incoming_response_consume(response_ref, &incoming) ||
      !wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(incoming), &stream))
    return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED, "the response body was already taken");
  uint8_t *data = NULL;
  size_t size = 0;
  for (;;) {
    network_list_u8_t chunk;
    wasi_io_streams_stream_error_t read_error;
    if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 65536, &chunk,
                                                          &read_error)) {
      if (read_error.tag == WASI_IO_STREAMS_STREAM_ERROR_CLOSED) break;
      return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED, "reading the response body failed");
    }
    if (size + chunk.len > MAX_BODY) return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_FAILED, "the body is over 1048576 bytes");
    data = realloc(data, size + chunk.len + 1);
    if (!data) abort();
    memcpy(data + size, chunk.ptr, chunk.len);
    size += chunk.len;
    network_list_u8_free(&chunk);
  }

  char *out = NULL;
  size_t length = 0;
  char head[48];
  snprintf(head, sizeof head, "{\"status\":%u,\"body\":", status);
  put(&out, &length, head, strlen(head));
  put_json_string(&out, &length, data, size);
  put(&out, &length, "}", 1);
  ret->ptr = (uint8_t *)out;
  ret->len = length;
  return true;
}

void exports_airlock_tool_tool_describe(exports_airlock_tool_tool_descriptor_t *ret) {
  network_string_dup(&ret->name, "http-get");
  network_string_dup(&ret->version, "0.1.0");
  network_string_dup(&ret->description, "Makes an HTTP GET request and returns its status and body.");
  network_string_dup(&ret->input_schema,
                     "{\"type\":\"object\",\"required\":[\"url\"],\"properties\":{\"url\":{\"type\":\"string\"}}}");
}

bool exports_airlock_tool_tool_call(network_string_t *input, network_string_t *ret, tool_error *err) {
  char *text = strndup((const char *)input->ptr, input->len);
  const char *key = strstr(text, "\"url\"");
  const char *start = key ? strchr(key + 5, '"') : NULL;
  const char *end = start ? strchr(start + 1, '"') : NULL;
  if (!end) return fail(err, EXPORTS_AIRLOCK_TOOL_TOOL_ERROR_INVALID_INPUT, "`url` is required");
  char *url = strndup(start + 1, (size_t)(end - start - 1));
  return fetch(url, ret, err);
}
