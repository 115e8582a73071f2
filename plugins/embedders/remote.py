"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Ollama, vLLM, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from mnemogate.core.errors import StartupError, Unavailable
from mnemogate.plugins.embedders.settings import EmbeddersSettings

if TYPE_CHECKING:
    import numpy as np


class RemoteEmbedder:
    def __init__(
        self,
        *,
        url: str,
        model: str,
        dim: int,
        api_key: str | None = None,
        batch: int = 128,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self.dim = dim
        self.name = f"remote:{model}"
        self.batch = batch
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=timeout)

    async def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            chunk = texts[start : start + self.batch]
            out[start : start + len(chunk)] = await self._request(chunk)
        return out

    async def _request(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        try:
            response = await self.client.post(self.url, json={"model": self.model, "input": texts})
        except httpx.HTTPError as exc:
            raise Unavailable(f"the embedding service is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise Unavailable(f"the embedding service answered {response.status_code}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            raise Unavailable("the embedding service sent an unreadable answer") from None
        if vectors.shape != (len(texts), self.dim):
            raise Unavailable(
                f"the embedding service returned vectors of shape {vectors.shape}, "
                f"expected {len(texts)} x {self.dim} (plugins.embedders.remote_dimensions)"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)

    async def close(self) -> None:
        await self.client.aclose()


def remote_from_settings(settings: EmbeddersSettings) -> RemoteEmbedder:
    if not settings.remote_url or not settings.remote_dimensions:
        raise StartupError(
            "the remote embedder needs plugins.embedders.remote_url and plugins.embedders.remote_dimensions"
        )
    key = settings.remote_api_key
    return RemoteEmbedder(
        url=settings.remote_url,
        model=settings.remote_model,
        dim=settings.remote_dimensions,
        api_key=key.get_secret_value() if key else None,
        batch=settings.remote_batch,
        timeout=settings.remote_timeout,
    )
