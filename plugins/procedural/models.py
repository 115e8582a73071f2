from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime
from mnemogate.core.fields import Timestamp
from mnemogate.core.pagination import Page

OptionalId = Field(default=None, max_length=128)


class Base(DeclarativeBase):
    pass


class SkillRow(Base):
    __tablename__ = "procedural_skills"
    __table_args__ = (Index("ix_procedural_skills_tenant_created", "tenant", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[str]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The track record, kept with the skill so matching needs no aggregation.
    executions: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    total_duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExecutionRow(Base):
    __tablename__ = "procedural_executions"
    __table_args__ = (Index("ix_procedural_executions_skill", "tenant", "skill_id", "started_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    skill_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


Step = Field(min_length=1, max_length=4000)


class SkillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    steps: list[str] = Field(default_factory=list, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = OptionalId
    agent_id: str | None = OptionalId


class SkillUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    steps: list[str] | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=50)
    metadata: dict[str, Any] | None = None


class SkillStats(BaseModel):
    executions: int
    successes: int
    failures: int
    running: int
    success_rate: float | None = Field(
        description="successes / finished executions; null before any finished"
    )
    mean_duration_ms: float | None


class Skill(BaseModel):
    id: str
    name: str
    description: str
    steps: list[str]
    tags: list[str]
    metadata: dict[str, Any]
    user_id: str | None
    agent_id: str | None
    stats: SkillStats
    created_at: datetime
    updated_at: datetime


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=10_000, description="what needs doing")
    k: StrictInt = Field(default=5, ge=1, le=50)
    min_success_rate: StrictFloat | None = Field(default=None, ge=0, le=1)
    user_id: str | None = OptionalId
    agent_id: str | None = OptionalId
    explain: StrictBool = False


class Match(BaseModel):
    skill: Skill
    score: float
    explain: dict[str, float] | None = None


class MatchResult(BaseModel):
    items: list[Match]


class ExecutionStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context: dict[str, Any] = Field(default_factory=dict, description="what the execution was for")
    started_at: Timestamp | None = None


class ExecutionFinish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["success", "failure"]
    duration_ms: StrictFloat | None = Field(default=None, ge=0, description="default: time since the start")
    error: str | None = Field(default=None, max_length=20_000)
    output: dict[str, Any] | None = None


class Execution(BaseModel):
    id: str
    skill_id: str
    status: Literal["running", "success", "failure"]
    context: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    error: str | None
    output: dict[str, Any] | None


class ExecutionHistory(Page[Execution]):
    stats: SkillStats


class SkillRecord(SkillCreate):
    """A skill with its track record, as the persistence plugin's export writes it."""

    record: Literal["skill"]
    id: uuid.UUID
    executions: StrictInt = Field(default=0, ge=0)
    successes: StrictInt = Field(default=0, ge=0)
    failures: StrictInt = Field(default=0, ge=0)
    total_duration_ms: StrictFloat | StrictInt = Field(default=0.0, ge=0)
    created_at: Timestamp
    updated_at: Timestamp


class ExecutionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: Literal["execution"]
    id: uuid.UUID
    skill_id: uuid.UUID
    status: Literal["running", "success", "failure"]
    context: dict[str, Any] = Field(default_factory=dict)
    started_at: Timestamp
    finished_at: Timestamp | None = None
    duration_ms: StrictFloat | StrictInt | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=20_000)
    output: dict[str, Any] | None = None
