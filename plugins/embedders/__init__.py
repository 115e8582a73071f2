"""Text embedders: all-MiniLM-L6-v2 on ONNX Runtime (default, offline, no torch), any
OpenAI-compatible ``/embeddings`` endpoint, and a fast deterministic hashing embedder."""
