from pydantic import BaseModel, Field


class ConsolidationSettings(BaseModel):
    interval_seconds: float = Field(
        default=3600.0, ge=0, description="seconds between scheduled runs (0: only on demand)"
    )
    max_episodes_per_run: int = Field(default=500, ge=1, le=100_000, description="episodes one run reads")
    max_tenants_per_run: int = Field(default=20, ge=1, description="tenants one scheduled run serves")
    cluster_threshold: float = Field(
        default=0.55, gt=0, lt=1, description="cosine similarity that puts an episode into a cluster"
    )
    min_cluster_size: int = Field(default=3, ge=2, description="episodes a cluster needs to become a topic")
    min_entity_mentions: int = Field(default=2, ge=1, description="episodes that must mention a name")
    min_relation_support: int = Field(default=2, ge=1, description="episodes two names must share")
    min_pattern_support: int = Field(
        default=2, ge=2, description="successful occurrences a tool sequence needs to become a skill"
    )
    max_pattern_length: int = Field(default=4, ge=2, le=10, description="longest tool sequence learned")
    archive_after_days: float = Field(
        default=30.0, gt=0, description="age after which unrecalled memories decay"
    )
    archive_max_importance: float = Field(
        default=0.5, ge=0, le=1, description="memories more important than this never decay"
    )
    archive_types: list[str] = Field(
        default_factory=lambda: ["episodic"], description="memory types whose unrecalled items decay"
    )
    max_archived_per_run: int = Field(default=1000, ge=0, description="memories one run archives at most")
