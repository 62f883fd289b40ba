"""`http-get`: fetches a URL through wasi:http (world `network`) and returns
`{"status": N, "body": "..."}`. Input: `{"url": "http://host/path"}`.

Every request goes through airlock's egress policy: a request the operator
did not grant fails with `HttpRequestDenied` (or `DestinationIpProhibited`),
which this tool reports as the `denied` error."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import tool
from wit_world.imports import outgoing_handler, streams, types

MAX_BODY = 1 << 20
DENIED = (types.ErrorCode_HttpRequestDenied, types.ErrorCode_DestinationIpProhibited)


def http_error(code) -> Err:
    text = type(code).__name__.removeprefix("ErrorCode_")
    if isinstance(code, DENIED):
        return Err(tool.Error_Denied(text))
    return Err(tool.Error_Failed(text))


def split(url: str):
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise Err(tool.Error_InvalidInput(f"`{url}` has no `scheme://`"))
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    kinds = {"http": types.Scheme_Http(), "https": types.Scheme_Https()}
    return kinds.get(scheme, types.Scheme_Other(scheme)), rest[:end], rest[end:] or "/"


def fetch(url: str) -> dict:
    scheme, authority, path = split(url)
    request = types.OutgoingRequest(types.Fields())
    request.set_method(types.Method_Get())
    request.set_scheme(scheme)
    request.set_authority(authority)
    request.set_path_with_query(path)
    body = request.body()
    try:
        pending = outgoing_handler.handle(request, None)
    except Err as e:
        raise http_error(e.value)
    types.OutgoingBody.finish(body, None)
    pending.subscribe().block()
    ready = pending.get()
    if ready is None:
        raise Err(tool.Error_Failed("the response was not ready after blocking"))
    outcome = ready.value
    if isinstance(outcome, Err):
        raise http_error(outcome.value)
    response = outcome.value
    status = response.status()
    incoming = response.consume()
    stream = incoming.stream()
    data = bytearray()
    while True:
        try:
            data += stream.blocking_read(64 * 1024)
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise Err(tool.Error_Failed("reading the response body failed"))
        if len(data) > MAX_BODY:
            raise Err(tool.Error_Failed(f"the body is over {MAX_BODY} bytes"))
    return {"status": status, "body": data.decode("utf-8", errors="replace")}


class Tool(wit_world.exports.Tool):
    def describe(self) -> tool.Descriptor:
        return tool.Descriptor(
            name="http-get",
            version="0.1.0",
            description="Makes an HTTP GET request and returns its status and body.",
            input_schema='{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}',
        )

    def call(self, input: str) -> str:
        try:
            url = json.loads(input).get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str):
            raise Err(tool.Error_InvalidInput("`url` is required"))
        return json.dumps(fetch(url), separators=(",", ":"), ensure_ascii=False)
