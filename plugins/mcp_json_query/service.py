"""Queries and schema inference over JSON documents.

Files are read through the ``fast-filesystem`` service (its roots and its path checks), so a
path json-query accepts is one the file tools would accept too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Literal

import ijson
import jmespath
import jmespath.exceptions
import orjson
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as jsonpath_parse

from mnemogate.plugins.mcp_json_query.settings import JsonQuerySettings

FILESYSTEM_SERVICE = "fast-filesystem"
Language = Literal["jmespath", "jsonpath"]


class QueryError(Exception):
    """The query, the document or the file could not be used; the message is for the caller."""


class JsonQuery:
    def __init__(self, settings: JsonQuerySettings, services: dict[str, Any]) -> None:
        self.settings = settings
        self.services = services

    # -- documents -----------------------------------------------------------------------------

    @contextmanager
    def _file(self, path: str) -> Iterator[IO[bytes]]:
        sandbox = self.services.get(FILESYSTEM_SERVICE)
        if sandbox is None:
            raise QueryError("reading files needs the fast-filesystem plugin (it owns the allowed roots)")
        try:
            with sandbox.open_binary(path) as handle:
                yield handle
        except ValueError as exc:  # the sandbox refuses with ValueError and a message for the caller
            raise QueryError(str(exc)) from None

    def document(self, data: Any, path: str | None) -> Any:
        if (data is None) == (path is None):
            raise QueryError("give either data (inline JSON) or path (a file in the allowed roots)")
        if path is None:
            if isinstance(data, str):
                try:
                    return orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise QueryError(f"data is a string but not JSON text: {exc}") from None
            return data
        with self._file(path) as handle:
            limit = self.settings.max_document_bytes
            raw = handle.read(limit + 1)
        if len(raw) > limit:
            raise QueryError(f"the file is larger than max_document_bytes ({limit}): use stream_query")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise QueryError(f"the file is not valid JSON: {exc}") from None

    # -- queries -------------------------------------------------------------------------------

    def query(self, expression: str, language: Language, document: Any) -> dict[str, Any]:
        if language == "jmespath":
            return {"language": language, "result": _jmespath(expression).search(document)}
        try:
            matches = jsonpath_parse(expression).find(document)
        except JSONPathError as exc:
            raise QueryError(f"invalid JSONPath expression: {exc}") from None
        limit = self.settings.max_results
        return {
            "language": language,
            "results": [m.value for m in matches[:limit]],
            "paths": [str(m.full_path) for m in matches[:limit]],
            "count": len(matches),
            "truncated": len(matches) > limit,
        }

    def stream(
        self, path: str, items_path: str, where: str | None, select: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """Items of a large file one at a time (never the whole file in memory): those at
        ``items_path`` (ijson prefix: ``item`` for a top-level array, ``rows.item`` for the array
        under ``rows``) for which the JMESPath ``where`` is truthy, projected by ``select``."""
        condition = _jmespath(where) if where else None
        projection = _jmespath(select) if select else None
        limit = min(limit, self.settings.max_results)
        items: list[Any] = []
        scanned = matched = 0
        with self._file(path) as handle:
            try:
                for item in ijson.items(handle, items_path, use_float=True):
                    scanned += 1
                    if condition is not None and not condition.search(item):
                        continue
                    matched += 1
                    if matched <= offset:
                        continue
                    if len(items) >= limit:
                        return {"items": items, "scanned": scanned, "truncated": True}
                    items.append(projection.search(item) if projection is not None else item)
            except ijson.JSONError as exc:
                raise QueryError(f"the file is not valid JSON (after {scanned} items): {exc}") from None
        return {"items": items, "scanned": scanned, "truncated": False}

    # -- schemas -------------------------------------------------------------------------------

    def infer_schema(self, document: Any) -> dict[str, Any]:
        schema = _infer(document, self.settings.schema_sample)
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _jmespath(expression: str) -> Any:
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise QueryError(f"invalid JMESPath expression: {exc}") from None


def _infer(value: Any, sample: int) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        schema: dict[str, Any] = {"type": "array"}
        items = [_infer(item, sample) for item in value[:sample]]
        if items:
            merged = items[0]
            for item in items[1:]:
                merged = _merge(merged, item)
            schema["items"] = merged
        return schema
    properties = {str(key): _infer(item, sample) for key, item in value.items()}
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    return kind if isinstance(kind, list) else [kind]


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema both values fit: objects merge their properties (a property missing from
    either is no longer required), arrays their items, integer and number make number, and
    different kinds become a list of types."""
    if a == b:
        return a
    kinds = set(_types(a)) | set(_types(b))
    if kinds == {"integer", "number"}:
        return {"type": "number"}
    if _types(a) == _types(b) == ["object"]:
        properties = dict(a.get("properties", {}))
        for key, schema in b.get("properties", {}).items():
            properties[key] = _merge(properties[key], schema) if key in properties else schema
        required = sorted(set(a.get("required", [])) & set(b.get("required", [])))
        return {"type": "object", "properties": properties, "required": required}
    if _types(a) == _types(b) == ["array"]:
        if "items" in a and "items" in b:
            return {"type": "array", "items": _merge(a["items"], b["items"])}
        return a if "items" in a else b  # an empty array says nothing about items
    if "integer" in kinds and "number" in kinds:
        kinds.discard("integer")
    merged: dict[str, Any] = {"type": sorted(kinds)}
    for part in (a, b):
        for key in ("properties", "items"):
            if key in part and key not in merged:
                merged[key] = part[key]
    return merged
