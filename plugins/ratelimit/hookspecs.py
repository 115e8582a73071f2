"""Extension point of the rate-limit plugin."""

from collections.abc import Callable

from mnemogate.core.hookspecs import hookspec


@hookspec
def register_ratelimit_stores(register: Callable[..., None]) -> None:
    """Contribute a bucket store for the rate limiter (may be async).

    Call ``register(name, factory)``; ``factory(settings)`` returns an object with
    ``async take(key, capacity, refill_per_second) -> Decision`` and
    ``async peek(key, capacity, refill_per_second) -> Decision`` that update buckets atomically
    (a store shared by several instances makes the limit hold across all of them). The store
    named by ``plugins.ratelimit.store`` is used.
    """
