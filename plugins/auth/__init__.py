"""API keys (stored only as hashes), scopes, tenants, and the secure-by-default exposure rule."""
