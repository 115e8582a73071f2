"""API keys: creation (the key is shown once, only its SHA-256 is stored), lookup, revocation.

Keys are 256-bit random tokens, so a plain SHA-256 is a safe verifier (there is nothing to
brute-force, unlike passwords) and lets a request be authenticated with one indexed lookup.
Lookups are cached for ``cache_seconds``; revocation through this process takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select

from mnemogate.core.contracts import SCOPES, Principal, utcnow
from mnemogate.core.db import Database
from mnemogate.core.errors import Forbidden, NotFound
from mnemogate.core.pagination import Page, newest_first, page_of_rows
from mnemogate.plugins.auth.models import ApiKey, KeyCreate, KeyCreated, KeyOut

KEY_PREFIX = "mg_"
CACHE_LIMIT = 10_000


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        tenant=row.tenant,
        scopes=row.scopes.split(","),
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@dataclass(slots=True)
class _Cached:
    principal: Principal | None
    expires: float


class KeyService:
    def __init__(self, db: Database, cache_seconds: float = 5.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._by_hash: dict[str, _Cached] = {}
        self._has_keys: tuple[bool, float] | None = None

    def forget(self) -> None:
        """Drop cached lookups (the database's contents were replaced: keys may be gone)."""
        self._by_hash.clear()
        self._has_keys = None

    async def create(self, request: KeyCreate, caller: Principal | None = None) -> KeyCreated:
        """Create a key. A keyed caller creates keys for its own tenant only."""
        tenant = request.tenant or (caller.tenant if caller else None)
        if tenant is None:
            raise Forbidden("a tenant is required")
        if caller is not None and not caller.is_open and tenant != caller.tenant:
            raise Forbidden("an admin key can create keys for its own tenant only")
        scopes = [s for s in SCOPES if s in set(request.scopes)]
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=str(uuid.uuid4()),
            name=request.name,
            tenant=tenant,
            scopes=",".join(scopes),
            key_hash=hash_key(key),
            prefix=key[:10],
            created_at=utcnow(),
            revoked_at=None,
        )
        async with self.db.write() as session:
            session.add(row)
        self._has_keys = (True, time.monotonic() + self.cache_seconds)
        self._by_hash.pop(row.key_hash, None)
        return KeyCreated(**_out(row).model_dump(), key=key)

    async def list(self, tenant: str | None, limit: int, cursor: str | None) -> Page[KeyOut]:
        """Keys newest first; ``tenant=None`` lists every tenant's keys (CLI and open mode)."""
        query = select(ApiKey)
        if tenant is not None:
            query = query.where(ApiKey.tenant == tenant)
        query = newest_first(query, ApiKey.created_at, ApiKey.id, limit=limit, cursor=cursor)
        async with self.db.read() as session:
            rows = list((await session.scalars(query)).all())
        return page_of_rows(rows, limit, _out, lambda row: (row.created_at, row.id))

    async def revoke(self, key_id: str, tenant: str | None) -> KeyOut:
        async with self.db.write() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"no API key with id {key_id}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        self._by_hash.pop(row.key_hash, None)
        self._has_keys = None
        return _out(row)

    async def authenticate(self, key: str) -> Principal | None:
        """The principal of a valid key, or None for an unknown or revoked one."""
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._by_hash.get(digest)
        if cached is not None and cached.expires > now:
            return cached.principal
        async with self.db.read() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(tenant=row.tenant, scopes=frozenset(row.scopes.split(",")), key_id=row.id)
        if len(self._by_hash) >= CACHE_LIMIT:
            self._by_hash.clear()
        self._by_hash[digest] = _Cached(principal, now + self.cache_seconds)
        return principal

    async def has_active_keys(self) -> bool:
        now = time.monotonic()
        if self._has_keys is not None and self._has_keys[1] > now:
            return self._has_keys[0]
        async with self.db.read() as session:
            found = bool(await session.scalar(select(exists().where(ApiKey.revoked_at.is_(None)))))
        self._has_keys = (found, now + self.cache_seconds)
        return found
