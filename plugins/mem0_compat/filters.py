"""Mem0's filter language, compiled once per request.

A filter is an object whose keys are ANDed: ``{"user_id": "alex", "created_at": {"gte":
"2024-07-01"}}``; ``AND``/``OR``/``NOT`` take lists of filters. A condition is a value (equal),
``"*"`` (the field is set) or operators: ``eq ne gt gte lt lte in nin contains icontains``.
Fields: ``user_id agent_id run_id app_id actor_id role`` (identity), ``created_at updated_at``
(ISO dates or times, or Unix seconds; a bare date compares by day), ``categories`` (a list: equal,
``in`` and ``contains`` match any of its entries), ``memory`` (the text), ``metadata`` (an object
of conditions on metadata keys); any other key is a metadata key, as in Mem0's OSS library.

``compile_filter`` answers a predicate over stored memories and the part an index search can
apply itself (conjunctive equality on user, agent, run and scalar metadata): searches narrow by
that part inside the index and check the whole predicate on what comes back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mnemogate.core.errors import BadRequest

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

IDENTITY = ("user_id", "agent_id", "run_id", "app_id", "actor_id", "role")
TIMES = ("created_at", "updated_at")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
LOGICAL = ("AND", "OR", "NOT")
PUSHED_IDENTITY = {"user_id": "user_id", "agent_id": "agent_id", "run_id": "session_id"}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DEPTH = 8


@dataclass(slots=True)
class Pushdown:
    """Equalities every matching memory meets: what an index search may filter on."""

    identity: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CompiledFilter:
    predicate: Predicate
    pushdown: Pushdown
    trivial: bool  # no condition besides the pushed-down equalities


def _always(row: Row) -> bool:
    return True


def compile_filter(spec: Mapping[str, Any] | None) -> CompiledFilter:
    if not spec:
        return CompiledFilter(_always, Pushdown(), True)
    if not isinstance(spec, Mapping):
        raise BadRequest("filters must be an object")
    pushdown = Pushdown()
    predicate = _compile_object(spec, 0)
    trivial = _collect_pushdown(spec, pushdown)
    return CompiledFilter(predicate, pushdown, trivial)


def _collect_pushdown(spec: Mapping[str, Any], pushdown: Pushdown) -> bool:
    """Fill ``pushdown`` from the conjunctive equalities of ``spec``; True when they are all of it."""
    trivial = True
    for key, value in spec.items():
        if key == "AND" and isinstance(value, list):
            for part in value:
                trivial = _collect_pushdown(part, pushdown) and trivial
        elif key in PUSHED_IDENTITY and isinstance(value, str) and value != "*":
            pushdown.identity[key] = value
        elif key == "metadata" and isinstance(value, Mapping):
            trivial = _collect_metadata(value, pushdown) and trivial
        elif key not in LOGICAL and key not in IDENTITY and key not in TIMES and key not in _OWN_FIELDS:
            trivial = _collect_metadata({key: value}, pushdown) and trivial
        else:
            trivial = False
    return trivial


def _collect_metadata(conditions: Mapping[str, Any], pushdown: Pushdown) -> bool:
    trivial = True
    for key, value in conditions.items():
        if isinstance(value, str | int | float | bool) and value != "*":
            pushdown.metadata[key] = value
        else:
            trivial = False
    return trivial


_OWN_FIELDS = ("categories", "memory", "metadata", "keywords")


def _compile_object(spec: Any, depth: int) -> Predicate:
    if not isinstance(spec, Mapping):
        raise BadRequest("each filter must be an object")
    if depth > MAX_DEPTH:
        raise BadRequest(f"filters nest deeper than {MAX_DEPTH} levels")
    parts: list[Predicate] = []
    for key, value in spec.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise BadRequest(f"{key} takes a non-empty list of filters")
            subs = [_compile_object(part, depth + 1) for part in value]
            parts.append(_logical(key, subs))
        elif key == "metadata" and isinstance(value, Mapping):
            for meta_key, condition in value.items():
                parts.append(_condition(_metadata_getter(meta_key), condition, f"metadata.{meta_key}"))
        elif key in IDENTITY or key == "memory":
            parts.append(_condition(_field_getter(key), value, key))
        elif key in TIMES:
            parts.append(_time_condition(key, value))
        elif key in ("categories", "keywords"):
            parts.append(_list_condition(value, key))
        else:
            parts.append(_condition(_metadata_getter(key), value, key))
    if len(parts) == 1:
        return parts[0]
    return lambda row: all(part(row) for part in parts)


def _logical(key: str, subs: list[Predicate]) -> Predicate:
    if key == "AND":
        return lambda row: all(sub(row) for sub in subs)
    if key == "OR":
        return lambda row: any(sub(row) for sub in subs)
    return lambda row: not any(sub(row) for sub in subs)


def _field_getter(name: str) -> Callable[[Row], Any]:
    return lambda row: row.get(name)


def _metadata_getter(name: str) -> Callable[[Row], Any]:
    return lambda row: (row.get("metadata") or {}).get(name)


def _operators(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        unknown = [op for op in value if op not in OPERATORS]
        if unknown or not value:
            raise BadRequest(f"{where}: unsupported filter operator {unknown[0] if unknown else '(none)'!r}")
        return dict(value)
    return {"eq": value}


def _condition(get: Callable[[Row], Any], value: Any, where: str) -> Predicate:
    tests = [_scalar_test(op, operand, where) for op, operand in _operators(value, where).items()]
    return lambda row: all(test(get(row)) for test in tests)


def _scalar_test(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if op == "eq" and operand == "*":
        return lambda actual: actual is not None
    if op == "eq":
        return lambda actual: actual == operand
    if op == "ne":
        return lambda actual: actual != operand
    if op in ("in", "nin"):
        if not isinstance(operand, list):
            raise BadRequest(f"{where}: {op} takes a list")
        members = list(operand)
        if op == "in":
            return lambda actual: actual in members
        return lambda actual: actual not in members
    if op in ("contains", "icontains"):
        if not isinstance(operand, str):
            raise BadRequest(f"{where}: {op} takes a string")
        if op == "contains":
            return lambda actual: isinstance(actual, str) and operand in actual
        needle = operand.lower()
        return lambda actual: isinstance(actual, str) and needle in actual.lower()
    if not isinstance(operand, int | float | str) or isinstance(operand, bool):
        raise BadRequest(f"{where}: {op} takes a number or a string")
    return lambda actual: _ordered(op, actual, operand)


def _ordered(op: str, actual: Any, operand: Any) -> bool:
    try:
        if op == "gt":
            return actual > operand
        if op == "gte":
            return actual >= operand
        if op == "lt":
            return actual < operand
        return actual <= operand
    except TypeError:  # a missing value or another type never matches an ordering
        return False


def _list_condition(value: Any, where: str) -> Predicate:
    operators = _operators(value, where)
    checks: list[Callable[[list[str]], bool]] = []
    for op, operand in operators.items():
        if op in ("eq", "contains", "icontains") and isinstance(operand, str):
            if op == "eq":
                checks.append(lambda entries, o=operand: o in entries)
            elif op == "contains":
                checks.append(lambda entries, o=operand: any(o in e for e in entries))
            else:
                checks.append(lambda entries, o=operand.lower(): any(o in e.lower() for e in entries))
        elif op in ("in", "nin") and isinstance(operand, list):
            wanted = set(map(str, operand))
            if op == "in":
                checks.append(lambda entries, w=wanted: bool(w.intersection(entries)))
            else:
                checks.append(lambda entries, w=wanted: not w.intersection(entries))
        else:
            raise BadRequest(f"{where}: use a string with eq/contains/icontains or a list with in/nin")
    return lambda row: all(check(row.get(where) or []) for check in checks)


def parse_time(value: Any, where: str) -> datetime | date:
    """A filter's time: Unix seconds, an ISO time (UTC when it names no zone) or a bare date."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        if _DATE_ONLY.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        else:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise BadRequest(f"{where}: expected a date (YYYY-MM-DD), an ISO time or Unix seconds")


def _time_condition(name: str, value: Any) -> Predicate:
    operators = _operators(value, name)
    checks: list[Callable[[datetime], bool]] = []
    for op, operand in operators.items():
        if op in ("contains", "icontains"):
            raise BadRequest(f"{name}: {op} does not apply to times")
        if op in ("in", "nin"):
            if not isinstance(operand, list):
                raise BadRequest(f"{name}: {op} takes a list")
            moments = [parse_time(v, name) for v in operand]
            inside = op == "in"
            checks.append(lambda at, m=moments, i=inside: any(_same(at, x) for x in m) == i)
        else:
            checks.append(lambda at, o=op, x=parse_time(operand, name): _compare_time(o, at, x))
    return lambda row: row.get(name) is not None and all(check(row[name]) for check in checks)


def _same(at: datetime, moment: datetime | date) -> bool:
    return at.date() == moment if not isinstance(moment, datetime) else at == moment


def _compare_time(op: str, at: datetime, moment: datetime | date) -> bool:
    left: datetime | date = at if isinstance(moment, datetime) else at.astimezone(UTC).date()
    if op == "eq":
        return left == moment
    if op == "ne":
        return left != moment
    return _ordered(op, left, moment)
