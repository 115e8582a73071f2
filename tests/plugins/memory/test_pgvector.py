"""What only the PostgreSQL backend has: it needs the pgvector extension (and says how to get
it), and its searches run in SQL on the HNSW index of the vectors' dimension."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import event, text

from mnemogate.core.contracts import IndexItem
from mnemogate.core.testing import running

pytestmark = pytest.mark.postgres


async def test_start_up_without_the_pgvector_extension_says_how_to_install_it(
    make_app: Any, postgres_url: str
) -> None:
    # A database nobody ran CREATE EXTENSION vector in (migrations off, as on a server where
    # pgvector is not installed and the migration could not create it).
    app = make_app(database_url=SecretStr(postgres_url.replace("postgresql://", "postgresql+asyncpg://")))
    app.state.registry.settings = app.state.registry.settings.model_copy(update={"auto_migrate": False})
    with pytest.raises(Exception, match="no pgvector extension"):
        async with running(app):
            pass
    assert "install pgvector" in app.state.registry.startup_error


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_vector_search_runs_on_the_hnsw_index(memory_app: Any) -> None:
    app = memory_app()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with running(app):
        registry = app.state.registry
        index = registry.services["memory"].index
        batch = [IndexItem(id=f"i{n}", vector=v, text=f"item {n}") for n, v in enumerate(vectors)]
        async with registry.db.write() as session:
            await index.upsert(session, "t", "k", batch)
            await session.execute(text("ANALYZE memvec_items"))
        searches: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "<=>" in statement:
                searches.append((statement, parameters))

        event.listen(registry.db.engine.sync_engine, "before_cursor_execute", record)
        hits = await index.vector_search("t", "k", vectors[42], k=5)
        event.remove(registry.db.engine.sync_engine, "before_cursor_execute", record)
        assert hits[0].id == "i42" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        [(statement, parameters)] = searches
        async with registry.db.read() as session:
            connection = await session.connection()
            plan = (await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)).scalars().all()
        assert any("ix_memvec_items_hnsw_16" in line for line in plan), plan
