"""The sequential-thinking server: the reference server's behaviour, one history per session,
persisted; and (slow) the reference server itself from npm, proxied through the gateway,
answering the same calls the same way as ours."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from mnemogate.core.testing import running

SERVER = "sequential-thinking"
TOOL = "sequentialthinking"
REFERENCE_PACKAGE = "@modelcontextprotocol/server-sequential-thinking"


def thought(number: int, total: int, more: Any = True, **extra: Any) -> dict[str, Any]:
    return {
        "thought": f"thought {number}",
        "nextThoughtNeeded": more,
        "thoughtNumber": number,
        "totalThoughts": total,
        **extra,
    }


# The same calls for both servers: valid ones (with the reference's string coercions), branches,
# revisions, an estimate raised by a later thought, and invalid ones.
CALLS: list[dict[str, Any]] = [
    thought(1, 3),
    thought(2, 3, isRevision=True, revisesThought=1),
    thought(3, 3, branchFromThought=2, branchId="alt"),
    thought(4, 3, "true", branchFromThought=2, branchId="other"),
    thought(5, 5, branchFromThought=3, branchId="alt"),
    thought(6, 4, needsMoreThoughts=True),
    {**thought(7, 7, "FALSE"), "thoughtNumber": "7", "totalThoughts": "7"},
    thought(8, 8, False, branchId="no-branch-point"),
    thought(0, 3),
    thought(1, 3, "maybe"),
    {"thought": "missing fields"},
    thought(1, 3, isRevision="yes"),
    {**thought(2, 3), "thoughtNumber": 2.5},
]


async def test_thoughts_answer_like_the_reference(client: Any, mcp_call: Any) -> None:
    headers = {"X-Session-ID": "think-1"}
    results = [await mcp_call(client, SERVER, TOOL, call, headers=headers) for call in CALLS]
    structured = [r.get("structuredContent") for r in results[:8]]
    assert [s["thoughtHistoryLength"] for s in structured] == list(range(1, 9))
    assert structured[2]["branches"] == ["alt"] and structured[4]["branches"] == ["alt", "other"]
    assert structured[5]["totalThoughts"] == 6  # raised to the thought number
    assert structured[6] == {
        "thoughtNumber": 7,
        "totalThoughts": 7,
        "nextThoughtNeeded": False,
        "branches": ["alt", "other"],
        "thoughtHistoryLength": 7,
    }
    assert orjson.loads(results[0]["content"][0]["text"]) == structured[0]
    assert results[0]["content"][0]["text"].startswith('{\n  "thoughtNumber": 1,')
    assert all(r["isError"] is True for r in results[8:]) and all(r["isError"] is False for r in results[:8])


async def test_each_session_has_its_own_history_and_it_persists(make_app: Any, mcp_call: Any) -> None:
    app = make_app()
    async with running(app) as client:
        first = await mcp_call(client, SERVER, TOOL, thought(1, 2), headers={"X-Session-ID": "a"})
        other = await mcp_call(
            client,
            SERVER,
            TOOL,
            thought(1, 2, branchFromThought=1, branchId="b"),
            headers={"X-Session-ID": "b"},
        )
        assert first["structuredContent"]["thoughtHistoryLength"] == 1
        assert other["structuredContent"]["thoughtHistoryLength"] == 1
    async with running(app) as client:  # a restart: the histories are read back
        again = await mcp_call(client, SERVER, TOOL, thought(2, 2, False), headers={"X-Session-ID": "b"})
        assert again["structuredContent"]["thoughtHistoryLength"] == 2
        assert again["structuredContent"]["branches"] == ["b"]
        history = await client.post(
            f"/api/mcp-gateway/{SERVER}/rpc",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "resources/read",
                "params": {"uri": "thinking://history/current"},
            },
            headers={"X-Session-ID": "b"},
        )
        thoughts = orjson.loads(history.json()["result"]["contents"][0]["text"])
        assert [t["thought"] for t in thoughts] == ["thought 1", "thought 2"]
        assert thoughts[0]["branchId"] == "b" and thoughts[1]["nextThoughtNeeded"] is False


async def test_concurrent_thoughts_of_one_session_are_numbered_in_order(client: Any, mcp_call: Any) -> None:
    headers = {"X-Session-ID": "busy"}
    results = await asyncio.gather(
        *(mcp_call(client, SERVER, TOOL, thought(i, 20), headers=headers) for i in range(1, 21))
    )
    assert sorted(r["structuredContent"]["thoughtHistoryLength"] for r in results) == list(range(1, 21))


async def test_the_tool_is_described_like_the_reference(client: Any, mcp_rpc: Any) -> None:
    (tool,) = (await mcp_rpc(client, SERVER, "tools/list"))["result"]["tools"]
    assert tool["name"] == TOOL and tool["title"] == "Sequential Thinking"
    assert tool["description"].startswith("A detailed tool for dynamic and reflective problem-solving")
    schema = tool["inputSchema"]
    assert schema["required"] == ["thought", "nextThoughtNeeded", "thoughtNumber", "totalThoughts"]
    assert schema["properties"]["nextThoughtNeeded"]["type"] == ["boolean", "string"]
    assert tool["annotations"] == {
        "readOnlyHint": True,
        "destructiveHint": False,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    assert set(tool["outputSchema"]["properties"]) == {
        "thoughtNumber",
        "totalThoughts",
        "nextThoughtNeeded",
        "branches",
        "thoughtHistoryLength",
    }


@pytest.fixture(scope="module")
def reference_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference server, installed from npm into this test's own directory."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("Node.js and npm are needed for the reference server")
    directory = tmp_path_factory.mktemp("reference")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", REFERENCE_PACKAGE],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=240,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    script = directory / "node_modules" / REFERENCE_PACKAGE / "dist" / "index.js"
    assert script.is_file()
    return script


@pytest.mark.slow
async def test_the_reference_server_through_the_gateway_answers_like_ours(
    reference_server: Path, app_with: Any, mcp_rpc: Any, mcp_call: Any
) -> None:
    reference = {
        "name": "reference",
        "command": shutil.which("node"),
        "args": [str(reference_server)],
        "env": {"DISABLE_THOUGHT_LOGGING": "true"},
    }
    async with running(app_with(mcp_gateway={"servers": [reference]})) as client:
        # Calls to an external server wait (within the timeout) for it to connect.
        (theirs,) = (await mcp_rpc(client, "reference", "tools/list"))["result"]["tools"]
        (ours,) = (await mcp_rpc(client, SERVER, "tools/list"))["result"]["tools"]
        for field in ("name", "title", "description", "inputSchema", "annotations"):
            assert ours[field] == theirs[field], field
        assert set(ours["outputSchema"]["properties"]) == set(theirs["outputSchema"]["properties"])

        headers = {"X-Session-ID": "compare"}
        for call in CALLS:
            expected = await mcp_call(client, "reference", TOOL, call)
            actual = await mcp_call(client, SERVER, TOOL, call, headers=headers)
            failed = expected.get("isError", False)  # the reference leaves out a false isError
            assert actual["isError"] == failed, call
            if not failed:
                assert actual["structuredContent"] == expected["structuredContent"], call
                assert actual["content"] == expected["content"], call
