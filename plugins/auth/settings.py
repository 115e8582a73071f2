from pydantic import BaseModel, Field


class AuthSettings(BaseModel):
    cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a key lookup is cached; a key revoked elsewhere stops working within this time",
    )
