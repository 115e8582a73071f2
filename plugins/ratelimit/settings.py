from pydantic import BaseModel, Field, field_validator

from mnemogate.core.contracts import SCOPES
from mnemogate.core.settings import EnvList


class RateLimitSettings(BaseModel):
    requests_per_minute: int = Field(default=100, ge=1, description="bucket refill rate per key")
    burst: int | None = Field(default=None, ge=1, description="bucket size; default: requests_per_minute")
    per_scope: dict[str, int] = Field(
        default_factory=dict,
        description="requests per minute by the key's highest scope, e.g. {admin = 1000}",
    )
    exempt_paths: EnvList = Field(
        default_factory=lambda: ["/health", "/api/v1/health/live", "/api/v1/health/ready", "/metrics"],
        description="paths never limited (probes and scrapers)",
    )
    store: str | None = Field(
        default=None,
        description="bucket store: memory, or one a plugin adds (e.g. redis); "
        "unset: the store a plugin offers as the default when it is configured, else memory",
    )

    @field_validator("per_scope")
    @classmethod
    def _known_scopes(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(sorted(unknown))}; use {', '.join(SCOPES)}")
        if any(v < 1 for v in value.values()):
            raise ValueError("limits must be at least 1 request per minute")
        return value
