"""One error envelope for every 4xx/5xx, scrubbed of credentials, file paths, addresses and traces.

``{"error": {"code", "message", "type", "request_id"}}`` is a superset of OpenAI's error object,
so OpenAI clients parse it. Services raise ``AppError`` subclasses; the handlers installed by
``install_error_handlers`` and the ``send_error`` helper for pure-ASGI middleware render them.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope, Send

log = logging.getLogger("mnemogate.errors")


class StartupError(RuntimeError):
    """The app cannot start; the message says why and names the plugins involved."""


class AppError(Exception):
    """An error a caller can act on. Subclasses fix the status, code and OpenAI-style type."""

    status = 500
    code = "internal_error"
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Iterable[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        # Structured, secret-free specifics (e.g. which lines of an upload were refused).
        self.details = None if details is None else list(details)


class BadRequest(AppError):
    status, code, type = 400, "bad_request", "invalid_request_error"


class Unauthorized(AppError):
    status, code, type = 401, "unauthorized", "authentication_error"


class Forbidden(AppError):
    status, code, type = 403, "forbidden", "permission_error"


class NotFound(AppError):
    status, code, type = 404, "not_found", "not_found_error"


class Conflict(AppError):
    status, code, type = 409, "conflict", "invalid_request_error"


class InvalidInput(AppError):
    status, code, type = 422, "validation_error", "invalid_request_error"


class RateLimited(AppError):
    status, code, type = 429, "rate_limit_exceeded", "rate_limit_error"


class Unavailable(AppError):
    status, code, type = 503, "unavailable", "server_error"


class PayloadTooLarge(AppError, HTTPException):
    """Raised from a wrapped ``receive``: an ``HTTPException`` so request parsing re-raises it."""

    status, code, type = 413, "payload_too_large", "invalid_request_error"

    def __init__(self, limit: int):
        AppError.__init__(self, f"request body exceeds the limit of {limit} bytes")
        HTTPException.__init__(self, status_code=413, detail=self.message)


_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "invalid_request_error"),
    401: ("unauthorized", "authentication_error"),
    403: ("forbidden", "permission_error"),
    404: ("not_found", "not_found_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    406: ("not_acceptable", "invalid_request_error"),
    409: ("conflict", "invalid_request_error"),
    413: ("payload_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
    422: ("validation_error", "invalid_request_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    503: ("unavailable", "server_error"),
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    type: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "Client error"},
    "5XX": {"model": ErrorEnvelope, "description": "Server error"},
}


# -- scrubbing -----------------------------------------------------------------------------------

_Scrubbers = tuple[tuple[re.Pattern[str], str], ...]

_TRACES_AND_CREDENTIALS: _Scrubbers = (
    # anything after a traceback header, and "File "...", line N" frames
    (re.compile(r"Traceback \(most recent call last\):.*", re.DOTALL), "[trace removed]"),
    (re.compile(r'File "[^"]*", line \d+(?:, in \S+)?'), "[frame removed]"),
    # credentials in URLs, auth headers, key=value pairs and well-known token shapes
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]*@"), r"\1[redacted]@"),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{16,}"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b([\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|authorization)"
            r"[\w-]*)(\"?\s*[=:]\s*\"?)[^\s\"',;&}]+"
        ),
        r"\1\2[redacted]",
    ),
    (
        re.compile(
            r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abposr]-[\w-]{10,}"
            r"|AKIA[0-9A-Z]{16}|AIza[\w-]{30,}|hf_[A-Za-z0-9]{20,}|mg_[A-Za-z0-9_-]{20,}"
            r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,})"
        ),
        "[redacted]",
    ),
)
_ADDRESSES: _Scrubbers = (
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "[address]"),
    (
        re.compile(
            r"(?i)\[?(?<![\w:])(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}(?![\w:])\]?"
            r"|(?<![\w:])(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?(?![\w:])"
            r"|(?<![\w:])::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)(?![\w:])"
        ),
        "[address]",
    ),
)
_PATHS: _Scrubbers = (
    # file-system paths: Windows drives, home shorthands, and absolute paths that look like files
    (re.compile(r"(?i)\b[a-z]:\\[^\s\"'<>|]*"), "[path]"),
    (re.compile(r"~/[^\s\"'<>]*"), "[path]"),
    (
        re.compile(
            r"(?<![\w/.:])/(?:home|root|usr|etc|var|tmp|opt|srv|proc|sys|mnt|media|lib|lib64|bin|sbin|"
            r"dev|run|boot|private|Users|Library|Applications|System|Volumes|work|data|app|snap|nix)"
            r"(?![\w.-])(?:/[^\s\"'<>,;]*)?"
        ),
        "[path]",
    ),
    (
        re.compile(
            r"(?<![\w/.:])(?:/[\w.@+~-]+)+\.(?:py|pyc|db|sqlite3?|json|toml|ya?ml|ini|cfg|log|pem|key|env|sock)\b"
        ),
        "[path]",
    ),
)


_SCRUBBERS = _TRACES_AND_CREDENTIALS + _ADDRESSES + _PATHS
_WITHOUT_ADDRESSES = _TRACES_AND_CREDENTIALS + _PATHS


# Every scrubber needs one of these; text without any (most log messages) is returned as is.
_MIGHT_NEED_SCRUBBING = re.compile(
    r"[:=/\\~\"]|\d\.\d|(?i:traceback|bearer|token|basic)|sk-|gh[pousr]_|github_pat_|xox|AKIA|AIza|hf_|mg_|eyJ"
)


def scrub(text: str, *, addresses: bool = True) -> str:
    """Remove credentials, file paths, stack traces and (unless ``addresses=False``, as in our
    own logs, where a peer address is useful) IP addresses from a message."""
    if not _MIGHT_NEED_SCRUBBING.search(text):
        return text
    for pattern, replacement in _SCRUBBERS if addresses else _WITHOUT_ADDRESSES:
        text = pattern.sub(replacement, text)
    return text


def describe_exception(exc: BaseException) -> str:
    """A one-line, scrubbed account of an unexpected exception for the log: type, message and the
    innermost frame as module:function:line (no file paths, no trace)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = ""
    if frames:
        frame = frames[-1]
        module = _module_of(frame.filename)
        where = f" at {module}:{frame.name}:{frame.lineno}"
    return f"{type(exc).__name__}: {scrub(str(exc))}{where}"


