"""``mnemogate memory status|reembed``: inspect the memory store, re-embed it with the
configured embedder (after changing it), with a progress bar."""

from __future__ import annotations

import sys
from typing import Any

import click

from mnemogate.core.cli import Context, echo_json, pass_context
from mnemogate.core.registry import Registry
from mnemogate.plugins.memory.engine import EMBEDDER_RECORD, MemoryEngine


async def _engine(registry: Registry) -> MemoryEngine:
    await registry.collect_resources()
    engine = MemoryEngine.from_registry(registry)
    await engine.index.start()
    return engine


@click.group()
def memory() -> None:
    """The memory store: status, re-embedding."""


@memory.command("status")
@pass_context
def status(ctx: Context) -> None:
    """Items in the store, the embedder that made their vectors and the configured one."""

    async def work(registry: Registry) -> dict[str, Any]:
        engine = await _engine(registry)
        try:
            return {
                "items": await engine.index.count(),
                "store_embedder": await engine.index.get_meta(EMBEDDER_RECORD),
                "configured_embedder": engine.embedder.record,
            }
        finally:
            await engine.close()

    echo_json(ctx.run(work))


@memory.command("reembed")
@click.option("--batch", default=256, show_default=True, help="items per transaction")
@pass_context
def reembed(ctx: Context, batch: int) -> None:
    """Re-embed every memory item with the configured embedder (stop the server first)."""

    async def work(registry: Registry) -> dict[str, Any]:
        engine = await _engine(registry)
        try:
            total = await engine.index.count()
            done = 0
            with click.progressbar(length=total, label="re-embedding", file=sys.stderr) as bar:
                async for items in engine.index.texts(batch=batch):
                    vectors = await engine.embedder.embed([item.text for item in items])
                    async with registry.db.write() as session:
                        await engine.index.set_vectors(session, items, vectors)
                    done += len(items)
                    bar.update(len(items))
            # Recorded last: an interrupted run leaves the old record, so start-up still refuses.
            async with registry.db.write() as session:
                await engine.index.set_meta(session, EMBEDDER_RECORD, engine.embedder.record)
            return {"reembedded": done, "embedder": engine.embedder.record}
        finally:
            await engine.close()

    echo_json(ctx.run(work))
