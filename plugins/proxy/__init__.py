"""The OpenAI-compatible gateway: /chat/completions in front of every registered provider."""
