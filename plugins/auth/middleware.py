"""Resolves the caller of every HTTP and WebSocket request into a ``Principal``.

A request with a key must present a valid one (401 otherwise). Without a key it is anonymous
once keys exist; while none exist the server is open, to loopback clients only unless
``allow_open`` is set. Scope checks happen per route pack (``require_scope``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from mnemogate.core.contracts import Principal
from mnemogate.core.errors import send_error
from mnemogate.core.registry import registry_of
from mnemogate.core.settings import is_loopback
from mnemogate.plugins.auth.service import KeyService

SERVICE = "auth.keys"
ANONYMOUS = Principal.anonymous()
OPEN = Principal.open()
_KEY_SCHEMES = ("bearer", "token")


def key_from(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in _KEY_SCHEMES and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    if scope["type"] == "websocket":
        # Browsers cannot set headers on a WebSocket; they pass the key as a query parameter.
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if name == "api_key" and value:
                return value
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.keys: KeyService | None = None
        self.allow_open = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        keys = self.keys or self._resolve(scope)
        key = key_from(scope)
        if key is not None:
            principal = await keys.authenticate(key)
            if principal is None:
                await send_error(
                    scope, send, 401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
                return
        elif await keys.has_active_keys():
            principal = ANONYMOUS
        else:
            client = scope.get("client")
            principal = (
                OPEN if self.allow_open or (client is not None and is_loopback(client[0])) else ANONYMOUS
            )
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> KeyService:
        registry = registry_of(scope)
        self.allow_open = registry.settings.allow_open
        self.keys = registry.services[SERVICE]
        return self.keys
