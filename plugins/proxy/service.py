"""The gateway: model routing, the ``chat_request``/``chat_response`` pipeline around each
provider call, retries and fallbacks, timings, and the upstream rate-limit headers last seen.

Nothing here knows HTTP: routes hand in a ``ChatContext`` and get back a completion, or a
stream of SSE blocks, or a ``GatewayError`` that says which status and envelope to answer with.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from mnemogate.core.contracts import ChatContext, ModelInfo, Provider, ProviderError, utcnow
from mnemogate.core.errors import AppError, BadRequest, NotFound, describe_exception
from mnemogate.core.registry import Registry
from mnemogate.plugins.proxy.assemble import assemble
from mnemogate.plugins.proxy.settings import ProxySettings

log = logging.getLogger("mnemogate.gateway")

SERVICE = "gateway"
LIMITS_SERVICE = "gateway.upstream_rate_limits"
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
CLIENT_CLOSED = 499

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """One way to serve a request: a provider and its model id."""

    provider: Provider
    model: str
    info: ModelInfo | None


class GatewayError(AppError):
    """An upstream failure as the client sees it (status, code, type, headers)."""

    def __init__(self, status: int, message: str, *, code: str, type: str, headers: dict[str, str]) -> None:
        super().__init__(message, code=code, headers=headers)
        self.status = status
        self.type = type

    @classmethod
    def of(cls, exc: ProviderError) -> GatewayError:
        headers = {}
        if exc.kind == "timeout":
            return cls(504, exc.message, code="upstream_timeout", type="server_error", headers=headers)
        if exc.kind == "connect":
            return cls(502, exc.message, code="upstream_unavailable", type="server_error", headers=headers)
        if exc.status == 429:
            if exc.retry_after is not None:
                headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return cls(429, exc.message, code="rate_limit_exceeded", type="rate_limit_error", headers=headers)
        if exc.status in (401, 403):
            # The gateway's own credentials were refused: not the caller's fault, nor theirs to fix.
            return cls(502, exc.message, code="upstream_auth_error", type="server_error", headers=headers)
        if 400 <= exc.status < 500:
            code = exc.code or "upstream_rejected"
            return cls(exc.status, exc.message, code=code, type="invalid_request_error", headers=headers)
        return cls(502, exc.message, code=exc.code or "upstream_error", type="server_error", headers=headers)

    def envelope(self, request_id: str | None) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "type": self.type, "request_id": request_id}


def check_chat_body(body: Any) -> None:
    """Refuse a request body the OpenAI API would refuse, before any plugin or provider sees it;
    fields we do not know pass through untouched."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_request")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("messages must be a list of message objects", code="invalid_request")
    expected = {"model": str, "stream": bool, "stream_options": dict}
    for field, kind in expected.items():
        if field in body and body[field] is not None and not isinstance(body[field], kind):
            raise BadRequest(f"{field} must be a {_JSON_NAMES[kind]}", code="invalid_request")


_JSON_NAMES = {str: "string", bool: "boolean", dict: "JSON object"}


