from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime

# Cline names task folders by their creation time in milliseconds; anything path-like is refused.
TASK_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"

TaskId = Annotated[str, Field(min_length=1, max_length=128, pattern=TASK_ID_PATTERN)]


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    """An imported task: its session, and the fingerprint of the files it was read from."""

    __tablename__ = "cline_tasks"
    __table_args__ = (Index("ix_cline_tasks_imported", "tenant", "imported_at"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    messages: Mapped[int] = mapped_column(Integer)
    episodes: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestRow(Base):
    """One API request of a task (an ``api_req_started`` UI message)."""

    __tablename__ = "cline_requests"
    __table_args__ = (Index("ix_cline_requests_day", "tenant", "day"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[str] = mapped_column(String(10))
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    tokens_in: Mapped[int] = mapped_column(BigInteger)
    tokens_out: Mapped[int] = mapped_column(BigInteger)
    cache_writes: Mapped[int] = mapped_column(BigInteger)
    cache_reads: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Float)


class LastImport(BaseModel):
    at: datetime
    tasks: int


class ClineStatus(BaseModel):
    found: bool = Field(description="the data directory exists and holds a tasks/ folder")
    data_dir_source: Literal["configured", "default"]
    platform: str
    tasks_seen: int = Field(description="task folders in the data directory")
    tasks_imported: int = Field(description="tasks of the caller's tenant imported so far")
    last_import: LastImport | None


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_ids: list[TaskId] | None = Field(default=None, max_length=10_000, description="only these tasks")
    force: StrictBool = Field(default=False, description="re-read tasks whose files did not change")


class TaskProblem(BaseModel):
    task_id: str
    file: str | None = Field(description="the file's name inside the task folder")
    message: str


class ImportResult(BaseModel):
    tasks_seen: int
    imported: int
    unchanged: int
    failed: int
    sessions_created: int
    episodes: int
    requests: int
    problems: list[TaskProblem]


class Usage(BaseModel):
    key: str = Field(description="the task id, the day (YYYY-MM-DD, UTC) or the model")
    requests: int
    tokens_in: int
    tokens_out: int
    cache_writes: int
    cache_reads: int
    cost_usd: float


class UsagePage(BaseModel):
    group_by: Literal["task", "day", "model"]
    items: list[Usage]
    next_cursor: str | None = None
    totals: Usage
