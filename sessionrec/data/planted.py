r"""Planted clickstreams at any scale: Zipf-popular items in latent groups that sessions
walk through, so that accuracy can be measured on catalogs of millions of items.

The catalog's :math:`N` items are split at random into :math:`G = \lceil N / s \rceil`
groups of about ``group_size`` :math:`s` items. A session has :math:`L` clicks
(:math:`L` uniform in ``[min_length, max_length]``); it starts in a group drawn uniformly,
and after each click it moves to the next group (:math:`g \to g + 1 \bmod G`) with
probability ``switch`` :math:`p`, else it stays: the planted structure a model can learn
(the next item is in the last click's group, or the next one). The item of a click is
drawn from its group with Zipf popularity, :math:`P(i \mid g) \propto r_i^{-a}`
(:math:`r_i`: the item's popularity rank within the group, ``zipf``: :math:`a`), except
that every item is clicked at least ``min_clicks`` times when the clicks allow it (the
first ``min_clicks`` :math:`\times` its group's size of a group's clicks, in random
order, go to each of its items in turn), so that the catalog survives an item-support
filter of that size. Sessions are spread evenly over ``days`` days, clicks 30 s apart.

The clicks come out as a :class:`polars.DataFrame` with ``session_id``, ``item_id`` and
``timestamp`` (Unix seconds) columns: what :func:`~sessionrec.data.protocol.prepare`
reads. Everything is vectorised (no per-session Python loop): 15 million clicks take a
few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from sessionrec.errors import ConfigError

__all__ = ["PlantedConfig", "planted_clicks"]

_START = 1_700_000_000  # 2023-11-14T22:13:20Z


@dataclass(frozen=True)
class PlantedConfig:
    """A planted clickstream (see the module docstring).

    Attributes:
        n_items: catalog size :math:`N`.
        n_clicks: clicks in all (about; whole sessions).
        group_size: items per latent group :math:`s`.
        switch: probability :math:`p` of moving to the next group after a click.
        zipf: popularity exponent :math:`a` within a group (0: uniform).
        min_length: shortest session (clicks).
        max_length: longest session (clicks).
        min_clicks: clicks every item gets at least (when the clicks allow it).
        days: the span of the clickstream.
        seed: the random seed.

    Raises:
        ConfigError: a value outside what is allowed.
    """

    n_items: int = 100_000
    n_clicks: int = 2_000_000
    group_size: int = 100
    switch: float = 0.2
    zipf: float = 1.1
    min_length: int = 2
    max_length: int = 10
    min_clicks: int = 2
    days: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            ("n_items", self.n_items >= 1),
            ("n_clicks", self.n_clicks >= self.max_length),
            ("group_size", 1 <= self.group_size <= self.n_items),
            ("switch", 0.0 <= self.switch <= 1.0),
            ("zipf", math.isfinite(self.zipf) and self.zipf >= 0),
            ("min_length", 1 <= self.min_length <= self.max_length),
            ("min_clicks", self.min_clicks >= 0),
            ("days", math.isfinite(self.days) and self.days > 0),
        )
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"PlantedConfig.{name} is out of range: {getattr(self, name)!r}")


def planted_clicks(config: PlantedConfig | None = None, with_groups: bool = False) -> pl.DataFrame:
    """The clicks of a planted clickstream, session by session (see the module docstring).

    Returns:
        ``session_id`` (Int64), ``item_id`` (Int64, ``0 .. N - 1``), ``timestamp``
        (Float64, Unix seconds), one row per click; with ``with_groups`` also ``group``
        (Int64), the latent group of the click's item.
    """
    cfg = config or PlantedConfig()
    rng = np.random.default_rng(cfg.seed)
    n_groups = math.ceil(cfg.n_items / cfg.group_size)
    # sessions and the group of each click: a walk that moves on with probability p
    mean_length = (cfg.min_length + cfg.max_length) / 2
    n_sessions = max(1, round(cfg.n_clicks / mean_length))
    lengths = rng.integers(cfg.min_length, cfg.max_length + 1, n_sessions)
    session = np.repeat(np.arange(n_sessions), lengths)  # [n_clicks]
    first = np.zeros(len(session), dtype=bool)
    first[np.cumsum(lengths)[:-1]] = True
    first[0] = True
    moves = (rng.random(len(session)) < cfg.switch) & ~first
    start_group = rng.integers(0, n_groups, n_sessions)
    walked = np.cumsum(moves) - np.repeat(np.cumsum(moves)[first], lengths)
    group = (start_group[session] + walked) % n_groups  # [n_clicks]
    items = _items_of_clicks(group, n_groups, cfg, rng)
    # time: sessions evenly over the days, clicks 30 s apart
    position = np.arange(len(session)) - np.repeat(np.flatnonzero(first), lengths)
    session_start = _START + session * (cfg.days * 86_400.0 / n_sessions)
    columns = {
        "session_id": session.astype(np.int64),
        "item_id": items.astype(np.int64),
        "timestamp": session_start + 30.0 * position,
    }
    if with_groups:
        columns["group"] = group.astype(np.int64)
    return pl.DataFrame(columns)


def _items_of_clicks(
    group: np.ndarray, n_groups: int, cfg: PlantedConfig, rng: np.random.Generator
) -> np.ndarray:
    """The item of every click, given its group: each item of a group first gets
    ``min_clicks`` of the group's clicks (in random order), the rest are Zipf draws."""
    item_group = rng.permutation(np.arange(cfg.n_items) % n_groups)  # [N] a random split
    by_group = np.argsort(item_group, kind="stable")  # items, group after group
    group_items = np.bincount(item_group, minlength=n_groups)  # [G]
    group_first = np.concatenate([[0], np.cumsum(group_items)[:-1]])  # [G]
    # Zipf within each group: rank r = 1, 2, ... in the group's (random) item order
    rank = np.arange(cfg.n_items) - np.repeat(group_first, group_items) + 1
    weight = rank.astype(np.float64) ** -cfg.zipf
    # a CDF over the group-sorted items, each group's part mapped into [g, g + 1)
    totals = np.bincount(item_group[by_group], weights=weight, minlength=n_groups)
    within = np.cumsum(weight) - np.repeat(np.cumsum(totals) - totals, group_items)
    cdf = np.repeat(np.arange(n_groups), group_items) + within / np.repeat(totals, group_items)
    cdf[np.cumsum(group_items)[group_items > 0] - 1] = np.flatnonzero(group_items) + 1.0
    # the clicks of each group in random order: the first min_clicks x size cover its items
    order = np.lexsort((rng.random(len(group)), group))  # clicks, group after group
    counts = np.bincount(group, minlength=n_groups)
    slot = np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts)  # in group
    g_sorted = group[order]
    covered = slot < cfg.min_clicks * group_items[g_sorted]
    picked = np.empty(len(group), dtype=np.int64)
    cover = group_first[g_sorted[covered]] + slot[covered] % group_items[g_sorted[covered]]
    picked[covered] = cover
    draws = g_sorted[~covered] + rng.random(int((~covered).sum()))
    picked[~covered] = np.minimum(np.searchsorted(cdf, draws, side="right"), cfg.n_items - 1)
    items = np.empty(len(group), dtype=np.int64)
    items[order] = by_group[picked]
    return items
