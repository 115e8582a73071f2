"""The ``context-compression`` tools."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mnemogate.core import __version__
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_context_compression.service import CompressionError, Compressor

PURE = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
Budget = Annotated[int | None, Field(ge=16, description="tokens the result should fit in")]
Messages = Annotated[
    list[dict[str, Any]], Field(min_length=1, description="OpenAI chat messages (role, content, ...)")
]


def build(registry: Registry) -> MCPServer:
    compressor = Compressor(registry.plugin_settings("mcp_context_compression"), registry.services)
    server = MCPServer("context-compression", version=__version__)

    @server.tool(annotations=PURE)
    async def compress_text(text: str, target_tokens: Budget = None) -> dict[str, Any]:
        """Compress a text; answers it with tokens before and after and the engine used."""
        try:
            return await compressor.text(text, target_tokens)
        except CompressionError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=PURE)
    async def compress_messages(messages: Messages, target_tokens: Budget = None) -> dict[str, Any]:
        """Compress the contents of a chat message list (roles, tool calls and order are kept)."""
        try:
            return await compressor.messages(messages, target_tokens)
        except CompressionError as exc:
            raise ToolError(str(exc)) from None

    return server
