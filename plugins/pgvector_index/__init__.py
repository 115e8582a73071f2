"""The memory index for PostgreSQL: vectors in a pgvector column searched through an HNSW index
(cosine), keyword search over a tsvector column ranked by ts_rank_cd, tenant and attribute
filters in the same SQL. Nothing is held in memory, so every instance on the database sees
every write at once."""
