"""The ``pruner`` MCP server: fit a message list to a token budget by relevance and recency."""
