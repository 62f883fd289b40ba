// `http-get`: fetches a URL through wasi:http (world `network`) and returns
// `{"status": N, "body": "..."}`. Input: `{"url": "http://host/path"}`.
//
// `fetch()` works too (StarlingMonkey runs it over wasi:http), but it turns
// every refusal into the same NetworkError. This tool calls wasi:http
// directly so that a request the operator did not grant is reported as
// `denied` with the host's error code, as in every other language.

import { handle } from "wasi:http/outgoing-handler@0.2.12";
import { Fields, OutgoingBody, OutgoingRequest } from "wasi:http/types@0.2.12";

const MAX_BODY = 1 << 20;
const DENIED = ["HTTP-request-denied", "destination-IP-prohibited"];

function httpError(code) {
  return { tag: DENIED.includes(code.tag) ? "denied" : "failed", val: code.tag };
}

function split(url) {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?]*)(.*)$/.exec(url);
  if (!match) throw { tag: "invalid-input", val: `\`${url}\` has no \`scheme://\`` };
  const [, scheme, authority, path] = match;
  const kinds = { http: { tag: "HTTP" }, https: { tag: "HTTPS" } };
  return [kinds[scheme] ?? { tag: "other", val: scheme }, authority, path || "/"];
}

function fetchOnce(url) {
  const [scheme, authority, path] = split(url);
  const request = new OutgoingRequest(new Fields());
  request.setMethod({ tag: "get" });
  request.setScheme(scheme);
  request.setAuthority(authority);
  request.setPathWithQuery(path);
  const body = request.body();
  let pending;
  try {
    pending = handle(request, undefined);
  } catch (e) {
    throw httpError(e.payload);
  }
  OutgoingBody.finish(body, undefined);
  pending.subscribe().block();
  const ready = pending.get();
  if (ready === undefined) throw { tag: "failed", val: "the response was not ready after blocking" };
  if (ready.val.tag === "err") throw httpError(ready.val.val);
  const response = ready.val.val;
  const status = response.status();
  const stream = response.consume().stream();
  const chunks = [];
  let size = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if (e.payload?.tag === "closed") break;
      throw { tag: "failed", val: "reading the response body failed" };
    }
    size += chunk.length;
    if (size > MAX_BODY) throw { tag: "failed", val: `the body is over ${MAX_BODY} bytes` };
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return { status, body: new TextDecoder().decode(bytes) };
}

export const tool = {
  describe() {
    return {
      name: "http-get",
      version: "0.1.0",
      description: "Makes an HTTP GET request and returns its status and body.",
      inputSchema: '{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}',
    };
  },

  call(input) {
    let url;
    try {
      url = JSON.parse(input).url;
    } catch {
      url = undefined;
    }
    if (typeof url !== "string") throw { tag: "invalid-input", val: "`url` is required" };
    return JSON.stringify(fetchOnce(url));
  },
};
