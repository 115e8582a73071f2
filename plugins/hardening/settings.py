from pydantic import BaseModel, Field

from mnemogate.core.settings import EnvList

DEFAULT_CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "X-Session-ID"]


class HardeningSettings(BaseModel):
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1, description="larger request bodies get 413")
    cors_origins: EnvList = Field(
        default_factory=list, description="origins allowed by CORS; empty: CORS off"
    )
    cors_allow_credentials: bool = False
    cors_allow_methods: EnvList = Field(default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE"])
    cors_allow_headers: EnvList = Field(default_factory=lambda: list(DEFAULT_CORS_HEADERS))
    security_headers: bool = True
    hsts_seconds: int = Field(default=31_536_000, ge=0, description="Strict-Transport-Security on HTTPS")
    access_log: bool = True
