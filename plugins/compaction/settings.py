from pydantic import BaseModel, Field


class CompactionSettings(BaseModel):
    auto: bool = Field(
        default=True, description="compact requests over the threshold in sessions that did not switch it off"
    )
    strategy: str = Field(
        default="layered", description="strategy of auto mode and of compactions naming none"
    )
    context_window: int = Field(
        default=128_000, ge=1024, description="context window of models the catalogue does not know"
    )
    reserved_tokens: int = Field(
        default=8192, ge=0, description="kept free for the reply, a summary and a safety margin"
    )
    target_ratio: float = Field(
        default=0.6,
        gt=0.1,
        le=1.0,
        description="a compaction shrinks the context to this share of the threshold",
    )
    summary_model: str | None = Field(
        default=None,
        description="provider/model that writes summaries (default: the offline extractive summariser)",
    )
    remembered_sessions: int = Field(
        default=256, ge=1, description="sessions whose last request and compaction are kept in memory"
    )
