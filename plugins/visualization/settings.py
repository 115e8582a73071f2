from pydantic import BaseModel, Field


class VisualizationSettings(BaseModel):
    max_nodes: int = Field(
        default=10_000, ge=1, le=50_000, description="most memories a graph or projection shows"
    )
    series_max_items: int = Field(
        default=50_000, ge=1, description="most memories the time series read (the newest)"
    )
    layout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="time budget of a graph layout, its PCA start included (the layout keeps half)",
    )
    layout_iterations: int = Field(default=150, ge=1, le=2000, description="force-layout steps at most")
    cache_entries: int = Field(default=32, ge=0, description="laid-out graphs kept (per process)")
    cache_seconds: float = Field(
        default=300,
        ge=0,
        description="how long a cached graph lives (writes of this process invalidate it at once)",
    )
    recent_requests: int = Field(default=50, ge=0, le=1000, description="log records the usage view lists")
