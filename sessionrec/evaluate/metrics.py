"""Next-item metrics over the full item set (no sampled negatives).

Every recommender is judged from its ranked top-K list ``topk[b] = [i_1, ..., i_K]`` and
the true next item ``t_b``. With ``rank_b`` the 1-based position of ``t_b`` in the list
(``0`` when absent):

.. math::

    \\mathrm{HR@K} = \\frac{1}{B}\\sum_b [1 \\le rank_b \\le K] \\qquad
    \\mathrm{MRR@K} = \\frac{1}{B}\\sum_b \\frac{[1 \\le rank_b \\le K]}{rank_b} \\qquad
    \\mathrm{NDCG@K} = \\frac{1}{B}\\sum_b \\frac{[1 \\le rank_b \\le K]}{\\log_2(rank_b + 1)}

HR@K is the SR-GNN paper's P@K (one relevant item per sample). Item coverage@K is the
share of the catalogue that appears in at least one top-K list; popularity bias@K is the
mean popularity percentile (0 = least, 100 = most clicked in training) of recommended
items. Functions return fractions in ``[0, 1]``; :class:`MetricAccumulator` reports
percent, as the literature does.

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sessionrec.errors import ConfigError

__all__ = [
    "top_k",
    "target_ranks",
    "hit_rate_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "item_coverage_at_k",
    "popularity_percentiles",
    "popularity_bias_at_k",
    "MetricAccumulator",
]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first; ties go to the lower index.

    Args:
        scores: ``[B, N]`` scores over all items.
    Returns:
        ``int64 [B, min(k, N)]``.
    """
    scores = np.asarray(scores)
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    # the k largest per row in arbitrary order; exact unless the k-th value is tied with
    # values left outside, where the lower indices must win: those rows are redone below
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    kth = values.min(axis=1, keepdims=True)
    n_at_least = (scores >= kth).sum(axis=1)
    order = np.lexsort((part, -values), axis=1)  # score descending, then index ascending
    out = np.take_along_axis(part, order, axis=1).astype(np.int64)
    tied = np.flatnonzero(n_at_least > k)  # ties across the cut (e.g. many zero scores)
    if len(tied):
        sub, cut = scores[tied], kth[tied]
        above = sub > cut
        equal = sub == cut
        need = k - above.sum(axis=1, keepdims=True)
        # everything above the cut, then the lowest-index ties until each row has k
        keep = above | (equal & (np.cumsum(equal, axis=1) <= need))
        cols = np.nonzero(keep)[1].reshape(len(tied), k)  # row-major: ascending per row
        vals = np.take_along_axis(sub, cols, axis=1)
        out[tied] = np.take_along_axis(cols, np.lexsort((cols, -vals), axis=1), axis=1)
    return out


def target_ranks(topk: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each target in its top-K row, ``0`` where absent. ``int64 [B]``."""
    topk = np.asarray(topk)
    targets = np.asarray(targets)
    hits = topk == targets[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1) + 1, 0).astype(np.int64)


def _in_top(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks >= 1) & (ranks <= k)


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of samples whose target is within the top ``k``."""
    ranks = np.asarray(ranks)
    return float(_in_top(ranks, k).mean()) if len(ranks) else 0.0


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, counting ranks beyond ``k`` as 0."""
    ranks = np.asarray(ranks)
    if not len(ranks):
        return 0.0
    hit = _in_top(ranks, k)
    return float(np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0).mean())


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG with one relevant item: ``1 / log2(rank + 1)`` within the top ``k``."""
    ranks = np.asarray(ranks)
    if not len(ranks):
        return 0.0
    hit = _in_top(ranks, k)
    return float(np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0).mean())


def item_coverage_at_k(topk: np.ndarray, n_items: int, k: int) -> float:
    """Share of the ``n_items`` catalogue found in at least one top-``k`` list."""
    topk = np.asarray(topk)[:, :k]
    return float(len(np.unique(topk)) / n_items) if n_items else 0.0


