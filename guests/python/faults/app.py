"""`faults` (fixture): fails on request, so the conformance suite can check
that every language maps errors and meets limits the same way.

Input: `{"error": "invalid-input"|"denied"|"failed", "message": "..."}`
returns that error; `{"spin": true}` never returns; `{"allocate_mb": N}`
keeps N MiB alive and reports it."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import tool

ERRORS = {
    "invalid-input": tool.Error_InvalidInput,
    "denied": tool.Error_Denied,
    "failed": tool.Error_Failed,
}


class Tool(wit_world.exports.Tool):
    def describe(self) -> tool.Descriptor:
        return tool.Descriptor(
            name="faults",
            version="0.1.0",
            description="Fixture: returns the error it is asked for, spins, or allocates.",
            input_schema="{}",
        )

    def call(self, input: str) -> str:
        query = json.loads(input)
        if query.get("error") in ERRORS:
            raise Err(ERRORS[query["error"]](query.get("message", "")))
        if query.get("spin") is True:
            while True:
                pass
        if isinstance(query.get("allocate_mb"), int):
            blocks = [bytearray(1 << 20) for _ in range(query["allocate_mb"])]
            return json.dumps({"allocated_mb": len(blocks)})
        raise Err(tool.Error_InvalidInput("give `error`, `spin` or `allocate_mb`"))
