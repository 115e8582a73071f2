from pathlib import Path
from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.plugins.pgvector_index.index import PgvectorMemoryIndex
from mnemogate.plugins.pgvector_index.settings import PgvectorIndexSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_settings(register: Any) -> None:
    register(PgvectorIndexSettings)


@hookimpl
def register_migrations(register: Any) -> None:
    register(MIGRATIONS)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register(
        "postgresql",
        lambda registry: PgvectorMemoryIndex(registry.db, registry.plugin_settings("pgvector_index")),
    )