def popularity_percentiles(item_counts: np.ndarray) -> np.ndarray:
    """Percentile (0..100) of each item's click count; ties share their mean rank."""
    counts = np.asarray(item_counts, dtype=np.float64)
    n = len(counts)
    if n <= 1:
        return np.full(n, 100.0)
    order = np.argsort(counts, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    # average rank within ties
    uniq, inverse = np.unique(counts, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    sizes = np.bincount(inverse)
    mean_rank = (sums / sizes)[inverse]
    return 100.0 * mean_rank / (n - 1)


def popularity_bias_at_k(topk: np.ndarray, percentiles: np.ndarray, k: int) -> float:
    """Mean popularity percentile of the items in the top-``k`` lists (0..100)."""
    topk = np.asarray(topk)[:, :k]
    return float(percentiles[topk].mean()) if topk.size else 0.0


class MetricAccumulator:
    """Accumulates ranks and top-K lists batch by batch and reports percent figures.

    Args:
        n_items: catalogue size (for coverage).
        ks: cut-offs to report (``hr@K``, ``mrr@K``, ``ndcg@K`` for each).
        item_counts: training click count of every item (for popularity bias); optional.
        groups: item groups, name -> bool mask ``[n_items]`` (e.g. ``cold``, ``warm``,
            ``longtail``); optional. For each group ``g`` the samples whose *target* is in
            the group are scored apart: ``{g}_hr@K``, ``{g}_mrr@K``, ``{g}_ndcg@K``
            (percent, over those samples only; 0.0 when there are none) and
            ``{g}_n_samples``.
    """

    def __init__(
        self,
        n_items: int,
        ks: Sequence[int] = (10, 20),
        item_counts: np.ndarray | None = None,
        groups: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.n_items = n_items
        self.ks = tuple(sorted(ks))
        self.k_max = self.ks[-1]
        self._percentiles = None if item_counts is None else popularity_percentiles(item_counts)
        self._groups = _check_groups(groups, n_items)
        self._ranks: list[np.ndarray] = []
        self._targets: list[np.ndarray] = []
        self._seen = np.zeros(n_items, dtype=bool)
        self._pop_sum = 0.0
        self._pop_n = 0

    def update(self, topk: np.ndarray, targets: np.ndarray) -> None:
        """Add a batch: ``topk [B, >= max(ks)]`` ranked lists, ``targets [B]``."""
        topk = np.asarray(topk)[:, : self.k_max]
        targets = np.asarray(targets)
        self._ranks.append(target_ranks(topk, targets))
        if self._groups:
            self._targets.append(targets.astype(np.int64, copy=False))
        self._seen[topk.ravel()] = True
        if self._percentiles is not None and topk.size:
            self._pop_sum += float(self._percentiles[topk].sum())
            self._pop_n += topk.size

    @property
    def ranks(self) -> np.ndarray:
        return np.concatenate(self._ranks) if self._ranks else np.zeros(0, dtype=np.int64)

    def result(self) -> dict[str, float | int]:
        """``hr@K``, ``mrr@K``, ``ndcg@K`` (percent), ``coverage@Kmax`` (percent),
        ``popularity_bias@Kmax`` (mean percentile) and ``n_samples``; then, for each
        group ``g``, ``{g}_hr@K``, ``{g}_mrr@K``, ``{g}_ndcg@K`` and ``{g}_n_samples``."""
        ranks = self.ranks
        out: dict[str, float | int] = {}
        for k in self.ks:
            out[f"hr@{k}"] = 100.0 * hit_rate_at_k(ranks, k)
            out[f"mrr@{k}"] = 100.0 * mrr_at_k(ranks, k)
            out[f"ndcg@{k}"] = 100.0 * ndcg_at_k(ranks, k)
        out[f"coverage@{self.k_max}"] = 100.0 * float(self._seen.mean()) if self.n_items else 0.0
        if self._percentiles is not None:
            out[f"popularity_bias@{self.k_max}"] = (
                self._pop_sum / self._pop_n if self._pop_n else 0.0
            )
        out["n_samples"] = int(len(ranks))
        if self._groups:
            targets = np.concatenate(self._targets) if self._targets else np.zeros(0, np.int64)
            for name, mask in self._groups.items():
                in_group = ranks[mask[targets]]  # ranks of the samples with a target in g
                for k in self.ks:
                    out[f"{name}_hr@{k}"] = 100.0 * hit_rate_at_k(in_group, k)
                    out[f"{name}_mrr@{k}"] = 100.0 * mrr_at_k(in_group, k)
                    out[f"{name}_ndcg@{k}"] = 100.0 * ndcg_at_k(in_group, k)
                out[f"{name}_n_samples"] = int(len(in_group))
        return out


def _check_groups(groups: Mapping[str, np.ndarray] | None, n_items: int) -> dict[str, np.ndarray]:
    """The groups as bool ``[n_items]`` arrays; a clear error for anything else."""
    out: dict[str, np.ndarray] = {}
    for name, mask in (groups or {}).items():
        array = np.asarray(mask)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"groups: names must be non-empty strings, got {name!r}")
        if array.dtype != bool or array.shape != (n_items,):
            raise ConfigError(
                f"groups[{name!r}] must be a bool mask over the {n_items} items, got dtype "
                f"{array.dtype} and shape {array.shape}"
            )
        out[name] = array
    return out
