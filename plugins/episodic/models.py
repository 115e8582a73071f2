from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import JSON, Float, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime
from mnemogate.core.fields import Timestamp

Id = Field(default=None, max_length=128)


class Base(DeclarativeBase):
    pass


class EpisodeRow(Base):
    __tablename__ = "episodic_episodes"
    __table_args__ = (
        Index("ix_episodic_episodes_tenant_occurred", "tenant", "occurred_at", "id"),
        Index("ix_episodic_episodes_tenant_session", "tenant", "session_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    importance: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EpisodeFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occurred_at: Timestamp | None = Field(default=None, description="when it happened (default: now)")
    session_id: str | None = Id
    user_id: str | None = Id
    agent_id: str | None = Id
    actor: str | None = Field(default=None, max_length=128, description="who spoke or acted")
    role: str | None = Field(default=None, max_length=32, description="user, assistant, tool, system, ...")
    outcome: str | None = Field(default=None, max_length=64, description="success, failure, ...")
    importance: StrictFloat | None = Field(default=None, ge=0, le=1)
    metadata: dict[str, Any] | None = None


class EpisodeCreate(EpisodeFields):
    content: str = Field(min_length=1, max_length=100_000)


class EpisodeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episodes: list[EpisodeCreate] = Field(min_length=1)


class EpisodeUpdate(EpisodeFields):
    content: str | None = Field(default=None, min_length=1, max_length=100_000)


class Episode(BaseModel):
    id: str
    content: str
    occurred_at: datetime
    session_id: str | None
    user_id: str | None
    agent_id: str | None
    actor: str | None
    role: str | None
    outcome: str | None
    importance: float
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    access_count: int = 0
    last_accessed_at: datetime | None = None


class EpisodeList(BaseModel):
    items: list[Episode]


class RecallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=10_000)
    k: StrictInt = Field(default=10, ge=1, le=100)
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    user_id: str | None = Id
    agent_id: str | None = Id
    session_id: str | None = Id
    since: Timestamp | None = None
    until: Timestamp | None = None
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    explain: StrictBool = Field(default=False, description="include the parts of each score")


class Recalled(BaseModel):
    episode: Episode
    score: float
    explain: dict[str, float] | None = None


class RecallResult(BaseModel):
    items: list[Recalled]


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str | None = Field(default=None, max_length=64)
    importance: StrictFloat | None = Field(default=None, ge=0, le=1, description="set importance")
    helpful: StrictBool | None = Field(
        default=None, description="true raises importance by 0.1, false lowers it"
    )


class EpisodeRecord(EpisodeFields):
    """An episode as the persistence plugin's export writes it and its import reads it."""

    record: Literal["episode"]
    id: uuid.UUID
    content: str = Field(min_length=1, max_length=100_000)
    occurred_at: Timestamp
    importance: StrictFloat = Field(ge=0, le=1)
    created_at: Timestamp
    updated_at: Timestamp
