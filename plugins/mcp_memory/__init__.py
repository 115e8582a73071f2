"""Memory routes for agents and MCP tooling: a session's memory, statistics, MCP servers with
their memories, similarity, compression, storing, frequent patterns, clustering, similar
sessions, cleanup and pattern promotion (through the consolidation service)."""
