"""The ``fast-filesystem`` tools: each one a thin call into the sandbox, run off the event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from mnemogate.core import __version__
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_fast_filesystem.service import SERVICE, Edit, FileToolError, Sandbox

T = TypeVar("T")
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

PathArg = Annotated[str, Field(description="absolute, or relative to the first allowed root")]
Lines = Annotated[int | None, Field(ge=0, description="only the first/last this many lines")]
Limit = Annotated[int, Field(ge=1, le=100_000)]


class EditArg(BaseModel):
    oldText: str = Field(description="text to find; it must occur exactly once")
    newText: str = Field(description="text to put in its place")


async def _run(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(work, *args, **kwargs)
    except FileToolError as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"file system error: {exc.strerror or type(exc).__name__}") from None


def build(registry: Registry) -> MCPServer:
    sandbox: Sandbox = registry.services[SERVICE]
    server = MCPServer(
        "fast-filesystem",
        version=__version__,
        instructions="File tools confined to the allowed roots (list_allowed_roots).",
    )

    @server.tool(annotations=READ_ONLY)
    async def list_allowed_roots() -> dict[str, Any]:
        """The directories these tools may touch, and whether writes are allowed."""
        return sandbox.roots_listing()

    @server.tool(annotations=READ_ONLY)
    async def read_file(path: PathArg, head: Lines = None, tail: Lines = None) -> dict[str, Any]:
        """Read a text file (UTF-8), whole or only its first (head) or last (tail) lines."""
        return await _run(sandbox.read, path, head, tail)

    @server.tool(annotations=READ_ONLY)
    async def read_multiple_files(paths: Annotated[list[str], Field(max_length=1000)]) -> dict[str, Any]:
        """Read several files at once; a file that fails gets an error entry, the rest are read."""
        return {"files": await _run(sandbox.read_many, paths)}

    @server.tool(annotations=WRITES)
    async def write_file(path: PathArg, content: str, create_dirs: bool = False) -> dict[str, Any]:
        """Create or replace a file atomically (readers see the old or the new content, never half)."""
        return await _run(sandbox.write, path, content, create_dirs)

    @server.tool(annotations=WRITES)
    async def edit_file(
        path: PathArg, edits: Annotated[list[EditArg], Field(min_length=1)], dryRun: bool = False
    ) -> dict[str, Any]:
        """Replace text in a file, each edit in turn; answers a unified diff. dryRun only shows it."""
        changes = [Edit(e.oldText, e.newText) for e in edits]
        return await _run(sandbox.edit, path, changes, dryRun)

    @server.tool(annotations=WRITES)
    async def create_directory(path: PathArg) -> dict[str, Any]:
        """Create a directory (and its parents)."""
        return await _run(sandbox.mkdir, path)

    @server.tool(annotations=READ_ONLY)
    async def list_directory(path: PathArg) -> dict[str, Any]:
        """The entries of a directory with their type and size."""
        return await _run(sandbox.list_directory, path)

    @server.tool(annotations=READ_ONLY)
    async def directory_tree(
        path: PathArg, max_depth: Annotated[int, Field(ge=1, le=32)] = 3
    ) -> dict[str, Any]:
        """A directory's tree as nested entries, down to max_depth levels."""
        return await _run(sandbox.tree, path, max_depth)

    @server.tool(annotations=READ_ONLY)
    async def search_files(
        path: PathArg,
        pattern: Annotated[str, Field(description="glob: *.py by name, or src/**/*.py by path")],
        exclude: list[str] | None = None,
        max_results: Limit = 1000,
    ) -> dict[str, Any]:
        """Find files under a directory whose name or relative path matches a glob."""
        return await _run(sandbox.search_files, path, pattern, exclude or [], max_results)

    @server.tool(annotations=READ_ONLY)
    async def search_content(
        path: PathArg,
        query: Annotated[str, Field(min_length=1, max_length=1000)],
        regex: bool = False,
        case_sensitive: bool = False,
        include: Annotated[str, Field(description="glob the files must match")] = "*",
        max_results: Limit = 200,
        context_lines: Annotated[int, Field(ge=0, le=10)] = 0,
    ) -> dict[str, Any]:
        """Search file contents like grep: literal text (or a regular expression), line numbers,
        optional context; binary and very large files are skipped; bounded in results and time."""
        return await _run(
            sandbox.search_content,
            path,
            query,
            regex=regex,
            case_sensitive=case_sensitive,
            include=include,
            max_results=max_results,
            context_lines=context_lines,
        )

    @server.tool(annotations=READ_ONLY)
    async def get_file_info(path: PathArg) -> dict[str, Any]:
        """Type, size, times (UTC) and permissions of a file or directory."""
        return await _run(sandbox.info, path)

    @server.resource("fs://roots", name="allowed-roots", mime_type="application/json")
    def allowed_roots() -> str:
        """The allowed roots and whether writes are allowed."""
        return json.dumps(sandbox.roots_listing())

    return server
