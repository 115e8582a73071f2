"""A minimal stdio MCP server (mcp SDK) for bench/mcp_gateway.py: one ``echo`` tool."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bench-stdio")


@server.tool()
def echo(text: str) -> str:
    """Answer the text."""
    return text


if __name__ == "__main__":
    server.run("stdio")
