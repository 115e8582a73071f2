"""Exports render what the sessions service streams, row by row, without holding it all."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from mnemogate.core.contracts import utcnow
from mnemogate.core.errors import Unavailable
from mnemogate.core.registry import Registry

SOURCE = "sessions"
BATCH = 200


def source(registry: Registry) -> Any:
    sessions = registry.services.get(SOURCE)
    if sessions is None:
        raise Unavailable("exports need the sessions plugin, which is switched off")
    return sessions


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def csv_stream(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """CSV with a header row; each batch of rows is sent as soon as it is rendered."""
    buffer = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    count = 0
    async for row in rows:
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in row.items()})
        count += 1
        if count % BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def json_stream(
    sessions: AsyncIterator[dict[str, Any]],
    requests: AsyncIterator[dict[str, Any]],
    selection: dict[str, Any],
) -> AsyncIterator[bytes]:
    """One JSON document, ``{"exported_at", "filters", "sessions": [...], "requests": [...]}``,
    written as the rows arrive."""
    head = {"exported_at": utcnow(), "filters": {k: v for k, v in selection.items() if v is not None}}
    yield orjson.dumps(head)[:-1] + b',"sessions":['
    async for chunk in _array(sessions):
        yield chunk
    yield b'],"requests":['
    async for chunk in _array(requests):
        yield chunk
    yield b"]}"


async def _array(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    parts: list[bytes] = []
    first = True
    async for row in rows:
        parts.append(orjson.dumps(row) if first else b"," + orjson.dumps(row))
        first = False
        if len(parts) >= BATCH:
            yield b"".join(parts)
            parts = []
    if parts:
        yield b"".join(parts)
