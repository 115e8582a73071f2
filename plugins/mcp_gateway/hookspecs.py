"""The MCP gateway's own extension point."""

from __future__ import annotations

from mnemogate.core.contracts import McpToolCall
from mnemogate.core.hookspecs import hookspec


@hookspec
def mcp_tool_called(call: McpToolCall) -> None:
    """React to a finished MCP tool call (may be async).

    ``call`` (``mnemogate.core.contracts.McpToolCall``) says which server and tool, with what
    arguments, for which tenant and session, and how it went. Called off the request path, after
    the call log is written, in the order the calls finished; errors are logged. The memory
    plugins turn these into episodes.
    """
