from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class TenantStateRow(Base):
    """How far consolidation got in a tenant's episodes. Episodes are read newest first in
    pages of at most ``max_episodes_per_run`` above ``watermark``; ``resume_cursor`` continues
    an unfinished pass, and ``pass_top`` becomes the watermark when the pass is done."""

    __tablename__ = "consolidation_tenants"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resume_cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    pass_top: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class PatternRow(Base):
    """A tool sequence seen in successful runs: its occurrences (the first episode of each, so
    reading episodes again never counts twice) and the skill it became."""

    __tablename__ = "consolidation_patterns"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    signature: Mapped[str] = mapped_column(String(512), primary_key=True)
    steps: Mapped[list[str]] = mapped_column(JSON)
    occurrences: Mapped[list[str]] = mapped_column(JSON)
    sessions: Mapped[list[str]] = mapped_column(JSON)
    support: Mapped[int] = mapped_column(Integer)
    skill_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- API shapes ----------------------------------------------------------------------------------


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_episodes: StrictInt | None = Field(
        default=None, ge=1, le=100_000, description="episodes this run reads (default: the setting)"
    )
    decay: StrictBool = Field(default=True, description="archive memories never recalled")


class Topic(BaseModel):
    label: str
    entity_id: str
    episodes: int


class RunResult(BaseModel):
    run_id: str
    tenant: str
    session_id: str | None = None
    started_at: datetime
    finished_at: datetime
    episodes: int = Field(description="episodes read")
    clusters: int = Field(description="clusters found among them")
    topics: list[Topic] = Field(default_factory=list, description="clusters large enough to become topics")
    entities_created: list[str] = Field(default_factory=list)
    entities_known: int = Field(default=0, description="names found that were entities already")
    relations_created: int = 0
    patterns_seen: int = Field(default=0, description="tool sequences counted")
    skills_created: list[str] = Field(default_factory=list)
    archived: int = Field(default=0, description="memories archived by decay")
    more: bool = Field(default=False, description="episodes are left for the next run")


class Pattern(BaseModel):
    signature: str
    steps: list[str]
    support: int
    sessions: int
    skill_id: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class TenantProgress(BaseModel):
    watermark: datetime | None
    pass_in_progress: bool
    runs: int
    last_run_at: datetime | None
    last_result: dict[str, Any] | None


class Status(BaseModel):
    running: bool
    scheduled: bool
    interval_seconds: float
    next_run_at: datetime | None
    max_episodes_per_run: int
    tenant: TenantProgress
