"""What the system routes report, computed from the registry (no HTTP here)."""

from __future__ import annotations

import time

from sqlalchemy import text

from mnemogate.core import __version__
from mnemogate.core.app import duplicate_routes
from mnemogate.core.errors import Unavailable
from mnemogate.core.registry import Registry
from mnemogate.plugins.system.models import Check, Health, PluginOut, RouteOut, Stats


def uptime(registry: Registry) -> float:
    return round(time.time() - registry.started_at, 3)


async def health(registry: Registry) -> Health:
    database_ok = registry.db_open and await registry.db.ping()
    checks = {
        "database": Check(ok=database_ok, detail=registry.db.dialect if registry.db_open else "not open")
    }
    return Health(
        status="ok" if database_ok else "degraded",
        version=__version__,
        uptime_seconds=uptime(registry),
        checks=checks,
    )


async def ensure_ready(registry: Registry) -> None:
    """Ready means the database answers; raises ``Unavailable`` otherwise."""
    if not (registry.db_open and await registry.db.ping()):
        raise Unavailable("not ready: the database does not answer")


async def database_bytes(registry: Registry) -> int | None:
    db = registry.db
    if db.dialect == "sqlite" and db.path is not None:
        wal = db.path.with_name(db.path.name + "-wal")
        return sum(p.stat().st_size for p in (db.path, wal) if p.exists())
    if db.dialect == "postgresql":
        async with db.read() as session:
            return int(
                (await session.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
            )
    return None


async def stats(registry: Registry) -> Stats:
    infos = registry.host.infos.values()
    return Stats(
        version=__version__,
        uptime_seconds=uptime(registry),
        plugins_enabled=sum(1 for i in infos if i.enabled),
        plugins_disabled=sum(1 for i in infos if not i.enabled),
        routes=len(registry.mounted),
        websocket_clients=len(registry.hub.sockets) if registry.hub else 0,
        database_dialect=registry.db.dialect,
        database_bytes=await database_bytes(registry),
    )


def plugins(registry: Registry) -> list[PluginOut]:
    return [PluginOut(**info.as_dict()) for info in registry.host.infos.values()]


def routes(registry: Registry) -> list[RouteOut]:
    clashes = duplicate_routes(registry.mounted)
    return [
        RouteOut(
            method=r.method,
            path=r.path,
            plugin=r.plugin,
            scope=r.scope,
            kind=r.kind,
            duplicate=(r.method, r.path) in clashes,
        )
        for r in sorted(registry.mounted, key=lambda r: (r.path, r.method))
    ]
