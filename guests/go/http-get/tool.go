// Package export_airlock_tool_tool is the `http-get` tool: it fetches a URL
// through wasi:http (world `network`) and returns {"status": N, "body":
// "..."}. Input: {"url": "http://host/path"}.
//
// Every request goes through airlock's egress policy: a request the operator
// did not grant fails with HTTP-request-denied (or destination-IP-prohibited),
// which this tool reports as the `denied` error.
package export_airlock_tool_tool

import (
	"encoding/json"
	"fmt"
	"regexp"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/airlock_tool_tool"
	http "wit_component/wasi_http_outgoing_handler"
	"wit_component/wasi_http_types"
	"wit_component/wasi_io_streams"
)

const maxBody = 1 << 20

var urlParts = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?]*)(.*)$`)

type result = witTypes.Result[string, Error]

func fail(e Error) result { return witTypes.Err[string, Error](e) }

func httpError(code wasi_http_types.ErrorCode) result {
	switch code.Tag() {
	case wasi_http_types.ErrorCode_HttpRequestDenied:
		return fail(MakeErrorDenied("HTTP-request-denied"))
	case wasi_http_types.ErrorCode_DestinationIpProhibited:
		return fail(MakeErrorDenied("destination-IP-prohibited"))
	}
	return fail(MakeErrorFailed(fmt.Sprintf("the request failed (wasi:http error %d)", code.Tag())))
}

func fetch(url string) result {
	parts := urlParts.FindStringSubmatch(url)
	if parts == nil {
		return fail(MakeErrorInvalidInput(fmt.Sprintf("`%s` has no `scheme://`", url)))
	}
	scheme := wasi_http_types.MakeSchemeOther(parts[1])
	switch parts[1] {
	case "http":
		scheme = wasi_http_types.MakeSchemeHttp()
	case "https":
		scheme = wasi_http_types.MakeSchemeHttps()
	}
	path := parts[3]
	if path == "" {
		path = "/"
	}
	request := wasi_http_types.MakeOutgoingRequest(wasi_http_types.MakeFields())
	request.SetMethod(wasi_http_types.MakeMethodGet())
	request.SetScheme(witTypes.Some(scheme))
	request.SetAuthority(witTypes.Some(parts[2]))
	request.SetPathWithQuery(witTypes.Some(path))
	body := request.Body().Ok()
	sent := http.Handle(request, witTypes.None[*wasi_http_types.RequestOptions]())
	if sent.IsErr() {
		return httpError(sent.Err())
	}
	wasi_http_types.OutgoingBodyFinish(body, witTypes.None[*wasi_http_types.Fields]())
	pending := sent.Ok()
	pending.Subscribe().Block()
	ready := pending.Get()
	if ready.IsNone() || ready.Some().IsErr() {
		return fail(MakeErrorFailed("the response was not ready after blocking"))
	}
	outcome := ready.Some().Ok()
	if outcome.IsErr() {
		return httpError(outcome.Err())
	}
	response := outcome.Ok()
	status := response.Status()
	stream := response.Consume().Ok().Stream().Ok()
	var data []byte
	for {
		chunk := stream.BlockingRead(64 * 1024)
		if chunk.IsErr() {
			if chunk.Err().Tag() == wasi_io_streams.StreamError_Closed {
				break
			}
			return fail(MakeErrorFailed("reading the response body failed"))
		}
		data = append(data, chunk.Ok()...)
		if len(data) > maxBody {
			return fail(MakeErrorFailed(fmt.Sprintf("the body is over %d bytes", maxBody)))
		}
	}
	out, _ := json.Marshal(map[string]any{"status": status, "body": string(data)})
	return witTypes.Ok[string, Error](string(out))
}

func Describe() Descriptor {
	return Descriptor{
		Name:        "http-get",
		Version:     "0.1.0",
		Description: "Makes an HTTP GET request and returns its status and body.",
		InputSchema: `{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}`,
	}
}

func Call(input string) witTypes.Result[string, Error] {
	var query struct {
		URL *string `json:"url"`
	}
	if err := json.Unmarshal([]byte(input), &query); err != nil || query.URL == nil {
		return fail(MakeErrorInvalidInput("`url` is required"))
	}
	return fetch(*query.URL)
}
