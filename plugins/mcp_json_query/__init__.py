"""The ``json-query`` MCP server: JMESPath and JSONPath over inline JSON or files in the allowed
roots, schema inference, and streaming over large files."""
