from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class ThoughtRow(Base):
    """One thought of a session's history; ``position`` counts from 1 within the session."""

    __tablename__ = "seqthink_thoughts"
    __table_args__ = (
        Index("ix_seqthink_thoughts_session", "tenant", "session_key", "position", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    # the gateway session, or "" for calls outside any session
    session_key: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer)
    thought: Mapped[str] = mapped_column(Text)
    thought_number: Mapped[int] = mapped_column(BigInteger)
    total_thoughts: Mapped[int] = mapped_column(BigInteger)
    next_thought_needed: Mapped[bool] = mapped_column(Boolean)
    is_revision: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    revises_thought: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    branch_from_thought: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    needs_more_thoughts: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
