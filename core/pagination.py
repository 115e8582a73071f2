"""One pagination model: ``{"items": [...], "next_cursor": ...}`` with ``limit`` and ``cursor``.

Cursors are opaque to clients (URL-safe base64 of a JSON list). Keyset cursors carry the sort
key of the last item; in-memory lists use an offset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_

from mnemogate.core.errors import BadRequest

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadRequest("invalid cursor", code="invalid_cursor") from None
    if not isinstance(values, list) or len(values) != length:
        raise BadRequest("invalid cursor", code="invalid_cursor")
    return values


def page_of_sequence(items: Sequence[T], limit: int, cursor: str | None) -> Page[T]:
    """Paginate a list already in memory."""
    start = 0
    if cursor is not None:
        (start,) = decode_cursor(cursor, length=1)
        if not isinstance(start, int) or start < 0:
            raise BadRequest("invalid cursor", code="invalid_cursor")
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return Page[T](items=chunk, next_cursor=encode_cursor([start + limit]) if more else None)


def newest_first(
    query: Select[Any], created: Any, ident: Any, *, limit: int, cursor: str | None
) -> Select[Any]:
    """Keyset pagination by ``(created, ident)`` descending; fetches one extra row to know if
    another page follows (``page_of_rows`` drops it)."""
    query = query.order_by(created.desc(), ident.desc()).limit(limit + 1)
    if cursor is None:
        return query
    stamp, last_id = decode_cursor(cursor, length=2)
    try:
        after = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        raise BadRequest("invalid cursor", code="invalid_cursor") from None
    return query.where(or_(created < after, and_(created == after, ident < str(last_id))))


def page_of_rows(
    rows: Sequence[R], limit: int, item: Callable[[R], T], key: Callable[[R], tuple[datetime, str]]
) -> Page[T]:
    """The page for rows fetched by ``newest_first``."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        stamp, last_id = key(rows[-1])
        next_cursor = encode_cursor([stamp.isoformat(), last_id])
    return Page[T](items=[item(r) for r in rows], next_cursor=next_cursor)
