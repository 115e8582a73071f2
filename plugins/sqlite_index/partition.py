"""The in-memory vector index of one (tenant, memory kind).

Small partitions keep float32 vectors and search them exactly with one matrix product. Past
``exact_limit`` items the vectors move into a faiss IVF index with 8-bit scalar codes (a
quarter of float32's memory: 1M x 384 takes ~390 MB); the best candidates it finds are
re-scored exactly by the caller from the float32 vectors in the database.

Filters are applied inside the search, never after it: per-item attributes (user, agent and
session as integer codes, the occurrence time) live in compact arrays, a filter becomes a mask,
and the IVF search scans only masked ids, probing proportionally more cells the more selective
the filter is (all of them when it is very selective), so selective filters lose nothing.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ATTRIBUTE_FIELDS = ("user_id", "agent_id", "session_id")
NO_CODE = -1
TRAINING_SAMPLE_PER_LIST = 64


def _faiss() -> Any:
    import faiss

    # One thread: searches are one query each, and batch adds are small; between parallel
    # regions OpenMP's worker threads spin, which cost more CPU than they saved (measured:
    # 8,360 instead of 6,920 items/s of CPU per item added at 100k on a busy 2-core machine).
    faiss.omp_set_num_threads(1)
    return faiss


def _inner_products(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``vectors @ query`` on this thread alone. numpy hands a matrix-vector product to
    OpenBLAS, whose worker threads (one per core) spin waiting for work: on a busy 2-core
    machine that made exact search at 10k items 15 ms of CPU and 37 ms p50 instead of 3."""
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32)
    scores = np.empty(len(vectors), dtype=np.float32)
    if len(vectors):
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(scores), faiss.swig_ptr(query), faiss.swig_ptr(vectors), len(query), len(vectors)
        )
    return scores


@dataclass(frozen=True, slots=True)
class Changes:
    """Rows as the database has them now, column by column; ``live[i]`` is False for a row
    that was deleted (its ``vectors`` row is meaningless)."""

    rowids: np.ndarray
    live: np.ndarray
    vectors: np.ndarray
    occurred: np.ndarray
    attributes: dict[str, list[str | None]]

    def __len__(self) -> int:
        return len(self.rowids)


@dataclass(frozen=True, slots=True)
class Mask:
    """Which positions a search may return (``None``: every live one)."""

    positions: np.ndarray | None


