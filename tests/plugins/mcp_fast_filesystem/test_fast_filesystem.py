"""The fast-filesystem server through the gateway: every tool on files in the allowed root, and
every way out of it refused with nothing read or written outside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from mnemogate.core.testing import running

SECRET = "TOP-SECRET-OUTSIDE-CONTENT"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """An allowed root with files and links; a sibling whose name extends the root's; outside."""
    root = tmp_path / "root"
    sibling = tmp_path / "rootx"
    outside = tmp_path / "outside"
    for directory in (root / "docs", sibling, outside):
        directory.mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET)
    (sibling / "secret.txt").write_text(SECRET)
    (root / "docs" / "notes.md").write_text("# Notes\nalpha\nbeta needle\ngamma\n")
    (root / "lines.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    (root / "data.json").write_text('{"a": {"b": [1, 2, 3]}}')
    os.symlink(outside, root / "link_out")
    os.symlink(outside / "secret.txt", root / "file_link")
    os.symlink(outside / "new.txt", root / "dangling")
    os.symlink(root / "docs", root / "docs_link")  # stays inside: allowed
    return {"root": root, "sibling": sibling, "outside": outside, "base": tmp_path}


def snapshot(base: Path, root: Path) -> dict[str, bytes]:
    """Every file and directory outside the root (and the server's data directory), with content."""
    files = {}
    for directory, subdirectories, names in os.walk(base):
        subdirectories[:] = [d for d in subdirectories if Path(directory, d) not in (root, base / "data")]
        for name in names + subdirectories:
            path = Path(directory, name)
            files[str(path)] = path.read_bytes() if path.is_file() else b"<dir>"
    return files


def fs_app(app_with: Any, tree: dict[str, Path], **settings: Any) -> Any:
    # Without the rate limit: the escape test makes hundreds of calls.
    return app_with(mcp_fast_filesystem={"roots": [str(tree["root"])], **settings}, disabled=["ratelimit"])


async def test_reading_and_listing(app_with: Any, tree: dict[str, Path], mcp_call: Any) -> None:
    root = tree["root"]
    async with running(fs_app(app_with, tree)) as client:

        async def call(tool: str, **arguments: Any) -> Any:
            result = await mcp_call(client, "fast-filesystem", tool, arguments)
            assert result["isError"] is False, result
            return result["structuredContent"]

        roots = await call("list_allowed_roots")
        assert roots == {"roots": [str(root)], "read_only": False}
        assert (await call("read_file", path="docs/notes.md"))["content"].startswith("# Notes")
        assert (await call("read_file", path=str(root / "lines.txt"), head=2))[
            "content"
        ] == "line 1\nline 2\n"
        assert (await call("read_file", path="lines.txt", tail=3))[
            "content"
        ] == "line 98\nline 99\nline 100\n"
        assert (await call("read_file", path="docs_link/notes.md"))["size"] == 32
        many = (await call("read_multiple_files", paths=["data.json", "missing.txt"]))["files"]
        assert many[0]["content"] == '{"a": {"b": [1, 2, 3]}}' and "no such file" in many[1]["error"]

        listing = await call("list_directory", path=".")
        entries = {e["name"]: e for e in listing["entries"]}
        assert entries["docs"]["type"] == "directory" and entries["lines.txt"]["size"] > 0
        assert entries["link_out"] == {"name": "link_out", "type": "symlink", "outside_roots": True}
        tree_ = await call("directory_tree", path=".", max_depth=2)
        docs = next(c for c in tree_["children"] if c["name"] == "docs")
        assert docs["children"] == [{"name": "notes.md", "type": "file", "size": 32}]

        found = await call("search_files", path=".", pattern="*.md")
        assert found["matches"] == [str(root / "docs" / "notes.md")]
        assert (await call("search_files", path=".", pattern="*.md", exclude=["docs/*"]))["matches"] == []
        grep = await call("search_content", path=".", query="NEEDLE", context_lines=1)
        (match,) = grep["matches"]
        assert match["line"] == 3 and match["text"] == "beta needle"
        assert match["before"] == ["alpha"] and match["after"] == ["gamma"]
        regex = await call("search_content", path=".", query=r"line 9\d$", regex=True, max_results=3)
        assert len(regex["matches"]) == 3 and regex["truncated"] is True
        info = await call("get_file_info", path="data.json")
        assert info["type"] == "file" and info["size"] == 23 and info["modified"].endswith("+00:00")


async def test_writing_and_editing(app_with: Any, tree: dict[str, Path], mcp_call: Any) -> None:
    root = tree["root"]
    async with running(fs_app(app_with, tree)) as client:

        async def call(tool: str, **arguments: Any) -> Any:
            return await mcp_call(client, "fast-filesystem", tool, arguments)

        written = await call("write_file", path="new/deep/file.txt", content="one\ntwo\n", create_dirs=True)
        assert written["structuredContent"]["bytes"] == 8
        assert (root / "new" / "deep" / "file.txt").read_text() == "one\ntwo\n"
        no_dir = await call("write_file", path="absent/file.txt", content="x")
        assert no_dir["isError"] and "does not exist" in no_dir["content"][0]["text"]

        os.chmod(root / "lines.txt", 0o640)
        await call("write_file", path="lines.txt", content="replaced\n")
        assert (root / "lines.txt").read_text() == "replaced\n"
        assert oct((root / "lines.txt").stat().st_mode & 0o777) == "0o640"
        assert not [p for p in root.rglob("*.tmp")]  # the temporary file was renamed, not left

        edits = [{"oldText": "two", "newText": "2"}]
        preview = (await call("edit_file", path="new/deep/file.txt", edits=edits, dryRun=True))[
            "structuredContent"
        ]
        assert "-two\n+2\n" in preview["diff"] and preview["applied"] is False
        assert (root / "new" / "deep" / "file.txt").read_text() == "one\ntwo\n"
        applied = (await call("edit_file", path="new/deep/file.txt", edits=edits))["structuredContent"]
        assert applied["applied"] is True and (root / "new" / "deep" / "file.txt").read_text() == "one\n2\n"
        ambiguous = await call("edit_file", path="docs/notes.md", edits=[{"oldText": "a", "newText": "b"}])
        assert ambiguous["isError"] and "exactly once" in ambiguous["content"][0]["text"]
        assert (await call("create_directory", path="made/here"))["isError"] is False
        assert (root / "made" / "here").is_dir()


async def test_read_only_mode_and_size_limits(app_with: Any, tree: dict[str, Path], mcp_call: Any) -> None:
    root = tree["root"]
    settings = {"read_only": True, "max_read_bytes": 100, "max_write_bytes": 10}
    async with running(fs_app(app_with, tree, **settings)) as client:
        for tool, arguments in [
            ("write_file", {"path": "x.txt", "content": "x"}),
            ("edit_file", {"path": "docs/notes.md", "edits": [{"oldText": "alpha", "newText": "A"}]}),
            ("create_directory", {"path": "d"}),
        ]:
            result = await mcp_call(client, "fast-filesystem", tool, arguments)
            assert result["isError"] and "read-only" in result["content"][0]["text"]
        assert not (root / "x.txt").exists() and "alpha" in (root / "docs" / "notes.md").read_text()
        preview = await mcp_call(
            client,
            "fast-filesystem",
            "edit_file",
            {"path": "docs/notes.md", "edits": [{"oldText": "alpha", "newText": "A"}], "dryRun": True},
        )
        assert preview["isError"] is False  # a dry run writes nothing
        big = await mcp_call(client, "fast-filesystem", "read_file", {"path": "lines.txt"})
        assert big["isError"] and "max_read_bytes" in big["content"][0]["text"]
        head = await mcp_call(client, "fast-filesystem", "read_file", {"path": "lines.txt", "head": 1})
        assert head["structuredContent"]["content"] == "line 1\n"
    async with running(fs_app(app_with, tree, max_write_bytes=10)) as client:
        large = await mcp_call(
            client, "fast-filesystem", "write_file", {"path": "y.txt", "content": "y" * 11}
        )
        assert large["isError"] and "max_write_bytes" in large["content"][0]["text"]


ESCAPES = [
    "../outside/secret.txt",
    "docs/../../outside/secret.txt",
    "{base}/outside/secret.txt",
    "{root}/../outside/secret.txt",
    "{root}x/secret.txt",
    "{base}/rootx/secret.txt",
    "link_out/secret.txt",
    "{root}/link_out/secret.txt",
    "file_link",
    "dangling",
    "docs/notes.md\x00.txt",
    "\x00",
    "/etc/passwd",
    "/",
    "..",
]


def escapes(tree: dict[str, Path]) -> list[str]:
    return [e.format(base=tree["base"], root=tree["root"]) for e in ESCAPES]


async def test_every_way_out_is_refused(app_with: Any, tree: dict[str, Path], mcp_call: Any) -> None:
    before = snapshot(tree["base"], tree["root"])
    async with running(fs_app(app_with, tree)) as client:
        for path in escapes(tree):
            for tool, arguments in [
                ("read_file", {"path": path}),
                ("read_file", {"path": path, "tail": 5}),
                ("read_multiple_files", {"paths": [path]}),
                ("get_file_info", {"path": path}),
                ("list_directory", {"path": path}),
                ("directory_tree", {"path": path}),
                ("search_files", {"path": path, "pattern": "*"}),
                ("search_content", {"path": path, "query": "SECRET"}),
                ("write_file", {"path": path, "content": "pwned"}),
                ("write_file", {"path": f"{path}/pwned.txt", "content": "pwned", "create_dirs": True}),
                ("edit_file", {"path": path, "edits": [{"oldText": "TOP", "newText": "PWNED"}]}),
                ("create_directory", {"path": f"{path}/sub"}),
            ]:
                result = await mcp_call(client, "fast-filesystem", tool, arguments)
                text = orjson.dumps(result).decode()
                assert SECRET not in text, (tool, path)
                if tool == "read_multiple_files":
                    assert "error" in result["structuredContent"]["files"][0], path
                else:
                    assert result["isError"] is True, (tool, path, result)
                    message = result["content"][0]["text"]
                    assert (
                        "denied" in message
                        or "null byte" in message
                        or "outside" in message
                        or (path in ("/", "..") and "not" in message)
                    ), (tool, path, message)
        # Searches from inside never follow a link out.
        inside = await mcp_call(client, "fast-filesystem", "search_content", {"path": ".", "query": "SECRET"})
        assert inside["structuredContent"]["matches"] == []
        names = await mcp_call(client, "fast-filesystem", "search_files", {"path": ".", "pattern": "secret*"})
        assert names["structuredContent"]["matches"] == []
        # json-query reads files through the same checks.
        for path in escapes(tree):
            result = await mcp_call(client, "json-query", "query_json", {"expression": "@", "path": path})
            assert result["isError"] is True and SECRET not in orjson.dumps(result).decode(), path
    assert snapshot(tree["base"], tree["root"]) == before
    assert not (tree["outside"] / "new.txt").exists()
