"""Token-bucket rate limits per API key (or client address while the server is open)."""
