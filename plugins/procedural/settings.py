from pydantic import BaseModel, Field


class ProceduralSettings(BaseModel):
    success_weight: float = Field(
        default=0.5, ge=0, description="weight of the (Laplace-smoothed) success rate when matching skills"
    )