class UpstreamLimits:
    """Each provider's rate-limit headers as last seen (published for the ratelimit plugin)."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}

    def record(self, provider: str, headers: dict[str, str]) -> None:
        if headers:
            self.seen[provider] = {**headers, "seen_at": utcnow().isoformat()}

    def snapshot(self) -> dict[str, dict[str, str]]:
        return {provider: dict(headers) for provider, headers in self.seen.items()}


class Gateway:
    def __init__(
        self, registry: Registry, settings: ProxySettings, models: dict[str, list[ModelInfo]]
    ) -> None:
        self.registry = registry
        self.host = registry.host
        self.settings = settings
        self.providers: dict[str, Provider] = {name: registry.providers[name] for name in models}
        self.models = models
        self.by_provider = {name: {m.id: m for m in infos} for name, infos in models.items()}
        self.served: dict[str, ModelInfo] = {}
        for infos in models.values():
            for info in infos:
                if info.enabled:
                    self.served.setdefault(info.id, info)
        self.limits = UpstreamLimits()
        self._routes: dict[str, list[Target]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        metrics = registry.services.get("metrics")
        self.overhead = (
            metrics.histogram(
                "mnemogate_gateway_overhead_seconds",
                "Time the gateway added to chat requests (total minus waiting on the provider)",
                ("provider",),
                buckets=OVERHEAD_BUCKETS,
            )
            if metrics is not None
            else None
        )
        self._overhead_children: dict[str, Any] = {}

    @classmethod
    async def create(cls, registry: Registry, settings: ProxySettings) -> Gateway:
        models = {}
        for name, provider in registry.providers.items():
            if isinstance(provider, Provider):
                models[name] = list(await provider.models())
            else:
                log.warning(
                    "provider %r does not implement the Provider protocol; the gateway skips it", name
                )
        return cls(registry, settings, models)

    # -- models --------------------------------------------------------------------------------

    def enabled_models(self) -> list[ModelInfo]:
        return [m for infos in self.models.values() for m in infos if m.enabled]

    def all_models(self) -> list[ModelInfo]:
        return [m for infos in self.models.values() for m in infos]

    def targets(self, requested: str) -> list[Target]:
        """The provider and model for a model name, then its fallbacks (cached per name)."""
        route = self._routes.get(requested)
        if route is None:
            primary = self._resolve(requested)
            route = [primary]
            for name in self.settings.fallbacks.get(requested) or self.settings.fallbacks.get(
                f"{primary.provider.name}/{primary.model}", []
            ):
                route.append(self._resolve(name))
            self._routes[requested] = route
        return route

    def _resolve(self, name: str) -> Target:
        name = self.settings.aliases.get(name, name)
        prefix, slash, rest = name.partition("/")
        provider = self.providers.get(prefix) if slash else None
        if provider is not None and rest:
            info = self.by_provider.get(prefix, {}).get(rest)
            if (info is not None and info.enabled) or getattr(provider, "accepts_any_model", False):
                return Target(provider, rest, info)
            raise NotFound(f"provider {prefix!r} does not serve model {rest!r}", code="model_not_found")
        info = self.served.get(name)
        if info is None:
            raise NotFound(f"no provider serves model {name!r}", code="model_not_found")
        return Target(self.providers[info.provider], info.id, info)

    # -- one exchange --------------------------------------------------------------------------

    async def prepare(self, ctx: ChatContext) -> list[Target]:
        """Run the ``chat_request`` pipeline, then pick the providers to try."""
        await self.host.run_pipeline("chat_request", ctx=ctx)
        model = ctx.body.get("model") or self.settings.default_model
        if not isinstance(model, str):
            raise NotFound("model must be a string", code="model_not_found")
        return self.targets(model)

    async def complete(self, ctx: ChatContext, targets: list[Target]) -> dict[str, Any]:
        result = await self._attempt(ctx, targets, lambda provider: provider.complete(ctx))
        ctx.response = result
        usage = result.get("usage")
        if isinstance(usage, dict):
            ctx.usage = {k: v for k, v in usage.items() if type(v) is int}
        ctx.status = 200
        return result

    async def open_stream(
        self, ctx: ChatContext, targets: list[Target]
    ) -> tuple[AsyncIterator[bytes], bytes]:
        """Start a stream, falling back while nothing has been sent: (rest, first block)."""

        async def first_block(provider: Provider) -> tuple[AsyncIterator[bytes], bytes]:
            iterator = provider.stream(ctx)
            try:
                return iterator, await anext(iterator)
            except StopAsyncIteration:
                return iterator, b""
            except BaseException:
                await iterator.aclose()  # type: ignore[attr-defined]
                raise

        return await self._attempt(ctx, targets, first_block)

    async def relay(
        self, ctx: ChatContext, iterator: AsyncIterator[bytes], first: bytes, started: float
    ) -> AsyncIterator[bytes]:
        """The stream to the client: blocks pass on as they come, through the chunk filters.
        An upstream failure mid-stream ends it with an error event; a client that goes away
        closes the upstream call. ``chat_response`` runs when it is over."""
        blocks = [first]
        filters = ctx.chunk_filters
        perf = time.perf_counter
        try:
            block = first
            while True:
                for chunk_filter in filters:
                    block = chunk_filter(block)
                if block:
                    yield block
                waited = perf()
                try:
                    block = await anext(iterator)
                except StopAsyncIteration:
                    break
                finally:
                    ctx.upstream_ms += (perf() - waited) * 1000  # type: ignore[operator]
                blocks.append(block)
            ctx.status = 200
        except ProviderError as exc:
            error = GatewayError.of(exc)
            self._failed(ctx, error)
            yield b"data: " + orjson.dumps({"error": error.envelope(ctx.request_id)}) + b"\n\n"
        except BaseException:
            ctx.status = CLIENT_CLOSED
            ctx.error = {"code": "client_closed_request", "message": "the client closed the connection"}
            raise
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]
            self._settle(ctx, started)
            ctx.response = assemble(blocks)
            usage = ctx.response.get("usage")
            if isinstance(usage, dict):
                ctx.usage = {k: v for k, v in usage.items() if type(v) is int}
            task = asyncio.get_running_loop().create_task(self.respond(ctx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _attempt(
        self, ctx: ChatContext, targets: list[Target], call: Callable[[Provider], Awaitable[T]]
    ) -> T:
        """Try each target in turn, retrying one while its failures are retryable; time spent
        waiting on providers (backoff included) counts as upstream time."""
        perf = time.perf_counter
        last: ProviderError | None = None
        for target in targets:
            ctx.provider, ctx.model, ctx.model_info = target.provider.name, target.model, target.info
            for attempt in range(self.settings.retries + 1):
                began = perf()
                try:
                    return await call(target.provider)
                except ProviderError as exc:
                    last = exc
                    if not exc.retryable:
                        raise GatewayError.of(exc) from None
                    wait = self._retry_wait(exc, attempt)
                    log.warning(
                        "provider %s failed (%s); %s",
                        target.provider.name,
                        exc.message,
                        "retrying" if wait is not None else "trying the next one",
                        extra={"request_id": ctx.request_id},
                    )
                    if wait is None:
                        break
                    await asyncio.sleep(wait)
                finally:
                    ctx.upstream_ms += (perf() - began) * 1000  # type: ignore[operator]
                    if ctx.upstream_headers:
                        self.limits.record(target.provider.name, ctx.upstream_headers)
        assert last is not None
        raise GatewayError.of(last)

    def _retry_wait(self, exc: ProviderError, attempt: int) -> float | None:
        if attempt >= self.settings.retries:
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.settings.max_retry_wait_seconds else None
        return self.settings.retry_backoff_seconds * (2**attempt)

    # -- after the answer ----------------------------------------------------------------------

    def _failed(self, ctx: ChatContext, error: AppError) -> None:
        ctx.status = error.status
        ctx.error = {"code": error.code, "message": error.message}

    def failed(self, ctx: ChatContext, error: AppError, started: float) -> None:
        """Record a refused or failed exchange (its ``chat_response`` runs after the answer)."""
        self._failed(ctx, error)
        self._settle(ctx, started)

    def finished(self, ctx: ChatContext, started: float) -> None:
        self._settle(ctx, started)

    def _settle(self, ctx: ChatContext, started: float) -> None:
        ctx.latency_ms = (time.perf_counter() - started) * 1000
        ctx.overhead_ms = max(0.0, ctx.latency_ms - (ctx.upstream_ms or 0.0))
        if ctx.ttft_ms is None:
            ctx.ttft_ms = ctx.latency_ms
        if self.overhead is not None:
            provider = ctx.provider or "none"
            child = self._overhead_children.get(provider)
            if child is None:
                child = self._overhead_children[provider] = self.overhead.labels(provider)
            child.observe(ctx.overhead_ms / 1000)

    async def respond(self, ctx: ChatContext) -> None:
        """``chat_response`` hooks, after the client has its answer."""
        try:
            await self.host.broadcast("chat_response", ctx=ctx)
        except Exception as exc:
            log.error("chat_response failed: %s", describe_exception(exc))

    async def drain(self) -> None:
        """Wait for ``chat_response`` work still running (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def start(registry: Registry) -> Gateway:
    gateway = await Gateway.create(registry, registry.plugin_settings("proxy"))
    registry.provide(SERVICE, gateway, plugin="proxy")
    registry.provide(LIMITS_SERVICE, gateway.limits, plugin="proxy")
    return gateway
