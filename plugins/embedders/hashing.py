"""A deterministic feature-hashing embedder: fast, dependency-free, stable across processes.

Words and character trigrams are hashed (CRC32, not Python's salted ``hash``) into signed
buckets. Texts sharing words get similar vectors; there is no semantics beyond that, which is
what tests and benchmarks of the storage layer need.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def embed_one(self, text: str) -> np.ndarray:
        import numpy as np

        vector = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            features = [word] + [f"#{word[i : i + 3]}" for i in range(max(len(word) - 2, 0))]
            for feature in features:
                digest = zlib.crc32(feature.encode())
                weight = 1.0 if feature is word else 0.5
                vector[digest % self.dim] += weight if (digest >> 31) & 1 else -weight
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    async def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self.embed_one(t) for t in texts])
