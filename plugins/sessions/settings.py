from pydantic import BaseModel, Field


class SessionsSettings(BaseModel):
    auto_mode: bool = Field(
        default=True,
        description="start a new session when a request does not continue the active conversation",
    )
    idle_minutes: float = Field(
        default=30.0, gt=0, description="in auto mode, a gap this long starts a new session"
    )
    log_requests: bool = Field(default=True, description="log every gateway request")
    flush_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="how often the request log is written (in batches, off the request path)",
    )
    flush_batch: int = Field(
        default=500, ge=1, description="write at once when this many records are waiting"
    )
