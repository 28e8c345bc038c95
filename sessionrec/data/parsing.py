"""Parse ids and timestamps: polars expressions that type a dump's columns, and the
bad-row codes of values that break the rules.

The rules (documented; :mod:`sessionrec.data.ingest` applies them to every dump):

- Ids and timestamps are stripped of surrounding spaces.
- Integer ids must lie in ``0 .. 2**63 - 1`` (ASCII digits, an optional sign). An id
  column is read as Int64 when the format says so (``id_type="int"``, all presets but
  ``session-rec``), or, with ``id_type="auto"``, when its first 1,000 values are
  integers whose text an integer keeps; otherwise as strings (``id_type="str"`` forces
  strings). Text that an integer would change (leading zeros ``"00123"``, ``"-0"``, a
  plus sign ``"+5"``; plain ``"0"`` is kept) makes ``auto`` read the column as strings,
  so ``"00123"`` and ``"123"`` stay two ids (:func:`resolve_id_kind` gives the reason,
  recorded in the report). In an Int64 column (the format's, the caller's, or ``auto``
  where such text appears after the first 1,000 values) these ids are read as integers,
  counted and warned about (:func:`changed_as_int`). In an Int64 column a later
  non-integer value is a bad row, so one stray value never silently turns every id into
  a string.
- Timestamps must lie in ``[0, 1e11)`` Unix seconds (1970 .. year 5138), i.e. below
  ``1e14`` ms, ``1e17`` us or ``1e20`` ns. Numbers are Unix epochs in ``s``, ``ms``,
  ``us`` or ``ns`` (:data:`EPOCH_UNITS`); ``time_unit="auto"`` looks at the first 1,000
  values: mostly non-numeric text is ISO-8601, numbers are in the unit their median's
  magnitude says (:data:`MAGNITUDE_BOUNDS`: below ``1e11`` seconds, below ``1e14``
  milliseconds, below ``1e17`` microseconds, else nanoseconds; real times after
  1973-03-03 fall in one range only). Integer epochs are converted exactly: ms and us
  epochs (below ``2**53``) are exact in Float64 and divided once, nanosecond epochs are
  split as Int64 into seconds and nanoseconds first; so clicks 1 us apart keep their
  order in the Float64 seconds, and nanoseconds are kept to Float64's resolution (about
  0.24 us for times of 2004 .. 2038: closer clicks tie and keep their file order). ISO-8601 times without a zone are read as UTC; times with
  ``Z`` or an offset are converted to UTC. The ISO shapes (``T`` or space, fraction,
  ``Z``, offset, date only) seen in the first 1,000 values are used for the whole file
  (``time_formats`` in the report); a value in another shape is a bad row.
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
from sessionrec.errors import BadRowsError, ConfigError, SchemaError

__all__ = [
    "TimeUnit",
    "IdType",
    "OnBadRows",
    "BAD_ROW_REASONS",
    "BAD_ROW_COLUMNS",
    "INT64_MAX",
    "MAX_TIMESTAMP_S",
    "EPOCH_UNITS",
    "MAGNITUDE_BOUNDS",
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
    "changed_as_int",
    "changes_as_int",
    "looks_like_int",
    "changed_ids_message",
    "bad_rows_error",
    "describe_timestamp",
]

#: How a time column is read: Unix seconds, milliseconds, microseconds, nanoseconds,
#: ISO-8601 text, or decided from the first 1,000 values.
TimeUnit = Literal["auto", "s", "ms", "us", "ns", "iso"]
#: How an id column is read: integers, strings, or integers when the first 1,000 are
#: integers that keep their text.
IdType = Literal["auto", "int", "str"]
#: What a reader does with bad rows: raise :class:`~sessionrec.errors.BadRowsError`, or
#: drop them and count them in its report.
OnBadRows = Literal["error", "skip"]

#: The largest integer id (Int64).
INT64_MAX = 2**63 - 1
#: Timestamps must be below this many Unix seconds (about year 5138).
MAX_TIMESTAMP_S = 1e11
#: Epoch units -> units per second.
EPOCH_UNITS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: ``time_unit="auto"`` on numbers: the unit of the first bound above the median of the
#: first 1,000 values; ``"ns"`` at or above the last. Each range holds one unit's real
#: times after 1973-03-03 (1e11 ms, 1e14 us and 1e17 ns are all 1e8 s).
MAGNITUDE_BOUNDS: tuple[tuple[float, str], ...] = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))

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
    11: "timestamp out of range [0, 1e11) s (1e14 ms, 1e17 us, 1e20 ns)",
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
# ASCII digits only: polars reads no other digits as integers
_INT_TEXT = r"^[+-]?[0-9]+$"
# integer text that an integer does not keep: a plus sign, leading zeros, minus zero
_CHANGES_AS_INT = r"^(?:\+[0-9]+|-?0[0-9]+|-0)$"


def is_text(dtype: pl.DataType) -> bool:
    """Whether a column of ``dtype`` holds text (String, Categorical or Enum)."""
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum)


def stripped_text(name: str) -> pl.Expr:
    """Column ``name`` as text stripped of surrounding spaces."""
    return pl.col(name).cast(pl.String).str.strip_chars()


def looks_like_int(text: str) -> bool:
    """Whether ``text`` (spaces around it aside) is an integer, with an optional sign."""
    return re.fullmatch(_INT_TEXT, text.strip()) is not None


def changes_as_int(text: str) -> bool:
    """Whether integer ``text`` (spaces around it aside) changes when read as an integer
    and written back: leading zeros (``"007"``, ``"-05"``, ``"00"``), a plus sign
    (``"+5"``) or minus zero (``"-0"``). ``False`` for ``"0"``, ``"-5"`` and non-integers."""
    return re.fullmatch(_CHANGES_AS_INT, text.strip()) is not None


def changed_as_int(name: str) -> pl.Expr:
    """Whether the integer text of id column ``name`` (stripped) changes when read as an
    integer (:func:`changes_as_int`: ``"00123"`` -> 123): a plus sign, a zero before
    more digits, a minus before a zero. Meant for the rows of an Int64 id column, where
    other text is a bad row; prefix tests, cheaper than a regex on every click."""
    text = pl.col(name)
    lead_zero = text.str.starts_with("0") & (text.str.len_bytes() > 1)
    return text.str.starts_with("+") | text.str.starts_with("-0") | lead_zero


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


def _nanosecond_seconds(name: str, dtype: pl.DataType) -> pl.Expr:
    """Nanosecond epochs -> Unix seconds (Float64).

    Nanosecond epochs after 1970-04-15 exceed ``2**53``, so as Float64 they would be
    rounded (by up to 128 ns in 2023) before the division: integers (integer dtypes,
    integer text) are split exactly, as Int64, into whole seconds and nanoseconds, and
    only their sum is rounded; other numbers are divided as Float64."""
    as_float = pl.col(name).cast(pl.Float64, strict=not is_text(dtype)) / 1e9
    if not (is_text(dtype) or dtype.is_integer()):
        return as_float
    as_int = pl.col(name).cast(pl.Int64, strict=False)
    whole = as_int // 10**9
    split = whole.cast(pl.Float64) + (as_int - whole * 10**9).cast(pl.Float64) / 1e9
    return pl.coalesce(split, as_float)


def seconds_expr(
    name: str,
    dtype: pl.DataType,
    unit: str,
    source: str,
    shapes: Sequence[str] = ISO_SHAPES,
) -> pl.Expr:
    """A time column -> Unix seconds (Float64), null where unparsable.

    ``unit``: an epoch unit of :data:`EPOCH_UNITS` (``"s"``, ``"ms"``, ``"us"``,
    ``"ns"``), ``"iso"`` for ISO-8601 text, or any unit for date/datetime columns.

    Raises:
        SchemaError: the column's dtype cannot hold times, or it holds numbers and
            ``unit`` is ``"iso"``.
    """
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("us").cast(pl.Float64) / 1e6
    if dtype == pl.Date:
        return pl.col(name).cast(pl.Int64).cast(pl.Float64) * 86_400.0
    if not (dtype.is_numeric() or is_text(dtype)):
        raise SchemaError(
            f"{source}: time column {name!r} has dtype {dtype}; expected numbers, text or datetimes"
        )
    if unit == "iso" and is_text(dtype):
        return _iso_seconds(pl.col(name), shapes)
    if unit == "iso":
        raise SchemaError(
            f"{source}: time column {name!r} holds numbers, not ISO-8601 text; set the "
            "epoch unit of its numbers (ColumnMap.time_unit 's', 'ms', 'us' or 'ns'), or "
            "'auto' to decide it from their magnitude",
            options=("ColumnMap.time_unit",),
        )
    if unit == "ns":
        return _nanosecond_seconds(name, dtype)
    # integers below 2**53 (ms before year 287,000, us before 2255) are exact in Float64,
    # and one division gives the Float64 nearest to the exact seconds
    value = pl.col(name).cast(pl.Float64, strict=not is_text(dtype))
    return value if unit == "s" else value / EPOCH_UNITS[unit]


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
    raw: pl.LazyFrame,
    name: str,
    dtype: pl.DataType,
    unit: TimeUnit,
    source: str,
    set_by: str = "given",
) -> tuple[str, str]:
    """``(unit, decided_by)`` of a time column.

    ``unit`` itself unless ``"auto"`` (decided by ``set_by``: ``"given"`` or
    ``"preset"``); ``("datetime", "dtype")`` for date/datetime columns; else decided from
    the first 1,000 values: mostly non-numeric text is ``("iso", "text")``, numbers
    ``(unit, "magnitude")`` with the unit of their median (the lower one of an even count,
    compared exactly: :data:`MAGNITUDE_BOUNDS`).

    Raises:
        ConfigError: ``unit`` is not one of ``auto``, ``s``, ``ms``, ``us``, ``ns``, ``iso``.
    """
    if unit not in ("auto", *EPOCH_UNITS, "iso"):
        raise ConfigError(
            f"unknown time unit {unit!r}: choose 's', 'ms', 'us' or 'ns' (Unix epoch "
            "numbers), 'iso' (ISO-8601 text) or 'auto' (ColumnMap.time_unit)",
            options=("ColumnMap.time_unit",),
        )
    if unit != "auto":
        return unit, set_by
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime", "dtype"
    with reading(source, "a table"):
        sample = raw.select(pl.col(name)).head(SAMPLE_ROWS).collect().to_series()
    if is_text(dtype):
        text = sample.cast(pl.String).str.strip_chars().drop_nulls()
        text = text.filter(text != "")
        numbers = text.cast(pl.Float64, strict=False)
        if len(text) == 0 or numbers.null_count() > len(text) // 2:
            return "iso", "text"
        sample = text
    floats = sample.cast(pl.Float64, strict=False).drop_nulls()
    floats = floats.filter(floats.is_finite())
    ints = sample.cast(pl.Int64, strict=False).drop_nulls()
    # integers stay integers, so a value next to a bound is compared exactly
    exact = (is_text(dtype) or dtype.is_integer()) and len(ints) == len(floats)
    numbers = (ints if exact else floats).sort()
    median = numbers[(len(numbers) - 1) // 2] if len(numbers) else 0  # the lower median
    return next((u for bound, u in MAGNITUDE_BOUNDS if median < bound), "ns"), "magnitude"


def _lost_as_int(example: str) -> str:
    """Why integer text ``example`` (:func:`changes_as_int`) would lose information."""
    if example.startswith("+"):
        return f"a plus sign ({example!r}) would be lost as integers"
    if example.startswith("-") and not example.lstrip("-0"):
        return f"the sign of {example!r} would be lost as integers"
    return f"leading zeros ({example!r}) would be lost as integers"


def resolve_id_kind(
    raw: pl.LazyFrame,
    name: str,
    dtype: pl.DataType,
    kind: IdType,
    source: str,
    set_by: str = "given",
) -> tuple[str, str]:
    """``(kind, reason)`` of an id column: ``"int"`` or ``"str"`` and why, for the report.

    ``kind`` itself unless ``"auto"`` (reason: ``set_by``, ``"given"`` or ``"preset"``);
    ``auto``: ``"int"`` for integer dtypes; for text, ``"str"`` when one of the first
    1,000 values is not an integer, or is integer text that an integer would change
    (:func:`changes_as_int`: ``"00123"``, ``"+5"``, ``"-0"``), else ``"int"``.

    Raises:
        ConfigError: ``kind`` is not ``auto``, ``int`` or ``str``.
    """
    if kind not in ("auto", "int", "str"):
        raise ConfigError(
            f"unknown id type {kind!r}: choose 'int', 'str' or 'auto' (ColumnMap.id_type)",
            options=("ColumnMap.id_type",),
        )
    if kind != "auto":
        return kind, f"{'set by the format preset' if set_by == 'preset' else 'given'}: {kind}"
    if not is_text(dtype):
        # integer dtypes; others are refused when the expressions are built
        return "int", f"the column holds integers ({dtype})"
    stripped = stripped_text(name)
    with reading(source, "a table"):
        sample = raw.select(stripped).head(SAMPLE_ROWS).collect().to_series().drop_nulls()
    sample = sample.filter(sample != "")
    non_int = sample.filter(~sample.str.contains(_INT_TEXT))
    if len(non_int):
        return "str", f"non-integer ids ({non_int[0]!r})"
    changed = sample.filter(sample.str.contains(_CHANGES_AS_INT))
    if len(changed):
        return "str", _lost_as_int(changed[0])
    return "int", f"the first {SAMPLE_ROWS:,} ids are integers that keep their text"


def changed_ids_message(source: str, role: str, column: str, n: int, text: str, row: int) -> str:
    """The warning for ``n`` rows of the ``role`` id column ``column`` read as integers
    that do not keep their text, the first ``text`` at 0-based data row ``row``."""
    return (
        f"{source}: {n:,} row(s) of the {role} id column {column!r} hold ids read as "
        f"integers that do not keep their text (first: {text!r} at data row {row + 1}, "
        f"read as {int(text)}); ids such as '0123' and '123' become one. Read the ids as "
        "strings to keep them as given (ColumnMap.id_type='str')."
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bad_rows_error(
    source: str,
    n_rows: int,
    found: Sequence[tuple[int, int, int]],
    values: dict[int, dict[str, object]],
    columns: dict[str | None, Sequence[str]],
    header_lines: int | None,
    time_unit: str,
) -> BadRowsError:
    """The error that names the first bad row of each kind.

    Args:
        source: the dump's name.
        n_rows: rows read.
        found: ``(code, rows, first 0-based data row)`` of each bad-row code, ascending.
        values: first data row -> the file's values of that row, by column.
        columns: a :data:`BAD_ROW_COLUMNS` value -> the columns shown for its codes.
        header_lines: lines before the first data row of a text file (``None``: not a
            text file, no line numbers).
        time_unit: how the timestamps were read (named when some are out of range).
    """
    parts = []
    for code, n, first in found:
        row = values.get(first, {})
        shown = columns[BAD_ROW_COLUMNS[code]]
        if len(shown) == 1:
            where = f"column {shown[0]!r} = {_short(row.get(shown[0]))}"
        else:
            where = "columns " + ", ".join(f"{c}={_short(row.get(c))}" for c in shown)
        line = "" if header_lines is None else f" (line {first + 1 + header_lines})"
        parts.append(
            f"{BAD_ROW_REASONS[code]}: {n} row(s), first at data row {first + 1}{line}, {where}"
        )
    unit_hint = ""
    if any(code == 11 for code, _, _ in found) and time_unit in EPOCH_UNITS:
        unit_hint = (
            f" Times were read as Unix {_UNIT_NAMES[time_unit]}: if they are epochs in another "
            "unit, set it (ColumnMap.time_unit 's', 'ms', 'us' or 'ns'; 'auto' decides by "
            "magnitude)."
        )
    total = sum(n for _, n, _ in found)
    return BadRowsError(
        f"{source}: {total} bad row(s) out of {n_rows}: "
        + "; ".join(parts)
        + "."
        + unit_hint
        + " Fix the file, map other columns (ColumnMap.session, ColumnMap.item, "
        "ColumnMap.time, ColumnMap.time_unit 's', 'ms', 'us', 'ns' or 'iso'; "
        "ColumnMap.id_type='str' for text ids), or pass on_bad_rows='skip' to drop such "
        "rows (they are counted).",
        # the likeliest fix first, dropping rows last
        options=(
            *(("ColumnMap.time_unit",) if unit_hint else ()),
            "ColumnMap.session",
            "ColumnMap.item",
            "ColumnMap.time",
            "ColumnMap.time_unit",
            "ColumnMap.id_type",
            "read_clicks.on_bad_rows",
        ),
    )


def describe_timestamp(seconds: float) -> str:
    """Unix seconds as ISO-8601 UTC text (for reports)."""
    if not math.isfinite(seconds):
        return str(seconds)
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
