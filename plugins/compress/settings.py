from pydantic import BaseModel, Field


class CompressSettings(BaseModel):
    pipeline: bool = Field(
        default=False,
        description="compress every outgoing gateway request (after compaction, before masking)",
    )
    compact_json: bool = Field(
        default=True, description="re-serialise texts that are whole JSON documents compactly"
    )
    repeated_block_chars: int = Field(
        default=200, ge=20, description="a block at least this long seen earlier becomes a reference to it"
    )
    fold_lines: int = Field(
        default=200, ge=10, description="tool outputs longer than this many lines keep only head and tail"
    )
    fold_head_lines: int = Field(default=60, ge=1, description="lines kept at the start of a folded output")
    fold_tail_lines: int = Field(default=40, ge=1, description="lines kept at the end of a folded output")
    flush_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often pipeline figures are written (off the request path)"
    )
