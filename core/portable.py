"""Helpers for memory types that implement ``PortableMemory`` (export and import as records)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, and_, or_

from mnemogate.core.db import Database
from mnemogate.core.settings import describe_validation_error

M = TypeVar("M", bound=BaseModel)
EXPORT_BATCH = 500


async def ascending_batches(
    db: Database, query: Select[Any], first: Any, second: Any, *, batch: int = EXPORT_BATCH
) -> AsyncIterator[list[Any]]:
    """The rows of ``query`` (a select of one ORM entity) in ``(first, second)`` order, a batch
    per short read: keyset paging, so a long export never holds one transaction open."""
    after: tuple[Any, Any] | None = None
    while True:
        page = query
        if after is not None:
            page = page.where(or_(first > after[0], and_(first == after[0], second > after[1])))
        async with db.read() as session:
            rows = list(await session.scalars(page.order_by(first, second).limit(batch)))
        if not rows:
            return
        yield rows
        last = rows[-1]
        after = (getattr(last, first.key), getattr(last, second.key))


def _nul_at(value: Any, where: str = "") -> str | None:
    """Where in a JSON value a string (or an object's key) holds a NUL character, if anywhere."""
    if isinstance(value, str):
        return (where or "value") if "\x00" in value else None
    if isinstance(value, dict):
        for name, item in value.items():
            at = f"{where}.{name}" if where else str(name)
            if "\x00" in str(name):
                return at
            if (found := _nul_at(item, at)) is not None:
                return found
    elif isinstance(value, list):
        for number, item in enumerate(value):
            if (found := _nul_at(item, f"{where}.{number}" if where else str(number))) is not None:
                return found
    return None


def validate_records(
    model: type[M],
    records: Sequence[tuple[int, dict[str, Any]]],
    errors: list[str | None],
    *,
    key: str = "id",
) -> dict[str, tuple[int, M]]:
    """Validate ``(position, record)`` pairs; a rejected record gets its reason in ``errors``.
    Text holding a NUL character is refused on every database, since PostgreSQL cannot store it:
    a record one store imports, every store imports. Answers the valid ones by ``key`` (their
    id); when it repeats, the later record wins."""
    chosen: dict[str, tuple[int, M]] = {}
    for position, raw in records:
        if (where := _nul_at(raw)) is not None:
            errors[position] = f"{where}: text holds a NUL character (\\u0000), which PostgreSQL cannot store"
            continue
        try:
            record = model.model_validate(raw)
        except ValidationError as exc:
            errors[position] = describe_validation_error(exc)
            continue
        ident = str(getattr(record, key))
        if ident in chosen:
            errors[chosen[ident][0]] = "the same id appears again later in the import"
        chosen[ident] = (position, record)
    return chosen
