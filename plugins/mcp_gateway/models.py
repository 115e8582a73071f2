from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    """One ``tools/call`` through the gateway."""

    __tablename__ = "mcp_gateway_calls"
    __table_args__ = (
        Index("ix_mcp_gateway_calls_tenant_created", "tenant", "created_at", "id"),
        Index("ix_mcp_gateway_calls_tenant_session", "tenant", "session_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    server: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServerOut(BaseModel):
    name: str
    plugin: str = Field(description="the plugin that registered the server")
    transport: Literal["in-process", "stdio", "streamable-http"]
    status: Literal["starting", "ready", "connecting", "reconnecting", "stopped", "failed"]
    tools: list[str] = Field(description="tool names, as the server last listed them")
    endpoint: str | None = Field(description="direct streamable-HTTP endpoint (in-process servers)")
    restarts: int = Field(description="reconnections after a failure (external servers)")
    last_error: str | None = Field(description="why the last connection attempt failed, if it did")


class CallOut(BaseModel):
    id: str
    session_id: str | None
    request_id: str | None
    server: str
    tool: str
    arguments: Any = Field(description="the arguments (as logged: cut to log_arguments_chars)")
    outcome: Literal["ok", "tool_error", "error"]
    error: str | None
    latency_ms: float
    created_at: datetime
