from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    __tablename__ = "sessions_sessions"
    __table_args__ = (Index("ix_sessions_sessions_tenant_created", "tenant", "created_at", "id"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestRow(Base):
    __tablename__ = "sessions_requests"
    __table_args__ = (
        Index("ix_sessions_requests_tenant_created", "tenant", "created_at", "id"),
        Index("ix_sessions_requests_tenant_session", "tenant", "session_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    stream: Mapped[bool] = mapped_column(Boolean)
    tokens_in: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_out: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_counted: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    upstream_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    overhead_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantStateRow(Base):
    __tablename__ = "sessions_tenants"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    auto_mode: Mapped[bool] = mapped_column(Boolean)
    active_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- API shapes ----------------------------------------------------------------------------------


class SessionCreate(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    activate: StrictBool = Field(default=True, description="make it the active session")


class SessionOut(BaseModel):
    id: str
    name: str | None
    created_at: datetime
    last_used_at: datetime
    active: bool
    requests: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class AutoStatus(BaseModel):
    enabled: bool
    idle_minutes: float
    active_session_id: str | None


class ToggleAuto(BaseModel):
    enabled: StrictBool | None = Field(
        default=None, description="set explicitly; omitted: flip the current mode"
    )


class DeleteResult(BaseModel):
    sessions: int
    requests: int


class VacuumResult(BaseModel):
    database: str
    bytes_before: int
    bytes_after: int
    seconds: float


class Inconsistency(BaseModel):
    kind: str
    count: int
    description: str


class Diagnostic(BaseModel):
    database: str
    size_bytes: int
    rows: dict[str, int]
    tenant_rows: dict[str, int]
    pending_log_records: int
    inconsistencies: list[Inconsistency]
