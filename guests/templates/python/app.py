"""`{{name}}`: an airlock tool (world `{{world}}`). Input `{"name": "..."}`,
output `{"greeting": "Hello, ...!"}`."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import tool


class Tool(wit_world.exports.Tool):
    def describe(self) -> tool.Descriptor:
        return tool.Descriptor(
            name="{{name}}",
            version="0.1.0",
            description="Greets whoever the input names.",
            input_schema='{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}',
        )

    def call(self, input: str) -> str:
        query = json.loads(input)
        name = query.get("name") if isinstance(query, dict) else None
        if not isinstance(name, str):
            raise Err(tool.Error_InvalidInput('give {"name": "..."}'))
        return json.dumps({"greeting": f"Hello, {name}!"}, ensure_ascii=False)
