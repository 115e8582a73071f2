"""A small external MCP server for the gateway's tests, built on the mcp SDK: run as a stdio
subprocess (``python external_server.py``) or served over streamable HTTP (``http_app()``).

It writes a marker to stderr on start and on every call of ``noisy``, so tests can check that a
server's stderr never reaches a client; ``crash`` kills the process mid-call.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

STDERR_MARKER = "EXTERNAL-STDERR-SECRET-7f3a"


def build() -> MCPServer:
    server = MCPServer("external-test-server", version="1.2.3", instructions="test server")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Sleep, then say so."""
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    def noisy() -> str:
        """Write a secret to stderr and answer something else."""
        print(f"{STDERR_MARKER} token=sk-{'x' * 24}", file=sys.stderr, flush=True)
        return "quiet answer"

    @server.tool()
    def fail() -> str:
        """Report a failure."""
        raise ToolError("this tool always fails")

    @server.tool()
    def crash() -> str:
        """Exit the process at once."""
        os._exit(3)

    @server.tool()
    def pid() -> int:
        """The server process id (tells restarts apart)."""
        return os.getpid()

    @server.resource("test://greeting", mime_type="text/plain")
    def greeting() -> str:
        """A fixed greeting."""
        return "hello from the external server"

    @server.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Say hello to {name}."

    return server


def stdio_settings(name: str = "ext", **extra: Any) -> dict[str, Any]:
    """This server as an external stdio server in the gateway's settings."""
    return {"name": name, "command": sys.executable, "args": [__file__], **extra}


def http_app() -> Any:
    return build().streamable_http_app(streamable_http_path="/mcp")


if __name__ == "__main__":
    print(f"{STDERR_MARKER} starting", file=sys.stderr, flush=True)
    build().run("stdio")
