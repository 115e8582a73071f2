"""The ``pruner`` tool."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mnemogate.core import __version__
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_pruner.service import PruneError, Pruner

PURE = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def build(registry: Registry) -> MCPServer:
    pruner = Pruner(registry, registry.plugin_settings("mcp_pruner"))
    server = MCPServer("pruner", version=__version__)

    @server.tool(annotations=PURE)
    async def prune_messages(
        messages: Annotated[list[dict[str, Any]], Field(min_length=1, description="OpenAI chat messages")],
        budget_tokens: Annotated[int, Field(ge=1, description="tokens the kept messages must fit in")],
        query: Annotated[
            str | None, Field(description="what matters now (default: the last user message)")
        ] = None,
        keep_last: Annotated[
            int | None, Field(ge=0, description="last messages/tool-call groups kept")
        ] = None,
        recency_weight: Annotated[float | None, Field(ge=0, le=1)] = None,
    ) -> dict[str, Any]:
        """Drop the least relevant, oldest messages until the list fits the budget. Tool calls
        stay with their results; system messages and the last messages stay. Answers the kept
        messages, what was removed (with its scores) and how relevance was judged (embeddings
        from a registered embedder, or lexical overlap when there is none)."""
        try:
            return await pruner.prune(messages, budget_tokens, query, keep_last, recency_weight)
        except PruneError as exc:
            raise ToolError(str(exc)) from None

    return server
