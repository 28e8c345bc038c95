"""The embedded default data: a seeded synthetic clickstream and its item catalog.

The generator plants structure a session model can learn, and that simple baselines
only partly capture, so the default data tells a real model from a popularity count:

* **Catalog.** Every item has a category, a *series* (a small product line of about
  ``series_size`` items inside one category), a price and a title. A title is the
  series word, one or two words of the category's own vocabulary and one or two words
  shared by all categories (``"kurumo gonisi fukigo set"``), so text tokens
  carry the category and the series. Prices are log-normal around a per-category level.
  A share ``cold_fraction`` of the catalog is *cold*: listed, but never clicked.
* **Popularity.** Warm item ``i`` has weight :math:`w_i = (r_i + 1)^{-a}` for a random
  rank :math:`r_i` (Zipf-like skew with exponent :math:`a` = ``popularity_exponent``).
* **Transitions.** Each warm item has ``n_successors`` likely successors (weights
  :math:`\\propto 2^{-j}`), drawn by popularity from its own series, and from another
  category with probability ``p_cross_category`` (complements).
* **Sessions.** A session picks one latent intent category, or two with probability
  ``p_two_intents``, by category popularity. Its first click is drawn by popularity
  within the first intent. Each later click, with item :math:`x_t` the current one:

  .. math::

      x_{t+1} \\sim \\begin{cases}
        \\text{a successor of } x_t & \\text{prob. } p_\\text{follow} \\\\
        x_j,\\ j \\sim U\\{0..t\\} \\text{ (a repeat click)} & \\text{prob. } p_\\text{repeat} \\\\
        \\text{popularity in the other intent (switch)} & \\text{prob. } p_\\text{switch} \\\\
        \\text{popularity over all warm items (noise)} & \\text{prob. } p_\\text{noise} \\\\
        \\text{popularity in the current intent (browse)} & \\text{otherwise}
      \\end{cases}

  A switch in a one-intent session browses its intent instead.
* **Time.** Lengths are geometric with mean ``mean_length`` (capped at ``max_length``;
  some sessions have a single click, as in real logs, for the protocol to drop). A
  session starts on a uniform day of ``days`` at an hour drawn from a daily traffic
  curve; gaps between clicks are log-normal (median ``median_gap_s``), between 1 s and
  ``max_gap_s``.

Raw item ids are random 5-6 digit numbers (not contiguous), so every consumer has to go
through an :class:`~sessionrec.data.vocab.ItemVocab`. Session ids are ``1..n_sessions``
in order of session start.

Everything is a function of :class:`SyntheticConfig`: the same config gives the same
frames, bit for bit. The catalog depends only on the catalog fields (``seed``,
``n_items``, ``n_categories`` and the structure parameters), so clickstreams with
different ``n_sessions`` or ``days`` share one catalog. Generation is vectorised over
sessions (one numpy step per click *position*), so 100k sessions take about two seconds.

``python -m sessionrec.data.synthetic --out data/synthetic`` writes the shipped sample.

This module imports numpy and polars only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sessionrec.errors import ConfigError

__all__ = [
    "SyntheticConfig",
    "generate_clicks",
    "generate_catalog",
    "write_sample",
    "CLICKS_FILE",
    "ITEMS_FILE",
]

CLICKS_FILE = "clicks.csv"
ITEMS_FILE = "items.csv"

_DAY_S = 86_400
# First raw item id, and the size of the id range (ids are 5-6 digit numbers).
_ID_BASE = 10_000
_ID_SPAN = 990_000
# Share of daily sessions that start in each hour (UTC): quiet nights, an evening peak.
_HOURLY_TRAFFIC = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1,
        2,
        3,
        3.5,
        3.8,
        4,
        4.2,
        4,
        3.8,
        3.8,
        4,
        4.5,
        5.5,
        6.5,
        7,
        6,
        4,
        2,
    ],
    dtype=np.float64,
)
# Words shared by every category, so titles are not a category lookup table.
_SHARED_WORDS = (
    "black white red blue green grey silver gold classic pro mini max plus lite eco smart "
    "premium basic deluxe compact large small set pack edition original new soft"
).split()
_CONSONANTS = list("bdfgklmnprstvz")
_VOWELS = list("aeiou")


@dataclass(frozen=True)
class SyntheticConfig:
    """Every parameter of the synthetic data; the defaults make the shipped sample.

    Attributes:
        n_sessions: sessions in the clickstream (single-click ones included).
        n_items: catalog size, cold items included. At least ``2 * n_categories``.
        n_categories: number of categories (latent intents).
        days: span of the clickstream in days, starting at ``start_unix``.
        seed: the one seed everything is drawn from.
        start_unix: Unix seconds of the first day's midnight (UTC).
        cold_fraction: share of catalog items that never appear in clicks.
        popularity_exponent: Zipf exponent ``a`` of item popularity.
        series_size: items per series (product line) within a category.
        n_successors: likely successors per item.
        p_cross_category: chance that a successor comes from another category.
        p_follow, p_repeat, p_switch, p_noise: per-click chances of the moves above
            (their sum must stay below 1; the rest is browsing the current intent).
        p_two_intents: chance that a session has two intent categories.
        mean_length: mean session length in clicks (geometric).
        max_length: longest session.
        median_gap_s: median seconds between two clicks of a session.
        gap_sigma: log-normal spread of the gaps.
        max_gap_s: longest gap between two clicks of a session.
    """

    n_sessions: int = 4_000
    n_items: int = 1_000
    n_categories: int = 20
    days: int = 30
    seed: int = 0
    start_unix: int = 1_704_067_200  # 2024-01-01T00:00:00Z
    cold_fraction: float = 0.05
    popularity_exponent: float = 0.6
    series_size: int = 8
    n_successors: int = 3
    p_cross_category: float = 0.1
    p_follow: float = 0.6
    p_repeat: float = 0.07
    p_switch: float = 0.08
    p_noise: float = 0.03
    p_two_intents: float = 0.3
    mean_length: float = 4.0
    max_length: int = 40
    median_gap_s: float = 40.0
    gap_sigma: float = 1.0
    max_gap_s: float = 1_800.0

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ConfigError(
                    f"SyntheticConfig.{name} = {getattr(self, name)!r}; allowed: {allowed}"
                )

        need(self.n_sessions >= 0, "n_sessions", "an integer >= 0")
        need(self.n_categories >= 1, "n_categories", "an integer >= 1")
        need(
            self.n_items >= 2 * self.n_categories,
            "n_items",
            f"at least 2 * n_categories = {2 * self.n_categories}",
        )
        need(self.n_items <= _ID_SPAN, "n_items", f"at most {_ID_SPAN}")
        need(self.days >= 1, "days", "an integer >= 1")
        need(0.0 <= self.cold_fraction < 0.5, "cold_fraction", "0 <= x < 0.5")
        need(self.popularity_exponent >= 0.0, "popularity_exponent", "a number >= 0")
        need(self.series_size >= 1, "series_size", "an integer >= 1")
        need(self.n_successors >= 1, "n_successors", "an integer >= 1")
        for name in ("p_cross_category", "p_follow", "p_repeat", "p_switch", "p_noise"):
            need(0.0 <= getattr(self, name) <= 1.0, name, "a probability in [0, 1]")
        need(0.0 <= self.p_two_intents <= 1.0, "p_two_intents", "a probability in [0, 1]")
        moves = self.p_follow + self.p_repeat + self.p_switch + self.p_noise
        need(
            moves <= 1.0,
            "p_follow",
            f"p_follow + p_repeat + p_switch + p_noise <= 1 (got {moves:g})",
        )
        need(self.mean_length >= 1.0, "mean_length", "a number >= 1")
        need(self.max_length >= 1, "max_length", "an integer >= 1")
        need(self.median_gap_s > 0, "median_gap_s", "a number > 0")
        need(self.gap_sigma >= 0, "gap_sigma", "a number >= 0")
        need(self.max_gap_s >= 1, "max_gap_s", "a number >= 1")

    def with_overrides(self, **overrides: Any) -> SyntheticConfig:
        """A copy with some fields changed; unknown names raise :class:`ConfigError`."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"SyntheticConfig has no field(s) {unknown}; known fields: {sorted(known)}"
            )
        return replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve(config: SyntheticConfig | None, overrides: dict[str, Any]) -> SyntheticConfig:
    if config is not None and not isinstance(config, SyntheticConfig):
        raise ConfigError(
            f"config must be a SyntheticConfig or None, got {type(config).__name__}; "
            "pass parameters as keywords, e.g. generate_clicks(n_sessions=100)"
        )
    return (config or SyntheticConfig()).with_overrides(**overrides)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for the catalog, the clicked items and the click times.

    Separate streams keep the catalog the same for any ``n_sessions`` and the clicked
    items the same for any ``days``.
    """
    seqs = np.random.SeedSequence(seed).spawn(3)
    return tuple(np.random.default_rng(q) for q in seqs)  # type: ignore[return-value]


class _GroupSampler:
    """Draws items by weight within a group (category, series) for many groups at once.

    Items are sorted by group, and each group occupies the interval ``[g, g + 1)`` of a
    single key axis: ``key = g + cumsum(w) / sum(w)`` within the group. Drawing from
    group ``g`` is then ``searchsorted(keys, g + u)`` for ``u ~ U[0, 1)``, one call for
    any number of draws. Zero-weight items are sorted first in their group, so they are
    never drawn; a group must have positive total weight to be drawn from.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int) -> None:
        # groups, weights: [n_items]
        order = np.lexsort((weights > 0, groups))
        g = groups[order]
        w = weights[order]
        totals = np.bincount(g, weights=w, minlength=n_groups)
        starts = np.searchsorted(g, np.arange(n_groups), side="left")
        cum = np.cumsum(w)
        before = np.concatenate([[0.0], cum])[starts][g]  # weight of earlier groups
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(totals[g] > 0, (cum - before) / totals[g], 1.0)
        self._keys = g + frac  # [n_items], non-decreasing
        self._order = order
        self._ends = np.searchsorted(g, np.arange(n_groups), side="right")  # [n_groups]
        self.totals = totals

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item index per entry of ``groups`` (each with positive total weight)."""
        pos = np.searchsorted(self._keys, groups + rng.random(len(groups)), side="right")
        # rounding can step past a group's last key: stay on the group's last item
        pos = np.minimum(pos, self._ends[groups] - 1)
        return self._order[pos]


@dataclass(frozen=True)
class _World:
    """The hidden structure behind the data: catalog, popularity and transitions."""

    item_ids: np.ndarray  # int64 [n_items], raw ids
    category: np.ndarray  # int64 [n_items]
    series: np.ndarray  # int64 [n_items]
    warm: np.ndarray  # bool [n_items]
    weight: np.ndarray  # float64 [n_items], popularity (0 for cold items)
    successors: np.ndarray  # int64 [n_items, n_successors] (meaningful for warm items)
    title: list[str]
    price: np.ndarray  # float64 [n_items]
    category_names: list[str]


def _pseudo_words(rng: np.random.Generator, n: int, syllables: int) -> list[str]:
    """``n`` distinct pronounceable words (``"vakoru"``), deterministic for ``rng``."""
    n_syl = len(_CONSONANTS) * len(_VOWELS)
    table = np.array([c + v for c in _CONSONANTS for v in _VOWELS])
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        draws = rng.integers(0, n_syl, size=(2 * (n - len(words)) + 8, syllables))
        for row in table[draws]:  # words, not clicks: n is at most ~1e5
            word = "".join(row)
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == n:
                    break
    return words


def _build_world(cfg: SyntheticConfig) -> _World:
    rng, _, _ = _streams(cfg.seed)
    n, n_cat = cfg.n_items, cfg.n_categories

    item_ids = _ID_BASE + rng.choice(_ID_SPAN, size=n, replace=False).astype(np.int64)

    # Categories of mildly unequal size; the first 2 * n_cat items guarantee two per category.
    cat_share = 1.0 / np.arange(1, n_cat + 1) ** 0.5
    cat_share = rng.permutation(cat_share / cat_share.sum())
    category = np.concatenate(
        [np.arange(2 * n_cat) % n_cat, rng.choice(n_cat, size=n - 2 * n_cat, p=cat_share)]
    ).astype(np.int64)
    category = rng.permutation(category)

    # Series: consecutive chunks of series_size items within each category (random order).
    order = np.lexsort((rng.random(n), category))
    cat_sorted = category[order]
    rank_in_cat = np.arange(n) - np.searchsorted(cat_sorted, cat_sorted, side="left")
    local = rank_in_cat // cfg.series_size
    series_sorted = np.unique(cat_sorted * n + local, return_inverse=True)[1]
    series = np.empty(n, dtype=np.int64)
    series[order] = series_sorted
    n_series = int(series.max()) + 1

    # Cold items: never the first (anchor) item of a category, so each category stays warm.
    anchors = order[rank_in_cat == 0]
    candidates = np.setdiff1d(np.arange(n), anchors)
    n_cold = min(int(round(cfg.cold_fraction * n)), len(candidates))
    warm = np.ones(n, dtype=bool)
    warm[rng.choice(candidates, size=n_cold, replace=False)] = False

    weight = 1.0 / (rng.permutation(n) + 1.0) ** cfg.popularity_exponent
    weight = np.where(warm, weight, 0.0)

    # Successors: by popularity within the series; a draw of the item itself (or a series
    # without another warm item) falls back to the category; some go to another category.
    by_series = _GroupSampler(series, weight, n_series)
    by_category = _GroupSampler(category, weight, n_cat)
    k = cfg.n_successors
    src = np.repeat(np.arange(n), k)
    succ = by_series.draw(series[src], rng)
    own_cat = category[src]
    other_cat = (own_cat + rng.integers(1, max(n_cat, 2), size=len(src))) % n_cat
    cross = rng.random(len(src)) < cfg.p_cross_category
    fallback = by_category.draw(np.where(cross, other_cat, own_cat), rng)
    succ = np.where(cross | (succ == src), fallback, succ)
    successors = succ.reshape(n, k)

    # Titles: series word, 1-2 category words, 1-2 shared words.
    words_per_cat = 6
    words = _pseudo_words(rng, n_cat * words_per_cat + n_series, syllables=3)
    cat_words = np.array(words[: n_cat * words_per_cat]).reshape(n_cat, words_per_cat)
    series_words = np.array(words[n_cat * words_per_cat :])
    # short names (two syllables) keep clicks.csv small; they never equal a title word
    category_names = _pseudo_words(rng, n_cat, syllables=2)
    shared = np.array(_SHARED_WORDS)
    cw = rng.integers(0, words_per_cat, size=(n, 2))
    sw = rng.integers(0, len(shared), size=(n, 2))
    two_cat = rng.random(n) < 0.5
    two_shared = rng.random(n) < 0.5
    parts = pl.DataFrame(
        {
            "s": series_words[series],
            "c1": cat_words[category, cw[:, 0]],
            "c2": cat_words[category, cw[:, 1]],
            "w1": shared[sw[:, 0]],
            "w2": shared[sw[:, 1]],
            "two_cat": two_cat & (cw[:, 1] != cw[:, 0]),
            "two_shared": two_shared & (sw[:, 1] != sw[:, 0]),
        }
    )
    title = parts.select(
        pl.concat_str(
            "s",
            "c1",
            pl.when("two_cat").then("c2"),
            "w1",
            pl.when("two_shared").then("w2"),
            separator=" ",
            ignore_nulls=True,
        ).alias("title")
    )["title"].to_list()

    cat_level = rng.normal(3.2, 0.8, size=n_cat)  # log price level per category
    price = np.round(np.exp(rng.normal(cat_level[category], 0.35)), 2)
    price = np.maximum(price, 0.5)

    return _World(
        item_ids=item_ids,
        category=category,
        series=series,
        warm=warm,
        weight=weight,
        successors=successors,
        title=title,
        price=price,
        category_names=category_names,
    )


def _session_matrix(cfg: SyntheticConfig, world: _World) -> tuple[np.ndarray, np.ndarray]:
    """Item indices ``[n_sessions, max_len]`` (-1 after each end) and lengths ``[n_sessions]``.

    One vectorised step per click position: every session draws its next move at once.
    """
    _, rng, _ = _streams(cfg.seed)
    s = cfg.n_sessions
    n_cat = cfg.n_categories
    lengths = np.minimum(rng.geometric(1.0 / cfg.mean_length, size=s), cfg.max_length)
    max_len = int(lengths.max(initial=1))

    by_category = _GroupSampler(world.category, world.weight, n_cat)
    by_all = _GroupSampler(np.zeros_like(world.category), world.weight, 1)
    cat_p = by_category.totals / by_category.totals.sum()
    intents = rng.choice(n_cat, size=(s, 2), p=cat_p)  # [s, 2]
    two = rng.random(s) < cfg.p_two_intents
    intents[~two, 1] = intents[~two, 0]
    active = np.zeros(s, dtype=np.int64)  # which intent the session is browsing
    rows = np.arange(s)

    succ_p = 0.5 ** np.arange(cfg.n_successors)
    succ_cdf = np.cumsum(succ_p / succ_p.sum())
    bounds = np.cumsum([cfg.p_follow, cfg.p_repeat, cfg.p_switch, cfg.p_noise])

    seq = np.full((s, max_len), -1, dtype=np.int64)
    seq[:, 0] = by_category.draw(intents[:, 0], rng)
    for t in range(1, max_len):
        cur = seq[:, t - 1]
        move = np.searchsorted(bounds, rng.random(s), side="right")  # 0..4
        pick = np.minimum(
            np.searchsorted(succ_cdf, rng.random(s), side="right"), cfg.n_successors - 1
        )
        follow = world.successors[np.maximum(cur, 0), pick]
        repeat = seq[rows, rng.integers(0, t, size=s)]
        active = np.where(move == 2, 1 - active, active)
        browse = by_category.draw(intents[rows, active], rng)
        noise = by_all.draw(np.zeros(s, dtype=np.int64), rng)
        nxt = np.select([move == 0, move == 1, move == 3], [follow, repeat, noise], browse)
        seq[:, t] = np.where(t < lengths, nxt, -1)
    return seq, lengths


def generate_catalog(config: SyntheticConfig | None = None, **overrides: Any) -> pl.DataFrame:
    """The item catalog, cold items included.

    ``generate_catalog(n_items=500, seed=1)`` or ``generate_catalog(config)``; keywords
    override fields of ``config`` (default :class:`SyntheticConfig`).

    Returns:
        ``item_id`` (Int64, raw id), ``category`` (String), ``title`` (String),
        ``price`` (Float64), one row per item, sorted by ``item_id``.
    """
    cfg = _resolve(config, overrides)
    world = _build_world(cfg)
    names = np.array(world.category_names)
    return pl.DataFrame(
        {
            "item_id": world.item_ids,
            "category": names[world.category],
            "title": world.title,
            "price": world.price,
        },
        schema={
            "item_id": pl.Int64,
            "category": pl.String,
            "title": pl.String,
            "price": pl.Float64,
        },
    ).sort("item_id")


def generate_clicks(config: SyntheticConfig | None = None, **overrides: Any) -> pl.DataFrame:
    """The clickstream: one row per click.

    ``generate_clicks(n_sessions=100_000, seed=1)`` or ``generate_clicks(config)``;
    keywords override fields of ``config`` (default :class:`SyntheticConfig`).

    Returns:
        ``session_id`` (Int64, ``1..n_sessions`` in order of start), ``item_id`` (Int64,
        raw id from the catalog), ``timestamp`` (Int64, Unix seconds, strictly increasing
        within a session), ``category`` (String, the item's category); sorted by session
        then time.
    """
    cfg = _resolve(config, overrides)
    world = _build_world(cfg)
    seq, lengths = _session_matrix(cfg, world)
    _, _, rng = _streams(cfg.seed)

    s = cfg.n_sessions
    hour_p = _HOURLY_TRAFFIC / _HOURLY_TRAFFIC.sum()
    day = rng.integers(0, cfg.days, size=s)
    hour = rng.choice(24, size=s, p=hour_p)
    start = cfg.start_unix + day * _DAY_S + hour * 3_600 + rng.integers(0, 3_600, size=s)
    gaps = rng.lognormal(np.log(cfg.median_gap_s), cfg.gap_sigma, size=seq.shape)
    gaps = np.clip(np.rint(gaps), 1, cfg.max_gap_s).astype(np.int64)
    gaps[:, 0] = 0
    times = start[:, None] + np.cumsum(gaps, axis=1)  # [s, max_len]

    by_start = np.argsort(start, kind="stable")  # session ids follow start time
    seq, times, lengths = seq[by_start], times[by_start], lengths[by_start]
    mask = np.arange(seq.shape[1])[None, :] < lengths[:, None]
    items = seq[mask]  # row-major: session after session, in click order
    names = np.array(world.category_names)
    return pl.DataFrame(
        {
            "session_id": np.repeat(np.arange(1, s + 1, dtype=np.int64), lengths),
            "item_id": world.item_ids[items],
            "timestamp": times[mask],
            "category": names[world.category[items]],
        },
        schema={
            "session_id": pl.Int64,
            "item_id": pl.Int64,
            "timestamp": pl.Int64,
            "category": pl.String,
        },
    )


def write_sample(out_dir: str | Path, config: SyntheticConfig | None = None) -> tuple[Path, Path]:
    """Write ``clicks.csv`` and ``items.csv`` for ``config`` into ``out_dir`` (created).

    Returns:
        The paths of the clicks file and of the items file.
    """
    cfg = _resolve(config, {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clicks_path, items_path = out / CLICKS_FILE, out / ITEMS_FILE
    generate_clicks(cfg).write_csv(clicks_path)
    generate_catalog(cfg).write_csv(items_path, float_precision=2)
    return clicks_path, items_path


def _main(argv: Sequence[str] | None = None) -> int:
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(
        prog="python -m sessionrec.data.synthetic",
        description="Write a synthetic clickstream (clicks.csv) and catalog (items.csv).",
    )
    parser.add_argument("--out", required=True, help="output directory (created)")
    for name in ("n_sessions", "n_items", "n_categories", "days", "seed"):
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(defaults, name),
            help=f"default: {getattr(defaults, name)}",
        )
    args = parser.parse_args(argv)
    try:
        cfg = SyntheticConfig(
            n_sessions=args.n_sessions,
            n_items=args.n_items,
            n_categories=args.n_categories,
            days=args.days,
            seed=args.seed,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    clicks_path, items_path = write_sample(args.out, cfg)
    print(f"wrote {clicks_path} and {items_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
