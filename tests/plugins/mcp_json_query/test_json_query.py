"""The json-query server: JMESPath and JSONPath over inline JSON and files, schema inference,
streaming over a large file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from mnemogate.core.testing import running

DOC = {
    "store": {
        "books": [
            {"title": "Dune", "price": 9.5, "tags": ["sf"]},
            {"title": "Emma", "price": 4, "tags": []},
            {"title": "Ulysses", "price": 12, "isbn": "x"},
        ]
    }
}


async def query(client: Any, mcp_call: Any, **arguments: Any) -> Any:
    return await mcp_call(client, "json-query", "query_json", arguments)


async def test_queries_inline(client: Any, mcp_call: Any) -> None:
    jmes = await query(client, mcp_call, expression="store.books[?price > `5`].title", data=DOC)
    assert jmes["structuredContent"] == {"language": "jmespath", "result": ["Dune", "Ulysses"]}
    as_text = await query(client, mcp_call, expression="length(store.books)", data=orjson.dumps(DOC).decode())
    assert as_text["structuredContent"]["result"] == 3
    path = await query(
        client, mcp_call, expression="$.store.books[?(@.price < 10)].title", language="jsonpath", data=DOC
    )
    assert path["structuredContent"] == {
        "language": "jsonpath",
        "results": ["Dune", "Emma"],
        "paths": ["store.books.[0].title", "store.books.[1].title"],
        "count": 2,
        "truncated": False,
    }
    for arguments, message in [
        ({"expression": "a[", "data": DOC}, "invalid JMESPath"),
        ({"expression": "$[", "language": "jsonpath", "data": DOC}, "invalid JSONPath"),
        ({"expression": "a", "data": "{not json"}, "not JSON text"),
        ({"expression": "a"}, "either data"),
        ({"expression": "a", "data": {}, "path": "x.json"}, "either data"),
    ]:
        result = await query(client, mcp_call, **arguments)
        assert result["isError"] and message in result["content"][0]["text"], arguments


async def test_infers_schemas(client: Any, mcp_call: Any) -> None:
    result = await mcp_call(client, "json-query", "infer_schema", {"data": DOC})
    schema = result["structuredContent"]
    book = schema["properties"]["store"]["properties"]["books"]["items"]
    assert schema["$schema"].endswith("2020-12/schema")
    assert book["required"] == ["price", "title"]  # Ulysses has no tags, only Ulysses an isbn
    assert book["properties"]["price"] == {"type": "number"}
    assert book["properties"]["isbn"] == {"type": "string"}
    assert book["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    mixed = (await mcp_call(client, "json-query", "infer_schema", {"data": [1, "a", None]}))[
        "structuredContent"
    ]
    assert mixed["items"] == {"type": ["integer", "null", "string"]}


async def test_files_and_streaming(app_with: Any, tmp_path: Path, mcp_call: Any) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "doc.json").write_text(orjson.dumps(DOC).decode())
    with (root / "big.json").open("wb") as handle:
        handle.write(b'{"meta": {"n": 50000}, "rows": [')
        handle.write(
            b",".join(orjson.dumps({"id": i, "even": i % 2 == 0, "score": i / 10}) for i in range(50_000))
        )
        handle.write(b"]}")
    tables = {
        "mcp_fast_filesystem": {"roots": [str(root)]},
        "mcp_json_query": {"max_document_bytes": 100_000},
    }
    async with running(app_with(**tables)) as client:
        from_file = await query(client, mcp_call, expression="store.books[0].title", path="doc.json")
        assert from_file["structuredContent"]["result"] == "Dune"
        too_big = await query(client, mcp_call, expression="meta", path=str(root / "big.json"))
        assert too_big["isError"] and "stream_query" in too_big["content"][0]["text"]
        streamed = await mcp_call(
            client,
            "json-query",
            "stream_query",
            {
                "path": "big.json",
                "items_path": "rows.item",
                "where": "even && id > `40000`",
                "select": "id",
                "offset": 2,
                "limit": 3,
            },
        )
        assert streamed["structuredContent"] == {
            "items": [40006, 40008, 40010],
            "scanned": 40013,
            "truncated": True,
        }
        everything = await mcp_call(
            client,
            "json-query",
            "stream_query",
            {"path": "big.json", "items_path": "rows.item", "where": "id > `49998`"},
        )
        assert everything["structuredContent"] == {
            "items": [{"id": 49999, "even": False, "score": 4999.9}],
            "scanned": 50000,
            "truncated": False,
        }
        broken = await mcp_call(client, "json-query", "stream_query", {"path": "doc.json", "where": "a["})
        assert broken["isError"] and "invalid JMESPath" in broken["content"][0]["text"]


async def test_files_need_the_filesystem_plugin(make_client: Any, mcp_call: Any) -> None:
    async with make_client(disabled=["mcp_fast_filesystem"]) as client:
        result = await query(client, mcp_call, expression="@", path="doc.json")
        assert result["isError"] and "fast-filesystem" in result["content"][0]["text"]
        inline = await query(client, mcp_call, expression="a", data={"a": 1})
        assert inline["structuredContent"]["result"] == 1
