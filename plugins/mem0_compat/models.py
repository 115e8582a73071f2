"""Tables and request models of the Mem0 API.

Memories live in ``mem0_memories`` (indexed through the memory engine as kind ``mem0``); every
change is an event of ``mem0_history`` (ADD, UPDATE, DELETE with the old and new text), as Mem0
keeps them. Request models follow Mem0's field names; unknown fields are refused as Mem0's own
server does not see them either, except where the platform client sends extras (see
``PlatformAdd``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import JSON, Boolean, Date, Float, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime

Ident = Field(default=None, min_length=1, max_length=128)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day_text(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _DAY.match(value)):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_day_text)]
"""A calendar day written YYYY-MM-DD (Mem0's expiration dates)."""
EntityType = Literal["user", "agent", "app", "run"]


class Base(DeclarativeBase):
    pass


class MemoryRow(Base):
    __tablename__ = "mem0_memories"
    __table_args__ = (
        Index("ix_mem0_memories_tenant_created", "tenant", "created_at", "id"),
        Index("ix_mem0_memories_tenant_user", "tenant", "user_id"),
        Index("ix_mem0_memories_tenant_hash", "tenant", "hash"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    memory: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    app_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    immutable: Mapped[bool] = mapped_column(Boolean, default=False)
    expiration_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    importance: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HistoryRow(Base):
    __tablename__ = "mem0_history"
    __table_args__ = (Index("ix_mem0_history_tenant_memory", "tenant", "memory_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    memory_id: Mapped[str] = mapped_column(String(36))
    old_memory: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_memory: Mapped[str | None] = mapped_column(Text, nullable=True)
    event: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    input: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantConfig(Base):
    """What ``POST /configure`` set for a tenant (the extraction LLM, the prompt)."""

    __tablename__ = "mem0_config"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- requests ------------------------------------------------------------------------------------


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=32, description="user, assistant, system, ...")
    content: str = Field(max_length=20_000)
    name: str | None = Field(default=None, max_length=128, description="who spoke (Mem0's actor_id)")


class Scope(BaseModel):
    """Whose memories: at least one of these for a write."""

    user_id: str | None = Ident
    agent_id: str | None = Ident
    run_id: str | None = Ident
    app_id: str | None = Ident

    def given(self) -> bool:
        return any((self.user_id, self.agent_id, self.run_id, self.app_id))


class AddRequest(Scope):
    """``POST /memories`` of Mem0's REST server."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=100)
    metadata: dict[str, Any] | None = None
    infer: StrictBool = Field(default=True, description="extract facts (true) or store each message")
    expiration_date: Day | None = Field(default=None, description="YYYY-MM-DD; hidden after it")
    memory_type: str | None = Field(default=None, max_length=64, description="accepted, stored in metadata")
    prompt: str | None = Field(default=None, max_length=20_000, description="fact extraction prompt (LLM)")


class PlatformAdd(Scope):
    """``POST /v3/memories/add/`` of the platform API. Identity may come at the top level or in
    ``filters``; the client's other options are accepted and those that have a meaning here
    (metadata, infer, expiration, timestamp, custom instructions) are used."""

    model_config = ConfigDict(extra="allow")

    messages: list[Message] = Field(min_length=1, max_length=100)
    filters: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    infer: StrictBool = True
    expiration_date: Day | None = None
    timestamp: StrictInt | None = Field(default=None, ge=0, description="Unix time the memory is from")
    immutable: StrictBool = False
    custom_instructions: str | None = Field(default=None, max_length=20_000)


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=100_000)
    metadata: dict[str, Any] | None = None
    expiration_date: Day | None = None
    timestamp: StrictInt | StrictFloat | str | None = None


class SearchRequest(Scope):
    model_config = ConfigDict(extra="allow")

    query: str = Field(min_length=1, max_length=10_000)
    filters: dict[str, Any] | None = None
    top_k: StrictInt = Field(default=10, ge=1, le=1000)
    threshold: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    explain: StrictBool = False
    show_expired: StrictBool = False
    keyword_search: StrictBool = False


class PlatformList(BaseModel):
    model_config = ConfigDict(extra="allow")

    filters: dict[str, Any] | None = None
    show_expired: StrictBool = False
    start_date: str | None = Field(default=None, max_length=40)
    end_date: str | None = Field(default=None, max_length=40)
    categories: list[str] | None = None


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_id: str = Field(min_length=1, max_length=64)
    text: str | None = Field(default=None, min_length=1, max_length=100_000)
    metadata: dict[str, Any] | None = None


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memories: list[BatchItem] = Field(min_length=1, max_length=1000)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_id: str = Field(min_length=1, max_length=64)
    feedback: Literal["POSITIVE", "NEGATIVE", "VERY_NEGATIVE"] | None = None
    feedback_reason: str | None = Field(default=None, max_length=10_000)
