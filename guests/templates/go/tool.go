// Package export_airlock_tool_tool is `{{name}}`, an airlock tool (world
// `{{world}}`): input {"name": "..."}, output {"greeting": "Hello, ...!"}.
// wit-bindgen's Go output calls Describe and Call from this package.
package export_airlock_tool_tool

import (
	"encoding/json"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/airlock_tool_tool"
)

func Describe() Descriptor {
	return Descriptor{
		Name:        "{{name}}",
		Version:     "0.1.0",
		Description: "Greets whoever the input names.",
		InputSchema: `{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}`,
	}
}

func Call(input string) witTypes.Result[string, Error] {
	var query struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal([]byte(input), &query); err != nil || query.Name == nil {
		return witTypes.Err[string, Error](MakeErrorInvalidInput(`give {"name": "..."}`))
	}
	out, _ := json.Marshal(map[string]string{"greeting": "Hello, " + *query.Name + "!"})
	return witTypes.Ok[string, Error](string(out))
}
