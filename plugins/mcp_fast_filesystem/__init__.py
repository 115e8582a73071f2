"""The ``fast-filesystem`` MCP server: file tools confined to configured roots."""
