"""Parse ids and timestamps: polars expressions that type a dump's columns, and the
bad-row codes of values that break the rules.

The rules (documented; :mod:`sessionrec.data.ingest` applies them to every dump):

- Ids and timestamps are stripped of surrounding spaces.
- Integer ids must lie in ``0 .. 2**63 - 1``. An id column is read as Int64 when the
  format says so (``id_type="int"``, all presets but ``session-rec``) or, with
  ``id_type="auto"``, when its first 1,000 values are integers; otherwise as strings
  (``id_type="str"`` forces strings). In an Int64 column a later non-integer value is a
  bad row, so one stray value never silently turns every id into a string.
- Timestamps must lie in ``[0, 1e11)`` Unix seconds (1970 .. year 5138). ``time_unit=
  "auto"`` looks at the first 1,000 values: numbers of at least ``1e11`` are
  milliseconds, smaller numbers seconds, anything else ISO-8601. ISO-8601 times without
  a zone are read as UTC; times with ``Z`` or an offset are converted to UTC. The ISO
  shapes (``T`` or space, fraction, ``Z``, offset, date only) seen in the first 1,000
  values are used for the whole file (``time_formats`` in the report); a value in
  another shape is a bad row.
- **Bad rows** (each a reason in :data:`BAD_ROW_REASONS`): invalid UTF-8 bytes in a
  mapped column (read lossily, so the row can be named), null or empty ids, non-integer
  ids in an integer id column, negative ids, ids above ``2**63 - 1``, missing,
  unparsable, non-finite or out-of-range timestamps. With ``on_bad_rows="error"`` (the
  default) the first bad row of each kind is named in a
  :class:`~sessionrec.errors.BadRowsError`; with ``"skip"`` they are dropped and counted
  in the report.

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import polars as pl

from sessionrec.data.files import SAMPLE_ROWS, reading
from sessionrec.errors import SchemaError

__all__ = [
    "TimeUnit",
    "IdType",
    "OnBadRows",
    "BAD_ROW_REASONS",
    "BAD_ROW_COLUMNS",
    "INT64_MAX",
    "MAX_TIMESTAMP_S",
    "MS_THRESHOLD",
    "ISO_SHAPES",
    "is_text",
    "stripped_text",
    "id_value",
    "bad_row_code",
    "iso_shapes_of",
    "seconds_expr",
    "day_expr",
    "resolve_time_unit",
    "resolve_id_kind",
    "looks_like_int",
    "describe_timestamp",
]

#: How a time column is read: Unix seconds, milliseconds, ISO-8601 text, or decided
#: from the first 1,000 values.
TimeUnit = Literal["auto", "s", "ms", "iso"]
#: How an id column is read: integers, strings, or integers when the first 1,000 are.
IdType = Literal["auto", "int", "str"]
#: What a reader does with bad rows: raise :class:`~sessionrec.errors.BadRowsError`, or
#: drop them and count them in its report.
OnBadRows = Literal["error", "skip"]

#: The largest integer id (Int64).
INT64_MAX = 2**63 - 1
#: Timestamps must be below this many Unix seconds (about year 5138).
MAX_TIMESTAMP_S = 1e11
#: ``time_unit="auto"``: numbers at least this large are milliseconds.
MS_THRESHOLD = 1e11

#: Bad-row codes -> reason (code 0 is a good row).
BAD_ROW_REASONS: dict[int, str] = {
    1: "invalid UTF-8 bytes",
    2: "null or empty session id",
    3: "null or empty item id",
    4: "non-integer session id",
    5: "non-integer item id",
    6: "negative session id",
    7: "negative item id",
    8: "session id above 2**63-1",
    9: "item id above 2**63-1",
    10: "missing or unparsable timestamp",
    11: "timestamp out of range [0, 1e11) s",
}
#: Bad-row codes -> the column a bad row is found in (``None``: any mapped column).
BAD_ROW_COLUMNS: dict[int, str | None] = {
    1: None,
    **dict.fromkeys((2, 4, 6, 8), "session"),
    **dict.fromkeys((3, 5, 7, 9), "item"),
    10: "time",
    11: "time",
}

# ISO-8601 shapes tried in turn; the first that parses wins
_ISO_NAIVE = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
_ISO_ZONED = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.fZ",
)
_ISO_OFFSET = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%:z",
)
#: Every ISO-8601 shape read (polars ``strptime`` formats), in the order they are tried.
ISO_SHAPES = (*_ISO_ZONED, *_ISO_NAIVE, *_ISO_OFFSET, "%Y-%m-%d")
_INT_TEXT = r"^[+-]?\d+$"


def is_text(dtype: pl.DataType) -> bool:
    """Whether a column of ``dtype`` holds text (String, Categorical or Enum)."""
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum)


def stripped_text(name: str) -> pl.Expr:
    """Column ``name`` as text stripped of surrounding spaces."""
    return pl.col(name).cast(pl.String).str.strip_chars()


def looks_like_int(text: str) -> bool:
    """Whether ``text`` (spaces around it aside) is an integer, with an optional sign."""
    return re.fullmatch(_INT_TEXT, text.strip()) is not None


def id_value(name: str, dtype: pl.DataType, kind: str, source: str) -> pl.Expr:
    """An id column (text already stripped) -> Int64 or String ids, null where invalid.

    Raises:
        SchemaError: the column holds neither integers nor text.
    """
    if is_text(dtype):
        return pl.col(name) if kind == "str" else pl.col(name).cast(pl.Int64, strict=False)
    if dtype.is_integer():
        value = pl.col(name).cast(pl.Int64, strict=False)
        return value.cast(pl.String) if kind == "str" else value
    raise SchemaError(
        f"{source}: column {name!r} has dtype {dtype}; ids must be integers or strings "
        "(cast the column, e.g. floats that hold whole numbers to Int64)"
    )


def _id_bad(
    name: str, dtype: pl.DataType, kind: str, value: pl.Expr, codes: tuple[int, int, int, int]
) -> pl.Expr:
    """The bad-row code of an id (null if fine); codes are (null, non-int, negative, huge)."""
    null_c, nonint_c, neg_c, huge_c = codes
    raw = pl.col(name)
    if is_text(dtype):
        if kind == "str":
            return pl.when(raw.is_null() | (raw == "")).then(null_c)
        return (
            pl.when(raw.is_null() | (raw == ""))
            .then(null_c)
            .when(value.is_null() & ~raw.str.contains(_INT_TEXT))
            .then(nonint_c)
            .when((value < 0) | (value.is_null() & raw.str.starts_with("-")))
            .then(neg_c)
            .when(value.is_null())
            .then(huge_c)
        )
    as_int = raw.cast(pl.Int64, strict=False)
    return (
        pl.when(raw.is_null())
        .then(null_c)
        .when(as_int.is_null())
        .then(huge_c)
        .when(as_int < 0)
        .then(neg_c)
    )


def bad_row_code(
    schema: pl.Schema,
    text_columns: Sequence[str],
    session: tuple[str, str, pl.Expr],
    item: tuple[str, str, pl.Expr],
    seconds: pl.Expr,
) -> pl.Expr:
    """The bad-row code of each row (UInt8): the first rule of :data:`BAD_ROW_REASONS`
    it breaks, ``0`` for a good row.

    Args:
        schema: the dump's columns.
        text_columns: the mapped text columns (stripped), checked for invalid UTF-8.
        session, item: ``(column, id kind, typed value)`` of the session and item ids.
        seconds: the typed timestamp (Unix seconds).
    """
    session_col, session_kind, session_value = session
    item_col, item_kind, item_value = item
    utf8_bad = pl.any_horizontal(
        [pl.col(c).str.contains("\ufffd", literal=True).fill_null(False) for c in text_columns]
        or [pl.lit(False)]
    )
    return pl.coalesce(
        pl.when(utf8_bad).then(1),
        _id_bad(session_col, schema[session_col], session_kind, session_value, (2, 4, 6, 8)),
        _id_bad(item_col, schema[item_col], item_kind, item_value, (3, 5, 7, 9)),
        pl.when(seconds.is_null() | ~seconds.is_finite()).then(10),
        pl.when((seconds < 0) | (seconds >= MAX_TIMESTAMP_S)).then(11),
        pl.lit(0),
    ).cast(pl.UInt8)


def _iso_shape(text: pl.Expr, shape: str) -> pl.Expr:
    """ISO-8601 text in one shape -> Unix microseconds (Int64), null where it differs."""
    if shape == "%Y-%m-%d":
        return text.str.to_date(shape, strict=False).cast(pl.Int64) * 86_400_000_000
    zone = "UTC" if shape in _ISO_OFFSET else None
    parsed = text.str.to_datetime(shape, strict=False, time_unit="us", time_zone=zone)
    return parsed.dt.epoch("us")


def _iso_seconds(text: pl.Expr, shapes: Sequence[str] = ISO_SHAPES) -> pl.Expr:
    """ISO-8601 text -> Unix seconds (Float64): the first of ``shapes`` that parses."""
    return pl.coalesce([_iso_shape(text, f) for f in shapes]).cast(pl.Float64) / 1e6


def iso_shapes_of(raw: pl.LazyFrame, name: str, source: str) -> list[str]:
    """The ISO-8601 shapes seen in the first 1,000 values (all shapes if none parses)."""
    with reading(source, "a table"):
        sample = raw.select(stripped_text(name)).head(SAMPLE_ROWS).collect()
    seen = [
        f
        for f in ISO_SHAPES
        if sample.select(_iso_shape(pl.col(name), f).is_not_null().any()).item()
    ]
    return seen or list(ISO_SHAPES)


def seconds_expr(
    name: str,
    dtype: pl.DataType,
    unit: str,
    source: str,
    shapes: Sequence[str] = ISO_SHAPES,
) -> pl.Expr:
    """A time column -> Unix seconds (Float64), null where unparsable.

    Raises:
        SchemaError: the column's dtype cannot hold times, or it holds numbers and
            ``unit`` is ``"iso"``.
    """
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("us").cast(pl.Float64) / 1e6
    if dtype == pl.Date:
        return pl.col(name).cast(pl.Int64).cast(pl.Float64) * 86_400.0
    if dtype.is_numeric():
        value = pl.col(name).cast(pl.Float64)
    elif is_text(dtype):
        if unit == "iso":
            return _iso_seconds(pl.col(name), shapes)
        value = pl.col(name).cast(pl.Float64, strict=False)
    else:
        raise SchemaError(
            f"{source}: time column {name!r} has dtype {dtype}; expected numbers, text or datetimes"
        )
    if unit == "iso":
        raise SchemaError(
            f"{source}: time column {name!r} holds numbers, not ISO-8601 text; "
            "set its unit to seconds or milliseconds (ColumnMap.time_unit 's' or 'ms')",
            options=("ColumnMap.time_unit",),
        )
    return value / 1000.0 if unit == "ms" else value


def day_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    """A date column -> Unix seconds of its midnight, read as UTC (Int64)."""
    if dtype == pl.Date:
        days = pl.col(name).cast(pl.Int64)
    elif isinstance(dtype, pl.Datetime):
        days = pl.col(name).dt.date().cast(pl.Int64)
    else:
        days = pl.col(name).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64)
    return days * 86_400


def resolve_time_unit(
    raw: pl.LazyFrame, name: str, dtype: pl.DataType, unit: TimeUnit, source: str
) -> str:
    """The unit of a time column: ``unit`` itself unless ``"auto"``; ``"datetime"`` for
    date/datetime columns; else decided from the first 1,000 values (mostly non-numeric
    text: ``"iso"``; a median of at least :data:`MS_THRESHOLD`: ``"ms"``; else ``"s"``)."""
    if unit != "auto":
        return unit
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime"
    with reading(source, "a table"):
        sample = raw.select(pl.col(name)).head(SAMPLE_ROWS).collect().to_series()
    if is_text(dtype):
        text = sample.cast(pl.String).str.strip_chars().drop_nulls()
        text = text.filter(text != "")
        numbers = text.cast(pl.Float64, strict=False)
        if len(text) == 0 or numbers.null_count() > len(text) // 2:
            return "iso"
        sample = numbers.drop_nulls()
    sample = sample.cast(pl.Float64, strict=False).drop_nulls()
    sample = sample.filter(sample.is_finite())
    median = sample.median() if len(sample) else None
    return "ms" if median is not None and float(median) >= MS_THRESHOLD else "s"  # type: ignore[arg-type]


def resolve_id_kind(
    raw: pl.LazyFrame, name: str, dtype: pl.DataType, kind: IdType, source: str
) -> str:
    """``"int"`` or ``"str"``; ``auto``: int when the first 1,000 values are integers."""
    if kind != "auto":
        return kind
    if not is_text(dtype):
        return "int"  # integer dtypes; others are refused when the expressions are built
    stripped = stripped_text(name)
    with reading(source, "a table"):
        sample = raw.select(stripped).head(SAMPLE_ROWS).collect().to_series().drop_nulls()
    sample = sample.filter(sample != "")
    return "int" if sample.str.contains(_INT_TEXT).all() else "str"


def describe_timestamp(seconds: float) -> str:
    """Unix seconds as ISO-8601 UTC text (for reports)."""
    if not math.isfinite(seconds):
        return str(seconds)
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
