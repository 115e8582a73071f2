from pydantic import BaseModel, Field


class PrunerSettings(BaseModel):
    embedder: str | None = Field(
        default=None,
        description="registered embedder to score relevance with (default: the first one registered; "
        "with none, relevance is lexical)",
    )
    recency_weight: float = Field(default=0.3, ge=0, le=1, description="weight of recency against relevance")
    keep_last: int = Field(
        default=2, ge=0, description="the last this many messages (or tool-call groups) stay"
    )
    max_messages: int = Field(default=5000, ge=1, description="longest message list accepted")