def _module_of(filename: str) -> str:
    parts = re.split(r"[\\/]", filename.removesuffix(".py"))
    for anchor in ("site-packages", "mnemogate"):
        if anchor in parts:
            return ".".join(parts[parts.index(anchor) + (anchor == "site-packages") :])
    return parts[-1] if parts else "?"


# -- rendering -----------------------------------------------------------------------------------


def error_body(
    status: int,
    message: str,
    *,
    code: str | None = None,
    type: str | None = None,
    request_id: str | None = None,
    details: Iterable[dict[str, Any]] | None = None,
) -> bytes:
    default_code, default_type = _STATUS_CODES.get(status, ("internal_error", "server_error"))
    error: dict[str, Any] = {
        "code": code or default_code,
        "message": scrub(message),
        "type": type or default_type,
        "request_id": request_id,
    }
    if details is not None:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if state else None


def error_response(
    status: int, message: str, scope: Scope, *, headers: Mapping[str, str] | None = None, **fields: Any
) -> Response:
    return Response(
        error_body(status, message, request_id=request_id_of(scope), **fields),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> None:
    """Answer from pure-ASGI middleware with the envelope (WebSocket scopes get a close frame)."""
    if scope["type"] == "websocket":
        code = {401: 1008, 403: 1008, 429: 1013}.get(status, 1011)
        await send({"type": "websocket.close", "code": code, "reason": scrub(message)})
        return
    await error_response(status, message, scope, headers=headers, **fields)(scope, _no_receive, send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location and message: the offending input may itself be a secret.
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]


async def _handle_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(
        exc.status,
        exc.message,
        request.scope,
        code=exc.code,
        type=exc.type,
        headers=exc.headers,
        details=exc.details,
    )


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, AppError):
        return await _handle_app_error(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return error_response(exc.status_code, message, request.scope, headers=exc.headers)


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5]) or "invalid request"
    return error_response(422, f"invalid request: {summary}", request.scope, details=details)


# SQLSTATEs of text a database cannot store (PostgreSQL refuses NUL characters in text and in
# JSON): the input is at fault, not the server, and the write's transaction was rolled back.
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT:
        message = "the request holds text this database cannot store (a NUL character, \\u0000)"
        return error_response(400, message, request.scope, code="unstorable_text")
    raise exc


class UnexpectedErrorMiddleware:
    """Innermost middleware: an exception no handler claimed becomes a 500 envelope and one
    scrubbed log line, instead of a stack trace in the server log. It is not re-raised, so the
    outer middleware (request id, access log, metrics) still sees a normal 500 response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error(
                "unhandled error in %s %s: %s",
                scope.get("method", "WEBSOCKET"),
                scope.get("path", ""),
                describe_exception(exc),
                extra={"request_id": request_id_of(scope)},
            )
            if not started:
                await send_error(scope, send, 500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
    app.add_exception_handler(HTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(WebSocketRequestValidationError, _handle_validation_error)
