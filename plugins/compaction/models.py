from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool, StrictInt
from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class SessionConfigRow(Base):
    """A session's own settings (``None``: the plugin's default)."""

    __tablename__ = "compaction_sessions"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    auto: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reserved_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecordRow(Base):
    """One compaction: what it started from, what it left, how and how long."""

    __tablename__ = "compaction_history"
    __table_args__ = (Index("ix_compaction_history_tenant_session_at", "tenant", "session_id", "at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(36))
    strategy: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))
    tokens_before: Mapped[int] = mapped_column(Integer)
    tokens_after: Mapped[int] = mapped_column(Integer)
    messages_before: Mapped[int] = mapped_column(Integer)
    messages_after: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- API shapes ----------------------------------------------------------------------------------

Messages = list[dict[str, Any]]


class CompactRequest(BaseModel):
    messages: Messages = Field(min_length=1, max_length=10_000, description="OpenAI messages")
    strategy: str | None = Field(default=None, max_length=64, description="default: the configured one")
    budget: StrictInt | None = Field(default=None, ge=1, description="tokens to fit in; default: the target")


class Record(BaseModel):
    id: str
    session_id: str
    strategy: str
    trigger: str
    tokens_before: int
    tokens_after: int
    saved_tokens: int
    messages_before: int
    messages_after: int
    duration_ms: float
    at: datetime


class CompactResult(BaseModel):
    messages: Messages
    removed: Messages
    record: Record


class Preview(BaseModel):
    strategy: str
    budget: int
    tokens_before: int
    tokens_after: int
    would_compact: bool = Field(description="whether auto mode would compact this request")
    kept: Messages
    removed: Messages = Field(description="messages dropped, cleared or folded into the summary")
    summary: str | None


class Stats(BaseModel):
    session_id: str | None = None
    compactions: int
    auto: int
    manual: int
    tokens_saved: int
    mean_duration_ms: float
    by_strategy: dict[str, int]
    sessions: int | None = None


class Reserved(BaseModel):
    reserved_tokens: StrictInt = Field(ge=0, le=10_000_000)


class ToggleAuto(BaseModel):
    enabled: StrictBool | None = Field(default=None, description="set explicitly; omitted: flip")


class AutoStatus(BaseModel):
    session_id: str
    enabled: bool
    strategy: str
    context_window: int
    reserved_tokens: int
    threshold: int
    target_tokens: int
    last_compaction: Record | None


class Simulation(BaseModel):
    context_window: StrictInt | None = Field(default=None, ge=1024, le=100_000_000)
    reserved_tokens: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    threshold: StrictInt | None = Field(default=None, ge=1, le=100_000_000)
    target_ratio: float | None = Field(default=None, gt=0.1, le=1.0)


class SimulationResult(BaseModel):
    requests: int
    triggers: int
    threshold: int
    target_tokens: int
    tokens_sent_without: int
    tokens_sent_with: int
    tokens_saved: int
    peak_tokens_with: int


class ChartPoint(BaseModel):
    at: datetime
    tokens_before: int
    tokens_after: int
    strategy: str


class ConfigUI(BaseModel):
    json_schema: dict[str, Any]
    values: dict[str, Any]
    strategies: list[str]
    session_fields: dict[str, Any]