class Partition:
    def __init__(self, dim: int, *, exact_limit: int, ivf_lists: int, ivf_probes: int) -> None:
        self.dim = dim
        self.exact_limit = exact_limit
        self.ivf_lists = ivf_lists
        self.ivf_probes = ivf_probes
        self.seq = 0
        self.size = 0
        self.keys = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.occurred = np.zeros(0, dtype=np.float64)
        self.codes = {name: np.zeros(0, dtype=np.int32) for name in ATTRIBUTE_FIELDS}
        self.vocab: dict[str, dict[str, int]] = {name: {} for name in ATTRIBUTE_FIELDS}
        self.matrix: np.ndarray | None = np.zeros((0, dim), dtype=np.float32)
        self.ivf: Any = None
        # Searches run in reader threads while changes are applied on the event loop or in a
        # worker thread: neither may see the other's arrays half-changed.
        self.guard = threading.Lock()

    # -- state ---------------------------------------------------------------------------------

    @property
    def live(self) -> int:
        return int(self.alive[: self.size].sum())

    @property
    def approximate(self) -> bool:
        return self.ivf is not None

    def _grow(self, needed: int) -> None:
        capacity = len(self.keys)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2, 1024)

        def grown(array: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full((new, *array.shape[1:]), fill, dtype=array.dtype)
            out[: self.size] = array[: self.size]
            return out

        self.keys = grown(self.keys, np.iinfo(np.int64).max)
        self.alive = grown(self.alive, False)
        self.occurred = grown(self.occurred, np.nan)
        for name in ATTRIBUTE_FIELDS:
            self.codes[name] = grown(self.codes[name], NO_CODE)
        if self.matrix is not None:
            self.matrix = grown(self.matrix, 0.0)

    def _code(self, name: str, value: str | None) -> int:
        if value is None:
            return NO_CODE
        vocab = self.vocab[name]
        code = vocab.get(value)
        if code is None:
            code = vocab[value] = len(vocab)
        return code

    # -- applying committed changes ------------------------------------------------------------

    def apply(self, changes: Changes | None, seq: int) -> None:
        """Bring the partition to database sequence number ``seq``."""
        with self.guard:
            self._apply(changes, seq)

    def _apply(self, changes: Changes | None, seq: int) -> None:
        if changes is not None and len(changes):
            known = self._positions(changes.rowids) >= 0
            if self.ivf is not None and known.any():
                self._ivf_remove(changes.rowids[known])  # re-added below when still live
            fresh = np.unique(changes.rowids[~known & changes.live])
            if len(fresh):
                self._append(fresh)
            self._store(changes, self._positions(changes.rowids))
        self.seq = seq
        if self.ivf is None and self.live > self.exact_limit:
            self._build_ivf()

    def _positions(self, rowids: np.ndarray) -> np.ndarray:
        """Position of each row id, -1 where the partition does not hold it."""
        if self.size == 0:
            return np.full(len(rowids), -1, dtype=np.int64)
        found = np.searchsorted(self.keys[: self.size], rowids)
        clipped = np.minimum(found, self.size - 1)
        return np.where(self.keys[clipped] == rowids, clipped, -1)

    def _append(self, rowids: np.ndarray) -> None:
        start = self.size
        self._grow(start + len(rowids))
        self.keys[start : start + len(rowids)] = rowids
        self.size = start + len(rowids)
        # Row ids grow with every insert, so appending keeps the keys sorted; a catch-up that
        # meets rows out of order (several writers) re-sorts once.
        if start and rowids[0] < self.keys[start - 1]:
            order = np.argsort(self.keys[: self.size], kind="stable")
            self.keys[: self.size] = self.keys[: self.size][order]
            self.alive[: self.size] = self.alive[: self.size][order]
            self.occurred[: self.size] = self.occurred[: self.size][order]
            for name in ATTRIBUTE_FIELDS:
                self.codes[name][: self.size] = self.codes[name][: self.size][order]
            if self.matrix is not None:
                self.matrix[: self.size] = self.matrix[: self.size][order]

    def _store(self, changes: Changes, positions: np.ndarray) -> None:
        held = positions >= 0  # a row deleted before this partition ever saw it is skipped
        dead = held & ~changes.live
        self.alive[positions[dead]] = False
        stored = held & changes.live
        where = positions[stored]
        self.alive[where] = True
        self.occurred[where] = changes.occurred[stored]
        for name in ATTRIBUTE_FIELDS:
            values = changes.attributes[name]
            self.codes[name][where] = [self._code(name, values[i]) for i in np.flatnonzero(stored)]
        if not stored.any():
            return  # deletions only: the changes carry no vectors (an empty array of no width)
        if self.matrix is not None:
            self.matrix[where] = changes.vectors[stored]
        else:
            self.ivf.add_with_ids(np.ascontiguousarray(changes.vectors[stored]), changes.rowids[stored])

    # -- the approximate index -----------------------------------------------------------------

    def _build_ivf(self) -> None:
        faiss = _faiss()

        assert self.matrix is not None
        live = np.flatnonzero(self.alive[: self.size])
        vectors = np.ascontiguousarray(self.matrix[live])
        lists = max(1, min(self.ivf_lists, len(live) // 39))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        sample = vectors
        if len(vectors) > lists * TRAINING_SAMPLE_PER_LIST:
            picks = np.random.default_rng(0).choice(
                len(vectors), lists * TRAINING_SAMPLE_PER_LIST, replace=False
            )
            sample = vectors[np.sort(picks)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, self.keys[live])
        self.ivf = ivf
        self.matrix = None

    def _ivf_remove(self, rowids: np.ndarray) -> None:
        faiss = _faiss()

        self.ivf.remove_ids(faiss.IDSelectorBatch(rowids))

    # -- searching -----------------------------------------------------------------------------

    def mask(
        self,
        *,
        user_id: str | None,
        agent_id: str | None,
        session_id: str | None,
        since: float | None,
        until: float | None,
        rowids: np.ndarray | None,
    ) -> Mask:
        """The positions passing the filters (``rowids``: those allowed by a metadata filter)."""
        wanted = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}
        if all(v is None for v in wanted.values()) and since is None and until is None and rowids is None:
            return Mask(None)
        keep = self.alive[: self.size].copy()
        for name, value in wanted.items():
            if value is not None:
                code = self.vocab[name].get(value)
                if code is None:
                    return Mask(np.zeros(0, dtype=np.int64))
                keep &= self.codes[name][: self.size] == code
        occurred = self.occurred[: self.size]
        if since is not None:
            keep &= occurred >= since
        if until is not None:
            keep &= occurred < until
        if rowids is not None:
            keep &= np.isin(self.keys[: self.size], rowids)
        return Mask(np.flatnonzero(keep))

    def search(self, query: np.ndarray, count: int, mask: Mask) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` (rowids, scores) by inner product, best first; approximate scores in
        IVF mode (the caller re-scores them)."""
        if mask.positions is not None and len(mask.positions) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.matrix is not None:
            return self._exact(query, count, mask)
        return self._approximate(query, count, mask)

    def _exact(self, query: np.ndarray, count: int, mask: Mask) -> tuple[np.ndarray, np.ndarray]:
        assert self.matrix is not None
        if mask.positions is not None and len(mask.positions) < self.size // 4:
            positions = mask.positions
            scores = _inner_products(self.matrix[positions], query)
        else:
            scores = _inner_products(self.matrix[: self.size], query)
            allowed = self.alive[: self.size].copy()
            if mask.positions is not None:
                allowed[:] = False
                allowed[mask.positions] = True
            scores = np.where(allowed, scores, -np.inf)
            positions = np.arange(self.size)
        count = min(count, int(np.isfinite(scores).sum()))
        if count <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return self.keys[positions[top]], scores[top].astype(np.float32)

    def _approximate(self, query: np.ndarray, count: int, mask: Mask) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()

        live = max(self.ivf.ntotal, 1)
        probes = self.ivf_probes
        selector = None
        if mask.positions is not None:
            selected = len(mask.positions)
            # Scan as many matching vectors as an unfiltered search would: a filter matching 1%
            # of the items probes 100x the cells (every cell, for very selective filters).
            probes = min(self.ivf.nlist, math.ceil(self.ivf_probes * live / selected))
            bits = np.zeros(int(self.keys[self.size - 1]) + 1, dtype=bool)
            bits[self.keys[mask.positions]] = True
            bitmap = np.packbits(bits, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersIVF(nprobe=min(probes, self.ivf.nlist), sel=selector)
        scores, ids = self.ivf.search(query.reshape(1, -1), count, params=params)
        found = ids[0] >= 0
        return ids[0][found].astype(np.int64), scores[0][found]

    # -- snapshots -----------------------------------------------------------------------------

    def save(self, stem: Path, header: dict[str, Any]) -> None:
        """Write the IVF index and the attribute arrays (``stem``.faiss / .npz / .json)."""
        faiss = _faiss()

        n = self.size
        faiss.write_index(self.ivf, str(stem.with_suffix(".faiss")))
        np.savez(
            stem.with_suffix(".npz"),
            keys=self.keys[:n],
            alive=self.alive[:n],
            occurred=self.occurred[:n],
            **{f"code_{name}": self.codes[name][:n] for name in ATTRIBUTE_FIELDS},
        )
        stem.with_suffix(".json").write_text(json.dumps({**header, "seq": self.seq, "vocab": self.vocab}))

    @classmethod
    def load(cls, stem: Path, dim: int, **options: int) -> tuple[Partition, dict[str, Any]]:
        faiss = _faiss()

        header = json.loads(stem.with_suffix(".json").read_text())
        partition = cls(dim, **options)
        arrays = np.load(stem.with_suffix(".npz"))
        partition.keys = arrays["keys"].copy()
        partition.size = len(partition.keys)
        partition.alive = arrays["alive"].copy()
        partition.occurred = arrays["occurred"].copy()
        for name in ATTRIBUTE_FIELDS:
            partition.codes[name] = arrays[f"code_{name}"].copy()
        partition.vocab = header["vocab"]
        partition.seq = int(header["seq"])
        partition.matrix = None
        partition.ivf = faiss.read_index(str(stem.with_suffix(".faiss")))
        return partition, header
