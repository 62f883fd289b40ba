// Package export_airlock_tool_tool is the `faults` fixture: it fails on
// request, so the conformance suite can check that every language maps
// errors and meets limits the same way.
//
// Input: {"error": "invalid-input"|"denied"|"failed", "message": "..."}
// returns that error; {"spin": true} never returns; {"allocate_mb": N} keeps
// N MiB alive and reports it.
package export_airlock_tool_tool

import (
	"encoding/json"
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/airlock_tool_tool"
)

type query struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	Spin       bool   `json:"spin"`
	AllocateMB *int   `json:"allocate_mb"`
}

var kept [][]byte

func Describe() Descriptor {
	return Descriptor{
		Name:        "faults",
		Version:     "0.1.0",
		Description: "Fixture: returns the error it is asked for, spins, or allocates.",
		InputSchema: "{}",
	}
}

func Call(input string) witTypes.Result[string, Error] {
	fail := func(e Error) witTypes.Result[string, Error] { return witTypes.Err[string, Error](e) }
	var q query
	if err := json.Unmarshal([]byte(input), &q); err != nil {
		return fail(MakeErrorInvalidInput(fmt.Sprintf("input is not JSON: %v", err)))
	}
	switch {
	case q.Error == "invalid-input":
		return fail(MakeErrorInvalidInput(q.Message))
	case q.Error == "denied":
		return fail(MakeErrorDenied(q.Message))
	case q.Error == "failed":
		return fail(MakeErrorFailed(q.Message))
	case q.Spin:
		for {
		}
	case q.AllocateMB != nil:
		for i := 0; i < *q.AllocateMB; i++ {
			block := make([]byte, 1<<20)
			for j := range block {
				block[j] = 1
			}
			kept = append(kept, block)
		}
		n := len(kept)
		kept = nil
		return witTypes.Ok[string, Error](fmt.Sprintf(`{"allocated_mb":%d}`, n))
	}
	return fail(MakeErrorInvalidInput("give `error`, `spin` or `allocate_mb`"))
}
