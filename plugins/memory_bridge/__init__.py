"""Memory meets the gateway: exchanges through ``/chat/completions`` (and MCP tool calls) become
episodes, and relevant memories are injected into outgoing requests (both opt-in)."""
