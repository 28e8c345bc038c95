"""Read clickstream dumps into one canonical table of clicks, with polars.

Whatever shape a dump has (CSV, TSV, Parquet, NDJSON, gzip-compressed CSV/TSV/NDJSON;
any column names; Unix seconds, milliseconds, ISO-8601 or a date plus an offset), it
comes out as one :class:`polars.DataFrame` with the *canonical columns*:

================  ============================================================
``session_id``    Int64 or String: the session (or a generated Int64 id when
                  sessions are cut from a user's clicks by inactivity)
``item_id``       Int64 or String: the item, exactly as given
``timestamp``     Float64: Unix seconds (UTC) of the click
``row_nr``        UInt32: 0-based data row of the click in the file (file order)
``event_type``    String, only if an event column is mapped
``category``      String, only if a category column is mapped
``day``           Int64, only for date + offset formats: Unix seconds of the
                  row's date at midnight (dates are read as UTC)
``day_offset``    Float64, only for date + offset formats: the offset, seconds
``user_id``       Int64 or String, only if a user column is mapped
================  ============================================================

Presets (:data:`PRESETS`) describe the public datasets; ``format="auto"`` recognises
them from the header (or, for the header-less YooChoose file, from the first line) and
otherwise guesses the columns from common names. A :class:`ColumnMap` overrides any of
it.

How the file is read (documented rules):

- The file kind comes from magic bytes (gzip ``1f 8b``, Parquet ``PAR1``, NDJSON ``{``)
  and otherwise the suffix; gzip files are decompressed in chunks to a temporary file
  (disk, not memory) and then scanned.
- CSV is scanned lazily with every column as text (``pl.scan_csv(infer_schema=False)``)
  and collected with polars' streaming engine, so the text of the dump never has to fit
  in memory: only the canonical columns do (about 30 bytes per click with int ids).
- The separator is sniffed from the first line (``,`` ``\\t`` ``;`` ``|``) unless given.
  Column names are stripped of spaces and a UTF-8 byte-order mark. Ids and timestamps
  are stripped of surrounding spaces. Lines with too many fields are truncated; lines
  with too few get nulls (which makes them bad rows, below).
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
  default) the first bad row of each kind is named in a :class:`BadRowsError`; with
  ``"skip"`` they are dropped and counted in the report.
- **Exact duplicate rows** (equal in every mapped column) are dropped, keeping the first,
  and counted (``duplicates_dropped``); ``drop_duplicates=False`` keeps them (the
  ``srgnn`` protocol does, as the authors' script did).
- Event types: rows whose event type is not selected are dropped and counted
  (``rows_other_events``); RetailRocket selects ``view`` unless told otherwise.
- Sessions cut by inactivity (RetailRocket, or ``session_gap_s``): a user's (or a
  session's) clicks, in time order, start a new session after a gap longer than
  ``session_gap_s``; such sessions get new Int64 ids ``0, 1, ...``.

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

import polars as pl

from sessionrec.errors import (
    BadRowsError,
    ConfigError,
    EmptyDataError,
    SchemaError,
    SessionrecError,
)

__all__ = [
    "ColumnMap",
    "FormatPreset",
    "PRESETS",
    "FORMATS",
    "BAD_ROW_REASONS",
    "IngestReport",
    "Clicks",
    "read_clicks",
    "ClickBuckets",
    "read_click_buckets",
    "cut_sessions_at_gaps",
    "drop_exact_duplicates",
]

TimeUnit = Literal["auto", "s", "ms", "iso"]
IdType = Literal["auto", "int", "str"]
OnBadRows = Literal["error", "skip"]

INT64_MAX = 2**63 - 1
#: Timestamps must be below this many Unix seconds (about year 5138).
MAX_TIMESTAMP_S = 1e11
#: ``time_unit="auto"``: numbers at least this large are milliseconds.
MS_THRESHOLD = 1e11
_SNIFF_BYTES = 1 << 16
_SAMPLE_ROWS = 1000

_KIND_NAMES = {"csv": "CSV", "parquet": "Parquet", "ndjson": "NDJSON", "frame": "a table"}
# internal column names (cannot clash with user columns in practice)
_ROW = "__sessionrec_row"
_BAD = "__sessionrec_bad"
_BUCKET = "__sessionrec_bucket"


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a dump hold what.

    Attributes:
        session: session id column; ``None`` when sessions are cut from ``user`` clicks
            by inactivity (then ``session_gap_s`` is required).
        item: item id column.
        time: timestamp column (``None`` for date + offset formats).
        time_unit: ``"s"``, ``"ms"`` (Unix numbers), ``"iso"`` (ISO-8601 text), or
            ``"auto"`` (decided from the first 1,000 values).
        date: date column (``YYYY-MM-DD``, read as UTC midnight), for date + offset.
        offset: offset column added to ``date``, in ``offset_unit``.
        offset_unit: ``"ms"`` or ``"s"``.
        event: event type column (optional).
        category: item category column (optional).
        user: user (visitor) column (optional; needed when ``session`` is ``None``).
        id_type: ``"int"``, ``"str"`` or ``"auto"`` (int when every id is an integer).
    """

    session: str | None = None
    item: str | None = None
    time: str | None = None
    time_unit: TimeUnit = "auto"
    date: str | None = None
    offset: str | None = None
    offset_unit: Literal["s", "ms"] = "ms"
    event: str | None = None
    category: str | None = None
    user: str | None = None
    id_type: IdType = "auto"

    def merged(self, override: ColumnMap | None) -> ColumnMap:
        """This map with every field that ``override`` sets (not ``None``/``"auto"``)."""
        if override is None:
            return self
        changes = {
            k: v
            for k, v in asdict(override).items()
            if v is not None
            and not (k in ("time_unit", "id_type") and v == "auto")
            and not (k == "offset_unit" and v == "ms")
        }
        if changes.get("time") is not None and "date" not in changes:
            changes.setdefault("date", None)
            changes.setdefault("offset", None)
        return replace(self, **changes)


