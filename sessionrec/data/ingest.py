"""Read clickstream dumps into one canonical table of clicks, with polars.

Whatever shape a dump has (CSV, TSV, Parquet, NDJSON, gzip-compressed CSV/TSV/NDJSON;
any column names; Unix seconds, milliseconds, microseconds, nanoseconds, ISO-8601 or a
date plus an offset), it comes out as one :class:`polars.DataFrame` with the *canonical
columns*:

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

A dump is read in steps; the rules of each are documented in the module that does it:

1. the file is opened and scanned lazily (:mod:`sessionrec.data.files`: file kinds,
   gzip, separators, header lines, the row index);
2. its columns are mapped (:mod:`sessionrec.data.presets`: the presets of the public
   datasets, ``format="auto"``, and a :class:`ColumnMap` that overrides any of it);
3. ids and timestamps are typed and every row gets a bad-row code
   (:mod:`sessionrec.data.parsing`: id kinds, time units, ISO-8601 shapes, the reasons
   a row is bad; :func:`~sessionrec.data.presets.decide_types` records each decision
   and who made it in the report, and ids read as integers that do not keep their text,
   ``"00123"``, are counted and warned about); with ``on_bad_rows="error"`` (the default) the first bad row of each
   kind is named in a :class:`~sessionrec.errors.BadRowsError`, with ``"skip"`` bad
   rows are dropped and counted in the report;
4. event types: rows whose event type is not selected are dropped and counted
   (``rows_other_events``); RetailRocket selects ``view`` unless told otherwise;
5. the rows are cleaned (:mod:`sessionrec.data.cleaning`): exact duplicate rows are
   dropped (unless ``drop_duplicates=False``), and sessions are cut at inactivity gaps
   (RetailRocket, or ``session_gap_s``).

CSV is collected with polars' streaming engine, so the text of a dump never has to fit
in memory: only the canonical columns do (about 30 bytes per click with int ids). A dump
larger than memory is split into buckets of whole sessions on disk
(:func:`read_click_buckets`).

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.data.cleaning import cut_sessions_at_gaps, drop_exact_duplicates
from sessionrec.data.files import (
    KIND_NAMES,
    ROW_INDEX,
    approximate_rows,
    first_line,
    opened,
    reading,
    scan,
    sniff_separator,
)
from sessionrec.data.parsing import (
    BAD_ROW_REASONS,
    ISO_SHAPES,
    OnBadRows,
    bad_row_code,
    bad_rows_error,
    changed_as_int,
    changed_ids_message,
    day_expr,
    id_value,
    is_text,
    iso_shapes_of,
    seconds_expr,
    stripped_text,
)
from sessionrec.data.presets import (
    PRESETS,
    ColumnMap,
    check_read_options,
    decide_types,
    header_of,
    headerless_yoochoose,
    resolve_columns,
)
from sessionrec.errors import ConfigError, EmptyDataError, SessionrecError

__all__ = [
    "ColumnMap",
    "IngestReport",
    "Clicks",
    "read_clicks",
    "ClickBuckets",
    "read_click_buckets",
]

# internal column names (cannot clash with user columns in practice)
_BAD = "__sessionrec_bad"
_BUCKET = "__sessionrec_bucket"
_CHANGED = {"session": "__sessionrec_session_changed", "item": "__sessionrec_item_changed"}


@dataclass
class IngestReport:
    """What reading a dump did: how its columns were typed, rows read, dropped and why.

    The typing decisions (:mod:`sessionrec.data.parsing`): ``session_id_kind`` and
    ``item_id_kind`` (``"int"`` or ``"str"``) with their ``*_reason`` (given, the
    preset's, or what the first 1,000 ids showed, e.g. ``"leading zeros ('00123')
    would be lost as integers"``); ``session_ids_changed_as_int`` and
    ``item_ids_changed_as_int``, the rows read as integers whose text the integer does
    not keep (``"00123"`` -> 123; each kind also a line in ``warnings``); ``time_unit``
    (``"s"``, ``"ms"``, ``"us"``, ``"ns"``, ``"iso"``, ``"datetime"`` or ``"date +
    offset (UNIT)"``) and ``time_unit_decided_by`` (``"given"``, ``"preset"``,
    ``"magnitude"`` of the numbers, ``"text"`` that is not numbers, ``"dtype"`` of a
    date/datetime column, or ``"default"``).
    """

    source: str
    format: str
    file_kind: str
    compression: str | None = None
    separator: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    session_id_kind: str = "int"
    session_id_kind_reason: str | None = None
    item_id_kind: str = "int"
    item_id_kind_reason: str | None = None
    session_ids_changed_as_int: int = 0
    item_ids_changed_as_int: int = 0
    time_unit: str = "s"
    time_unit_decided_by: str | None = None
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
    warnings: list[str] = field(default_factory=list)

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


# -- the reader -------------------------------------------------------------------------
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
        format: a preset name (:data:`~sessionrec.data.presets.PRESETS`) or ``"auto"``.
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
    check_read_options(format, on_bad_rows, separator, session_gap_s)
    with _scanned(source, format, separator) as (raw, label, kind, compression, sep, fmt, _):
        # the frame is collected inside this block, before a temporary file goes away
        p = _plan(
            raw, label, kind, compression, sep, fmt, columns, on_bad_rows, event_types,
            session_gap_s, drop_duplicates,
        )  # fmt: skip
        return _read(p)


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
    check_read_options(format, on_bad_rows, separator, session_gap_s)
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
            with reading(label, KIND_NAMES.get(kind, kind)):
                rows = approximate_rows(raw, path, kind)
            n_buckets = max(1, math.ceil(rows / clicks_per_bucket))
        by = "session_id" if p.cmap.session is not None else "user_id"
        bucket = (pl.col(by).hash(seed=0) % n_buckets).alias(_BUCKET)
        with reading(label, KIND_NAMES.get(kind, kind)):
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
        _count_changed_ids(files, p, stacklevel=3)
    return ClickBuckets(directory, n_buckets, p)


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
        yield source.lazy().with_row_index(ROW_INDEX), "<frame>", "frame", None, None, format, None
        return
    label = str(source)
    with opened(source, "the clickstream dump", "read_clicks.source") as (path, kind, compression):
        line = first_line(path) if kind == "csv" else ""
        if format == "auto" and kind == "csv":
            if headerless_yoochoose(line.split(separator or sniff_separator(line))):
                format = "yoochoose"
        preset = PRESETS.get(format)
        sep = separator or (preset.separator if preset else None)
        has_header, names = True, None
        if kind == "csv":
            has_header, names = header_of(preset, line, sep or sniff_separator(line))
        raw, sep = scan(path, kind, label, sep, names, has_header)
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
    changed: dict[str, str]  # role -> its id column, read as integers from text

    def collect(self) -> pl.DataFrame:
        """The plan's rows (streaming engine); errors name the file."""
        r = self.report
        with reading(r.source, KIND_NAMES.get(r.file_kind, r.file_kind)):
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
    _count_changed_ids(frame.lazy(), plan, stacklevel=4)
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
    with reading(label, KIND_NAMES.get(kind, kind)):
        schema = raw.collect_schema()
    names = [n for n in schema.names() if n != ROW_INDEX]

    # which preset and which columns
    name, cmap, gap, events = resolve_columns(
        label, names, format, columns, event_types, session_gap_s
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

    # types: id kinds and the time unit, and who decided them
    session_col = cmap.session if cmap.session is not None else cmap.user
    assert session_col is not None and cmap.item is not None
    types = decide_types(raw, schema, label, name, columns, cmap)
    for key, value in asdict(types).items():
        setattr(report, key, value)
    session_kind, item_kind, unit = types.session_id_kind, types.item_id_kind, types.time_unit
    time_cols = [c for c in ((cmap.time,) if cmap.time else (cmap.date, cmap.offset)) if c]
    mapped = [c for c in (session_col, cmap.item, *time_cols, cmap.event, cmap.category) if c]
    text_mapped = [c for c in dict.fromkeys(mapped) if is_text(schema[c])]

    # stage 1: strip the text of every mapped column once (names kept, so the
    # expressions below read plain columns and nothing is computed twice)
    staged = raw.with_columns([stripped_text(c) for c in text_mapped])
    # stage 2: typed values under internal names
    v = {k: f"__sessionrec_{k}" for k in ("session", "item", "time", "day", "offset")}
    values = {
        v["session"]: id_value(session_col, schema[session_col], session_kind, label),
        v["item"]: id_value(cmap.item, schema[cmap.item], item_kind, label),
    }
    if cmap.time is not None:
        shapes = ISO_SHAPES
        if unit == "iso" and is_text(schema[cmap.time]):
            shapes = tuple(iso_shapes_of(raw, cmap.time, label))
            report.time_formats = list(shapes)
        values[v["time"]] = seconds_expr(cmap.time, schema[cmap.time], unit, label, shapes)
    else:
        assert cmap.date is not None and cmap.offset is not None
        values[v["day"]] = day_expr(cmap.date, schema[cmap.date])
        values[v["offset"]] = seconds_expr(
            cmap.offset, schema[cmap.offset], cmap.offset_unit, label
        )
    staged = staged.with_columns([e.alias(k) for k, e in values.items()])
    if cmap.time is None:
        staged = staged.with_columns(
            (pl.col(v["day"]).cast(pl.Float64) + pl.col(v["offset"])).alias(v["time"])
        )
    seconds = pl.col(v["time"])

    # stage 3: the bad-row code, the first rule a row breaks (0: a good row)
    bad = bad_row_code(
        schema, text_mapped, (session_col, session_kind, pl.col(v["session"])),
        (cmap.item, item_kind, pl.col(v["item"])), seconds,
    )  # fmt: skip

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
    # ids read as integers whose text the integer does not keep ("00123"), to count
    ids = (("session", session_col, session_kind), ("item", cmap.item, item_kind))
    changed = {role: col for role, col, kind in ids if kind == "int" and is_text(schema[col])}
    out += [changed_as_int(col).alias(_CHANGED[role]) for role, col in changed.items()]
    plan = staged.select(*out, pl.col(ROW_INDEX).alias("row_nr"), bad.alias(_BAD))
    return _Plan(
        plan, raw, report, cmap, session_col, time_cols, events, drop_duplicates, gap, changed
    )


def _finish(frame: pl.DataFrame, p: _Plan, bucket: bool = False) -> Clicks:
    """Rows of ``p.plan`` (all, or one bucket of sessions) -> :class:`Clicks`: bad rows
    dropped (:func:`_check_bad_rows` has raised already if they are errors), other event
    types dropped, exact duplicates dropped, sessions cut at gaps; the counts are added
    to ``p.report``. An empty result is an error unless ``bucket``."""
    report, events, gap, cmap = p.report, p.events, p.gap, p.cmap
    label = report.source
    frame = frame.drop(_CHANGED.values(), strict=False)
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

    mapped = [c for c in (session_col, cmap.item, *time_cols, cmap.event, cmap.category) if c]
    shown = list(dict.fromkeys(mapped))
    columns = {None: shown, "session": [session_col], "item": [cmap.item], "time": time_cols}
    found = [
        (int(c), int(n), int(r)) for c, n, r in zip(summary[_BAD], summary["n"], summary["first"])
    ]
    try:
        with reading(label, "a table"):
            firsts = pl.col(ROW_INDEX).is_in([r for _, _, r in found])
            rows = raw.filter(firsts).select(ROW_INDEX, *mapped).collect()
        values = {int(r[ROW_INDEX]): r for r in rows.iter_rows(named=True)}
    except SessionrecError:
        values = {}
    header_lines = 1 if kind == "csv" else None
    raise bad_rows_error(label, n_rows, found, values, columns, header_lines, report.time_unit)


def _count_changed_ids(rows: pl.LazyFrame, p: _Plan, stacklevel: int) -> None:
    """Count the good rows of ``rows`` whose ids were read as integers that do not keep
    their text (``"00123"`` -> 123) into ``p.report``, with a warning per id column."""
    report = p.report
    for role, col in p.changed.items():
        hit = pl.col(_CHANGED[role]) & (pl.col(_BAD) == 0)
        n, row = rows.select(hit.sum(), pl.col("row_nr").filter(hit).min()).collect().row(0)
        if n:
            with reading(report.source, "a table"):
                first = p.raw.filter(pl.col(ROW_INDEX) == row).select(stripped_text(col))
                text = first.collect().item()
            setattr(report, f"{role}_ids_changed_as_int", n)
            who = role if p.cmap.session is not None or role == "item" else "user"
            report.warnings.append(changed_ids_message(report.source, who, col, n, text, row))
            warnings.warn(report.warnings[-1], UserWarning, stacklevel=stacklevel)
