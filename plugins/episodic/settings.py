from pydantic import BaseModel, Field


class EpisodicSettings(BaseModel):
    context_turns: int = Field(
        default=1,
        ge=0,
        le=5,
        description="earlier episodes of the session indexed with each one (e.g. the question it answers)",
    )
    max_batch: int = Field(default=1000, ge=1, description="episodes per POST")
