"""Memory as an MCP server: the ``memory`` server's tools over streamable HTTP at ``/mcp``."""

NAME = "memory"
