"""Persistence: WAL checkpoints, online backups and restore, memory export/import (JSONL)."""
