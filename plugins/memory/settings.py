from typing import Literal

from pydantic import BaseModel, Field


class MemorySettings(BaseModel):
    embedder: str = Field(default="minilm", description="registered embedder: minilm, remote, hashing, ...")
    embed_batch: int = Field(default=64, ge=1, description="texts per embedder call")
    embed_cache_size: int = Field(default=10_000, ge=0, description="embeddings kept by content hash")
    candidates: int = Field(default=50, ge=1, description="candidates per search mode (at least 4 x k)")
    fusion: Literal["rrf", "scores"] = Field(
        default="rrf", description="rrf: reciprocal rank fusion; scores: weighted normalised scores"
    )
    rrf_k: int = Field(default=60, ge=1, description="the k of reciprocal rank fusion")
    vector_weight: float = Field(default=1.0, ge=0, description="weight of vector similarity in fusion")
    keyword_weight: float = Field(default=1.0, ge=0, description="weight of BM25 in fusion")
    relevance_weight: float = Field(default=1.0, ge=0, description="weight of the fused relevance")
    recency_weight: float = Field(default=0.1, ge=0, description="weight of recency")
    importance_weight: float = Field(default=0.1, ge=0, description="weight of importance")
    activation_weight: float = Field(default=0.1, ge=0, description="weight of ACT-R activation")
    recency_half_life_hours: float = Field(default=168.0, gt=0, description="age at which recency is 0.5")
    actr_decay: float = Field(default=0.5, gt=0, lt=1, description="ACT-R decay d of base-level activation")
    actr_threshold: float = Field(default=-4.0, description="ACT-R retrieval threshold tau")
    reinforce_flush_seconds: float = Field(
        default=0.5, gt=0, le=60, description="recall accesses are written in batches this often"
    )
    actr_noise: float = Field(default=1.0, gt=0, description="ACT-R activation noise s")
