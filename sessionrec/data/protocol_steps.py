"""Steps of the preprocessing protocol shared by :func:`~sessionrec.data.protocol.prepare`
and the sharded preparation (:func:`~sessionrec.data.shards.prepare_sharded`).

The protocol itself (its numbered steps and parameters) is described in
:mod:`sessionrec.data.protocol`. Both preparations apply these steps to frames of clicks
in canonical columns (:mod:`sessionrec.data.ingest`) that are *session-contiguous*:
sorted by ``session_id``, then by the order of clicks within a session. Working columns:
``_time`` (a session's time) and ``_first_row`` (a session's first row in the file,
before any filter), and ``item_index`` once items are indexed.

This module imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl

from sessionrec.data.parsing import describe_timestamp
from sessionrec.data.sessions import Samples, Sessions, lengths_to_offsets
from sessionrec.errors import EmptyDataError

__all__ = [
    "DAY_S",
    "ids_array",
    "with_session_times",
    "split_time",
    "cut_prefixes",
    "index_items",
    "with_new_items",
    "catalog_id_series",
    "clicks_on",
    "sessions_in_time_order",
    "plain_report",
    "no_supported_sessions",
    "fit_default_window",
    "no_training_left",
    "window_that_fits",
    "no_test_samples",
]

#: Seconds in a day (``test_days`` are days of 86,400 s).
DAY_S = 86_400.0


def ids_array(series: pl.Series) -> np.ndarray:
    """Raw ids as numpy: int64, or an object array of str for String ids."""
    if series.dtype == pl.String:
        return np.asarray(series.to_list(), dtype=object)
    return series.to_numpy().astype(np.int64)


def with_session_times(clicks: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Step 5's session times: ``_time`` is each session's last click.

    Returns:
        ``(clicks with _time, sessions whose clicks span more than a day)``.
    """
    clicks = clicks.with_columns(_time=pl.col("timestamp").last().over("session_id"))
    spans = clicks.group_by("session_id").agg(
        (pl.col("timestamp").last() - pl.col("timestamp").first()).alias("span")
    )
    return clicks, int((spans.get_column("span") > DAY_S).sum())


def split_time(last: float, test_days: float, rep: dict[str, Any]) -> float:
    """The split time :math:`\\tau = T - 86400 \\cdot` ``test_days`` of the latest session
    time :math:`T` (``last``); recorded in ``rep`` (``split_time``, ``split_time_utc``)."""
    split = last - DAY_S * test_days
    rep["split_time"] = split
    rep["split_time_utc"] = describe_timestamp(split)
    return split


def cut_prefixes(samples: Samples, max_length: int | None) -> tuple[Samples, int]:
    """Every prefix of ``samples`` cut to its last ``max_length`` clicks (``None``: none
    cut): the clicks a model reads (:class:`~sessionrec.data.contract.DataContract`).
    Returns ``(samples, how many prefixes were longer)``."""
    if max_length is None:
        return samples, 0
    return samples.last_clicks(max_length), int((samples.lengths > max_length).sum())


def _to_index(item: pl.Expr, vocab_ids: pl.Series) -> pl.Expr:
    """Raw id -> vocabulary index (Int64); null for ids not in the vocabulary."""
    return item.replace_strict(
        vocab_ids,
        pl.int_range(len(vocab_ids), dtype=pl.Int64, eager=True),
        default=None,
        return_dtype=pl.Int64,
    )


def with_new_items(
    train_ids: pl.Series, test_ids: pl.Series, catalog_ids: pl.Series | None
) -> tuple[pl.Series, int]:
    """The vocabulary: the sorted training item ids, then (with a catalog) the sorted ids
    of the test items that have a catalog row and no training click (*new items*).

    Args:
        train_ids: the training clicks' item ids (any order, repeats allowed).
        test_ids: the test clicks' item ids (any order, repeats allowed).
        catalog_ids: the catalog's item ids, of the clicks' dtype; ``None``: no new item.

    Returns:
        ``(vocabulary ids, number of new items at its end)``.
    """
    ids = train_ids.unique().sort()
    if catalog_ids is None:
        return ids, 0
    new = test_ids.unique()
    new = new.filter(new.is_in(catalog_ids.implode()) & ~new.is_in(ids.implode())).sort()
    return pl.concat([ids, new]), len(new)


def clicks_on(clicks: pl.DataFrame, ids: pl.Series) -> int:
    """How many of ``clicks`` are on the items ``ids``."""
    return int(clicks.get_column("item_id").is_in(ids.implode()).sum())


def catalog_id_series(catalog_ids: Any, dtype: pl.DataType) -> pl.Series:
    """``catalog_ids`` (an array or sequence of raw ids) as a polars Series of the clicks'
    id ``dtype``; ids that do not convert (a string id among integer clicks) are left out:
    no click can name them."""
    values = list(catalog_ids.tolist() if hasattr(catalog_ids, "tolist") else catalog_ids)
    kind = pl.String if any(isinstance(v, str) for v in values) else pl.Int64
    series = pl.Series("item_id", [str(v) for v in values] if kind == pl.String else values, kind)
    return series.cast(dtype, strict=False).drop_nulls().unique()


