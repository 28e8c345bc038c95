"""Cold-start splits: hold items out of training, and name the long tail.

A *cold* item has no training click, yet the model must still rank it (from its
content). :func:`hold_out_items` makes such items from a dataset: it picks a share of
the clicked items at random and removes every training click on them, keeping the items
in the vocabulary (and so in the catalog and the scored item set) and the test samples
unchanged. Test samples whose target is a held-out item measure cold-start quality
(``cold_hr@20``); the others the warm quality; :func:`longtail_mask` names the
rarely-clicked warm items (``longtail_hr@20``). Pass the masks as ``groups`` to
:func:`~sessionrec.evaluate.evaluation.evaluate_recommender`.

This module imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, EmptyDataError

__all__ = ["ColdSplit", "hold_out_items", "longtail_mask"]


@dataclass(frozen=True)
class ColdSplit:
    """A dataset with some items held out of training.

    Attributes:
        dataset: the same vocabulary and test samples as the original; training sessions
            without any click on a held-out item (sessions left with fewer than 2 clicks
            dropped).
        cold: bool ``[n_items]``, the held-out items.
        fraction: the share of the clicked items held out (as asked).
        seed: the seed of the random choice.
    """

    dataset: SessionDataset
    cold: np.ndarray
    fraction: float
    seed: int

    @property
    def n_cold(self) -> int:
        return int(self.cold.sum())


def hold_out_items(
    dataset: SessionDataset, fraction: float, seed: int, keep_recent: float = 0.0
) -> ColdSplit:
    """Hold ``fraction`` of the clicked items out of training (cold items).

    The held-out items are ``round(fraction * n_eligible)`` items (round half to even)
    drawn uniformly without replacement, with ``numpy.random.default_rng(seed)``, from the
    ``n_eligible`` items that have at least one training click (``rng.choice`` over their
    indices in ascending order, so a seed always gives the same items). Every training
    click on a held-out item is removed; the other clicks keep their order, and sessions
    left with fewer than 2 clicks are dropped (the others keep their order, ``times`` and
    ``session_ids``). Vocabulary and test samples are unchanged (the same objects), so
    held-out items stay in the scored item set and test targets keep their indices.

    ``keep_recent`` (:math:`f`): the latest sessions keep their clicks on held-out items,
    as a live catalog's new items are clicked in the most recent data. They are exactly
    the sessions a trainer with ``valid_fraction`` :math:`f` validates on
    (:func:`~sessionrec.data.dataset.validation_split` of the result: the latest
    ``round(f * n)`` of its ``n`` sessions, by time then position), so the held-out items
    stay unseen by training while validation has targets among them (to calibrate how
    often new items are recommended). The count is found by fixed-point iteration,
    since dropping short sessions changes :math:`n`.

    Raises:
        ConfigError: ``fraction`` not in ``(0, 1)``, or so small that no item is held out.
        EmptyDataError: no item has a training click.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)):
        raise ConfigError(f"cold-item fraction must be a number in (0, 1), got {fraction!r}")
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"cold-item fraction must be in (0, 1), got {fraction}")
    train = dataset.train
    n_items = dataset.n_items
    counts = np.bincount(train.items, minlength=n_items)  # [n_items]
    eligible = np.flatnonzero(counts > 0)
    if len(eligible) == 0:
        raise EmptyDataError("cannot hold items out: no item has a training click")
    n_cold = int(round(float(fraction) * len(eligible)))
    if n_cold == 0:
        raise ConfigError(
            f"cold-item fraction {fraction} of {len(eligible)} clicked items holds out no "
            "item; raise the fraction"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=n_cold, replace=False)
    cold = np.zeros(n_items, dtype=bool)
    cold[chosen] = True

    keep_click = ~cold[train.items]  # [n_clicks]
    recent = _recent_sessions(train, keep_click, float(keep_recent))  # [n_sessions]
    keep_click |= np.repeat(recent, train.lengths)
    without_cold = train.keep_clicks(keep_click)
    new_train = without_cold.select(without_cold.lengths >= 2)
    meta = {
        **dataset.meta,
        "cold_items": {
            "fraction": float(fraction),
            "seed": int(seed),
            "n_cold": n_cold,
            "n_eligible": int(len(eligible)),
            "train_clicks_removed": int((~keep_click).sum()),
            "train_sessions_dropped": int(len(train) - len(new_train)),
            "recent_sessions_kept_whole": int(recent.sum()),
        },
    }
    return ColdSplit(
        dataset=SessionDataset(new_train, dataset.test, dataset.vocab, meta),
        cold=cold,
        fraction=float(fraction),
        seed=int(seed),
    )


def _recent_sessions(train: Sessions, keep_click: np.ndarray, fraction: float) -> np.ndarray:
    """bool ``[n_sessions]``: the latest sessions, as many as a ``fraction`` validation
    split of the sessions left after the hold-out takes (see :func:`hold_out_items`)."""
    n = len(train)
    recent = np.zeros(n, dtype=bool)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"keep_recent must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return recent
    order = train.recency_order()  # validation_split's order
    session_of_click = np.repeat(np.arange(n, dtype=np.int64), train.lengths)
    kept_lengths = np.bincount(session_of_click[keep_click], minlength=n)  # [n_sessions]
    k = int(round(n * fraction))
    for _ in range(100):
        recent[:] = False
        recent[order[n - k :]] = True
        n_left = int(((kept_lengths >= 2) | recent).sum())
        k_next = int(round(n_left * fraction))
        if k_next == k:
            break
        k = k_next
    return recent


def longtail_mask(item_counts: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """The long tail: the least-clicked half of the warm items, bool ``[n_items]``.

    Warm items are those not ``cold`` with ``item_counts > 0``. With :math:`m` the median
    of the warm items' counts (``numpy.median``: the mean of the two middle values for
    an even number),

    .. math:: \\mathrm{longtail}_j = \\mathrm{warm}_j \\wedge (\\mathrm{count}_j \\le m)

    Ties at the median are all in, so the long tail holds at least half of the warm
    items (more when many share the median count) and depends on the counts only, never
    on item order. No warm item: all ``False``.

    Args:
        item_counts: training clicks per item, ``[n_items]`` (e.g.
            :func:`~sessionrec.evaluate.baselines.item_click_counts` of the training
            sessions the model is fitted on).
        cold: bool ``[n_items]``, the held-out items.
    """
    counts = np.asarray(item_counts)
    cold = np.asarray(cold, dtype=bool)
    if counts.ndim != 1 or cold.shape != counts.shape:
        raise ConfigError(
            f"item_counts and cold must both be [n_items]; got shapes {counts.shape} and "
            f"{cold.shape}"
        )
    warm = ~cold & (counts > 0)
    if not warm.any():
        return np.zeros(len(counts), dtype=bool)
    median = np.median(counts[warm])
    return warm & (counts <= median)
