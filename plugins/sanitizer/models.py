from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class MaskRow(Base):
    """One secret a tenant sent: its kind, the original sealed (AES-GCM), and when it was seen."""

    __tablename__ = "sanitizer_masks"
    __table_args__ = (Index("ix_sanitizer_masks_tenant_last_seen", "tenant", "last_seen_at", "content_hash"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)


class MaskSessionRow(Base):
    __tablename__ = "sanitizer_mask_sessions"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(16), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantRow(Base):
    """Whether masking is on for a tenant, once an admin toggled it."""

    __tablename__ = "sanitizer_tenants"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditRow(Base):
    """Who switched masking on or off, and who revealed which original."""

    __tablename__ = "sanitizer_audit"
    __table_args__ = (Index("ix_sanitizer_audit_tenant_at", "tenant", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# -- API shapes ----------------------------------------------------------------------------------


class MaskOut(BaseModel):
    content_hash: str
    kind: str
    placeholder: str
    first_seen_at: datetime
    last_seen_at: datetime
    count: int
    sessions: list[str] = Field(description="sessions the secret was sent in (the most recent 50)")


class RevealedMask(MaskOut):
    original: str


class DetectorStats(BaseModel):
    kind: str
    active: bool
    masks: int = Field(description="distinct secrets of this kind in the vault")
    sightings: int = Field(description="times secrets of this kind were masked")


class SanitizerStats(BaseModel):
    enabled: bool
    detectors: list[DetectorStats]
    masks: int
    sightings: int
    requests_scanned: int = Field(description="gateway requests scanned by this process")
    requests_masked: int = Field(description="... of which carried at least one secret")
    secrets_masked: int
    placeholders_restored: int
    bytes_scanned: int
    mean_scan_us: float = Field(description="mean time masking added to a request, in microseconds")


class Toggle(BaseModel):
    enabled: StrictBool | None = Field(default=None, description="set explicitly; omitted: flip")


class ToggleState(BaseModel):
    enabled: bool
    updated_at: datetime | None
    updated_by: str | None
