"""The interface every baseline implements and the helpers several families share.

:class:`Baseline` (``fit(train, n_items) -> self``, ``scores(samples) -> [B, N]``),
:func:`item_click_counts` (an item's *support*), and the checks and prefix helpers used
by the popularity, item-KNN, session-kNN, STAN and rules baselines.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.errors import ConfigError

__all__ = [
    "Baseline",
    "item_click_counts",
    "check_samples",
    "prefix_rows",
    "distinct_last",
]


# -- shared helpers ---------------------------------------------------------------------
def item_click_counts(sessions: Sessions, n_items: int) -> np.ndarray:
    """Training clicks per item, ``int64 [n_items]`` (an item's *support*)."""
    if sessions.n_clicks and (sessions.items.min() < 0 or sessions.items.max() >= n_items):
        raise ConfigError(
            f"training sessions hold item indices in [{int(sessions.items.min())}, "
            f"{int(sessions.items.max())}] but n_items={n_items}; indices must be in "
            f"[0, n_items)"
        )
    return np.bincount(sessions.items, minlength=n_items).astype(np.int64)


def check_samples(samples: Samples, n_items: int) -> None:
    """Raise :class:`ConfigError` if ``samples`` hold an item index outside ``[0, n_items)``."""
    if len(samples.items) and (samples.items.min() < 0 or samples.items.max() >= n_items):
        raise ConfigError(
            f"samples hold item indices in [{int(samples.items.min())}, "
            f"{int(samples.items.max())}] but the baseline was fitted with n_items={n_items}"
        )


def prefix_rows(samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """``row`` (sample index) and 1-based ``pos`` of every prefix click."""
    lengths = samples.lengths
    row = np.repeat(np.arange(len(samples), dtype=np.int64), lengths)
    pos = np.arange(len(samples.items), dtype=np.int64) - samples.offsets[row] + 1
    return row, pos


def distinct_last(
    row: np.ndarray, item: np.ndarray, pos: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, item)`` pairs with the last position and the count of each.

    Returns ``(row, item, last_pos, count)``, sorted by row then item.
    """
    key = row * n_items + item
    order = np.lexsort((pos, key))
    key_sorted = key[order]
    is_last = np.ones(len(key_sorted), dtype=bool)
    is_last[:-1] = key_sorted[1:] != key_sorted[:-1]
    last = order[is_last]
    starts = np.flatnonzero(np.r_[True, is_last[:-1]]) if len(key_sorted) else last
    count = np.flatnonzero(is_last) - starts + 1
    return row[last], item[last], pos[last], count


# -- base class -------------------------------------------------------------------------
class Baseline:
    """Common interface: ``fit(train, n_items) -> self``, ``scores(samples) -> [B, N]``."""

    name = "baseline"

    def fit(self, train: Sessions, n_items: int) -> Baseline:  # pragma: no cover
        raise NotImplementedError

    def scores(self, samples: Samples) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise ConfigError(
                f"{type(self).__name__} is not fitted; call fit(train_sessions, n_items) first"
            )

    def _fit_common(self, train: Sessions, n_items: int) -> np.ndarray:
        if n_items < 1:
            raise ConfigError(
                f"n_items must be >= 1, got {n_items}",
                options=(f"{type(self).__name__}.fit.n_items",),
            )
        counts = item_click_counts(train, n_items)
        self.n_items_ = int(n_items)
        self.item_counts_ = counts
        return counts
