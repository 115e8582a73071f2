from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime

CheckpointReason = Literal["manual", "periodic", "shutdown", "restore"]


class Base(DeclarativeBase):
    pass


class CheckpointRow(Base):
    __tablename__ = "persistence_checkpoints"
    __table_args__ = (Index("ix_persistence_checkpoints_started", "started_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[float] = mapped_column(Float)
    busy: Mapped[bool] = mapped_column(Boolean)
    wal_frames: Mapped[int] = mapped_column(Integer)
    checkpointed_frames: Mapped[int] = mapped_column(Integer)
    wal_bytes_before: Mapped[int] = mapped_column(BigInteger)
    wal_bytes_after: Mapped[int] = mapped_column(BigInteger)


class Checkpoint(BaseModel):
    id: str
    reason: CheckpointReason
    started_at: datetime
    duration_ms: float
    busy: bool = Field(description="a reader or writer kept part of the log from being folded in")
    wal_frames: int = Field(description="frames in the write-ahead log when the checkpoint ran")
    checkpointed_frames: int
    wal_bytes_before: int
    wal_bytes_after: int


class Integrity(BaseModel):
    ok: bool | None = Field(description="None: not checked (not an SQLite database)")
    result: str
    checked_at: datetime | None


class Status(BaseModel):
    database: Literal["sqlite", "postgresql"] | str
    mode: str = Field(description="journal mode (wal) on SQLite; the server's role elsewhere")
    synchronous: str | None
    database_bytes: int | None
    wal_bytes: int | None
    page_size: int | None
    free_pages: int | None
    last_checkpoint: Checkpoint | None
    checkpoint_interval_seconds: float
    integrity: Integrity
    backups: int
    supports_backup: bool


class Backup(BaseModel):
    id: str
    created_at: datetime
    bytes: int
    integrity: str
    tables: dict[str, int] = Field(description="rows per table in the backup")
    revisions: dict[str, str | None] = Field(description="each plugin's schema revision in the backup")


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup_id: uuid.UUID


class Restored(BaseModel):
    backup: Backup
    duration_ms: float
    tables: dict[str, int] = Field(description="rows per table after the restore")
    integrity: str


class LineError(BaseModel):
    line: int
    message: str


class ImportResult(BaseModel):
    lines: int
    imported: dict[str, int] = Field(description="records written, by record type")
    rejected: int
    errors: list[LineError] = Field(description="the first rejected lines with the reason")
