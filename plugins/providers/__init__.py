"""LLM providers of the gateway: any OpenAI-compatible API, Anthropic, and an offline mock."""
