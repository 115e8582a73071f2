from pathlib import Path

from pydantic import BaseModel, Field


class ClineSettings(BaseModel):
    data_dir: Path | None = Field(
        default=None,
        description="Cline's global storage (the folder holding tasks/); default: VS Code's for this OS",
    )
    episodes: bool = Field(default=True, description="import each task's messages as episodes")
    max_file_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="larger task files are reported, not read"
    )
    max_episode_chars: int = Field(
        default=20_000, ge=100, le=100_000, description="a message longer than this is cut for its episode"
    )
