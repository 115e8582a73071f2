from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class InjectionRow(Base):
    """Which memories were injected into which gateway request (the request log of injection)."""

    __tablename__ = "memory_bridge_injections"
    __table_args__ = (Index("ix_memory_bridge_injections_session", "tenant", "session_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    memories: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SessionModeRow(Base):
    """The memory modes a session asked for (requests of the session without the header use
    them)."""

    __tablename__ = "memory_bridge_session_modes"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    modes: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SessionModes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modes: list[Literal["inject", "capture"]] = Field(
        max_length=2, description="the session's modes; [] switches memory off for it"
    )


class SessionModesOut(SessionModes):
    session_id: str
    configured: bool = Field(description="whether the session has modes of its own")
    updated_at: datetime | None = None


class Injected(BaseModel):
    type: str
    id: str
    score: float


class Injection(BaseModel):
    id: str
    session_id: str | None
    request_id: str | None
    memories: list[Injected]
    tokens: int
    created_at: datetime
