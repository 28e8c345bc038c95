"""The preprocessing protocol: clean clicks -> training sessions and test samples.

One frozen :class:`ProtocolConfig` holds every parameter (the single source of truth);
:func:`prepare` applies it to a clickstream and returns a
:class:`~sessionrec.data.dataset.SessionDataset`.

``mode="default"`` (the SR-GNN protocol, stated cleanly):

1. clicks of a session are ordered by time (ties: file order);
2. sessions with fewer than ``min_session_length`` (2) clicks are dropped;
3. items with fewer than ``min_item_support`` (5) clicks, counted over all sessions
   left (training and test period alike, as in SR-GNN), are removed from sessions;
4. sessions left with fewer than ``min_session_length`` clicks are dropped;
5. a session's time :math:`t_s` is its last click; with :math:`T = \\max_s t_s` and the
   split :math:`\\tau = T - 86400 \\cdot` ``test_days``, sessions with :math:`t_s < \\tau`
   train and sessions with :math:`t_s \\ge \\tau` test (7 days for Diginetica, 1 for
   YooChoose);
6. the item vocabulary is the sorted raw ids of the training clicks; with a catalog
   (``prepare(..., catalog=...)``, ``keep_new_items`` on), then the sorted ids of the
   *new items*: items of the test clicks that have a catalog row and no training click
   (a live catalog's newest products, which a content model can rank);
7. test clicks on items not in the vocabulary are dropped (and counted:
   ``test_clicks_on_unseen_items``; ``test_clicks_on_new_items`` counts those kept), and
   test sessions need ``min_session_length`` clicks left;
8. test sessions become prefix-augmented samples: ``[a, b, c, d]`` gives
   ``([a], b), ([a, b], c), ([a, b, c], d)``;
9. with ``max_session_length`` :math:`L`, every test prefix keeps its last :math:`L`
   clicks: a model reads the last :math:`L` clicks of a session. Sessions are stored
   whole (every click is a target once); the trainer cuts the prefixes of the training
   and validation samples the same way, and the exported model cuts a session to its
   last :math:`L` clicks (:class:`~sessionrec.data.contract.DataContract`).

Sessions are ordered by time (then by their first row in the file). Session ids are
trusted as given (``prepare(..., session_gap_s=...)`` makes ingestion cut them at longer
inactivity gaps), and the report counts sessions spanning more than a day. The
validation split (``validation_fraction`` of the latest training sessions, see
:func:`~sessionrec.data.dataset.validation_split`) is made at training time.
The steps this protocol shares with the sharded preparation
(:func:`~sessionrec.data.shards.prepare_sharded`) are in
:mod:`sessionrec.data.protocol_steps`.

``mode="srgnn"`` reproduces the SR-GNN authors' ``datasets/preprocess.py``
(Wu et al., AAAI 2019) exactly, quirks included:

- a session's *date* is taken from its last row **in file order**: for date + offset
  formats (Diginetica) the row's date at midnight, read as UTC (the script turns local
  midnights into timestamps with ``time.mktime``; we evaluate that in UTC); for other
  formats the row's time truncated to whole seconds (the YooChoose branch);
- clicks within a session: Diginetica sorts them by ``timeframe`` alone (a stable sort
  of the file order), other formats keep file order;
- exact duplicate rows are kept (the script does not drop them);
- length-1 sessions are dropped, then item support is counted over all remaining
  sessions before the split, then sessions with fewer than 2 supported clicks go;
- split :math:`\\tau = \\max(\\text{date}) - 86400 \\cdot` ``test_days``: training dates
  :math:`< \\tau`, test dates :math:`> \\tau`; sessions dated exactly :math:`\\tau`
  (the split day, for Diginetica) belong to neither side;
- sessions are sorted by date, ties in order of first appearance in the file;
- items are numbered in order of first appearance in the sorted training sessions
  (the script's ids ``1, 2, ...`` are our indices ``0, 1, ...``);
- test sessions keep only items seen in training and need 2 left;
- test samples of a session come longest prefix first (as in the published
  ``test.txt``); training sessions are stored whole (their augmentation gives the
  script's training samples, shortest prefix first).

On ``sample_train-item-views.csv`` this gives 469 training sessions, 47 sessions in the
test period (the script's ``len(tes_sess)``), of which 39 keep 2 training items and make
the 99 test samples, 309 items and 1,205 training samples.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.ingest import Clicks, read_clicks
from sessionrec.data.parsing import OnBadRows
from sessionrec.data.presets import ColumnMap
from sessionrec.data.protocol_steps import (
    DAY_S,
    catalog_id_series,
    clicks_on,
    cut_prefixes,
    fit_default_window,
    ids_array,
    index_items,
    no_supported_sessions,
    no_test_samples,
    no_training_left,
    plain_report,
    sessions_in_time_order,
    split_time,
    with_new_items,
    with_session_times,
)
from sessionrec.data.sessions import Samples, Sessions, lengths_to_offsets
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError, EmptyDataError, SchemaError

__all__ = ["ProtocolConfig", "prepare", "DEFAULT_TEST_DAYS", "TEST_DAYS_BY_FORMAT"]

#: Test days when neither the config nor the format says otherwise (Diginetica's 7).
DEFAULT_TEST_DAYS = 7.0
#: Test days of formats whose literature uses another value.
TEST_DAYS_BY_FORMAT: dict[str, float] = {"yoochoose": 1.0}


@dataclass(frozen=True)
class ProtocolConfig:
    """Every preprocessing parameter, with the SR-GNN defaults.

    Attributes:
        mode: ``"default"`` or ``"srgnn"`` (the authors' script, quirks included).
        min_session_length: sessions shorter than this (in clicks) are dropped, before
            and after the item filter; test sessions need this many known items.
        min_item_support: items with fewer clicks than this are removed.
        test_days: the last ``test_days`` days are the test set; ``None``: by format
            (:data:`TEST_DAYS_BY_FORMAT`, else :data:`DEFAULT_TEST_DAYS`), shortened with
            a warning for a dump that spans less than twice it (to the largest whole
            number of days up to half the span; the report records
            ``test_days_default`` and ``clicks_span_days``). A window given is kept; one
            the dump does not outlast fails, naming the span and a window that fits.
        max_session_length: :math:`L`, the last clicks of a session a model reads: every
            sample's prefix keeps its last :math:`L` clicks (test samples here, training
            and validation samples when the trainer builds them, the exported model's
            input); ``None``: whole prefixes (recommending reads the last 50).
        validation_fraction: share of the latest training sessions held out for model
            selection at training time.
        keep_new_items: keep the test clicks on *new items* (a catalog row, no training
            click; step 6) and add those items to the vocabulary, so that a content
            model is tested on the items its catalog exists for. ``None``: on when
            :func:`prepare` is given a catalog (``default`` mode), else off. The
            ``srgnn`` mode reproduces the published protocol and never keeps them.
    """

    mode: Literal["default", "srgnn"] = "default"
    min_session_length: int = 2
    min_item_support: int = 5
    test_days: float | None = None
    max_session_length: int | None = None
    validation_fraction: float = 0.1
    keep_new_items: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("default", "srgnn"):
            raise ConfigError(
                f"protocol mode must be 'default' or 'srgnn', got {self.mode!r}",
                options=("ProtocolConfig.mode",),
            )
        if not (isinstance(self.min_session_length, int) and self.min_session_length >= 2):
            raise ConfigError(
                f"min_session_length must be an int >= 2 (a session needs a prefix and a "
                f"target), got {self.min_session_length!r}",
                options=("ProtocolConfig.min_session_length",),
            )
        if not (isinstance(self.min_item_support, int) and self.min_item_support >= 1):
            raise ConfigError(
                f"min_item_support must be an int >= 1, got {self.min_item_support!r}",
                options=("ProtocolConfig.min_item_support",),
            )
        if self.test_days is not None and not (
            isinstance(self.test_days, int | float) and 0 < self.test_days < 1e5
        ):
            raise ConfigError(
                f"test_days must be > 0, got {self.test_days!r}",
                options=("ProtocolConfig.test_days",),
            )
        if self.max_session_length is not None and not (
            isinstance(self.max_session_length, int)
            and not isinstance(self.max_session_length, bool)
            and self.max_session_length >= 1
        ):
            raise ConfigError(
                f"max_session_length must be an int >= 1 or None, got {self.max_session_length!r}",
                options=("ProtocolConfig.max_session_length",),
            )
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}",
                options=("ProtocolConfig.validation_fraction",),
            )
        if self.keep_new_items not in (None, True, False):
            raise ConfigError(
                f"keep_new_items must be True, False or None, got {self.keep_new_items!r}",
                options=("ProtocolConfig.keep_new_items",),
            )
        if self.mode == "srgnn" and self.keep_new_items:
            raise ConfigError(
                "the srgnn protocol reproduces the authors' script, which drops every test "
                "click on an item without training clicks; use mode='default' to keep new "
                "items",
                options=("ProtocolConfig.mode", "ProtocolConfig.keep_new_items"),
            )
        if self.mode == "srgnn" and self.max_session_length is not None:
            raise ConfigError(
                "the srgnn protocol reproduces the authors' script, which has no "
                "max_session_length; use mode='default' for it",
                options=("ProtocolConfig.mode", "ProtocolConfig.max_session_length"),
            )

    @classmethod
    def srgnn(cls, **changes: Any) -> ProtocolConfig:
        """The authors' protocol (``mode="srgnn"``)."""
        return cls(mode="srgnn", **changes)

    def resolved(self, format: str) -> ProtocolConfig:
        """This config with ``test_days`` filled in for ``format``."""
        if self.test_days is not None:
            return self
        return replace(self, test_days=TEST_DAYS_BY_FORMAT.get(format, DEFAULT_TEST_DAYS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- shared steps -----------------------------------------------------------------------
class _Stages:
    """A stage-level progress bar on stderr (a no-op unless asked for)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            # disable=None: silent when stderr is not a terminal (logs, pipes)
            self._bar = tqdm(
                total=total, desc="prepare", unit="step", file=sys.stderr, disable=None
            )

    def step(self, name: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(name)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _renumber_by_first_appearance(
    train: Sessions, test: Sessions, ids: np.ndarray
) -> tuple[Sessions, Sessions, np.ndarray]:
    """Renumber items in order of first appearance in ``train`` (the SR-GNN numbering)."""
    seen, first = np.unique(train.items, return_index=True)
    order = seen[np.argsort(first, kind="stable")]  # old index of the i-th new item
    new_of_old = np.empty(len(ids), dtype=np.int64)
    new_of_old[order] = np.arange(len(order), dtype=np.int64)

    def renumber(s: Sessions) -> Sessions:
        return Sessions(new_of_old[s.items], s.offsets, s.times, s.session_ids)

    return renumber(train), renumber(test), ids[order]


def _longest_prefix_first(samples: Samples) -> Samples:
    """Reverse the order of each session's samples (the SR-GNN script's order)."""
    if len(samples) == 0 or samples.session_index is None:
        return samples
    si = samples.session_index
    counts = np.bincount(si, minlength=int(si.max()) + 1)
    first = lengths_to_offsets(counts)[:-1]
    j = np.arange(len(samples), dtype=np.int64)
    # sample j of a block [a, a + c) goes to a + c - 1 - (j - a)
    perm = 2 * first[si] + counts[si] - 1 - j
    return samples.select(perm)


def _require_columns(frame: pl.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"clicks frame lacks the canonical column(s) {missing} (has {frame.columns}); "
            "read the dump with sessionrec.data.ingest.read_clicks"
        )


# -- default protocol -------------------------------------------------------------------
def _filter_sessions_and_items(
    clicks: pl.DataFrame, cfg: ProtocolConfig, rep: dict[str, Any]
) -> pl.DataFrame:
    """Steps 2-4 (both modes): short sessions, rare items, sessions left short.

    ``clicks`` is session-contiguous, so the per-session windows run on sorted groups.
    """
    k = cfg.min_session_length
    rep["clicks_in"] = clicks.height
    rep["sessions_in"] = clicks.get_column("session_id").n_unique()
    clicks = clicks.filter(pl.len().over("session_id") >= k)
    n_sessions = clicks.get_column("session_id").n_unique()
    rep["sessions_too_short"] = rep["sessions_in"] - n_sessions
    # support counted over every session left: training and test period alike
    support = clicks.group_by("item_id").len()
    rep["items_below_support"] = support.filter(pl.col("len") < cfg.min_item_support).height
    before = clicks.height
    clicks = clicks.filter(pl.len().over("item_id") >= cfg.min_item_support)
    rep["clicks_on_rare_items"] = before - clicks.height
    clicks = clicks.filter(pl.len().over("session_id") >= k)
    rep["sessions_too_short_after_item_filter"] = n_sessions - (
        clicks.get_column("session_id").n_unique()
    )
    if clicks.height == 0:
        raise no_supported_sessions(k, cfg.min_item_support)
    return clicks


def _vocab_and_index(
    train: pl.DataFrame,
    test: pl.DataFrame,
    k: int,
    rep: dict[str, Any],
    catalog_ids: pl.Series | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """Sorted training item ids (then the new items, with ``catalog_ids``);
    ``item_index`` on both sides; unseen test clicks dropped."""
    ids, n_new = with_new_items(
        train.get_column("item_id"), test.get_column("item_id"), catalog_ids
    )
    if catalog_ids is not None:
        rep["new_items"] = n_new
        new = ids.slice(len(ids) - n_new)
        rep["test_clicks_on_new_items"] = clicks_on(test, new)
    train, test, rep["test_clicks_on_unseen_items"] = index_items(train, test, ids, k)
    rep["test_sessions_too_short_after_unseen_filter"] = rep["test_sessions_in_split"] - (
        test.get_column("session_id").n_unique()
    )
    return train, test, ids


def _split_times(clicks: pl.DataFrame, cfg: ProtocolConfig, rep: dict[str, Any]) -> float:
    """The split time: the latest session time minus ``test_days`` days."""
    assert cfg.test_days is not None
    last = float(clicks.get_column("_time").max())  # type: ignore[arg-type]
    return split_time(last, cfg.test_days, rep)


def _no_training_left(clicks: pl.DataFrame, split: float, cfg: ProtocolConfig) -> EmptyDataError:
    first = float(clicks.get_column("_time").min())  # type: ignore[arg-type]
    span = (split + DAY_S * (cfg.test_days or 0) - first) / DAY_S
    return no_training_left(cfg.test_days, span)


def _default_protocol(
    frames: list[pl.DataFrame],
    cfg: ProtocolConfig,
    rep: dict[str, Any],
    stages: _Stages,
    catalog_ids: pl.Series | None = None,
) -> tuple[Sessions, Samples, ItemVocab]:
    k = cfg.min_session_length
    frame = frames.pop()
    # 1: sessions contiguous, clicks in time order (ties: file order)
    clicks = frame.select("session_id", "item_id", "timestamp", "row_nr").sort(
        "session_id", "timestamp", "row_nr"
    )
    del frame  # the caller handed it over: free the unsorted copy
    # ties in time are broken by the session's first row in the file (before filters)
    clicks = clicks.with_columns(_first_row=pl.col("row_nr").min().over("session_id")).drop(
        "row_nr"
    )
    clicks = _filter_sessions_and_items(clicks, cfg, rep)
    stages.step("filter")

    # 5: a session's time is its last click
    clicks, rep["sessions_spanning_over_1_day"] = with_session_times(clicks)
    split = _split_times(clicks, cfg, rep)
    train = clicks.filter(pl.col("_time") < split)
    test = clicks.filter(pl.col("_time") >= split)
    del clicks
    rep["train_sessions"] = train.get_column("session_id").n_unique()
    rep["test_sessions_in_split"] = test.get_column("session_id").n_unique()
    stages.step("split")
    if train.height == 0:
        raise _no_training_left(test, split, cfg)

    # 6-7: vocabulary of the sorted training ids (then the new items); unseen test
    # clicks dropped
    train, test, ids = _vocab_and_index(train, test, k, rep, catalog_ids)
    stages.step("index")
    # 8-9: test samples, each prefix cut to the last L clicks a model reads
    samples, cut = cut_prefixes(sessions_in_time_order(test).to_samples(), cfg.max_session_length)
    if cfg.max_session_length is not None:
        rep["test_prefixes_cut_by_max_session_length"] = cut
    return sessions_in_time_order(train), samples, ItemVocab(ids_array(ids))


# -- the authors' script ----------------------------------------------------------------
def _srgnn_protocol(
    frames: list[pl.DataFrame], cfg: ProtocolConfig, rep: dict[str, Any], stages: _Stages
) -> tuple[Sessions, Samples, ItemVocab]:
    k = cfg.min_session_length
    frame = frames.pop()
    dated = "day" in frame.columns
    # the script's per-row date: the eventdate's midnight, or the time in whole seconds
    date = pl.col("day").cast(pl.Float64) if dated else pl.col("timestamp").floor()
    # within a session: a stable sort by timeframe (Diginetica), else file order
    order = ["day_offset", "row_nr"] if dated else ["row_nr"]
    clicks = frame.select("session_id", "item_id", "row_nr", *order[:-1], date.alias("_date"))
    clicks = clicks.sort("session_id", *order)
    del frame  # the caller handed it over: free the unsorted copy
    # a session's date: that of its last row in file order (before any filter); ties
    # in date keep the order of first appearance in the file (the script's dict order)
    clicks = clicks.with_columns(
        _time=pl.col("_date").get(pl.col("row_nr").arg_max()).over("session_id"),
        _first_row=pl.col("row_nr").min().over("session_id"),
    ).drop("row_nr")
    clicks = _filter_sessions_and_items(clicks, cfg, rep)
    stages.step("filter")

    split = _split_times(clicks, cfg, rep)
    on_split = clicks.filter(pl.col("_time") == split).get_column("session_id").n_unique()
    rep["sessions_on_split_day"] = on_split  # the script puts them on neither side
    train = clicks.filter(pl.col("_time") < split)
    test = clicks.filter(pl.col("_time") > split)
    del clicks
    rep["train_sessions"] = train.get_column("session_id").n_unique()
    rep["test_sessions_in_split"] = test.get_column("session_id").n_unique()
    stages.step("split")
    if train.height == 0:
        raise _no_training_left(test, split, cfg)

    train, test, ids = _vocab_and_index(train, test, k, rep)
    train_sessions, test_sessions, vocab_ids = _renumber_by_first_appearance(
        sessions_in_time_order(train), sessions_in_time_order(test), ids_array(ids)
    )
    stages.step("index")
    return (
        train_sessions,
        _longest_prefix_first(test_sessions.to_samples()),
        ItemVocab(vocab_ids),
    )


# -- entry point ------------------------------------------------------------------------
def resolve_new_items(cfg: ProtocolConfig, catalog: Any) -> ProtocolConfig:
    """``cfg`` with ``keep_new_items`` decided: on with a catalog in the ``default``
    mode unless set to ``False``; off without one.

    Raises:
        ConfigError: ``keep_new_items=True`` without a catalog.
    """
    if cfg.keep_new_items and catalog is None:
        raise ConfigError(
            "keep_new_items needs the catalog that names the new items: pass catalog=...",
            options=("ProtocolConfig.keep_new_items", "prepare.catalog"),
        )
    if cfg.keep_new_items is None:
        return replace(cfg, keep_new_items=catalog is not None and cfg.mode == "default")
    return cfg


def prepare(
    clicks: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame | Clicks,
    config: ProtocolConfig | None = None,
    *,
    format: str = "auto",
    columns: ColumnMap | None = None,
    separator: str | None = None,
    on_bad_rows: OnBadRows = "error",
    event_types: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    progress: bool = False,
    catalog: Any = None,
) -> SessionDataset:
    """Apply the protocol to a clickstream: a dump file, a polars frame, or :class:`Clicks`.

    Files and frames are read with :func:`~sessionrec.data.ingest.read_clicks` (the
    keyword arguments are passed on; exact duplicate rows are dropped except under the
    ``srgnn`` protocol, which keeps them as the authors' script did). A frame must hold
    session, item and time columns that ``read_clicks`` can map.

    ``catalog`` (an :class:`~sessionrec.data.catalog.ItemCatalog`, or its raw item ids)
    keeps the test clicks on new items (a catalog row, no training click; step 6), unless
    ``config.keep_new_items`` is ``False``: the vocabulary is the training items, then the
    new items. The catalog's content is not read here: pass the catalog to training too.

    Returns:
        A :class:`SessionDataset` whose ``meta`` holds the source, the resolved protocol
        parameters and ``report`` (``ingest``: rows read, skipped, deduplicated;
        ``protocol``: sessions and clicks dropped at each step, the split time, counts;
        with a catalog ``new_items`` and ``test_clicks_on_new_items``).

    Raises:
        SchemaError, BadRowsError: from reading (see ``read_clicks``).
        EmptyDataError: nothing left to train or test on, with the step that emptied it.
        ConfigError: bad parameters.
    """
    config = config if config is not None else ProtocolConfig()
    stages = _Stages(5, progress)
    try:
        if isinstance(clicks, Clicks):
            read = clicks
        else:
            read = read_clicks(
                clicks,
                format,
                columns,
                separator=separator,
                on_bad_rows=on_bad_rows,
                event_types=event_types,
                session_gap_s=session_gap_s,
                drop_duplicates=config.mode != "srgnn",
            )
        stages.step("read")
        _require_columns(read.frame, ("session_id", "item_id", "timestamp", "row_nr"))
        cfg = resolve_new_items(config.resolved(read.format), catalog)
        shortened: dict[str, Any] = {}
        if config.test_days is None and read.frame.height:
            times = read.frame.get_column("timestamp")
            span_s = float(times.max()) - float(times.min())  # type: ignore[arg-type]
            test_days, shortened = fit_default_window(
                cfg.test_days, span_s / DAY_S, read.report.source
            )
            cfg = replace(cfg, test_days=test_days)
        rep: dict[str, Any] = {"mode": cfg.mode, "test_days": cfg.test_days, **shortened}
        frames = [read.frame]
        catalog_ids = (
            catalog_id_series(getattr(catalog, "ids", catalog), read.frame.schema["item_id"])
            if cfg.keep_new_items
            else None
        )
        ingest_report, clicks_format = read.report, read.format
        if not isinstance(clicks, Clicks):
            del read  # ours: the protocol frees the frame once it has sorted a copy
        if cfg.mode == "srgnn":
            train, test, vocab = _srgnn_protocol(frames, cfg, rep, stages)
        else:
            train, test, vocab = _default_protocol(frames, cfg, rep, stages, catalog_ids)
        if len(test) == 0:
            raise no_test_samples(
                rep["test_sessions_in_split"], cfg.test_days, cfg.min_session_length
            )
        rep["train_sessions"] = len(train)
        # test_sessions_in_split less those left short by unseen items; stats() calls the
        # former test_sessions (the authors' count): one name each, never the same
        rep["test_sessions_with_samples"] = int(len(np.unique(test.session_index)))  # type: ignore[arg-type]
        rep["items"] = len(vocab)
        rep["train_clicks"] = train.n_clicks
        rep["train_samples"] = train.n_samples
        rep["test_samples"] = len(test)
        meta = {
            "source": ingest_report.source,
            "clicks_format": clicks_format,
            "protocol": cfg.to_dict(),
            "times": "srgnn session date" if cfg.mode == "srgnn" else "last click, Unix s",
            "report": {"ingest": ingest_report.to_dict(), "protocol": plain_report(rep)},
        }
        stages.step("done")
        return SessionDataset(train, test, vocab, meta)
    finally:
        stages.close()
