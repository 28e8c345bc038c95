r"""The approximate nearest-neighbour index of two-stage serving
(:mod:`sessionrec.serving.two_stage`), built at export with faiss (``sessionrec[ann]``).

The index is a faiss ``IndexIVFFlat`` with the inner-product metric over the item
vectors :math:`\mathbf{e}_j` (the rows of the exported table; ``[e_j, b_j]`` when a
content model has a new-item offset :math:`b_j`, queried with ``[q, 1]``, so that the
index ranks by the exact score's first two terms). Its ``nlist`` lists come from k-means
(spherical under NISER, whose vectors have unit norm) on a sample of the items; a search
scans the ``nprobe`` lists whose centroids are nearest the session vector.

Why this index and these numbers (``export/README.md``, "Two-stage serving", has the
measurements): on the trained Diginetica model (43,097 items) and 2,000 real test
sessions, IVF-Flat with ``nlist = 4 sqrt(N)`` finds 98.9 % of the exact top-20 with
``nprobe = 8``, 99.5 % with 32 and 99.7 % with 64; on a model trained on a planted
catalog of 999,464 items (``nlist`` 3,999) it finds 92.4 % with 64, 95.9 % with 128,
98.3 % with 256 and 99.4 % with 512, at 0.68, 0.99, 1.74 and 2.99 ms per session (p50,
one thread; exact scoring 28.2 ms), hence ``nprobe = 128``. HNSW reaches the same recall
at the same speed but takes hours to build at 5 million items on two cores; an IVF index
with 8-bit scalar-quantised vectors is a quarter of the size but scans 3.5 times slower
(the re-scoring is exact either way). At 5 million items ``nprobe = 128`` scans about
72,000 vectors; there a model trained for one epoch on 3 clicks per item (barely trained)
gets 64 % of the exact top-20 (86 % with 512 lists), which :data:`LOW_ITEM_RECALL` flags.

:func:`item_recall` measures, at export, how many of the exact top-20 neighbours of
sample item vectors the index finds (metadata ``ann_item_recall_at_20``): a low value
(untrained vectors, which have no neighbourhoods) says the defaults do not suit the
model; ``SessionRecommender.load(nprobe=...)`` or ``exact=True`` decide at serving.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["DEFAULT_NPROBE", "LOW_ITEM_RECALL", "build_index", "item_recall", "ivf_parameters"]

#: Index lists scanned per session (at most ``nlist``).
DEFAULT_NPROBE = 128
#: Below this :func:`item_recall`, the export warns that two-stage answers will often
#: differ from exact ones. Item vectors are harder queries than sessions' vectors: on the
#: planted catalogs of ``benchmarks/two_stage_recall.py`` (one epoch), 0.775 at export
#: went with a recall@20 of 0.959 on test sessions (1 million items) and 0.46 with 0.642
#: (5 million items, barely trained).
LOW_ITEM_RECALL = 0.6
_TRAIN_POINTS_PER_LIST = 40  # faiss asks for at least 39
_KMEANS_ITERATIONS = 10
_ADD_BLOCK = 1 << 20  # items added at a time (bounded temporaries)
_RECALL_BLOCK = 1 << 16  # items scored at a time by item_recall's exact search


def ivf_parameters(n_items: int) -> tuple[int, int]:
    """``(nlist, nprobe)``: ``nlist = 4 sqrt(N)`` (at most ``N / 40``, at least 1) and
    ``nprobe = min(nlist, DEFAULT_NPROBE)``."""
    nlist = max(1, min(round(4 * math.sqrt(n_items)), n_items // _TRAIN_POINTS_PER_LIST))
    return nlist, min(nlist, DEFAULT_NPROBE)


def _index_vectors(
    table: np.ndarray, offset: np.ndarray | None, start: int, stop: int
) -> np.ndarray:
    rows = table[start:stop]
    if offset is None:
        return np.ascontiguousarray(rows, dtype=np.float32)
    return np.hstack([rows, offset[start:stop, None]]).astype(np.float32)


def build_index(
    table: np.ndarray, offset: np.ndarray | None, spherical: bool, seed: int = 0
) -> Any:
    """The IVF-Flat inner-product index of the rows of ``table`` (``[N, d]`` float32),
    with the column ``offset`` (``[N]``) appended when given.

    Args:
        spherical: unit-norm vectors (NISER): k-means keeps its centroids on the sphere.
        seed: the sample of items k-means trains on, and k-means's own seed.

    Returns:
        The faiss index, its ``nprobe`` set (:func:`ivf_parameters`).
    """
    import faiss

    n = table.shape[0]
    nlist, nprobe = ivf_parameters(n)
    dim = table.shape[1] + (offset is not None)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = spherical
    index.cp.niter = _KMEANS_ITERATIONS
    index.cp.seed = seed
    index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
    index.cp.min_points_per_centroid = 1  # tiny catalogs: one list, no warning
    rng = np.random.default_rng(seed)
    n_train = min(n, _TRAIN_POINTS_PER_LIST * nlist)
    sample = np.sort(rng.choice(n, size=n_train, replace=False))
    train = table[sample]
    if offset is not None:
        train = np.hstack([train, offset[sample, None]])
    index.train(np.ascontiguousarray(train, dtype=np.float32))
    del train
    for start in range(0, n, _ADD_BLOCK):
        index.add(_index_vectors(table, offset, start, start + _ADD_BLOCK))
    index.nprobe = nprobe
    return index


def item_recall(
    index: Any,
    table: np.ndarray,
    offset: np.ndarray | None,
    n_queries: int = 256,
    k: int = 20,
    seed: int = 0,
) -> float:
    """The share of the exact top-``k`` (by inner product) that ``index`` finds for
    ``n_queries`` item vectors taken as queries (a quick check of the index on this
    model's vectors: sessions' vectors resemble their items'). Ties count: a found item
    whose score reaches the exact ``k``-th score is a hit, whichever of the tied items
    the exact ranking kept (items without clicks of one category share a content vector)."""
    n = table.shape[0]
    if n <= k:
        return 1.0
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(n, size=min(n_queries, n), replace=False)
    queries = np.ascontiguousarray(table[picks], dtype=np.float32)
    if offset is not None:
        queries = np.hstack([queries, np.ones((len(picks), 1), dtype=np.float32)])
    best = np.full((len(picks), k), -np.inf, dtype=np.float32)  # exact top-k scores
    for start in range(0, n, _RECALL_BLOCK):  # block by block: bounded temporaries
        scores = queries @ _index_vectors(table, offset, start, start + _RECALL_BLOCK).T
        best = -np.partition(-np.hstack([best, scores]), k - 1, axis=1)[:, :k]
    found_scores, found = index.search(queries, k)  # [n_queries, k] each; -1: none
    kth = best.min(axis=1, keepdims=True)  # the exact k-th score of each query
    tie = 1e-5 * np.maximum(1.0, np.abs(kth))  # float rounding of the two computations
    hits = (found >= 0) & (found_scores >= kth - tie)
    return float(hits.sum() / (k * len(picks)))
