"""The memory index for SQLite: vectors and text in the database, FTS5 keyword search, and an
in-memory vector index per (tenant, memory kind) kept in step with writes."""
