from pydantic import BaseModel, Field


class McpMemorySettings(BaseModel):
    scan_limit: int = Field(
        default=10_000, ge=100, le=1_000_000, description="most recent episodes statistics and searches read"
    )
    session_limit: int = Field(default=2000, ge=10, le=100_000, description="episodes of one session read")
    duplicate_threshold: float = Field(
        default=0.95, gt=0, le=1, description="cosine similarity at which two memories are near-duplicates"
    )
    cluster_threshold: float = Field(
        default=0.55, gt=0, lt=1, description="cosine similarity that joins a cluster"
    )
