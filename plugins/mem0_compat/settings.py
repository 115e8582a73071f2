from pydantic import BaseModel, Field


class Mem0Settings(BaseModel):
    llm_model: str = Field(
        default="",
        description="gateway model (provider/model) extracting facts for infer=true; empty: offline",
    )
    duplicate_similarity: float = Field(
        default=0.92, gt=0, le=1, description="a fact this similar to a memory (same polarity) adds nothing"
    )
    update_similarity: float = Field(
        default=0.72, gt=0, le=1, description="a fact this similar to a memory supersedes it (UPDATE)"
    )
    search_overfetch: int = Field(
        default=10,
        ge=1,
        le=100,
        description="candidates per result when a search filter the index cannot apply",
    )
    default_top_k: int = Field(default=100, ge=1, le=1000, description="memories GET /memories answers")
    org_id: str = Field(default="mnemogate", description="what GET /v1/ping/ reports as the organisation")
    project_id: str = Field(default="default", description="what GET /v1/ping/ reports as the project")
