"""JSON-RPC 2.0 over HTTP: a body becomes calls, answers become a body.

A body that is not JSON, or not a request object or a non-empty array of them, is refused as a
whole (HTTP 400 with a JSON-RPC error, id null), as MCP's streamable-HTTP transport does. In a
batch every member is answered on its own, in order. Notifications are accepted and get no
answer: the gateway keeps no per-client connection for them to act on (``initialized``,
``cancelled``); a body of notifications only is acknowledged with 202 and no content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from mnemogate.core.errors import scrub

JSONRPC = "2.0"
# JSON-RPC 2.0's error codes, spelled out here: importing them from the mcp SDK's types costs a
# third of a second at start-up.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602

# What the gateway routes, and what each method's params must hold before it is sent on.
METHODS: dict[str, tuple[tuple[str, type], ...]] = {
    "initialize": (("protocolVersion", str),),
    "ping": (),
    "tools/list": (),
    "tools/call": (("name", str),),
    "resources/list": (),
    "resources/templates/list": (),
    "resources/read": (("uri", str),),
    "prompts/list": (),
    "prompts/get": (("name", str),),
}
OBJECT_PARAMS = {"tools/call": "arguments", "prompts/get": "arguments"}


class RpcError(Exception):
    """A JSON-RPC error object: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_object(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": scrub(self.message)}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True, slots=True)
class Call:
    """One request (or notification) of a body."""

    id: str | int | float | None
    method: str
    params: dict[str, Any] | None
    notification: bool


def error_response(id_: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id_, "error": error.as_object()}


def result_response(id_: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id_, "result": result}


def parse_body(body: bytes) -> tuple[list[Call | RpcError], bool]:
    """The body's members (a ``Call``, or the error a malformed member gets) and whether it was a
    batch. Raises ``RpcError`` when the body as a whole is unusable."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RpcError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    if isinstance(document, list):
        if not document:
            raise RpcError(INVALID_REQUEST, "Invalid Request: empty batch")
        return [_member(item) for item in document], True
    member = _member(document)
    if isinstance(member, RpcError):
        raise member
    return [member], False


def _member(item: Any) -> Call | RpcError:
    if not isinstance(item, dict):
        return RpcError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC request object")
    if item.get("jsonrpc") != JSONRPC:
        return RpcError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    method = item.get("method")
    if not isinstance(method, str):
        return RpcError(INVALID_REQUEST, 'Invalid Request: "method" must be a string')
    notification = "id" not in item
    id_ = item.get("id")
    if (not notification and not (id_ is None or isinstance(id_, str | int | float))) or isinstance(
        id_, bool
    ):
        return RpcError(INVALID_REQUEST, 'Invalid Request: "id" must be a string, a number or null')
    params = item.get("params")
    if params is not None and not isinstance(params, dict | list):
        return RpcError(INVALID_REQUEST, 'Invalid Request: "params" must be an object or an array')
    return Call(id_, method, params, notification)  # type: ignore[arg-type]


def check_call(call: Call) -> None:
    """The method is one the gateway routes and its params have the shape MCP requires."""
    wanted = METHODS.get(call.method)
    if wanted is None:
        raise RpcError(METHOD_NOT_FOUND, f"Method not found: {call.method[:100]}")
    if isinstance(call.params, list):
        raise RpcError(INVALID_PARAMS, "Invalid params: MCP takes params by name (an object)")
    params = call.params or {}
    for key, kind in wanted:
        if not isinstance(params.get(key), kind):
            raise RpcError(INVALID_PARAMS, f'Invalid params: "{key}" must be a {kind.__name__}')
    nested = OBJECT_PARAMS.get(call.method)
    if nested is not None and params.get(nested) is not None and not isinstance(params[nested], dict):
        raise RpcError(INVALID_PARAMS, f'Invalid params: "{nested}" must be an object')


async def answer(
    calls: list[Call | RpcError], handle: Callable[[Call], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Answer each request in order (one after the other, so a batch's side effects happen in
    the order it lists them); notifications get no answer."""
    responses: list[dict[str, Any]] = []
    for call in calls:
        if isinstance(call, RpcError):
            responses.append(error_response(None, call))
        elif not call.notification:
            try:
                check_call(call)
                responses.append(result_response(call.id, await handle(call)))
            except RpcError as exc:
                responses.append(error_response(call.id, exc))
    return responses
