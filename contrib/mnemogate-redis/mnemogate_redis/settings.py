from pydantic import BaseModel, Field


class RedisSettings(BaseModel):
    prefix: str = Field(
        default="mnemogate:",
        min_length=1,
        description="prefix of every Redis key and channel of this deployment",
    )
    connect_timeout_seconds: float = Field(default=5.0, gt=0, description="timeout of connecting to Redis")
