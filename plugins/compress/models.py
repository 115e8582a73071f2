from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class StatsRow(Base):
    """What compression saved in one session (``source``: ``route`` or ``pipeline``)."""

    __tablename__ = "compress_stats"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer)
    tokens_before: Mapped[int] = mapped_column(Integer)
    tokens_after: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- API shapes ----------------------------------------------------------------------------------


class CompressRequest(BaseModel):
    messages: list[dict[str, Any]] | None = Field(
        default=None, max_length=10_000, description="OpenAI messages"
    )
    text: str | None = Field(default=None, max_length=5_000_000)

    @model_validator(mode="after")
    def _one_of(self) -> CompressRequest:
        if (self.messages is None) == (self.text is None):
            raise ValueError("give either messages or text")
        return self


class CompressResult(BaseModel):
    messages: list[dict[str, Any]] | None = None
    text: str | None = None
    tokens_before: int
    tokens_after: int
    saved_tokens: int
    ratio: float
    changes: dict[str, int]


class SourceStats(BaseModel):
    runs: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    saved_tokens: int = 0


class CompressStats(BaseModel):
    session_id: str | None = None
    pipeline_enabled: bool
    runs: int
    tokens_before: int
    tokens_after: int
    saved_tokens: int
    ratio: float = Field(description="tokens after / tokens before (1.0: nothing saved)")
    by_source: dict[str, SourceStats]
    sessions: int | None = Field(default=None, description="sessions with compressions (tenant stats)")
