"""The evaluation loop shared by every recommender: score a batch, rank, accumulate.

Any object with ``scores(samples: Samples) -> [B, n_items]`` (a baseline of
:mod:`sessionrec.evaluate.baselines`, or a trained model behind a small adapter) is
judged the same way: every item of the catalogue is ranked for every sample (no sampled
negatives), the top ``max(ks)`` items are kept with :func:`~sessionrec.evaluate.metrics.top_k`
(ties go to the lower item index, so results are deterministic) and
:class:`~sessionrec.evaluate.metrics.MetricAccumulator` turns the ranks into percent
figures.

This module imports numpy (and tqdm for the optional progress bar).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from sessionrec.data.sessions import Samples
from sessionrec.errors import ConfigError
from sessionrec.evaluate.metrics import MetricAccumulator, top_k

__all__ = ["Scorer", "evaluate_recommender"]


class Scorer(Protocol):
    """Anything that scores every item for a batch of prefixes."""

    def scores(self, samples: Samples) -> np.ndarray:  # [B, n_items]
        ...


def evaluate_recommender(
    model: Scorer,
    samples: Samples,
    n_items: int,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 500,
    item_counts: np.ndarray | None = None,
    progress: bool = False,
    desc: str = "evaluate",
    groups: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float | int]:
    """HR@K, MRR@K, NDCG@K (percent) of ``model`` on ``samples``, over all ``n_items``.

    Args:
        model: any object with ``scores(samples) -> [B, n_items]`` (higher is better).
        samples: the prefixes to score and their true next items.
        n_items: catalogue size; ``scores`` must return exactly this many columns.
        ks: cut-offs; the keys ``hr@K``, ``mrr@K``, ``ndcg@K`` are reported for each.
        batch_size: samples scored at once (memory is ``batch_size * n_items`` floats).
        item_counts: training clicks per item, for ``popularity_bias@{max(ks)}``.
        progress: show a tqdm bar on stderr.
        desc: label of the progress bar.
        groups: item groups, name -> bool mask ``[n_items]`` (e.g. cold, warm and
            long-tail items): adds ``{g}_hr@K``, ``{g}_mrr@K``, ``{g}_ndcg@K`` over the
            samples whose target is in group ``g``, and ``{g}_n_samples``.

    Returns:
        The :meth:`MetricAccumulator.result` dict: ``hr@K``, ``mrr@K``, ``ndcg@K``,
        ``coverage@Kmax`` (percent), ``popularity_bias@Kmax`` (if ``item_counts``) and
        ``n_samples``, then the per-group keys.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if not ks or min(ks) < 1:
        raise ConfigError(f"ks must be positive cut-offs, got {tuple(ks)}")
    accumulator = MetricAccumulator(n_items, ks, item_counts, groups)
    k_max = max(ks)
    batches = samples.batches(batch_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), desc=desc, unit="sample", file=sys.stderr)
    try:
        for batch in batches:
            scores = np.asarray(model.scores(batch))  # [B, n_items]
            if scores.shape != (len(batch), n_items):
                raise ConfigError(
                    f"{type(model).__name__}.scores returned shape {scores.shape}, "
                    f"expected ({len(batch)}, {n_items}) (one score per item)"
                )
            accumulator.update(top_k(scores, k_max), batch.targets)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return accumulator.result()
