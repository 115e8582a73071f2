from pydantic import BaseModel, Field

from mnemogate.core.settings import EnvList


class FastFilesystemSettings(BaseModel):
    roots: EnvList = Field(
        default_factory=list,
        description="directories the tools may touch (default: the files/ folder of the data directory)",
    )
    read_only: bool = Field(default=False, description="refuse every write (write, edit, mkdir)")
    max_read_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="largest answer of a read")
    max_write_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="largest file a write may create"
    )
    max_results: int = Field(default=1000, ge=1, description="most entries a listing or search returns")
    max_files_scanned: int = Field(default=20000, ge=1, description="most files one search looks at")
    max_search_file_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1, description="content search skips larger files"
    )
    search_timeout_seconds: float = Field(default=10.0, gt=0, description="longest one search runs")
