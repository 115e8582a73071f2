"""The ``context-compression`` MCP server: compress text or a message list, with the ``compress``
plugin's engine when it is installed and a minimal engine of its own otherwise."""
