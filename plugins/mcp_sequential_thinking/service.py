"""Thought histories, one per tenant and session, persisted (one transaction per thought).

The reference server keeps one history per process; here each gateway session has its own, and
it survives restarts. What a call answers (history length, branch ids) is kept in memory per
session and loaded from the database the first time the session is seen.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mnemogate.core.contracts import McpCaller, utcnow
from mnemogate.core.db import Database
from mnemogate.plugins.mcp_sequential_thinking.models import ThoughtRow

SERVICE = "sequential-thinking"


@dataclass(frozen=True, slots=True)
class Thought:
    thought: str
    next_thought_needed: bool
    thought_number: int
    total_thoughts: int
    is_revision: bool | None = None
    revises_thought: int | None = None
    branch_from_thought: int | None = None
    branch_id: str | None = None
    needs_more_thoughts: bool | None = None


@dataclass(slots=True)
class _History:
    loaded: bool = False
    length: int = 0
    branches: list[str] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ThoughtStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._histories: dict[tuple[str, str], _History] = {}

    async def add(self, caller: McpCaller, thought: Thought) -> dict[str, Any]:
        """Record a thought; answers the reference server's result fields."""
        key = (caller.tenant, caller.session_id or "")
        history = self._histories.setdefault(key, _History())
        async with history.lock:
            if not history.loaded:
                await self._load(key, history)
            # As the reference does: a thought numbered past the estimate raises the estimate.
            total = max(thought.total_thoughts, thought.thought_number)
            branch = thought.branch_id if thought.branch_from_thought and thought.branch_id else None
            async with self.db.write() as session:
                session.add(
                    ThoughtRow(
                        id=str(uuid.uuid4()),
                        tenant=key[0],
                        session_key=key[1],
                        position=history.length + 1,
                        thought=thought.thought,
                        thought_number=thought.thought_number,
                        total_thoughts=total,
                        next_thought_needed=thought.next_thought_needed,
                        is_revision=thought.is_revision,
                        revises_thought=thought.revises_thought,
                        branch_from_thought=thought.branch_from_thought,
                        branch_id=thought.branch_id,
                        needs_more_thoughts=thought.needs_more_thoughts,
                        created_at=utcnow(),
                    )
                )
            history.length += 1
            if branch is not None and branch not in history.branches:
                history.branches.append(branch)
            return {
                "thoughtNumber": thought.thought_number,
                "totalThoughts": total,
                "nextThoughtNeeded": thought.next_thought_needed,
                "branches": list(history.branches),
                "thoughtHistoryLength": history.length,
            }

    async def _load(self, key: tuple[str, str], history: _History) -> None:
        query = (
            select(ThoughtRow.branch_from_thought, ThoughtRow.branch_id)
            .where(ThoughtRow.tenant == key[0], ThoughtRow.session_key == key[1])
            .order_by(ThoughtRow.position)
        )
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        history.loaded, history.length = True, len(rows)
        for branch_from, branch_id in rows:
            if branch_from and branch_id and branch_id not in history.branches:
                history.branches.append(branch_id)

    async def history(self, tenant: str, session_key: str) -> list[dict[str, Any]]:
        query = (
            select(ThoughtRow)
            .where(ThoughtRow.tenant == tenant, ThoughtRow.session_key == session_key)
            .order_by(ThoughtRow.position)
        )
        async with self.db.read() as session:
            rows = (await session.scalars(query)).all()
        return [_thought_out(row) for row in rows]


def _thought_out(row: ThoughtRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "thought": row.thought,
        "thoughtNumber": row.thought_number,
        "totalThoughts": row.total_thoughts,
        "nextThoughtNeeded": row.next_thought_needed,
        "createdAt": row.created_at.isoformat(),
    }
    optional = {
        "isRevision": row.is_revision,
        "revisesThought": row.revises_thought,
        "branchFromThought": row.branch_from_thought,
        "branchId": row.branch_id,
        "needsMoreThoughts": row.needs_more_thoughts,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out
