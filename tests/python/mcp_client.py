"""Drives `airlock serve` with the official MCP Python SDK (the `mcp`
package), as an agent would: list the tools, call them, read an error
result, and make a network call that waits until an operator decides.

    mcp_client.py stdio AIRLOCK STATE_DIR CONFIG FETCH_URL RESOLVE [--answer DECISION]
    mcp_client.py http URL TOKEN FETCH_URL [--answer DECISION]

Prints one JSON object per line on stdout: `{"event": "waiting", ...}` when
the network call waits (with the approval id the operator needs), then
`{"event": "done", ...}`. Any surprise raises, so the exit code is non-zero.

With `--answer DECISION` the client plays the human at the client of a
server with `approvals = "client"`: it answers the approval question
(an elicitation) with DECISION (`allow_once`) and prints
`{"event": "asked", ...}`; nobody else decides.
Works with the SDK's 1.x line (`ClientSession`, protocol 2025-11-25) and its
2.x line (`Client`, which negotiates 2026-07-28)."""

import asyncio
import json
import re
import sys
from contextlib import AsyncExitStack

import mcp
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def field(obj, camel):
    """A model field by its wire name: 1.x spells attributes camelCase,
    2.x snake_case."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return getattr(obj, camel) if hasattr(obj, camel) else getattr(obj, snake)


def text_of(result):
    return "".join(getattr(block, "text", "") for block in result.content)


def answerer(decision):
    """An elicitation callback that answers as the human would."""
    from mcp.types import ElicitResult

    async def answer(context, params):
        say("asked", message=params.message)
        return ElicitResult(action="accept", content={"decision": decision})

    return answer


async def exercise(session, protocol, fetch_url, answering):
    listed = await session.list_tools()
    names = [tool.name for tool in listed.tools]
    assert names[:2] == ["echo", "json-transform"], names
    fetch = next(tool for tool in listed.tools if tool.name == "fetch")
    assert field(fetch.annotations, "openWorldHint") is True, fetch.annotations

    echoed = await session.call_tool("echo", {"from": "python"})
    assert not field(echoed, "isError"), text_of(echoed)
    assert field(echoed, "structuredContent") == {"from": "python"}, echoed

    refused = await session.call_tool(
        "json-transform", {"records": [], "where": {"field": "n", "op": "between"}}
    )
    assert field(refused, "isError"), text_of(refused)
    assert text_of(refused).startswith("tool_invalid_input: "), text_of(refused)

    announced = []

    async def progress(progress, total, message):
        if message and message not in announced:
            announced.append(message)
            approval = re.search(r"approval ([0-9A-Z]{26})", message)
            say("waiting", message=message, approval=approval.group(1) if approval else None)

    fetched = await session.call_tool("fetch", {"url": fetch_url}, progress_callback=progress)
    # Asked at the client, a call on 2026-07-28 never waits on the server.
    assert announced or answering, "the waiting call reported progress"
    assert not field(fetched, "isError"), text_of(fetched)
    assert field(fetched, "structuredContent")["status"] == 200, fetched
    say("done", protocol=str(protocol), tools=names)


async def main(argv):
    answer = None
    if "--answer" in argv:
        at = argv.index("--answer")
        answer = answerer(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    mode = argv[1]
    async with AsyncExitStack() as stack:
        if mode == "stdio":
            airlock, state, config, fetch_url, resolve = argv[2:7]
            server = StdioServerParameters(
                command=airlock,
                args=["--state-dir", state, "serve", "--stdio", "--config", config,
                      "--resolve", resolve, "--no-dns"],
            )
            transport = stdio_client(server)
        else:
            url, token, fetch_url = argv[2:5]
            client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            await stack.enter_async_context(client)
            server = transport = streamable_http_client(url, http_client=client)
        if hasattr(mcp, "Client"):
            session = await stack.enter_async_context(
                mcp.Client(server, elicitation_callback=answer)
            )
            protocol = session.protocol_version
        else:
            streams = await stack.enter_async_context(transport)
            session = await stack.enter_async_context(
                ClientSession(streams[0], streams[1], elicitation_callback=answer)
            )
            protocol = field(await session.initialize(), "protocolVersion")
        await exercise(session, protocol, fetch_url, answer is not None)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
