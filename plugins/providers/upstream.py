"""What the HTTP providers share: a connection pool per provider, JSON requests, upstream
errors turned into ``ProviderError`` and the upstream's rate-limit headers kept."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import orjson

from mnemogate.core.contracts import ChatContext, ModelInfo, ProviderError
from mnemogate.plugins.providers.catalogue import model_infos
from mnemogate.plugins.providers.http import UpstreamPool, UpstreamResponse
from mnemogate.plugins.providers.settings import UpstreamConfig

RATE_LIMIT_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-", b"retry-after", b"ratelimit-")
USER_AGENT = b"mnemogate"


def render_headers(headers: dict[str, str]) -> bytes:
    return b"".join(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


def rate_limit_headers(response: UpstreamResponse) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in response.headers
        if name.startswith(RATE_LIMIT_PREFIXES)
    }


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date)."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value) if value else None
        return None if moment is None else max(0.0, moment.timestamp() - time.time())


def error_message(body: bytes) -> tuple[str | None, str | None]:
    """(message, code) from an upstream error body in OpenAI's or Anthropic's shape."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return (str(error["message"]) if error.get("message") else None), (str(code) if code else None)
    if isinstance(error, str):
        return error, None
    return None, None


class HttpProvider:
    """Base of the HTTP providers: ``name``, ``kind``, models from settings and catalogue."""

    kind = "http"

    def __init__(self, config: UpstreamConfig, headers: dict[str, str]) -> None:
        self.name = config.name
        self.config = config
        self.base_url = config.base_url
        self.pool = UpstreamPool(config.base_url, connect_timeout=config.connect_timeout_seconds)
        self.timeout = config.timeout_seconds
        self.static_headers = render_headers(
            {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT.decode(),
                **headers,
                **config.headers,
            }
        )
        self._models = model_infos(config.name, config.models, config.catalogue)
        # Without a model list, name/anything is passed on (OpenRouter, Ollama and the like).
        self.accepts_any_model = not config.models

    async def models(self) -> list[ModelInfo]:
        return self._models

    async def post(self, ctx: ChatContext, path: str, payload: dict[str, Any]) -> UpstreamResponse:
        """POST JSON; an error status is read and raised as ``ProviderError``."""
        response = await self.pool.request(
            "POST", path, self.static_headers, orjson.dumps(payload), read_timeout=self.timeout
        )
        limits = rate_limit_headers(response)
        ctx.upstream_headers = limits
        if response.status < 400:
            return response
        try:
            body = await response.read()
        except ProviderError:
            body = b""
        message, code = error_message(body)
        status = response.status
        raise ProviderError(
            f"provider {self.name!r} answered {status}: {message or 'no details'}",
            kind="http",
            status=status,
            code=code,
            retry_after=retry_after(limits),
            headers=limits,
        )

    def close(self) -> None:
        self.pool.close()


def read_failure(provider: str, exc: BaseException) -> ProviderError:
    """A failure while reading a response body, as the ``ProviderError`` the gateway expects."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderError(f"provider {provider!r} stopped sending in time", kind="timeout", status=504)
    return ProviderError(f"provider {provider!r}: {exc}", kind="connect", status=502)
