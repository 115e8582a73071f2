"""The MCP gateway: JSON-RPC to built-in and external MCP servers, their direct endpoints, and the
tool-call log."""
