"""The ``sequential-thinking`` MCP server, compatible with the reference server's tool."""