def index_items(
    train: pl.DataFrame, test: pl.DataFrame, ids: pl.Series, k: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``item_index`` (the position in the vocabulary ``ids``) on both sides; test clicks
    on items outside it dropped, then test sessions left with fewer than ``k`` clicks.

    Returns:
        ``(train, test, test clicks dropped as unseen)``.
    """
    index = _to_index(pl.col("item_id"), ids)
    train = train.with_columns(item_index=index)
    test = test.with_columns(item_index=index)
    before = test.height
    test = test.filter(pl.col("item_index").is_not_null())
    unseen = before - test.height
    return train, test.filter(pl.len().over("session_id") >= k), unseen


def sessions_in_time_order(clicks: pl.DataFrame) -> Sessions:
    """CSR sessions, ordered by time, then by first row in the file.

    ``clicks`` is session-contiguous (sorted by ``session_id``, then by the order of
    clicks within a session) and has ``item_index``, ``_time`` (the session's time) and
    ``_first_row`` (the session's first row in the file, before any filter).
    """
    per = clicks.group_by("session_id", maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("_time").first(),
        pl.col("_first_row").first(),
    )
    times = per.get_column("_time").to_numpy().astype(np.float64)
    sessions = Sessions(
        clicks.get_column("item_index").to_numpy(),
        lengths_to_offsets(per.get_column("n").to_numpy().astype(np.int64)),
        times,
        ids_array(per.get_column("session_id")),
    )
    order = np.lexsort((per.get_column("_first_row").to_numpy(), times))
    return sessions.select(order)


def plain_report(obj: dict[str, Any]) -> dict[str, Any]:
    """A protocol report with JSON-friendly values (numpy/polars scalars -> Python; whole
    floats -> int, except ``test_days``)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value) if key not in ("test_days",) else value
        out[key] = value
    return out


# -- the errors of a protocol that leaves nothing ---------------------------------------
def no_supported_sessions(min_session_length: int, min_item_support: int) -> EmptyDataError:
    """No session keeps ``min_session_length`` clicks on items with enough support."""
    return EmptyDataError(
        f"no session keeps {min_session_length} clicks on items with >= {min_item_support} "
        "clicks; lower ProtocolConfig.min_item_support, or check the session and item "
        "columns (ColumnMap.session, ColumnMap.item)",
        options=("ProtocolConfig.min_item_support", "ColumnMap.session", "ColumnMap.item"),
    )


def window_that_fits(span_days: float) -> float:
    """A test window that leaves at least half of a dump spanning ``span_days`` days to
    training: the largest whole number of days up to half the span, or half the span
    (rounded down to a hundredth of a day) when that is under a day."""
    half = span_days / 2
    return float(math.floor(half)) if half >= 1 else math.floor(half * 100) / 100


def fit_default_window(
    test_days: float | None, span_days: float, source: str
) -> tuple[float, dict[str, Any]]:
    """The test window of a dump spanning ``span_days`` days when the caller gave none:
    the default ``test_days`` (the format's), or, when the dump spans less than twice
    it, :func:`window_that_fits`, with a warning; and what the protocol report records
    about it (``test_days_default``, ``clicks_span_days``; nothing when the default is
    kept). A window the caller gave is never changed: too long, it fails with the span
    and a window that fits (:func:`no_training_left`)."""
    assert test_days is not None
    fits = window_that_fits(span_days)
    if span_days >= 2 * test_days or fits <= 0:
        return test_days, {}
    warnings.warn(
        f"{source}: the clicks span {span_days:.2f} days, less than twice the default test "
        f"window of {test_days:g} days; the last {fits:g} days are the test set instead "
        "(give ProtocolConfig.test_days to choose another window)",
        UserWarning,
        stacklevel=4,
    )
    return fits, {"test_days_default": test_days, "clicks_span_days": round(span_days, 4)}


def no_training_left(test_days: float | None, span_days: float) -> EmptyDataError:
    """Every session falls in the test period (the sessions span ``span_days`` days)."""
    fits = window_that_fits(span_days)
    fix = (
        f"choose a shorter test window, e.g. ProtocolConfig.test_days={fits:g} (at most half "
        "the span, so that at least half of it trains)"
        if fits > 0
        else "the dump is too short to split in time"
    )
    return EmptyDataError(
        f"every session falls within the last {test_days:g} days (the test window) but the "
        f"sessions span only {span_days:.2f} days, so nothing is left to train on; {fix}",
        options=("ProtocolConfig.test_days",),
    )


def no_test_samples(
    test_sessions_in_split: int, test_days: float | None, min_session_length: int
) -> EmptyDataError:
    """No session of the test period keeps enough clicks on training items."""
    return EmptyDataError(
        f"no test samples: none of the {test_sessions_in_split} sessions of the last "
        f"{test_days:g} days keeps {min_session_length} clicks on training items; raise "
        "ProtocolConfig.test_days or lower ProtocolConfig.min_item_support",
        options=("ProtocolConfig.test_days", "ProtocolConfig.min_item_support"),
    )
