"""Any OpenAI-compatible chat API (OpenAI, Ollama, vLLM, LM Studio, OpenRouter, Groq, ...).

The request body goes upstream as the client sent it (after the pipeline), unknown fields
included, with only ``model`` replaced by the upstream's model id; streamed responses pass
through as the upstream framed them, cut at event boundaries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from mnemogate.core.contracts import ChatContext, ProviderError
from mnemogate.plugins.providers.settings import UpstreamConfig
from mnemogate.plugins.providers.sse import whole_events
from mnemogate.plugins.providers.upstream import HttpProvider, read_failure

PATH = "/chat/completions"


class OpenAICompatibleProvider(HttpProvider):
    kind = "openai_compatible"

    def __init__(self, config: UpstreamConfig) -> None:
        key = config.key()
        super().__init__(config, {"Authorization": f"Bearer {key}"} if key else {})

    @staticmethod
    def payload(ctx: ChatContext) -> dict[str, Any]:
        body = ctx.body
        return body if body.get("model") == ctx.model else {**body, "model": ctx.model}

    async def complete(self, ctx: ChatContext) -> dict[str, Any]:
        response = await self.post(ctx, PATH, self.payload(ctx))
        try:
            data = await response.read()
        except (TimeoutError, ConnectionError) as exc:
            raise read_failure(self.name, exc) from None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ProviderError(f"provider {self.name!r} sent a body that is not JSON", status=502) from None

    async def stream(self, ctx: ChatContext) -> AsyncIterator[bytes]:
        response = await self.post(ctx, PATH, self.payload(ctx))
        try:
            async for block in whole_events(response.chunks()):
                yield block
        except (TimeoutError, ConnectionError) as exc:
            raise read_failure(self.name, exc) from None
        finally:
            response.close()
