"""Extension point of the rate-limit plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mnemogate.core.hookspecs import hookspec

if TYPE_CHECKING:
    from mnemogate.core.registry import Registry


@hookspec
def register_ratelimit_stores(register: Callable[..., None], registry: Registry) -> None:
    """Contribute a bucket store for the rate limiter (may be async).

    Call ``register(name, factory, default=False)``; ``factory(settings)`` returns an object with
    ``async take(key, capacity, refill_per_second) -> RateLimitDecision`` and
    ``async peek(key, capacity, refill_per_second) -> RateLimitDecision`` (from
    ``mnemogate.core.contracts``) that update buckets atomically, and optionally
    ``async close()``, called at shutdown. A store shared by several instances makes the limit
    hold across all of them. The store named by ``plugins.ratelimit.store`` is used; unset, the
    one registered with ``default=True`` (a plugin offers that when its own configuration is
    there, e.g. a Redis URL; ``registry`` gives it the settings), else ``memory``.
    """
