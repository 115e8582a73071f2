"""Keys of the vault: per tenant, one key names secrets (HMAC, so a placeholder is stable but
reveals nothing) and one encrypts them (AES-256-GCM, the tenant and content hash bound in as
associated data, so a ciphertext cannot be replayed under another tenant or hash).

Both derive (HKDF-SHA256) from one master key: ``vault_key`` from the settings, else a key
generated once into ``sanitizer.key`` in the data directory (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mnemogate.core.errors import StartupError

KEY_FILE = "sanitizer.key"
HASH_LENGTH = 16  # hex characters of the HMAC in a placeholder
NONCE_BYTES = 12


def load_master_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except (binascii.Error, ValueError):
            raise StartupError("plugins.sanitizer.vault_key is not valid base64") from None
        if len(key) != 32:
            raise StartupError("plugins.sanitizer.vault_key must be 32 bytes (base64 of 32 random bytes)")
        return key
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written whole to a temporary file, then linked into place: a worker starting at the
        # same time sees no key file or a complete one, and only one key ever wins.
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=".sanitizer-key-")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return load_master_key(path.read_text().strip(), data_dir)


@dataclass(frozen=True, slots=True)
class TenantKeys:
    naming: bytes
    sealing: AESGCM


class Vault:
    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self._tenants: dict[str, TenantKeys] = {}

    def _keys(self, tenant: str) -> TenantKeys:
        keys = self._tenants.get(tenant)
        if keys is None:
            info = b"mnemogate-sanitizer\x00" + tenant.encode()
            derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(self._master)
            keys = self._tenants[tenant] = TenantKeys(derived[:32], AESGCM(derived[32:]))
        return keys

    def content_hash(self, tenant: str, original: str) -> str:
        digest = hmac.new(self._keys(tenant).naming, original.encode(), hashlib.sha256).hexdigest()
        return digest[:HASH_LENGTH]

    def seal(self, tenant: str, content_hash: str, original: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = f"{tenant}\x00{content_hash}".encode()
        return nonce + self._keys(tenant).sealing.encrypt(nonce, original.encode(), aad)

    def open(self, tenant: str, content_hash: str, sealed: bytes) -> str:
        aad = f"{tenant}\x00{content_hash}".encode()
        return self._keys(tenant).sealing.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad).decode()
