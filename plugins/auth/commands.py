"""``mnemogate keys create|list|revoke``: manage keys straight in the database."""

from __future__ import annotations

import click
from pydantic import ValidationError

from mnemogate.core.cli import Context, echo_json, fail, pass_context
from mnemogate.core.dependencies import MAX_PAGE_SIZE
from mnemogate.core.errors import AppError
from mnemogate.core.registry import Registry
from mnemogate.core.settings import describe_validation_error
from mnemogate.plugins.auth.models import KeyCreate, KeyCreated, KeyOut
from mnemogate.plugins.auth.service import KeyService


def _service(registry: Registry) -> KeyService:
    return KeyService(registry.db, cache_seconds=0)


@click.group()
def keys() -> None:
    """Manage API keys (stored hashed; a key is printed once, at creation)."""


@keys.command("create")
@click.option("--name", default="cli", show_default=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=("read",),
    show_default=True,
    type=click.Choice(["read", "write", "admin"]),
    help="repeat for several",
)
@click.option("--tenant", default="default", show_default=True)
@pass_context
def create(ctx: Context, name: str, scopes: tuple[str, ...], tenant: str) -> None:
    """Create a key and print it with its record."""
    try:
        request = KeyCreate(name=name, scopes=list(scopes), tenant=tenant)  # type: ignore[arg-type]
    except ValidationError as exc:
        fail(describe_validation_error(exc))
        return

    async def work(registry: Registry) -> KeyCreated:
        return await _service(registry).create(request)

    echo_json(ctx.run(work).model_dump(mode="json"))


@keys.command("list")
@click.option("--tenant", help="only this tenant's keys")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, MAX_PAGE_SIZE), help="rows per query"
)
@pass_context
def list_keys(ctx: Context, tenant: str | None, limit: int) -> None:
    """List keys (never the keys themselves)."""

    async def work(registry: Registry) -> list[KeyOut]:
        service, rows, cursor = _service(registry), [], None
        while True:
            page = await service.list(tenant, limit, cursor)
            rows.extend(page.items)
            if page.next_cursor is None:
                return rows
            cursor = page.next_cursor

    echo_json([row.model_dump(mode="json") for row in ctx.run(work)])


@keys.command("revoke")
@click.argument("key_id")
@pass_context
def revoke(ctx: Context, key_id: str) -> None:
    """Revoke a key by id (running servers notice within auth cache_seconds)."""

    async def work(registry: Registry) -> KeyOut:
        return await _service(registry).revoke(key_id, None)

    try:
        revoked = ctx.run(work)
    except AppError as exc:  # e.g. no key with that id: a message, not a traceback
        fail(exc.message)
        return
    echo_json(revoked.model_dump(mode="json"))
