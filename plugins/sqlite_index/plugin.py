from pathlib import Path
from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.sqlite_index.index import SqliteMemoryIndex
from mnemogate.plugins.sqlite_index.settings import SqliteIndexSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(SqliteIndexSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register(
        "sqlite", lambda registry: SqliteMemoryIndex(registry.db, registry.plugin_settings("sqlite_index"))
    )
