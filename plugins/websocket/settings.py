from pydantic import BaseModel, Field


class WebSocketSettings(BaseModel):
    health_interval_seconds: float = Field(default=5.0, gt=0, description="how often /ws/health reports")
    progress_interval_seconds: float = Field(
        default=0.5, gt=0, description="how often a running stream reports its progress on /ws"
    )
