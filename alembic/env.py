"""Alembic environment shared by every plugin.

The migration runner (``mnemogate.core.db.Migrator``) passes the connection, the plugin's
version table and, optionally, its metadata through ``config.attributes``; there is no
alembic.ini. Only the plugin's own tables are compared when autogenerating.
"""

from __future__ import annotations

from typing import Any

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through `mnemogate db ...`, which supplies the connection")

metadata = config.attributes.get("metadata")
plugin_tables = set(metadata.tables) if metadata is not None else set()


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in plugin_tables
    return True


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes["version_table"],
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
