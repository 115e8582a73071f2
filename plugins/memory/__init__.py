"""The memory engine every memory type uses: embedding (batched, cached), writes into the
storage backend's index, and hybrid recall (vector + BM25 fused, re-scored by recency,
importance and ACT-R base-level activation), plus the ``/ws/memory`` channel."""