@dataclass(frozen=True)
class FormatPreset:
    """A known dump layout.

    Attributes:
        name: the ``--format`` name.
        columns: the column map.
        separator: field separator for text files (``None``: sniffed).
        header_names: names of a header-less file's columns (``None``: the file has a
            header). A first line that does not start with an integer is taken for a
            header and skipped.
        session_gap_s: cut sessions after this much inactivity (``None``: never).
        event_types: event types kept by default (``None``: all).
        file_names: the dataset's usual file names (for documentation and ``auto``).
    """

    name: str
    columns: ColumnMap
    separator: str | None = None
    header_names: tuple[str, ...] | None = None
    session_gap_s: float | None = None
    event_types: tuple[str, ...] | None = None
    file_names: tuple[str, ...] = ()


PRESETS: dict[str, FormatPreset] = {
    # RecSys Challenge 2015: yoochoose-clicks.dat, no header,
    # "session,ISO-8601 timestamp,item,category"
    "yoochoose": FormatPreset(
        "yoochoose",
        ColumnMap(
            session="session_id",
            item="item_id",
            time="timestamp",
            time_unit="iso",
            category="category",
            id_type="int",
        ),
        separator=",",
        header_names=("session_id", "timestamp", "item_id", "category"),
        file_names=("yoochoose-clicks.dat",),
    ),
    # CIKM Cup 2016: train-item-views.csv, "session_id;user_id;item_id;timeframe;eventdate";
    # a click's time is its eventdate (midnight) plus timeframe milliseconds
    "diginetica": FormatPreset(
        "diginetica",
        ColumnMap(
            session="session_id",
            item="item_id",
            date="eventdate",
            offset="timeframe",
            offset_unit="ms",
            id_type="int",
        ),
        separator=";",
        file_names=("train-item-views.csv", "sample_train-item-views.csv"),
    ),
    # RetailRocket: events.csv, "timestamp,visitorid,event,itemid,transactionid";
    # sessions are a visitor's clicks cut after 30 minutes of inactivity
    "retailrocket": FormatPreset(
        "retailrocket",
        ColumnMap(
            session=None,
            user="visitorid",
            item="itemid",
            time="timestamp",
            time_unit="ms",
            event="event",
            id_type="int",
        ),
        separator=",",
        session_gap_s=30 * 60.0,
        event_types=("view",),
        file_names=("events.csv",),
    ),
    # session-rec framework (Ludewig & Jannach): TSV "SessionId ItemId Time", Unix seconds
    "session-rec": FormatPreset(
        "session-rec",
        ColumnMap(session="SessionId", item="ItemId", time="Time", time_unit="s"),
        separator="\t",
    ),
}

#: Every ``--format`` value.
FORMATS: tuple[str, ...] = (*PRESETS, "auto")

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
_ISO_SHAPES = (*_ISO_ZONED, *_ISO_NAIVE, *_ISO_OFFSET, "%Y-%m-%d")
_INT_TEXT = r"^[+-]?\d+$"

# normalised column names that ``auto`` recognises
_GUESS = {
    "session": ("sessionid", "session", "sessid", "sid"),
    "item": ("itemid", "item", "productid", "product", "articleid", "sku", "iid"),
    "time": ("timestamp", "time", "ts", "datetime", "eventtime", "clicktime", "date"),
    "event": ("eventtype", "event"),
    "category": ("categoryid", "category"),
}


@dataclass
class IngestReport:
    """What reading a dump did: counts of rows read, dropped and why."""

    source: str
    format: str
    file_kind: str
    compression: str | None = None
    separator: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    session_id_kind: str = "int"
    item_id_kind: str = "int"
    time_unit: str = "s"
    time_formats: list[str] | None = None
    on_bad_rows: str = "error"
    rows_read: int = 0
    bad_rows: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    rows_other_events: int = 0
    event_types: list[str] | None = None
    duplicates_dropped: int = 0
    duplicates_kept: bool = False
    session_gap_s: float | None = None
    sessions_cut_at_gaps: int = 0
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Clicks:
    """A dump in canonical columns (see the module docstring) and how it was read."""

    frame: pl.DataFrame
    report: IngestReport

    @property
    def format(self) -> str:
        return self.report.format

    def __len__(self) -> int:
        return self.frame.height


# -- helpers ----------------------------------------------------------------------------
def _polars_failures() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [pl.exceptions.PolarsError, OSError, UnicodeError]
    panic = getattr(pl.exceptions, "PanicException", None)
    if isinstance(panic, type):
        kinds.append(panic)
    return tuple(kinds)


_FAILURES = _polars_failures()


