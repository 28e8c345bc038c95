"""Which columns of a dump hold what: the column map, the presets of public datasets, and
how ``format="auto"`` recognises a dump.

Presets (:data:`PRESETS`) describe the public datasets; ``format="auto"`` recognises
them from the header (or, for the header-less YooChoose file, from the first line:
:func:`headerless_yoochoose`) and otherwise guesses the columns from common names
(``session_id``, ``itemId``, ``timestamp``, ... compared lower-case, letters and digits
only). A :class:`ColumnMap` overrides any of it (:meth:`ColumnMap.merged`); a column it
names that the file lacks is refused. Every role left without a column and every named
column the file lacks is listed in one error, each with the file's columns that look like
it (difflib). A preset also sets the inactivity gap at which sessions are cut and the
event types kept (RetailRocket: 30 minutes, and ``view``), unless they are given.
:func:`resolve_columns` applies these rules.

:func:`decide_types` decides how the mapped columns are read (id kinds, time unit; the
rules are in :mod:`sessionrec.data.parsing`) and records who decided: the caller's
column map (``"given"``), the preset (``"preset"``), or the data.

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from difflib import get_close_matches
from typing import Literal

import polars as pl

from sessionrec.data.parsing import (
    IdType,
    TimeUnit,
    looks_like_int,
    resolve_id_kind,
    resolve_time_unit,
)
from sessionrec.errors import ConfigError, SchemaError

__all__ = [
    "ColumnMap",
    "FormatPreset",
    "PRESETS",
    "FORMATS",
    "TimeUnit",
    "IdType",
    "header_of",
    "set_by",
    "ColumnTypes",
    "decide_types",
    "check_read_options",
    "headerless_yoochoose",
    "resolve_columns",
]


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a dump hold what.

    Attributes:
        session: session id column; ``None`` when sessions are cut from ``user`` clicks
            by inactivity (then ``session_gap_s`` is required).
        item: item id column.
        time: timestamp column (``None`` for date + offset formats).
        time_unit: ``"s"``, ``"ms"``, ``"us"``, ``"ns"`` (Unix epoch numbers), ``"iso"``
            (ISO-8601 text), or ``"auto"``: decided from the first 1,000 values, ISO-8601
            when most are not numbers, else the unit of their median's magnitude (below
            ``1e11``: s, ``1e14``: ms, ``1e17``: us, else ns; see
            :mod:`sessionrec.data.parsing`).
        date: date column (``YYYY-MM-DD``, read as UTC midnight), for date + offset.
        offset: offset column added to ``date``, in ``offset_unit``.
        offset_unit: ``"ms"`` or ``"s"``.
        event: event type column (optional).
        category: item category column (optional).
        user: user (visitor) column (optional; needed when ``session`` is ``None``).
        id_type: ``"int"``, ``"str"`` or ``"auto"``: int when the first 1,000 ids are
            integers whose text an integer keeps; strings when one is not an integer or
            has leading zeros, a plus sign or is ``"-0"`` (``"00123"`` stays
            ``"00123"``).
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
        name: the ``format`` name (``sessionrec prepare --format``).
        columns: the column map.
        separator: field separator for text files (``None``: sniffed).
        header_names: names of a header-less file's columns (``None``: the file has a
            header). A first line that does not start with an integer is taken for a
            header and skipped (:func:`header_of`).
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

#: Every ``format`` value (``sessionrec prepare --format``).
FORMATS: tuple[str, ...] = (*PRESETS, "auto")

# normalised column names that ``auto`` recognises
_GUESS = {
    "session": ("sessionid", "session", "sessid", "sid"),
    "item": ("itemid", "item", "productid", "product", "articleid", "sku", "iid"),
    "time": (
        "timestamp",
        "time",
        "ts",
        "datetime",
        "eventtime",
        "eventtimestamp",
        "clicktime",
        "date",
    ),
    "event": ("eventtype", "event"),
    "category": ("categoryid", "category"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def header_of(
    preset: FormatPreset | None, line: str, separator: str
) -> tuple[bool, list[str] | None]:
    """``(has_header, column names)`` of a text file of ``preset`` whose first line is
    ``line``: a header-less preset's names, the first line being a header (skipped) when
    its first field is not an integer; ``(True, None)`` (the file's own header) for
    other presets."""
    if preset is None or preset.header_names is None:
        return True, None
    return not looks_like_int(line.split(separator)[0]), list(preset.header_names)


def set_by(format: str, columns: ColumnMap | None, field: str) -> str | None:
    """Who set ``field`` (``"time_unit"``, ``"id_type"``, ``"offset_unit"``, ...) of the
    column map a dump of preset ``format`` (a resolved name) is read with: ``"given"``
    (``columns``, the caller's), ``"preset"`` (the format preset's), or ``None`` (left at
    :class:`ColumnMap`'s default, e.g. ``"auto"``: decided from the data)."""
    default = getattr(ColumnMap(), field)
    if columns is not None and getattr(columns, field) != default:
        return "given"
    preset = PRESETS.get(format)
    return "preset" if preset is not None and getattr(preset.columns, field) != default else None


def headerless_yoochoose(fields: Sequence[str]) -> bool:
    """Does a first line look like a YooChoose click (``session,ISO time,item[,category]``)?"""
    if len(fields) not in (3, 4):
        return False
    a, b, c = (x.strip() for x in fields[:3])
    return (
        looks_like_int(a) and re.match(r"^\d{4}-\d{2}-\d{2}T", b) is not None and looks_like_int(c)
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
    """The column map of a dump without a preset: for each role, the first of the
    common names (compared lower-case, letters and digits only) that ``names`` has."""
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


def _close_columns(wanted: Sequence[str], names: Sequence[str]) -> list[str]:
    """The columns of ``names`` that look like any of ``wanted`` (difflib's ratio of at
    least 0.7, compared lower-case, letters and digits only), best first, at most 3."""
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(_norm(n), n)
    close: dict[str, None] = {}
    for w in wanted:
        for m in get_close_matches(_norm(w), list(by_norm), n=3, cutoff=0.7):
            close.setdefault(by_norm[m], None)
    return list(close)[:3]


def _did_you_mean(wanted: Sequence[str], names: Sequence[str]) -> str:
    close = _close_columns(wanted, names)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


_TIME_FIX = (
    "name it (ColumnMap.time, with ColumnMap.time_unit 's', 'ms', 'us', 'ns', 'iso' or "
    "'auto'), or name a date and an offset column (ColumnMap.date and ColumnMap.offset)"
)


def _require_columns(source: str, names: Sequence[str], columns: ColumnMap) -> None:
    """Check that ``columns`` maps a session (or user), item and time (or date and offset)
    column, and that every column it names is among ``names``.

    Raises:
        SchemaError: every role without a column and every named column the file lacks,
            in one message, each with the file's columns that look like it.
    """
    mapped = {v for v in asdict(columns).values() if isinstance(v, str) and v in names}
    unmapped = [n for n in names if n not in mapped]
    problems: list[str] = []
    options: list[str] = []
    for role in ("session", "item"):
        if getattr(columns, role) is None and not (role == "session" and columns.user):
            option = f"ColumnMap.{role}"
            hint = _did_you_mean(_GUESS[role], unmapped)
            problems.append(f"no {role} id column found{hint}; name it ({option})")
            options.append(option)
    if columns.time is None and (columns.date is None or columns.offset is None):
        hint = _did_you_mean(_GUESS["time"], unmapped)
        problems.append(f"no timestamp column found{hint}; {_TIME_FIX}")
        options += ["ColumnMap.time", "ColumnMap.time_unit", "ColumnMap.date", "ColumnMap.offset"]
    for role in ("session", "item", "time", "date", "offset", "event", "category", "user"):
        name = getattr(columns, role)
        if name is not None and name not in names:
            option = f"ColumnMap.{role}"
            hint = _did_you_mean([name], unmapped)
            problems.append(
                f"no column {name!r} for the {role}{hint}; name the right one ({option})"
            )
            options.append(option)
    if not problems:
        return
    found = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    if len(problems) == 1:
        listed = problems[0]
    else:
        listed = f"{len(problems)} columns are missing:\n" + "\n".join(f"  - {p}" for p in problems)
    raise SchemaError(
        f"{source}: {listed}\n(the file's columns: {found}); or choose a format preset (format)",
        options=(*options, "read_clicks.format"),
    )


@dataclass(frozen=True)
class ColumnTypes:
    """How the mapped columns of a dump are read, and why (the reader's report keys).

    Attributes:
        session_id_kind, item_id_kind: ``"int"`` or ``"str"``.
        session_id_kind_reason, item_id_kind_reason: why (given, the preset's, or what
            the first 1,000 ids showed; :func:`~sessionrec.data.parsing.resolve_id_kind`).
        time_unit: ``"s"``, ``"ms"``, ``"us"``, ``"ns"``, ``"iso"``, ``"datetime"``, or
            ``"date + offset (UNIT)"``.
        time_unit_decided_by: ``"given"``, ``"preset"``, ``"magnitude"``, ``"text"``,
            ``"dtype"`` (:func:`~sessionrec.data.parsing.resolve_time_unit`), or
            ``"default"`` (a date + offset column map's default offset unit).
    """

    session_id_kind: str
    session_id_kind_reason: str
    item_id_kind: str
    item_id_kind_reason: str
    time_unit: str
    time_unit_decided_by: str


def decide_types(
    raw: pl.LazyFrame,
    schema: pl.Schema,
    source: str,
    format: str,
    columns: ColumnMap | None,
    cmap: ColumnMap,
) -> ColumnTypes:
    """The :class:`ColumnTypes` of a dump of preset ``format`` (a resolved name) read
    with the column map ``cmap`` (the preset's merged with the caller's ``columns``),
    from its first 1,000 rows where ``cmap`` leaves them ``"auto"``.

    Raises:
        ConfigError: an unknown ``time_unit`` or ``id_type``.
    """
    session_col = cmap.session if cmap.session is not None else cmap.user
    assert session_col is not None and cmap.item is not None
    id_by = set_by(format, columns, "id_type") or "given"
    session = resolve_id_kind(raw, session_col, schema[session_col], cmap.id_type, source, id_by)
    item = resolve_id_kind(raw, cmap.item, schema[cmap.item], cmap.id_type, source, id_by)
    if cmap.session is None:  # the sessions cut from a user's clicks get new integer ids
        session = (
            session[0],
            f"new integers for the sessions cut from user clicks; user ids {session[1]}",
        )
    if cmap.time is not None:
        time_by = set_by(format, columns, "time_unit") or "given"
        unit = resolve_time_unit(raw, cmap.time, schema[cmap.time], cmap.time_unit, source, time_by)
    else:
        by = set_by(format, columns, "offset_unit") or set_by(format, columns, "offset")
        unit = (f"date + offset ({cmap.offset_unit})", by or "default")
    return ColumnTypes(*session, *item, *unit)


def check_read_options(
    format: str, on_bad_rows: str, separator: str | None, session_gap_s: float | None
) -> None:
    """Check a reader's options before the dump is opened.

    Raises:
        ConfigError: an unknown format or ``on_bad_rows``, a separator that is not one
            character, a gap that is not positive.
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if on_bad_rows not in ("error", "skip"):
        raise ConfigError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
    if separator is not None and len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    if session_gap_s is not None and not session_gap_s > 0:
        raise ConfigError(f"session_gap_s must be > 0 seconds, got {session_gap_s}")


def resolve_columns(
    source: str,
    names: list[str],
    format: str,
    columns: ColumnMap | None,
    event_types: Sequence[str] | None,
    session_gap_s: float | None,
) -> tuple[str, ColumnMap, float | None, list[str] | None]:
    """``(format name, column map, inactivity gap, event types kept)`` of a dump whose
    columns are ``names``: the preset of ``format`` (``"auto"``: the preset whose columns
    the file has, else ``"generic"`` with columns guessed from their names), overridden
    by ``columns``; the gap and event types given, else the preset's.

    Raises:
        SchemaError: a role without a column, or a column the file lacks (with the
            closest name it has).
        ConfigError: sessions cut from a user column without a gap, or event types
            selected without an event column.
    """
    name = format
    if format == "auto":
        name = _detect_preset(names) or "generic"
    preset = PRESETS.get(name)
    base = preset.columns if preset else _guess_columns(names)
    cmap = base.merged(columns)
    _require_columns(source, names, cmap)
    gap = session_gap_s if session_gap_s is not None else (preset.session_gap_s if preset else None)
    if cmap.session is None and gap is None:
        raise ConfigError(
            f"{source}: sessions are cut from the user column {cmap.user!r}, which needs "
            "an inactivity gap (session_gap_s, in seconds)",
            options=("read_clicks.session_gap_s", "ColumnMap.session"),
        )
    events = (
        list(event_types)
        if event_types is not None
        else (list(preset.event_types) if preset and preset.event_types else None)
    )
    if events is not None and cmap.event is None:
        raise ConfigError(
            f"{source}: event types {events} were selected but no event column is mapped; "
            "name it (ColumnMap.event), or select no event types (event_types)",
            options=("ColumnMap.event", "read_clicks.event_types"),
        )
    return name, cmap, gap, events
