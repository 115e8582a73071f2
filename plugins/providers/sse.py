"""Server-sent events: cutting a byte stream at event boundaries, and reading events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

DONE = b"data: [DONE]\n\n"


def events_end(data: bytes) -> int:
    """The offset just past the last complete event in ``data`` (0 if there is none)."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf != -1 else 0, crlf + 4 if crlf != -1 else 0)


async def whole_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-cut network reads so that each piece holds only complete events (one or more)."""
    pending = b""
    async for data in chunks:
        if pending:
            data = pending + data
        end = events_end(data)
        if end == len(data):
            pending = b""
            yield data
        elif end:
            pending = data[end:]
            yield data[:end]
        else:
            pending = data
    if pending.strip():
        yield pending + b"\n\n"


def parse_events(block: bytes) -> Iterator[tuple[str | None, bytes]]:
    """(event name, data) for each event of a block of complete events."""
    for raw in block.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data:
            yield name, b"\n".join(data)