@contextmanager
def _reading(source: str, what: str) -> Iterator[None]:
    """Turn polars' parse errors into a :class:`SchemaError` naming the file."""
    try:
        yield
    except SessionrecError:
        raise
    except _FAILURES as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(
            f"{source}: cannot be read as {what} ({type(exc).__name__}: {detail[:300]}); "
            "check --format and --separator, or convert the file to CSV/Parquet"
        ) from None


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _clean_name(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip()


def _detect_kind(path: Path) -> tuple[str, str | None]:
    """``(kind, compression)`` from magic bytes, then the suffix."""
    with open(path, "rb") as f:
        head = f.read(4)
    suffixes = [s.lower() for s in path.suffixes]
    compression = "gzip" if head[:2] == b"\x1f\x8b" or suffixes[-1:] == [".gz"] else None
    if compression is None and head == b"PAR1":
        return "parquet", None
    inner = [s for s in suffixes if s != ".gz"]
    last = inner[-1] if inner else ""
    if last in (".parquet", ".pq"):
        return "parquet", compression
    if last in (".ndjson", ".jsonl", ".json"):
        return "ndjson", compression
    if compression is None and head[:1] == b"{":
        return "ndjson", None
    return "csv", compression


def _gunzip(path: Path, directory: str) -> Path:
    """Decompress ``path`` in 1 MB chunks to a file in ``directory`` (low memory)."""
    target = Path(directory) / (path.name[:-3] if path.name.endswith(".gz") else path.name)
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SchemaError(
            f"{path}: not a readable gzip file ({type(exc).__name__}: {exc}); "
            "check that the download is complete"
        ) from None
    return target


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    return text.split("\n", 1)[0].rstrip("\r")


def _sniff_separator(line: str) -> str:
    counts = {sep: line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def _looks_like_int(text: str) -> bool:
    return re.fullmatch(_INT_TEXT, text.strip()) is not None


def _headerless_yoochoose(fields: Sequence[str]) -> bool:
    """Does a first line look like a YooChoose click (``session,ISO time,item[,category]``)?"""
    if len(fields) not in (3, 4):
        return False
    a, b, c = (x.strip() for x in fields[:3])
    return (
        _looks_like_int(a)
        and re.match(r"^\d{4}-\d{2}-\d{2}T", b) is not None
        and _looks_like_int(c)
    )


def _detect_preset(names: Sequence[str]) -> str | None:
    """The preset whose columns ``names`` has, or ``None`` (generic)."""
    norm = {_norm(n) for n in names}
    if {"sessionid", "itemid", "timeframe", "eventdate"} <= norm:
        return "diginetica"
    if {"visitorid", "itemid", "event", "timestamp"} <= norm:
        return "retailrocket"
    if {"SessionId", "ItemId", "Time"} <= set(names):
        return "session-rec"
    if [_norm(n) for n in names[:4]] == ["sessionid", "timestamp", "itemid", "category"]:
        return "yoochoose"
    return None


def _guess_columns(names: Sequence[str]) -> ColumnMap:
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(_norm(n), n)
    found: dict[str, str | None] = {}
    for role, candidates in _GUESS.items():
        found[role] = next((by_norm[c] for c in candidates if c in by_norm), None)
    return ColumnMap(
        session=found["session"],
        item=found["item"],
        time=found["time"],
        event=found["event"],
        category=found["category"],
    )


def _require_columns(source: str, names: Sequence[str], columns: ColumnMap) -> None:
    roles = {
        "session": ("--session-col", columns.session),
        "item": ("--item-col", columns.item),
        "time": ("--time-col", columns.time),
        "date": ("--date-col", columns.date),
        "offset": ("--offset-col", columns.offset),
        "event": ("--event-col", columns.event),
        "category": ("--category-col", columns.category),
        "user": ("--user-col", columns.user),
    }
    found = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    for role in ("session", "item"):
        if roles[role][1] is None and not (role == "session" and columns.user):
            raise SchemaError(
                f"{source}: no {role} id column found (columns: {found}); "
                f"name it with {roles[role][0]} NAME or pick a --format"
            )
    if columns.time is None and (columns.date is None or columns.offset is None):
        raise SchemaError(
            f"{source}: no timestamp column found (columns: {found}); name it with "
            "--time-col NAME (and --time-unit s|ms|iso), or give --date-col and --offset-col"
        )
    for role, (flag, name) in roles.items():
        if name is not None and name not in names:
            close = get_close_matches(name, list(names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SchemaError(
                f"{source} has no column {name!r} for the {role} (found: {found}){hint} "
                f"Pass {flag} NAME with the right column, or another --format."
            )


# -- expressions ------------------------------------------------------------------------
def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum)


def _text(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars()


def _id_value(name: str, dtype: pl.DataType, kind: str, source: str) -> pl.Expr:
    """An id column (text already stripped) -> Int64 or String ids, null where invalid."""
    if _is_text(dtype):
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
    if _is_text(dtype):
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


def _iso_shape(text: pl.Expr, shape: str) -> pl.Expr:
    """ISO-8601 text in one shape -> Unix microseconds (Int64), null where it differs."""
    if shape == "%Y-%m-%d":
        return text.str.to_date(shape, strict=False).cast(pl.Int64) * 86_400_000_000
    zone = "UTC" if shape in _ISO_OFFSET else None
    parsed = text.str.to_datetime(shape, strict=False, time_unit="us", time_zone=zone)
    return parsed.dt.epoch("us")


def _iso_seconds(text: pl.Expr, shapes: Sequence[str] = _ISO_SHAPES) -> pl.Expr:
    """ISO-8601 text -> Unix seconds (Float64): the first of ``shapes`` that parses."""
    return pl.coalesce([_iso_shape(text, f) for f in shapes]).cast(pl.Float64) / 1e6


def _iso_shapes_of(raw: pl.LazyFrame, name: str, source: str) -> list[str]:
    """The ISO-8601 shapes seen in the first 1,000 values (all shapes if none parses)."""
    with _reading(source, "a table"):
        sample = raw.select(_text(name)).head(_SAMPLE_ROWS).collect()
    seen = [
        f
        for f in _ISO_SHAPES
        if sample.select(_iso_shape(pl.col(name), f).is_not_null().any()).item()
    ]
    return seen or list(_ISO_SHAPES)


def _seconds_expr(
    name: str,
    dtype: pl.DataType,
    unit: str,
    source: str,
    shapes: Sequence[str] = _ISO_SHAPES,
) -> pl.Expr:
    """A time column -> Unix seconds (Float64), null where unparsable."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("us").cast(pl.Float64) / 1e6
    if dtype == pl.Date:
        return pl.col(name).cast(pl.Int64).cast(pl.Float64) * 86_400.0
    if dtype.is_numeric():
        value = pl.col(name).cast(pl.Float64)
    elif _is_text(dtype):
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
            "pass --time-unit s or ms"
        )
    return value / 1000.0 if unit == "ms" else value


def _day_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    """A date column -> Unix seconds of its midnight, read as UTC (Int64)."""
    if dtype == pl.Date:
        days = pl.col(name).cast(pl.Int64)
    elif isinstance(dtype, pl.Datetime):
        days = pl.col(name).dt.date().cast(pl.Int64)
    else:
        days = pl.col(name).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64)
    return days * 86_400


def _resolve_time_unit(
    raw: pl.LazyFrame, name: str, dtype: pl.DataType, unit: TimeUnit, source: str
) -> str:
    if unit != "auto":
        return unit
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "datetime"
    with _reading(source, "a table"):
        sample = raw.select(pl.col(name)).head(_SAMPLE_ROWS).collect().to_series()
    if _is_text(dtype):
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


def _resolve_id_kind(
    raw: pl.LazyFrame, name: str, dtype: pl.DataType, kind: IdType, source: str
) -> str:
    """``"int"`` or ``"str"``; ``auto``: int when the first 1,000 values are integers."""
    if kind != "auto":
        return kind
    if not _is_text(dtype):
        return "int"  # integer dtypes; others are refused when the expressions are built
    text = _text(name)
    with _reading(source, "a table"):
        sample = raw.select(text).head(_SAMPLE_ROWS).collect().to_series().drop_nulls()
    sample = sample.filter(sample != "")
    return "int" if sample.str.contains(_INT_TEXT).all() else "str"


# -- duplicates ---------------------------------------------------------------------------
def drop_exact_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop rows equal to an earlier row (by ``row_nr``) in every column but ``row_nr``.

    Exact, with little memory: rows are hashed (8 bytes each), only rows whose hash
    occurs twice are compared column by column, and the earliest of equal rows stays.
    The order of the rows is kept.
    """
    subset = [c for c in frame.columns if c != "row_nr"]
    hashes = frame.select(pl.struct(subset).hash(seed=0)).to_series()
    ordered = hashes.sort()
    repeated = ordered.filter((ordered == ordered.shift(1)).fill_null(False)).unique()
    if len(repeated) == 0:
        return frame
    candidates = frame.with_row_index("__sessionrec_pos").filter(hashes.is_in(repeated.implode()))
    later = candidates.sort("row_nr").filter(~pl.struct(subset).is_first_distinct())
    if later.height == 0:
        return frame
    drop = later.get_column("__sessionrec_pos")
    return (
        frame.with_row_index("__sessionrec_pos")
        .filter(~pl.col("__sessionrec_pos").is_in(drop.implode()))
        .drop("__sessionrec_pos")
    )


# -- sessions cut by inactivity ---------------------------------------------------------
def cut_sessions_at_gaps(
    frame: pl.DataFrame, gap_s: float, by: str = "session_id"
) -> tuple[pl.DataFrame, int]:
    """Cut each ``by`` group's clicks (in time order) after gaps longer than ``gap_s``.

    A click starts a new session when it belongs to another ``by`` value than the click
    before it, or when it comes more than ``gap_s`` seconds after it. Sessions get new
    Int64 ids ``0, 1, ...`` in ``(by, time)`` order.

    Returns:
        ``(frame with a new session_id, number of sessions added by the cuts)``.
    """
    if not gap_s > 0:
        raise ConfigError(f"session_gap_s must be > 0 seconds, got {gap_s}")
    before = frame.get_column(by).n_unique() if frame.height else 0
    ordered = frame.sort([by, "timestamp", "row_nr"])
    starts = pl.col(by).ne_missing(pl.col(by).shift(1)) | (
        pl.col("timestamp").diff().fill_null(0.0) > gap_s
    )
    cut = ordered.with_columns(session_id=(starts.cum_sum() - 1).cast(pl.Int64))
    after = int(cut.get_column("session_id").max() or -1) + 1 if cut.height else 0
    return cut, after - before


# -- the reader -------------------------------------------------------------------------
def _scan(
    path: Path, kind: str, preset: FormatPreset | None, separator: str | None, source: str
) -> tuple[pl.LazyFrame, str | None]:
    """Lazy scan with a row index; returns ``(frame, separator)``."""
    if kind == "parquet":
        with _reading(source, "Parquet"):
            return pl.scan_parquet(path, row_index_name=_ROW), None
    if kind == "ndjson":
        with _reading(source, "NDJSON"):
            return pl.scan_ndjson(path, row_index_name=_ROW, infer_schema_length=1000), None
    line = _first_line(path)
    if not line.strip():
        raise EmptyDataError(f"{source}: no data: the first line is empty (expected a header)")
    sep = separator or (preset.separator if preset else None) or _sniff_separator(line)
    fields = line.split(sep)
    has_header = True
    new_columns: list[str] | None = None
    if preset is not None and preset.header_names is not None:
        has_header = not _looks_like_int(fields[0])
        new_columns = list(preset.header_names)
    scan = pl.scan_csv(
        path,
        separator=sep,
        has_header=has_header,
        new_columns=new_columns,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        row_index_name=_ROW,
        quote_char='"',
        with_column_names=(
            (lambda cols: [_clean_name(c) for c in cols]) if new_columns is None else None
        ),
        raise_if_empty=False,
    )
    return scan, sep


def read_clicks(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame,
    format: str = "auto",
    columns: ColumnMap | None = None,
    *,
    separator: str | None = None,
    on_bad_rows: OnBadRows = "error",
    event_types: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    drop_duplicates: bool = True,
) -> Clicks:
    """Read a clickstream dump (a file, or a polars frame) into canonical columns.

    Args:
        source: a CSV/TSV/Parquet/NDJSON file (optionally gzip-compressed) or a frame.
        format: a preset name (:data:`PRESETS`) or ``"auto"``.
        columns: column map; its set fields override the preset's.
        separator: field separator for text files (default: the preset's, or sniffed).
        on_bad_rows: ``"error"`` raises :class:`BadRowsError` naming the first bad row
            of each kind; ``"skip"`` drops bad rows and counts them in the report.
        event_types: event types to keep (default: the preset's, else all).
        session_gap_s: cut sessions after this much inactivity (default: the preset's).
        drop_duplicates: drop exact duplicate rows (counted in the report).

    Returns:
        :class:`Clicks`: the canonical frame and an :class:`IngestReport`.

    Raises:
        SchemaError: unreadable file, missing columns, wrong column types.
        BadRowsError: bad rows with ``on_bad_rows="error"``.
        EmptyDataError: an empty file, or no rows left.
        ConfigError: an unknown format or option.
    """
    _check_options(format, on_bad_rows, separator, session_gap_s)
    with _scanned(source, format, separator) as (raw, label, kind, compression, sep, fmt, _):
        # the frame is collected inside this block, before a temporary file goes away
        return _read(
            _plan(
                raw,
                label,
                kind,
                compression,
                sep,
                fmt,
                columns,
                on_bad_rows,
                event_types,
                session_gap_s,
                drop_duplicates,
            )  # fmt: skip
        )


@dataclass
class ClickBuckets:
    """A dump split by session into buckets on disk (:func:`read_click_buckets`).

    Attributes:
        directory: the bucket folders (``__sessionrec_bucket=B/*.parquet``).
        n_buckets: number of buckets; bucket ``B`` holds every click of the sessions
            whose id hashes to ``B`` (so no session spans two buckets).
        report: rows read and bad rows of the whole dump; the counts of the later steps
            (event types, duplicates, gaps, rows) grow as buckets are read.
    """

    directory: Path
    n_buckets: int
    plan: _Plan

    @property
    def report(self) -> IngestReport:
        return self.plan.report

    @property
    def format(self) -> str:
        return self.plan.report.format

    def read(self, bucket: int) -> Clicks:
        """Bucket ``bucket`` in canonical columns (bad rows, other events and duplicates
        dropped, sessions cut at gaps), in file order; possibly empty."""
        if not 0 <= bucket < self.n_buckets:
            raise IndexError(f"bucket {bucket} of {self.n_buckets}")
        files = sorted((self.directory / f"{_BUCKET}={bucket}").glob("*.parquet"))
        if files:
            frame = pl.read_parquet(files)
        else:
            frame = pl.DataFrame(schema=self.plan.plan.collect_schema())
        return _finish(frame, self.plan, bucket=True)


def read_click_buckets(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame,
    directory: str | os.PathLike[str],
    *,
    n_buckets: int | None = None,
    clicks_per_bucket: int = 2_000_000,
    format: str = "auto",
    columns: ColumnMap | None = None,
    separator: str | None = None,
    on_bad_rows: OnBadRows = "error",
    event_types: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    drop_duplicates: bool = True,
) -> ClickBuckets:
    """Split a dump larger than memory into buckets of whole sessions, in one streaming pass.

    The dump is scanned as by :func:`read_clicks` and written by polars' streaming engine
    to Parquet under ``directory``, bucket :math:`b = h(\\text{session}) \\bmod B` (the
    session id, or the user id when sessions are cut from a user's clicks, hashed by
    polars with seed 0), so each bucket holds whole sessions and memory stays bounded by
    the engine's buffers, not by the dump. Bad rows are checked over the whole dump
    (``on_bad_rows="error"`` raises here, before any bucket is used); the rest of
    :func:`read_clicks`'s steps run when a bucket is read (:meth:`ClickBuckets.read`).

    Args:
        directory: an empty or new folder for the buckets (the caller removes it).
        n_buckets: :math:`B`; default: rows of the dump / ``clicks_per_bucket``, rounded up.
        clicks_per_bucket: the bucket size aimed at when ``n_buckets`` is not given.
        other arguments: as in :func:`read_clicks`.

    Raises:
        as :func:`read_clicks`; ConfigError: bad bucket counts.
    """
    _check_options(format, on_bad_rows, separator, session_gap_s)
    if n_buckets is not None and not (isinstance(n_buckets, int) and n_buckets >= 1):
        raise ConfigError(f"n_buckets must be an integer >= 1, got {n_buckets!r}")
    if not (isinstance(clicks_per_bucket, int) and clicks_per_bucket >= 1):
        raise ConfigError(f"clicks_per_bucket must be an integer >= 1, got {clicks_per_bucket!r}")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory}: the bucket folder must be empty")
    with _scanned(source, format, separator) as (raw, label, kind, compression, sep, fmt, path):
        p = _plan(
            raw, label, kind, compression, sep, fmt, columns, on_bad_rows, event_types,
            session_gap_s, drop_duplicates,
        )  # fmt: skip
        if n_buckets is None:
            with _reading(label, _KIND_NAMES.get(kind, kind)):
                rows = _approximate_rows(raw, path, kind)
            n_buckets = max(1, math.ceil(rows / clicks_per_bucket))
        by = "session_id" if p.cmap.session is not None else "user_id"
        bucket = (pl.col(by).hash(seed=0) % n_buckets).alias(_BUCKET)
        with _reading(label, _KIND_NAMES.get(kind, kind)):
            p.plan.with_columns(bucket).sink_parquet(
                pl.PartitionBy(directory, key=_BUCKET, include_key=False), mkdir=True
            )
        written = sorted(directory.rglob("*.parquet")) if directory.exists() else []
        files = pl.scan_parquet(written) if written else None
        rows_read = 0 if files is None else int(files.select(pl.len()).collect().item())
        p.report.rows_read = rows_read
        if rows_read == 0:
            raise EmptyDataError(f"{label}: no data rows (the file has a header only, or nothing)")
        assert files is not None
        # inside the block: a bad row's values are read from the (decompressed) file
        _check_bad_rows(files, rows_read, p)
    return ClickBuckets(directory, n_buckets, p)


def _check_options(
    format: str, on_bad_rows: str, separator: str | None, session_gap_s: float | None
) -> None:
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if on_bad_rows not in ("error", "skip"):
        raise ConfigError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
    if separator is not None and len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    if session_gap_s is not None and not session_gap_s > 0:
        raise ConfigError(f"session_gap_s must be > 0 seconds, got {session_gap_s}")


def _approximate_rows(raw: pl.LazyFrame, path: Path | None, kind: str) -> int:
    """Rows of a dump, to size buckets: Parquet's metadata; lines of a text file, read in
    16 MB blocks (a polars count would map the whole file into memory); a frame's height."""
    if path is None or kind == "parquet":
        return int(raw.select(pl.len()).collect(engine="streaming").item())
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n") - (kind == "csv")  # a last line without "\n"; header


@contextmanager
def _scanned(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame,
    format: str,
    separator: str | None,
) -> Iterator[tuple[pl.LazyFrame, str, str, str | None, str | None, str, Path | None]]:
    """``(raw scan with a row index, label, file kind, compression, separator, format,
    path read)`` of a file or a frame (path ``None``); a gzip file is decompressed to a
    temporary file (the path read) that lives until the block ends."""
    if isinstance(source, pl.DataFrame | pl.LazyFrame):
        yield source.lazy().with_row_index(_ROW), "<frame>", "frame", None, None, format, None
        return
    path = Path(source)
    label = str(source)
    if not path.is_file():
        raise ConfigError(f"{label}: no such file; pass the clickstream dump with --clicks FILE")
    if path.stat().st_size == 0:
        raise EmptyDataError(f"{label}: the file is empty (0 bytes)")
    kind, compression = _detect_kind(path)
    with tempfile.TemporaryDirectory(prefix="sessionrec-ingest-") as tmp:
        if compression == "gzip":
            path = _gunzip(path, tmp)
            if path.stat().st_size == 0:
                raise EmptyDataError(f"{label}: the compressed file holds no data")
            kind, _ = _detect_kind(path)
        if format == "auto" and kind == "csv":
            line = _first_line(path)
            if _headerless_yoochoose(line.split(separator or _sniff_separator(line))):
                format = "yoochoose"
        preset = PRESETS.get(format)
        raw, sep = _scan(path, kind, preset, separator, label)
        yield raw, label, kind, compression, sep, format, path


@dataclass
class _Plan:
    """A dump's lazy plan in canonical columns (plus the bad-row code) and how to finish
    the rows it yields (bad rows, event types, duplicates, inactivity gaps)."""

    plan: pl.LazyFrame
    raw: pl.LazyFrame
    report: IngestReport
    cmap: ColumnMap
    session_col: str
    time_cols: list[str]
    events: list[str] | None
    drop_duplicates: bool
    gap: float | None

    def collect(self) -> pl.DataFrame:
        """The plan's rows (streaming engine); errors name the file."""
        r = self.report
        with _reading(r.source, _KIND_NAMES.get(r.file_kind, r.file_kind)):
            return self.plan.collect(engine="streaming")


def _read(plan: _Plan) -> Clicks:
    """Every row of ``plan``, in memory, finished (:func:`_finish`)."""
    frame = plan.collect()
    plan.report.rows_read = frame.height
    if frame.height == 0:
        raise EmptyDataError(
            f"{plan.report.source}: no data rows (the file has a header only, or nothing)"
        )
    _check_bad_rows(frame.lazy(), frame.height, plan)
    return _finish(frame, plan)


def _plan(
    raw: pl.LazyFrame,
    label: str,
    kind: str,
    compression: str | None,
    sep: str | None,
    format: str,
    columns: ColumnMap | None,
    on_bad_rows: OnBadRows,
    event_types: Sequence[str] | None,
    session_gap_s: float | None,
    drop_duplicates: bool,
) -> _Plan:
    with _reading(label, _KIND_NAMES.get(kind, kind)):
        schema = raw.collect_schema()
    names = [n for n in schema.names() if n != _ROW]

    # which preset and which columns
    name = format
    if format == "auto":
        name = _detect_preset(names) or "generic"
    preset = PRESETS.get(name)
    base = preset.columns if preset else _guess_columns(names)
    cmap = base.merged(columns)
    _require_columns(label, names, cmap)
    gap = session_gap_s if session_gap_s is not None else (preset.session_gap_s if preset else None)
    if cmap.session is None and gap is None:
        raise ConfigError(
            f"{label}: sessions are cut from the user column {cmap.user!r}, which needs "
            "session_gap_s (--session-gap-s SECONDS)"
        )
    events = (
        list(event_types)
        if event_types is not None
        else (list(preset.event_types) if preset and preset.event_types else None)
    )
    if events is not None and cmap.event is None:
        raise ConfigError(
            f"{label}: event types {events} were selected but no event column is mapped; pass --event-col NAME"
        )

    report = IngestReport(
        source=label,
        format=name,
        file_kind=kind,
        compression=compression,
        separator=sep,
        columns={
            k: v
            for k, v in asdict(cmap).items()
            if v is not None and k not in ("time_unit", "offset_unit", "id_type")
        },
        on_bad_rows=on_bad_rows,
        event_types=events,
        duplicates_kept=not drop_duplicates,
        session_gap_s=gap,
    )

    # types
    session_col = cmap.session if cmap.session is not None else cmap.user
    assert session_col is not None and cmap.item is not None
    session_kind = _resolve_id_kind(raw, session_col, schema[session_col], cmap.id_type, label)
    item_kind = _resolve_id_kind(raw, cmap.item, schema[cmap.item], cmap.id_type, label)
    report.session_id_kind, report.item_id_kind = session_kind, item_kind
    if cmap.time is not None:
        time_cols = [cmap.time]
        unit = _resolve_time_unit(raw, cmap.time, schema[cmap.time], cmap.time_unit, label)
    else:
        assert cmap.date is not None and cmap.offset is not None
        time_cols = [cmap.date, cmap.offset]
        unit = f"date + offset ({cmap.offset_unit})"
    report.time_unit = unit
    mapped = [c for c in (session_col, cmap.item, *time_cols, cmap.event, cmap.category) if c]
    text_mapped = [c for c in dict.fromkeys(mapped) if _is_text(schema[c])]

    # stage 1: strip the text of every mapped column once (names kept, so the
    # expressions below read plain columns and nothing is computed twice)
    staged = raw.with_columns([_text(c) for c in text_mapped])
    # stage 2: typed values under internal names
    v = {k: f"__sessionrec_{k}" for k in ("session", "item", "time", "day", "offset")}
    values = {
        v["session"]: _id_value(session_col, schema[session_col], session_kind, label),
        v["item"]: _id_value(cmap.item, schema[cmap.item], item_kind, label),
    }
    if cmap.time is not None:
        shapes = _ISO_SHAPES
        if unit == "iso" and _is_text(schema[cmap.time]):
            shapes = tuple(_iso_shapes_of(raw, cmap.time, label))
            report.time_formats = list(shapes)
        values[v["time"]] = _seconds_expr(cmap.time, schema[cmap.time], unit, label, shapes)
    else:
        assert cmap.date is not None and cmap.offset is not None
        values[v["day"]] = _day_expr(cmap.date, schema[cmap.date])
        values[v["offset"]] = _seconds_expr(
            cmap.offset, schema[cmap.offset], cmap.offset_unit, label
        )
    staged = staged.with_columns([e.alias(k) for k, e in values.items()])
    if cmap.time is None:
        staged = staged.with_columns(
            (pl.col(v["day"]).cast(pl.Float64) + pl.col(v["offset"])).alias(v["time"])
        )
    seconds = pl.col(v["time"])

    # stage 3: the bad-row code, the first rule a row breaks (0: a good row)
    utf8_bad = pl.any_horizontal(
        [pl.col(c).str.contains("\ufffd", literal=True).fill_null(False) for c in text_mapped]
        or [pl.lit(False)]
    )
    bad = pl.coalesce(
        pl.when(utf8_bad).then(1),
        _id_bad(session_col, schema[session_col], session_kind, pl.col(v["session"]), (2, 4, 6, 8)),
        _id_bad(cmap.item, schema[cmap.item], item_kind, pl.col(v["item"]), (3, 5, 7, 9)),
        pl.when(seconds.is_null() | ~seconds.is_finite()).then(10),
        pl.when((seconds < 0) | (seconds >= MAX_TIMESTAMP_S)).then(11),
        pl.lit(0),
    ).cast(pl.UInt8)

    out = [
        pl.col(v["session"]).alias("session_id" if cmap.session else "user_id"),
        pl.col(v["item"]).alias("item_id"),
    ]
    if cmap.time is None:
        out += [pl.col(v["day"]).alias("day"), pl.col(v["offset"]).alias("day_offset")]
    out.append(seconds.alias("timestamp"))
    if cmap.event is not None:
        out.append(pl.col(cmap.event).alias("event_type"))
    if cmap.category is not None:
        out.append(pl.col(cmap.category).alias("category"))
    plan = staged.select(*out, pl.col(_ROW).alias("row_nr"), bad.alias(_BAD))
    return _Plan(plan, raw, report, cmap, session_col, time_cols, events, drop_duplicates, gap)


def _finish(frame: pl.DataFrame, p: _Plan, bucket: bool = False) -> Clicks:
    """Rows of ``p.plan`` (all, or one bucket of sessions) -> :class:`Clicks`: bad rows
    dropped (:func:`_check_bad_rows` has raised already if they are errors), other event
    types dropped, exact duplicates dropped, sessions cut at gaps; the counts are added
    to ``p.report``. An empty result is an error unless ``bucket``."""
    report, events, gap, cmap = p.report, p.events, p.gap, p.cmap
    label = report.source
    if report.bad_rows:
        frame = frame.filter(pl.col(_BAD) == 0)
    if events is not None:
        keep = pl.col("event_type").is_in(events)
        before = frame.height
        frame = frame.filter(keep)
        report.rows_other_events += before - frame.height
    if p.drop_duplicates and frame.height:
        before = frame.height
        frame = drop_exact_duplicates(frame.drop(_BAD))
        report.duplicates_dropped += before - frame.height
    if _BAD in frame.columns:
        frame = frame.drop(_BAD)
    if frame.height == 0 and not bucket:
        raise EmptyDataError(
            f"{label}: no rows left after dropping {report.rows_skipped} bad rows and "
            f"{report.rows_other_events} rows of other event types (kept: {events})"
        )
    if gap is not None:
        by = "session_id" if cmap.session else "user_id"
        frame, added = cut_sessions_at_gaps(frame, gap, by=by)
        report.sessions_cut_at_gaps += added
        if cmap.session is None:
            report.session_id_kind = "int"
    report.rows += frame.height
    return Clicks(frame, report)


def _check_bad_rows(rows: pl.LazyFrame, n_rows: int, p: _Plan) -> None:
    """Count the bad rows of ``rows`` (all ``n_rows`` rows of the dump) by reason into
    the report; with ``on_bad_rows="error"`` raise :class:`BadRowsError` naming the first
    bad row of each kind (and its values in the file)."""
    report, raw, cmap, session_col, time_cols = p.report, p.raw, p.cmap, p.session_col, p.time_cols
    label, kind = report.source, report.file_kind
    summary = (
        rows.filter(pl.col(_BAD) > 0)
        .group_by(_BAD)
        .agg(pl.len().alias("n"), pl.col("row_nr").min().alias("first"))
        .sort(_BAD)
        .collect()
    )
    if summary.height == 0:
        return
    counts = {BAD_ROW_REASONS[int(c)]: int(n) for c, n in zip(summary[_BAD], summary["n"])}
    report.bad_rows = counts
    total = sum(counts.values())
    if report.on_bad_rows == "skip":
        report.rows_skipped = total
        return

    column_of = {
        1: None,
        2: session_col,
        4: session_col,
        6: session_col,
        8: session_col,
        3: cmap.item,
        5: cmap.item,
        7: cmap.item,
        9: cmap.item,
        10: "/".join(time_cols),
        11: "/".join(time_cols),
    }
    firsts = [int(r) for r in summary["first"]]
    mapped = [c for c in (session_col, cmap.item, *time_cols, cmap.event, cmap.category) if c]
    try:
        with _reading(label, "a table"):
            rows = raw.filter(pl.col(_ROW).is_in(firsts)).select(_ROW, *mapped).collect()
        values = {int(r[_ROW]): r for r in rows.iter_rows(named=True)}
    except SessionrecError:
        values = {}
    header_lines = 1 if kind == "csv" else 0
    parts = []
    for code, n, first in zip(summary[_BAD], summary["n"], firsts):
        code = int(code)
        col = column_of[code]
        row = values.get(first, {})
        if col is None:
            shown = {c: row.get(c) for c in mapped}
            where = "columns " + ", ".join(f"{c}={_short(v)}" for c, v in shown.items())
        elif "/" in col:
            where = "columns " + ", ".join(f"{c}={_short(row.get(c))}" for c in time_cols)
        else:
            where = f"column {col!r} = {_short(row.get(col))}"
        line = f" (line {first + 1 + header_lines})" if kind == "csv" else ""
        parts.append(
            f"{BAD_ROW_REASONS[code]}: {int(n)} row(s), first at data row {first + 1}{line}, "
            f"{where}"
        )
    raise BadRowsError(
        f"{label}: {total} bad row(s) out of {n_rows}: " + "; ".join(parts) + ". "
        "Fix the file, map other columns (--session-col/--item-col/--time-col, "
        "--time-unit, --id-type str for text ids), or pass --on-bad-rows skip to drop such rows (they are counted)."
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_timestamp(seconds: float) -> str:
    """Unix seconds as ISO-8601 UTC text (for reports)."""
    if not math.isfinite(seconds):
        return str(seconds)
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
