// Package export_airlock_tool_tool is the `echo` tool: it returns its JSON
// input unchanged (world `pure`). wit-bindgen's Go output calls Describe and
// Call from this package.
package export_airlock_tool_tool

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/airlock_tool_tool"
)

func Describe() Descriptor {
	return Descriptor{
		Name:        "echo",
		Version:     "0.1.0",
		Description: "Returns its JSON input unchanged.",
		InputSchema: "{}",
	}
}

func Call(input string) witTypes.Result[string, Error] {
	return witTypes.Ok[string, Error](input)
}
