"""Token buckets: ``capacity`` tokens, refilled continuously at ``refill_per_second``.

The limiter picks the bucket (the API key, or the client address for callers without a key)
and its size (by the key's highest scope); a store keeps the buckets. The in-memory store is
atomic because it never awaits between reading and writing a bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from mnemogate.core.contracts import Principal, RateLimitDecision
from mnemogate.core.errors import StartupError
from mnemogate.core.registry import Registry
from mnemogate.core.settings import Settings
from mnemogate.plugins.ratelimit.models import BucketOut
from mnemogate.plugins.ratelimit.settings import RateLimitSettings

SWEEP_EVERY = 10_000
SERVICE = "ratelimit"
# Published by the gateway when it runs: ``snapshot()`` -> provider -> last rate-limit headers.
UPSTREAM_LIMITS = "gateway.upstream_rate_limits"


class BucketStore(Protocol):
    async def take(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision: ...
    async def peek(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision: ...


class MemoryBucketStore:
    """Buckets of this process: key -> (tokens, last update, seconds until full when idle)."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float, float]] = {}
        self.calls = 0

    def _level(self, key: str, capacity: int, refill: float, now: float) -> float:
        tokens, last, _ = self.buckets.get(key, (float(capacity), now, 0.0))
        return min(float(capacity), tokens + (now - last) * refill)

    async def take(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        now = time.monotonic()
        tokens = self._level(key, capacity, refill_per_second, now)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self.buckets[key] = (tokens, now, capacity / refill_per_second)
        self.calls += 1
        if self.calls % SWEEP_EVERY == 0:
            self._sweep(now)
        return RateLimitDecision.of(tokens, capacity, refill_per_second, allowed)

    async def peek(self, key: str, capacity: int, refill_per_second: float) -> RateLimitDecision:
        tokens = self._level(key, capacity, refill_per_second, time.monotonic())
        return RateLimitDecision.of(tokens, capacity, refill_per_second, tokens >= 1)

    def _sweep(self, now: float) -> None:
        # A bucket idle long enough to be full again is the same as no bucket at all.
        self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < v[2]}


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, store: BucketStore, store_name: str) -> None:
        self.settings = settings
        self.store = store
        self.store_name = store_name
        self.exempt = frozenset(settings.exempt_paths)

    def bucket_for(
        self, principal: Principal | None, client: tuple[str, int] | None
    ) -> tuple[str, int, float]:
        """(bucket key, capacity, refill per second) for a caller."""
        per_minute = self.settings.requests_per_minute
        if principal is not None and principal.key_id is not None:
            key = f"key:{principal.key_id}"
            top = principal.top_scope
            per_minute = self.settings.per_scope.get(top, per_minute) if top else per_minute
        else:
            key = f"addr:{client[0] if client else 'unknown'}"
        capacity = self.settings.burst or per_minute
        return key, capacity, per_minute / 60.0

    async def take(self, principal: Principal | None, client: tuple[str, int] | None) -> RateLimitDecision:
        key, capacity, refill = self.bucket_for(principal, client)
        return await self.store.take(key, capacity, refill)

    async def peek(self, principal: Principal | None, client: tuple[str, int] | None) -> RateLimitDecision:
        key, capacity, refill = self.bucket_for(principal, client)
        return await self.store.peek(key, capacity, refill)


def describe(
    limiter: RateLimiter,
    principal: Principal,
    client: tuple[str, int] | None,
    decision: RateLimitDecision,
    upstream: Any = None,
) -> BucketOut:
    key, _, refill = limiter.bucket_for(principal, client)
    return BucketOut(
        bucket=key,
        limit=decision.limit,
        remaining=decision.remaining,
        reset_seconds=round(decision.reset_seconds, 3),
        requests_per_minute=round(refill * 60),
        store=limiter.store_name,
        upstream=upstream.snapshot() if upstream is not None else {},
    )


async def start(registry: Registry) -> None:
    """Pick the bucket store among those plugins registered and publish the limiter: the one
    ``plugins.ratelimit.store`` names, else the one a plugin offers as the default (a shared
    store, switched on by its own configuration), else ``memory``."""
    settings: RateLimitSettings = registry.plugin_settings("ratelimit")
    stores: dict[str, Callable[[Settings], BucketStore]] = {}
    defaults: dict[str, str] = {}

    def register(plugin: str) -> dict[str, Any]:
        def add(name: str, factory: Callable[[Settings], BucketStore], *, default: bool = False) -> None:
            registry.claim("rate-limit store", name, plugin)
            stores[name] = factory
            if default:
                defaults[name] = plugin

        return {"register": add, "registry": registry}

    await registry.host.call_each_async("register_ratelimit_stores", register)
    if len(defaults) > 1 and settings.store is None:
        offered = ", ".join(f"{name!r} (plugin {plugin!r})" for name, plugin in sorted(defaults.items()))
        raise StartupError(
            f"plugin 'ratelimit': several stores offer to be the default: {offered}; "
            "choose one with plugins.ratelimit.store"
        )
    name = settings.store or next(iter(defaults), "memory")
    if name not in stores:
        raise StartupError(
            f"plugin 'ratelimit': store {name!r} is not available; installed: {', '.join(sorted(stores))}"
        )
    registry.provide(
        SERVICE, RateLimiter(settings, stores[name](registry.settings), name), plugin="ratelimit"
    )


async def stop(registry: Registry) -> None:
    limiter: RateLimiter | None = registry.services.get(SERVICE)
    close = getattr(limiter.store, "close", None) if limiter is not None else None
    if close is not None:
        await close()
