"""Pure-ASGI middleware of the hardening plugin (settings are read on the first request)."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemogate.core.errors import PayloadTooLarge, error_response, send_error
from mnemogate.core.logs import request_id_var
from mnemogate.core.registry import registry_of
from mnemogate.plugins.hardening.settings import HardeningSettings

access_log = logging.getLogger("mnemogate.access")

_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_JSON_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def settings_of(scope: Scope) -> HardeningSettings:
    return registry_of(scope).plugin_settings("hardening")


def incoming_request_id(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            # fullmatch: "$" would also accept a trailing newline, echoed into a response header
            return value if _VALID_REQUEST_ID.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Request id (accepted or generated) on every response and log line, security headers,
    timing and one structured access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.settings: HardeningSettings | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        settings = self.settings or self._resolve(scope)
        raw_id = incoming_request_id(scope) or os.urandom(16).hex().encode()
        request_id = raw_id.decode()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 101 if scope["type"] == "websocket" else 500
        sent = 0
        https = scope.get("scheme") in ("https", "wss")

        async def send_with_headers(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", raw_id))
                if settings.security_headers:
                    self._add_security_headers(headers, https, settings)
                message["headers"] = headers
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "websocket.close":
                status = 1000
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)
            if settings.access_log:
                self._log(scope, status, sent, time.perf_counter() - started)

    @staticmethod
    def _add_security_headers(headers: list[Any], https: bool, settings: HardeningSettings) -> None:
        present = {name for name, _ in headers}
        headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
        if b"content-security-policy" not in present and (b"content-type", b"application/json") in headers:
            headers.append(_JSON_CSP)
        if https and settings.hsts_seconds:
            headers.append((b"strict-transport-security", f"max-age={settings.hsts_seconds}".encode()))

    @staticmethod
    def _log(scope: Scope, status: int, sent: int, seconds: float) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        client = scope.get("client")
        access_log.info(
            "request",
            extra={
                "request_id": state.get("request_id"),
                "method": scope.get("method", "WEBSOCKET"),
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "bytes": sent,
                "client": client[0] if client else None,
                "tenant": principal.tenant if principal else None,
                "key_id": principal.key_id if principal else None,
            },
        )

    def _resolve(self, scope: Scope) -> HardeningSettings:
        self.settings = settings_of(scope)
        return self.settings


class BodyLimitMiddleware:
    """413 for request bodies over ``max_body_bytes``: at once when Content-Length says so,
    while reading when a chunked body grows past the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limit: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit or self._resolve(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await send_error(scope, send, 413, PayloadTooLarge(limit).message)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge as exc:
            # Reached only when the app let the error escape instead of answering it.
            if not started:
                await send_error(scope, send, 413, exc.message)

    def _resolve(self, scope: Scope) -> int:
        self.limit = settings_of(scope).max_body_bytes
        return self.limit


class CorsMiddleware:
    """Starlette's CORS handling, configured from settings; absent origins switch it off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.handler: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.handler is None:
            settings = settings_of(scope) if scope["type"] != "lifespan" else None
            if settings is None:
                await self.app(scope, receive, send)
                return
            self.handler = (
                EnvelopeCORSMiddleware(
                    self.app,
                    allow_origins=settings.cors_origins,
                    allow_credentials=settings.cors_allow_credentials,
                    allow_methods=settings.cors_allow_methods,
                    allow_headers=settings.cors_allow_headers,
                    expose_headers=[
                        "X-Request-ID",
                        "Retry-After",
                        "X-RateLimit-Limit",
                        "X-RateLimit-Remaining",
                        "X-RateLimit-Reset",
                    ],
                )
                if settings.cors_origins
                else self.app
            )
        await self.handler(scope, receive, send)


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, answering a refused preflight with the error envelope instead of
    Starlette's plain-text 400 (the preflight's CORS headers are kept)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    kept = {
                        name: value
                        for name, value in response.headers.items()
                        if name not in ("content-length", "content-type")
                    }
                    message = bytes(response.body).decode()
                    response = error_response(
                        response.status_code, message, scope, headers=kept, code="cors_rejected"
                    )
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
