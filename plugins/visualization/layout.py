"""Numeric work of the views: a bounded 3D force-directed layout and a PCA projection.

Pure numpy, no I/O: the service runs these in a worker thread.

The layout is Fruchterman-Reingold in three dimensions. Exact repulsion costs n^2 per step (10k
nodes: 10^8 pairs); instead every node is pushed by a fresh random sample of anchors each step,
scaled up to stand for all nodes (an unbiased estimate of the total force), which keeps a step
O(n * sample + edges). It starts from the embeddings' PCA when given (similar memories start
close), is deterministic for a seed, and stops after ``iterations`` steps or ``seconds``.
"""

from __future__ import annotations

import time

import numpy as np

SCALE = 30.0  # the ideal edge length in output units (what WebGL graph viewers expect)


def pca_3d(matrix: np.ndarray, *, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Rows projected on their first three principal components, and the share of the variance
    each explains. Signs are fixed (each component's largest loading positive) so the same data
    always projects the same way.

    Only three components are wanted, so instead of a full decomposition of the d x d scatter
    matrix (d^3), subspace iteration finds them with d x 3 products, then a 3 x 3 eigenproblem
    (Rayleigh-Ritz) orders them exactly."""
    rows = np.asarray(matrix, dtype=np.float64)
    n = rows.shape[0]
    out = np.zeros((n, 3), dtype=np.float64)
    if n < 2 or rows.ndim != 2 or rows.shape[1] == 0:
        return out, np.zeros(3)
    centred = rows - rows.mean(axis=0)
    scatter = centred.T @ centred
    total = float(np.trace(scatter))
    count = min(3, scatter.shape[0])
    basis = np.random.default_rng(0).normal(size=(scatter.shape[0], count))
    for _ in range(iterations):
        basis, _ = np.linalg.qr(scatter @ basis)
    values, rotation = np.linalg.eigh(basis.T @ scatter @ basis)
    order = np.argsort(values)[::-1]
    top = (basis @ rotation[:, order]).T
    signs = np.sign(top[np.arange(count), np.abs(top).argmax(axis=1)])
    signs[signs == 0] = 1
    top = top * signs[:, None]
    out[:, :count] = centred @ top.T
    explained = np.zeros(3)
    if total > 0:
        explained[:count] = np.clip(values[order], 0, None) / total
    return out, explained


def force_layout(
    n: int,
    sources: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    *,
    initial: np.ndarray | None = None,
    iterations: int = 150,
    seconds: float = 2.0,
    sample: int = 128,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Positions (n x 3, float32) for a graph of ``n`` nodes and weighted edges
    ``sources[i] -> targets[i]`` (indices), and the number of steps taken."""
    if n == 0:
        return np.zeros((0, 3), dtype=np.float32), 0
    rng = np.random.default_rng(seed)
    radius = max(n ** (1 / 3), 1.0)  # unit density: the ideal edge length is 1
    if initial is not None and len(initial) == n and np.ptp(initial, axis=0).max() > 0:
        start = np.asarray(initial, dtype=np.float64)
        start = (start - start.mean(axis=0)) / (np.abs(start - start.mean(axis=0)).max() or 1.0) * radius
        pos = start + rng.normal(scale=0.05 * radius, size=(n, 3))
    else:
        pos = rng.normal(scale=radius / 2, size=(n, 3))
    if n == 1:
        return np.zeros((1, 3), dtype=np.float32), 0
    sources = np.asarray(sources, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float32)
    # Big graphs take fewer anchors per step: more, cheaper steps fit in the time budget.
    anchors = min(sample if n <= 2000 else sample // 2, n)
    started = time.monotonic()
    temperature = radius / 2
    steps = 0
    pos = pos.astype(np.float32)
    for _ in range(iterations):
        elapsed = time.monotonic() - started
        if elapsed > seconds:
            break
        picked = rng.choice(n, size=anchors, replace=False)
        delta = pos[:, None, :] - pos[None, picked, :]
        distance2 = np.einsum("ijk,ijk->ij", delta, delta) + np.float32(1e-3)
        # k^2 / d along the unit vector = delta / d^2 (k = 1), scaled to stand for all n nodes.
        push = np.einsum("ijk,ij->ik", delta, 1 / distance2) * np.float32(n / anchors)
        if len(sources):
            edge = pos[targets] - pos[sources]
            length = np.sqrt(np.einsum("ij,ij->i", edge, edge)) + np.float32(1e-9)
            pull = edge * (length * weights)[:, None]  # d^2 / k along the unit vector
            for axis in range(3):
                push[:, axis] += np.bincount(sources, pull[:, axis], minlength=n)
                push[:, axis] -= np.bincount(targets, pull[:, axis], minlength=n)
        push -= pos * np.float32(0.1 / radius)  # gravity: keeps unconnected parts in view
        size = np.sqrt(np.einsum("ij,ij->i", push, push)) + np.float32(1e-9)
        pos += push / size[:, None] * np.minimum(size, temperature)[:, None]
        steps += 1
        # Cool down by steps or by time, whichever runs out first.
        done = max(steps / iterations, (time.monotonic() - started) / seconds)
        temperature = max(radius / 2 * (1 - done), 0.01)
    pos -= pos.mean(axis=0)
    return (pos * SCALE).astype(np.float32), steps
