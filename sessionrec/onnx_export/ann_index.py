r"""The approximate nearest-neighbour index of two-stage serving
(:mod:`sessionrec.serving.two_stage`), built at export with faiss (``sessionrec[ann]``).

The index is an inverted-file (IVF) index with the inner-product metric over the item
vectors :math:`\mathbf{e}_j` (the rows of the exported table; ``[e_j, b_j]`` when a
content model has a new-item offset :math:`b_j`, queried with ``[q, 1]``, so that the
index ranks by the exact score's first two terms). Its ``nlist`` lists come from k-means
(spherical under NISER, whose vectors have unit norm) on a sample of the items; a search
scans the ``nprobe`` lists whose centroids are nearest the session vector. The lists
hold (:class:`IndexSpec`, :func:`index_spec`):

* ``"flat"`` (faiss ``IndexIVFFlat``): the vectors, so the index's order is exact and
  serving re-scores the ``k + s`` best;
* ``"pq4"`` (faiss ``IndexIVFPQFastScan``, from :data:`PQ_FROM_ITEMS` items): 4-bit
  product-quantisation codes of 2 dimensions each (a zero column where the dimension is
  odd), of the residual to the list centroid (Jégou et al., "Product quantization for
  nearest neighbor search", TPAMI 2011; André et al., "Quicker ADC", 2019, for the
  SIMD scan): 25 bytes per item at ``d = 100`` instead of 400. Its scores are
  approximate, so serving asks for :data:`PQ_CANDIDATES_FACTOR` times the items it needs
  and re-scores them all exactly.

Why these numbers (``export/README.md``, "Two-stage serving", and README, "Large
catalogs", have the commands): on the trained Diginetica model (43,097 items) and 2,000
real test sessions, IVF-Flat with ``nlist = 4 sqrt(N)`` finds 98.9 % of the exact top-20
with ``nprobe = 8``, 99.5 % with 32 and 99.7 % with 64; on a model trained on a planted
catalog of 999,464 items (``nlist`` 3,999) it finds 92.4 % with 64, 95.9 % with 128,
98.3 % with 256 and 99.4 % with 512, at 0.68, 0.99, 1.74 and 2.99 ms per session (p50,
one thread; exact scoring 28.2 ms), hence ``nprobe = 128``. At 4,994,671 planted items
(``nlist`` 8,940, a model trained for two epochs) the flat index needs ``nprobe`` 1,024
for 96.3 % (8.2 ms); the ``"pq4"`` index scans those lists in a third of the time and,
re-scoring 20 times the candidates, finds 95.1 % at 2.6 ms (87.2 % with 5 times), hence
its ``nprobe`` of :data:`PQ_NPROBE` and the threshold of 2 million items,
above the largest catalog measured where the flat index met 95 % within 3 ms. HNSW
reaches the same recall as IVF-Flat at the same speed but takes hours to build at 5
million items on two cores; an IVF index with 8-bit scalar-quantised vectors is a
quarter of the size but scans 3.5 times slower.

:func:`item_recall` measures, at export, how many of the exact top-20 neighbours of
sample item vectors the index finds (metadata ``ann_item_recall_at_20``): a low value
(untrained vectors, which have no neighbourhoods) says the defaults do not suit the
model; ``SessionRecommender.load(nprobe=...)`` or ``exact=True`` decide at serving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "AnnCodes",
    "DEFAULT_NPROBE",
    "LOW_ITEM_RECALL",
    "PQ_FROM_ITEMS",
    "PQ_CANDIDATES_FACTOR",
    "PQ_NPROBE",
    "IndexSpec",
    "index_spec",
    "build_index",
    "item_recall",
    "ivf_parameters",
]

#: What the index stores: the item vectors, 4-bit product-quantised codes, or the choice
#: by catalog size (:func:`index_spec`).
AnnCodes = Literal["auto", "flat", "pq4"]
#: Index lists scanned per session (at most ``nlist``).
DEFAULT_NPROBE = 128
#: Below this :func:`item_recall`, the export warns that two-stage answers will often
#: differ from exact ones. Item vectors are harder queries than sessions' vectors: on the
#: planted catalogs of ``benchmarks/two_stage_recall.py`` (one epoch), 0.775 at export
#: went with a recall@20 of 0.959 on test sessions (1 million items) and 0.46 with 0.642
#: (5 million items, barely trained).
LOW_ITEM_RECALL = 0.6
#: Catalogs from this size get an index of 4-bit product-quantised codes (``"pq4"``),
#: below it the vectors themselves (``"flat"``): module docstring.
PQ_FROM_ITEMS = 2_000_000
#: ``"pq4"`` returns this many times the items serving needs, all re-scored exactly.
PQ_CANDIDATES_FACTOR = 20
#: Index lists a ``"pq4"`` index scans per session by default (at most ``nlist``): its
#: codes scan about three times faster than the vectors.
PQ_NPROBE = 1024
_TRAIN_POINTS_PER_LIST = 40  # faiss asks for at least 39
_KMEANS_ITERATIONS = 10
_ADD_BLOCK = 1 << 20  # items added at a time (bounded temporaries)
_RECALL_BLOCK = 1 << 16  # items scored at a time by item_recall's exact search


def ivf_parameters(n_items: int) -> tuple[int, int]:
    """``(nlist, nprobe)``: ``nlist = 4 sqrt(N)`` (at most ``N / 40``, at least 1) and
    ``nprobe = min(nlist, DEFAULT_NPROBE)``."""
    nlist = max(1, min(round(4 * math.sqrt(n_items)), n_items // _TRAIN_POINTS_PER_LIST))
    return nlist, min(nlist, DEFAULT_NPROBE)


@dataclass(frozen=True)
class IndexSpec:
    """What :func:`build_index` builds (:func:`index_spec`), recorded in the two-stage
    files' metadata (``ann_index``, ``ann_nlist``, ``ann_nprobe``,
    ``ann_candidates_factor``).

    Attributes:
        nlist: inverted lists (k-means centroids).
        nprobe: lists searched per query by default.
        codes: ``"flat"`` (the vectors as they are) or ``"pq4"`` (4-bit product
            quantisation, faiss's SIMD "fast scan", residuals to the list centroid).
        pq_m: sub-quantizers of ``"pq4"`` (2 dimensions each), else 0.
        dim: the index's dimension: the item vector's ``d`` (``d + 1`` with the offset
            column), plus one zero column where ``"pq4"`` needs an even dimension.
        candidates_factor: serving asks the index for this many times the items it
            needs and re-scores them all exactly (1 for ``"flat"``, whose order is
            exact; :data:`PQ_CANDIDATES_FACTOR` for ``"pq4"``, whose scores are
            approximate).
    """

    nlist: int
    nprobe: int
    codes: str
    pq_m: int
    dim: int
    candidates_factor: int

    @property
    def factory(self) -> str:
        """The faiss ``index_factory`` name of the index (``IVF8944,PQ51x4fsr``)."""
        if self.codes == "flat":
            return f"IVF{self.nlist},Flat"
        return f"IVF{self.nlist},PQ{self.pq_m}x4fsr"


def index_spec(n_items: int, dim: int, codes: AnnCodes = "auto") -> IndexSpec:
    """The index of a catalog of ``n_items`` vectors of ``dim`` dimensions (the offset
    column included): the lists of :func:`ivf_parameters`; ``codes="auto"`` is ``"pq4"``
    from :data:`PQ_FROM_ITEMS` items, else ``"flat"``; ``"pq4"`` searches
    ``min(nlist, PQ_NPROBE)`` lists by default and re-scores
    :data:`PQ_CANDIDATES_FACTOR` times the candidates.

    Raises:
        ValueError: ``codes`` is not ``"auto"``, ``"flat"`` or ``"pq4"``.
    """
    if codes not in ("auto", "flat", "pq4"):
        raise ValueError(f"codes must be 'auto', 'flat' or 'pq4', got {codes!r}")
    nlist, nprobe = ivf_parameters(n_items)  # the flat index's nprobe
    if codes == "flat" or (codes == "auto" and n_items < PQ_FROM_ITEMS):
        return IndexSpec(nlist, nprobe, "flat", 0, dim, 1)
    padded = dim + dim % 2  # 2 dimensions per sub-quantizer
    pq_nprobe = min(nlist, PQ_NPROBE)
    return IndexSpec(nlist, pq_nprobe, "pq4", padded // 2, padded, PQ_CANDIDATES_FACTOR)


def _index_vectors(
    table: np.ndarray, offset: np.ndarray | None, start: int, stop: int, dim: int | None = None
) -> np.ndarray:
    """``[stop - start, dim]`` float32: the rows, their offset column, zero columns up to
    ``dim`` (default: no padding)."""
    rows = table[start:stop]
    columns = [rows] if offset is None else [rows, offset[start:stop, None]]
    width = rows.shape[1] + (offset is not None)
    if dim is not None and dim > width:
        columns.append(np.zeros((len(rows), dim - width), dtype=np.float32))
    if len(columns) == 1:
        return np.ascontiguousarray(rows, dtype=np.float32)
    return np.hstack(columns).astype(np.float32)


def build_index(
    table: np.ndarray,
    offset: np.ndarray | None,
    spherical: bool,
    seed: int = 0,
    spec: IndexSpec | None = None,
) -> Any:
    """The IVF inner-product index of the rows of ``table`` (``[N, d]`` float32), with
    the column ``offset`` (``[N]``) appended when given.

    Args:
        spherical: unit-norm vectors (NISER): k-means keeps its centroids on the sphere.
        seed: the sample of items k-means trains on, and k-means's own seed.
        spec: the index (default: :func:`index_spec` of the table's size).

    Returns:
        The faiss index (``IndexIVFFlat`` or ``IndexIVFPQFastScan``), its ``nprobe`` set.
    """
    import faiss

    n = table.shape[0]
    width = table.shape[1] + (offset is not None)
    spec = index_spec(n, width) if spec is None else spec
    quantizer = faiss.IndexFlatIP(spec.dim)
    if spec.codes == "flat":
        index = faiss.IndexIVFFlat(quantizer, spec.dim, spec.nlist, faiss.METRIC_INNER_PRODUCT)
    else:  # 4-bit codes, 2 dimensions each; residuals to the list centroid ("fsr")
        index = faiss.IndexIVFPQFastScan(
            quantizer, spec.dim, spec.nlist, spec.pq_m, 4, faiss.METRIC_INNER_PRODUCT
        )
        index.by_residual = True
    index.cp.spherical = spherical
    index.cp.niter = _KMEANS_ITERATIONS
    index.cp.seed = seed
    index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
    index.cp.min_points_per_centroid = 1  # tiny catalogs: one list, no warning
    rng = np.random.default_rng(seed)
    n_train = min(n, _TRAIN_POINTS_PER_LIST * spec.nlist)
    sample = np.sort(rng.choice(n, size=n_train, replace=False))
    train = _index_vectors(
        table[sample], None if offset is None else offset[sample], 0, n_train, spec.dim
    )
    index.train(train)
    del train
    for start in range(0, n, _ADD_BLOCK):
        index.add(_index_vectors(table, offset, start, start + _ADD_BLOCK, spec.dim))
    index.nprobe = spec.nprobe
    return index


def item_recall(
    index: Any,
    table: np.ndarray,
    offset: np.ndarray | None,
    n_queries: int = 256,
    k: int = 20,
    seed: int = 0,
    candidates_factor: int = 1,
) -> float:
    """The share of the exact top-``k`` (by inner product) that two-stage search finds
    for ``n_queries`` item vectors taken as queries (a quick check of the index on this
    model's vectors: sessions' vectors resemble their items'): the index returns
    ``candidates_factor * k`` items, which are re-scored exactly, as serving does. Ties
    count: a found item whose exact score reaches the exact ``k``-th score is a hit,
    whichever of the tied items the exact ranking kept (items without clicks of one
    category share a content vector)."""
    n = table.shape[0]
    if n <= k:
        return 1.0
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(n, size=min(n_queries, n), replace=False)
    width = table.shape[1] + (offset is not None)
    queries = np.ascontiguousarray(table[picks], dtype=np.float32)
    if offset is not None:
        queries = np.hstack([queries, np.ones((len(picks), 1), dtype=np.float32)])
    best = np.full((len(picks), k), -np.inf, dtype=np.float32)  # exact top-k scores
    for start in range(0, n, _RECALL_BLOCK):  # block by block: bounded temporaries
        scores = queries @ _index_vectors(table, offset, start, start + _RECALL_BLOCK).T
        best = -np.partition(-np.hstack([best, scores]), k - 1, axis=1)[:, :k]
    padded = np.zeros((len(picks), index.d), dtype=np.float32)
    padded[:, :width] = queries
    _, found = index.search(padded, min(n, candidates_factor * k))  # -1: none
    # the exact scores of the candidates, their best k kept (the re-scoring)
    safe = np.maximum(found, 0)
    exact = np.einsum("qcd,qd->qc", table[safe], queries[:, : table.shape[1]])  # [Q, C]
    if offset is not None:
        exact = exact + offset[safe]
    exact = np.where(found >= 0, exact, -np.inf)
    found_scores = -np.partition(-exact, min(k, exact.shape[1]) - 1, axis=1)[:, :k]
    kth = best.min(axis=1, keepdims=True)  # the exact k-th score of each query
    tie = 1e-5 * np.maximum(1.0, np.abs(kth))  # float rounding of the two computations
    hits = np.isfinite(found_scores) & (found_scores >= kth - tie)
    return float(hits.sum() / (k * len(picks)))
