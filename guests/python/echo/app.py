"""`echo`: returns its JSON input unchanged (world `pure`)."""

import wit_world
from wit_world.exports import tool


class Tool(wit_world.exports.Tool):
    def describe(self) -> tool.Descriptor:
        return tool.Descriptor(
            name="echo",
            version="0.1.0",
            description="Returns its JSON input unchanged.",
            input_schema="{}",
        )

    def call(self, input: str) -> str:
        return input
