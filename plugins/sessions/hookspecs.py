"""Extension point of the sessions plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mnemogate.core.hookspecs import hookspec

if TYPE_CHECKING:
    from mnemogate.core.registry import Registry


@hookspec
def register_session_state_stores(register: Callable[..., None], registry: Registry) -> None:
    """Share each tenant's gateway session state between instances (may be async).

    Call ``register(name, store)`` (at most one plugin, typically only when its own
    configuration is there; ``registry`` gives it the settings). The state is a dict with
    ``auto`` (auto mode), ``active_id`` (the active session) and ``fingerprint`` (the
    conversation it follows). The store implements ``async load() -> {tenant: state}``,
    ``async save(tenant, state)`` (record it and tell the other instances),
    ``async watch(on_change)`` (call ``on_change(tenant, state)`` for every state another
    instance saves, from now on) and ``async close()``. The database stays the record; the store
    makes a change on one instance apply on all of them at once.
    """
