from pydantic import BaseModel, Field


class PgvectorIndexSettings(BaseModel):
    ef_search: int = Field(
        default=100, ge=1, le=1000, description="HNSW candidates per search (more: better recall, slower)"
    )
    max_scan_tuples: int = Field(
        default=20_000,
        ge=1,
        description="with filters, HNSW keeps scanning (iterative scan) up to this many items for k matches",
    )
    hnsw_m: int = Field(default=16, ge=2, le=100, description="HNSW links per node (index build)")
    hnsw_ef_construction: int = Field(
        default=64, ge=4, le=1000, description="HNSW candidates while building (index build)"
    )
    common_term_docs: int = Field(
        default=20_000,
        ge=1,
        description="keyword search drops query words found in this many items when rarer ones remain",
    )
