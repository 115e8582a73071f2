from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mnemogate.core.contracts import ScopeName
from mnemogate.core.db import UTCDateTime

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TenantId = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "auth_api_keys"
    __table_args__ = (Index("ix_auth_api_keys_tenant_created", "tenant", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[ScopeName] = Field(min_length=1, max_length=3)
    tenant: TenantId | None = Field(default=None, description="defaults to the caller's tenant")


class KeyOut(BaseModel):
    id: str
    name: str
    tenant: str
    scopes: list[str]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the API key itself; shown only this once")
