"""The ``json-query`` tools."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mnemogate.core import __version__
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_json_query.service import JsonQuery, Language, QueryError

T = TypeVar("T")
READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

Data = Annotated[Any, Field(description="the JSON document inline (a value, or JSON text as a string)")]
FilePath = Annotated[str | None, Field(description="a JSON file in the allowed roots (instead of data)")]


async def _run(work: Callable[..., T], *args: Any, reads_file: bool) -> T:
    """Work on a file runs in a thread; inline data is already in memory (parsed with the
    request), so querying it runs here, without a thread hop."""
    try:
        return await asyncio.to_thread(work, *args) if reads_file else work(*args)
    except QueryError as exc:
        raise ToolError(str(exc)) from None


def build(registry: Registry) -> MCPServer:
    engine = JsonQuery(registry.plugin_settings("mcp_json_query"), registry.services)
    server = MCPServer("json-query", version=__version__)

    def query(expression: str, language: Language, data: Any, path: str | None) -> dict[str, Any]:
        return engine.query(expression, language, engine.document(data, path))

    def infer(data: Any, path: str | None) -> dict[str, Any]:
        return engine.infer_schema(engine.document(data, path))

    @server.tool(annotations=READ_ONLY)
    async def query_json(
        expression: Annotated[str, Field(min_length=1, max_length=10_000)],
        language: Language = "jmespath",
        data: Data = None,
        path: FilePath = None,
    ) -> dict[str, Any]:
        """Query a JSON document with JMESPath (one result) or JSONPath (every match, with its path)."""
        return await _run(query, expression, language, data, path, reads_file=path is not None)

    @server.tool(annotations=READ_ONLY)
    async def infer_schema(data: Data = None, path: FilePath = None) -> dict[str, Any]:
        """Infer a JSON Schema for a document: types, object properties (required when present in
        every sampled item) and array items."""
        return await _run(infer, data, path, reads_file=path is not None)

    @server.tool(annotations=READ_ONLY)
    async def stream_query(
        path: str,
        items_path: Annotated[
            str, Field(description="ijson prefix: item (top-level array), rows.item")
        ] = "item",
        where: Annotated[str | None, Field(description="JMESPath; items where it is truthy")] = None,
        select: Annotated[str | None, Field(description="JMESPath projection of each item")] = None,
        offset: Annotated[int, Field(ge=0)] = 0,
        limit: Annotated[int, Field(ge=1, le=100_000)] = 100,
    ) -> dict[str, Any]:
        """Stream the items of a large JSON file one at a time (never whole in memory), filter
        them with a JMESPath condition, project them, and page with offset/limit."""
        return await _run(engine.stream, path, items_path, where, select, offset, limit, reads_file=True)

    return server
