"""File operations confined to the allowed roots.

Every path is checked twice before anything is opened: as written (made absolute against the
first root and normalised, so ``..`` cannot climb out) and as it really is (every symlink
resolved, so a link cannot lead out). Both must lie inside a root, compared by whole path
components, so ``/srv/root`` does not admit ``/srv/rootx``. Null bytes are refused. Files are
opened with ``O_NOFOLLOW``, so a symlink swapped in after the check is not followed; writes go to
a temporary file in the target's directory that replaces the target in one rename.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mnemogate.plugins.mcp_fast_filesystem.settings import FastFilesystemSettings

SERVICE = "fast-filesystem"
LINE_TEXT_LIMIT = 500
BINARY_SNIFF_BYTES = 8192
TAIL_CHUNK = 64 * 1024


class FileToolError(ValueError):
    """A refused or failed file operation; the message is for the caller. A ``ValueError``, so
    other plugins using this service (json-query) need not import it."""


@dataclass(frozen=True, slots=True)
class Edit:
    old_text: str
    new_text: str


class Sandbox:
    def __init__(self, roots: list[Path], settings: FastFilesystemSettings) -> None:
        self.roots = [Path(os.path.realpath(root)) for root in roots]
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: FastFilesystemSettings, data_dir: Path) -> Sandbox:
        if settings.roots:
            roots = [Path(root) for root in settings.roots]
            missing = [i for i, root in enumerate(roots, 1) if not root.is_dir()]
            if missing:
                raise FileToolError(f"allowed root number {missing[0]} is not an existing directory")
        else:
            default = data_dir / "files"
            default.mkdir(parents=True, exist_ok=True)
            roots = [default]
        return cls(roots, settings)

    # -- paths ---------------------------------------------------------------------------------

    def resolve(self, raw: str) -> Path:
        """The real path for ``raw``, or ``FileToolError`` if it is not inside an allowed root."""
        if not isinstance(raw, str) or not raw.strip():
            raise FileToolError("a path is required")
        if "\x00" in raw:
            raise FileToolError("access denied: the path contains a null byte")
        candidate = Path(raw)
        if not candidate.is_absolute():
            candidate = self.roots[0] / candidate
        lexical = Path(os.path.normpath(candidate))
        real = Path(os.path.realpath(lexical))
        if not (self._inside(lexical) and self._inside(real)):
            raise FileToolError(f"access denied: {raw!r} is outside the allowed roots")
        return real

    def _inside(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def _writable(self) -> None:
        if self.settings.read_only:
            raise FileToolError("the file system is read-only")

    # -- reading -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_binary(self, raw: str) -> Iterator[IO[bytes]]:
        """A regular file inside the roots, opened for reading without following a symlink."""
        real = self.resolve(raw)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise FileToolError(f"no such file: {raw!r}") from None
        except OSError as exc:
            raise FileToolError(f"cannot open {raw!r}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileToolError(f"not a regular file: {raw!r}")
            yield handle

    def read(self, raw: str, head: int | None = None, tail: int | None = None) -> dict[str, Any]:
        if head is not None and tail is not None:
            raise FileToolError("give head or tail, not both")
        limit = self.settings.max_read_bytes
        with self.open_binary(raw) as handle:
            size = os.fstat(handle.fileno()).st_size
            if head is not None:
                lines = []
                read = 0
                for line in handle:
                    if len(lines) >= head or read + len(line) > limit:
                        break
                    lines.append(line)
                    read += len(line)
                data = b"".join(lines)
            elif tail is not None:
                data = _tail(handle, tail, size, limit)
            else:
                if size > limit:
                    raise FileToolError(
                        f"{raw!r} has {size} bytes, more than max_read_bytes ({limit}): use head or tail"
                    )
                data = handle.read(limit + 1)[:limit]
        return {"path": raw, "size": size, "content": data.decode("utf-8", "replace")}

    def read_many(self, paths: list[str]) -> list[dict[str, Any]]:
        budget = self.settings.max_read_bytes
        results: list[dict[str, Any]] = []
        for raw in paths:
            try:
                result = self.read(raw)
            except FileToolError as exc:
                results.append({"path": raw, "error": str(exc)})
                continue
            budget -= len(result["content"])
            if budget < 0:
                results.append({"path": raw, "error": "max_read_bytes reached for this call"})
                break
            results.append(result)
        return results

    def info(self, raw: str) -> dict[str, Any]:
        real = self.resolve(raw)
        try:
            status = os.stat(real)
        except FileNotFoundError:
            raise FileToolError(f"no such file or directory: {raw!r}") from None
        kind = (
            "directory"
            if stat.S_ISDIR(status.st_mode)
            else "file"
            if stat.S_ISREG(status.st_mode)
            else "other"
        )
        return {
            "path": str(real),
            "type": kind,
            "size": status.st_size,
            "modified": _iso(status.st_mtime),
            "accessed": _iso(status.st_atime),
            "changed": _iso(status.st_ctime),
            "permissions": oct(stat.S_IMODE(status.st_mode)),
        }

    def list_directory(self, raw: str) -> dict[str, Any]:
        real = self._directory(raw)
        entries = []
        truncated = False
        with os.scandir(real) as scan:
            for entry in sorted(scan, key=lambda e: e.name):
                if len(entries) >= self.settings.max_results:
                    truncated = True
                    break
                entries.append(self._entry(entry))
        return {"path": str(real), "entries": entries, "truncated": truncated}

    def tree(self, raw: str, max_depth: int) -> dict[str, Any]:
        real = self._directory(raw)
        budget = [self.settings.max_results]

        def walk(directory: Path, depth: int) -> list[dict[str, Any]]:
            children = []
            with os.scandir(directory) as scan:
                for entry in sorted(scan, key=lambda e: e.name):
                    if budget[0] <= 0:
                        break
                    budget[0] -= 1
                    node = self._entry(entry)
                    if node["type"] == "directory" and depth < max_depth:
                        node["children"] = walk(Path(entry.path), depth + 1)
                    children.append(node)
            return children

        return {"path": str(real), "children": walk(real, 1), "truncated": budget[0] <= 0}

    def _entry(self, entry: os.DirEntry[str]) -> dict[str, Any]:
        if entry.is_symlink():
            target = Path(os.path.realpath(entry.path))
            if not self._inside(target):
                return {"name": entry.name, "type": "symlink", "outside_roots": True}
        kind = "directory" if entry.is_dir() else "file" if entry.is_file() else "other"
        node: dict[str, Any] = {"name": entry.name, "type": kind}
        if kind == "file":
            with contextlib.suppress(OSError):
                node["size"] = entry.stat().st_size
        return node

    def _directory(self, raw: str) -> Path:
        real = self.resolve(raw)
        if not real.is_dir():
            raise FileToolError(f"not a directory: {raw!r}")
        return real

    # -- searching -----------------------------------------------------------------------------

    def _files(self, top: Path, deadline: float) -> Iterator[Path]:
        """Regular files under ``top``, depth first, never leaving the roots: symlinks to
        directories are not followed and symlinks leading out are skipped."""
        pending = [top]
        seen = 0
        while pending:
            directory = pending.pop()
            try:
                scan = list(os.scandir(directory))
            except OSError:
                continue
            for entry in sorted(scan, key=lambda e: e.name, reverse=True):
                if time.monotonic() > deadline:
                    return
                leads_away = entry.is_symlink() and (
                    entry.is_dir() or not self._inside(Path(os.path.realpath(entry.path)))
                )
                if leads_away:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file():
                    seen += 1
                    if seen > self.settings.max_files_scanned:
                        return
                    yield Path(entry.path)

    def search_files(self, raw: str, pattern: str, exclude: list[str], max_results: int) -> dict[str, Any]:
        top = self._directory(raw)
        deadline = time.monotonic() + self.settings.search_timeout_seconds
        limit = min(max_results, self.settings.max_results)
        matches: list[str] = []
        for path in self._files(top, deadline):
            relative = path.relative_to(top).as_posix()
            if any(_glob(relative, path.name, x) for x in exclude) or not _glob(relative, path.name, pattern):
                continue
            if len(matches) >= limit:
                return {"path": str(top), "matches": matches, "truncated": True}
            matches.append(str(path))
        return {"path": str(top), "matches": matches, "truncated": time.monotonic() > deadline}

    def search_content(
        self,
        raw: str,
        query: str,
        *,
        regex: bool,
        case_sensitive: bool,
        include: str,
        max_results: int,
        context_lines: int,
    ) -> dict[str, Any]:
        top = self._directory(raw)
        try:
            pattern = re.compile(query if regex else re.escape(query), 0 if case_sensitive else re.IGNORECASE)
        except re.error as exc:
            raise FileToolError(f"invalid regular expression: {exc}") from None
        deadline = time.monotonic() + self.settings.search_timeout_seconds
        limit = min(max_results, self.settings.max_results)
        matches: list[dict[str, Any]] = []
        scanned = 0
        for path in self._files(top, deadline):
            if not _glob(path.relative_to(top).as_posix(), path.name, include):
                continue
            lines = self._text_lines(path)
            if lines is None:
                continue
            scanned += 1
            for number, line in enumerate(lines, 1):
                if not pattern.search(line):
                    continue
                if len(matches) >= limit:
                    return {"matches": matches, "files_scanned": scanned, "truncated": True}
                match: dict[str, Any] = {"path": str(path), "line": number, "text": line[:LINE_TEXT_LIMIT]}
                if context_lines:
                    start = max(number - 1 - context_lines, 0)
                    match["before"] = [x[:LINE_TEXT_LIMIT] for x in lines[start : number - 1]]
                    match["after"] = [x[:LINE_TEXT_LIMIT] for x in lines[number : number + context_lines]]
                matches.append(match)
        return {"matches": matches, "files_scanned": scanned, "truncated": time.monotonic() > deadline}

    def _text_lines(self, path: Path) -> list[str] | None:
        """The lines of a text file small enough to search; None for binary or large files."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(fd).st_size > self.settings.max_search_file_bytes:
                return None
            data = handle.read()
        if b"\x00" in data[:BINARY_SNIFF_BYTES]:
            return None
        return data.decode("utf-8", "replace").splitlines()

    # -- writing -------------------------------------------------------------------------------

    def write(self, raw: str, content: str, create_dirs: bool) -> dict[str, Any]:
        self._writable()
        data = content.encode()
        if len(data) > self.settings.max_write_bytes:
            raise FileToolError(f"the content has {len(data)} bytes, more than max_write_bytes")
        real = self.resolve(raw)
        if real.is_dir():
            raise FileToolError(f"{raw!r} is a directory")
        if create_dirs:
            real.parent.mkdir(parents=True, exist_ok=True)
        elif not real.parent.is_dir():
            raise FileToolError(f"the directory of {raw!r} does not exist (set create_dirs)")
        _replace_atomically(real, data)
        return {"path": str(real), "bytes": len(data)}

    def edit(self, raw: str, edits: list[Edit], dry_run: bool) -> dict[str, Any]:
        if not dry_run:
            self._writable()
        original = self.read(raw)["content"]
        edited = original
        for number, edit in enumerate(edits, 1):
            if not edit.old_text:
                raise FileToolError(f"edit {number}: oldText is empty")
            count = edited.count(edit.old_text)
            if count != 1:
                found = "not found" if count == 0 else f"found {count} times"
                raise FileToolError(f"edit {number}: oldText {found}; it must match exactly once")
            edited = edited.replace(edit.old_text, edit.new_text, 1)
        diff = "".join(
            difflib.unified_diff(
                original.splitlines(keepends=True), edited.splitlines(keepends=True), raw, raw
            )
        )
        if not dry_run and edited != original:
            self.write(raw, edited, create_dirs=False)
        return {"path": raw, "diff": diff, "applied": not dry_run}

    def mkdir(self, raw: str) -> dict[str, Any]:
        self._writable()
        real = self.resolve(raw)
        real.mkdir(parents=True, exist_ok=True)
        return {"path": str(real), "created": True}

    def roots_listing(self) -> dict[str, Any]:
        return {"roots": [str(root) for root in self.roots], "read_only": self.settings.read_only}


def _replace_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside ``target``, flush it to disk, rename it over ``target``
    (keeping an existing file's permissions): readers see the old file or the new one."""
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.lstat(target).st_mode)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _tail(handle: IO[bytes], count: int, size: int, limit: int) -> bytes:
    """The last ``count`` lines, read backwards in chunks (a large file is not read whole)."""
    if count <= 0:
        return b""
    end = size
    data = b""
    while end > 0 and data.count(b"\n") <= count and len(data) <= limit:
        start = max(end - TAIL_CHUNK, 0)
        handle.seek(start)
        data = handle.read(end - start) + data
        end = start
    lines = data.splitlines(keepends=True)[-count:]
    kept: list[bytes] = []
    total = 0
    for line in reversed(lines):
        if total + len(line) > limit:
            break
        kept.append(line)
        total += len(line)
    return b"".join(reversed(kept))


def _glob(relative: str, name: str, pattern: str) -> bool:
    """``*.py`` matches by file name anywhere; a pattern with ``/`` matches the relative path
    (``**`` crosses directories)."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    return fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(relative, pattern.replace("**/", ""))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
