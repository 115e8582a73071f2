"""Compression of context: whitespace and JSON, repeated blocks, folded tool outputs."""
