from pydantic import BaseModel, Field


class SqliteIndexSettings(BaseModel):
    exact_limit: int = Field(
        default=50_000,
        ge=1,
        description="items of one tenant and kind searched exactly (float32); above: IVF with int8 codes",
    )
    ivf_lists: int = Field(
        default=512, ge=1, description="IVF cells (trained once, when exact_limit is crossed)"
    )
    ivf_probes: int = Field(
        default=24, ge=1, description="IVF cells scanned per search (more: better recall)"
    )
    rescore_factor: int = Field(
        default=4,
        ge=1,
        description="approximate candidates per result re-scored exactly with float32 vectors",
    )
    common_term_docs: int = Field(
        default=20_000,
        ge=1,
        description="keyword search drops query words found in this many items when rarer ones remain",
    )
    snapshots: bool = Field(
        default=True, description="save IVF indexes beside the database at shutdown so restarts load fast"
    )
