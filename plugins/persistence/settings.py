from pathlib import Path

from pydantic import BaseModel, Field


class PersistenceSettings(BaseModel):
    checkpoint_interval_seconds: float = Field(
        default=300.0,
        ge=0,
        description="fold the SQLite write-ahead log into the database this often; 0: off",
    )
    backup_dir: Path | None = Field(
        default=None, description="where backups are kept (default: the data directory's backups/)"
    )
    keep_backups: int = Field(
        default=20,
        ge=0,
        description="newest backups kept; older ones are deleted after a backup (0: keep all)",
    )
    import_batch: int = Field(
        default=500, ge=1, le=10_000, description="imported records written per transaction"
    )
    max_import_line_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="longest accepted line of an import"
    )
