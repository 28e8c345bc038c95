"""Read data files with polars: what kind a file is, and a lazy scan of its rows.

The readers of clicks (:mod:`sessionrec.data.ingest`) and of item catalogs
(:mod:`sessionrec.data.catalog`) open files here. How a file is read (documented rules):

- The file kind comes from magic bytes (gzip ``1f 8b``, Parquet ``PAR1``, NDJSON ``{``)
  and otherwise the suffix; gzip files are decompressed in chunks to a temporary file
  (disk, not memory) and then scanned.
- CSV is scanned lazily with every column as text (``pl.scan_csv(infer_schema=False)``)
  and collected with polars' streaming engine, so the text of a dump never has to fit
  in memory.
- The separator is sniffed from the first line (``,`` ``\\t`` ``;`` ``|``) unless given.
  Column names are stripped of spaces and a UTF-8 byte-order mark. Lines with too many
  fields are truncated; lines with too few get nulls. Invalid UTF-8 bytes are read
  lossily (as ``U+FFFD``), so the row that holds them can be named.
- Every scan carries a 0-based row index (column :data:`ROW_INDEX`): the data row of
  each row in the file, for messages that name a row.
- polars' failures while reading become a :class:`~sessionrec.errors.SchemaError`
  naming the file (:func:`reading`).

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from sessionrec.errors import ConfigError, EmptyDataError, SchemaError, SessionrecError

__all__ = [
    "KIND_NAMES",
    "ROW_INDEX",
    "SAMPLE_ROWS",
    "reading",
    "opened",
    "detect_kind",
    "gunzip",
    "first_line",
    "sniff_separator",
    "scan",
    "approximate_rows",
]

_SNIFF_BYTES = 1 << 16
#: Values looked at to decide a column's type (id kind, time unit, ISO shapes, roles).
SAMPLE_ROWS = 1000

#: File kind -> its name in messages.
KIND_NAMES = {"csv": "CSV", "parquet": "Parquet", "ndjson": "NDJSON", "frame": "a table"}
#: The row-index column of a scan (internal: cannot clash with user columns in practice).
ROW_INDEX = "__sessionrec_row"


def _polars_failures() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [pl.exceptions.PolarsError, OSError, UnicodeError]
    panic = getattr(pl.exceptions, "PanicException", None)
    if isinstance(panic, type):
        kinds.append(panic)
    return tuple(kinds)


_FAILURES = _polars_failures()


@contextmanager
def reading(
    source: str,
    what: str,
    options: Sequence[str] = ("read_clicks.format", "read_clicks.separator"),
) -> Iterator[None]:
    """Turn polars' parse errors into a :class:`SchemaError` naming the file.

    Args:
        source: the file (or ``"<frame>"``) named in the message.
        what: what the file was read as (``"CSV"``, ``"Parquet"``, ``"a table"``, ...).
        options: the API options the error names as the fix (default: the format and
            separator of :func:`~sessionrec.data.ingest.read_clicks`).
    """
    try:
        yield
    except SessionrecError:
        raise
    except _FAILURES as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(
            f"{source}: cannot be read as {what} ({type(exc).__name__}: {detail[:300]}); "
            "check the file's format and field separator, or convert the file to CSV/Parquet",
            options=options,
        ) from None


@contextmanager
def opened(
    source: str | os.PathLike[str], what: str, option: str
) -> Iterator[tuple[Path, str, str | None]]:
    """A data file, ready to scan: ``(path to read, kind, compression)``.

    A gzip file is decompressed to a temporary file (the path read), which lives until
    the block ends; the kind is then the decompressed file's.

    Args:
        source: the file.
        what: what the file holds, for messages (``"the clickstream dump"``).
        option: the API option that names the file (``"read_clicks.source"``).

    Raises:
        ConfigError: no such file, or a directory.
        EmptyDataError: the file (or what it decompresses to) is empty.
    """
    path, label = Path(source), str(source)
    if path.is_dir():
        raise ConfigError(
            f"{label} is a directory; pass the path of {what} itself, a file inside it",
            options=(option,),
        )
    if not path.is_file():
        raise ConfigError(f"{label}: no such file; pass the path of {what}", options=(option,))
    if path.stat().st_size == 0:
        raise EmptyDataError(f"{label}: {what} is empty (0 bytes)")
    kind, compression = detect_kind(path)
    with tempfile.TemporaryDirectory(prefix="sessionrec-read-") as tmp:
        if compression == "gzip":
            path = gunzip(path, tmp)
            if path.stat().st_size == 0:
                raise EmptyDataError(f"{label}: the compressed file holds no data")
            kind, _ = detect_kind(path)
        yield path, kind, compression


def _clean_name(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip()


def detect_kind(path: Path) -> tuple[str, str | None]:
    """``(kind, compression)`` of a file from magic bytes, then the suffix.

    ``kind`` is ``"csv"`` (any delimited text), ``"parquet"`` or ``"ndjson"``;
    ``compression`` is ``"gzip"`` or ``None``.
    """
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


def gunzip(path: Path, directory: str) -> Path:
    """Decompress ``path`` in 1 MB chunks to a file in ``directory`` (low memory).

    Raises:
        SchemaError: the file is not complete gzip data.
    """
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


def first_line(path: Path) -> str:
    """The first line of a text file (without a byte-order mark or line end; invalid
    UTF-8 replaced), read from its first 64 KB."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    return text.split("\n", 1)[0].rstrip("\r")


def sniff_separator(line: str) -> str:
    """The separator of a text file from its first line: the most frequent of ``,``
    ``\\t`` ``;`` ``|`` (``,`` when none occurs)."""
    counts = {sep: line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def scan(
    path: Path,
    kind: str,
    source: str,
    separator: str | None = None,
    column_names: Sequence[str] | None = None,
    has_header: bool = True,
) -> tuple[pl.LazyFrame, str | None]:
    """Lazy scan of a file with a row index (column :data:`ROW_INDEX`).

    Args:
        path: the (decompressed) file.
        kind: ``"csv"``, ``"parquet"`` or ``"ndjson"`` (:func:`detect_kind`).
        source: the file's name in messages.
        separator: the field separator of a text file (``None``: sniffed).
        column_names: names of a text file's columns (``None``: its header's names,
            cleaned of spaces and a byte-order mark).
        has_header: whether a text file's first line is a header (skipped).

    Returns:
        ``(scan, separator)``; the separator is ``None`` for Parquet and NDJSON.

    Raises:
        EmptyDataError: a text file's first line is empty.
    """
    if kind == "parquet":
        with reading(source, "Parquet"):
            return pl.scan_parquet(path, row_index_name=ROW_INDEX), None
    if kind == "ndjson":
        with reading(source, "NDJSON"):
            return pl.scan_ndjson(path, row_index_name=ROW_INDEX, infer_schema_length=1000), None
    line = first_line(path)
    if not line.strip():
        raise EmptyDataError(f"{source}: no data: the first line is empty (expected a header)")
    sep = separator or sniff_separator(line)
    new_columns = list(column_names) if column_names is not None else None
    frame = pl.scan_csv(
        path,
        separator=sep,
        has_header=has_header,
        new_columns=new_columns,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        row_index_name=ROW_INDEX,
        quote_char='"',
        with_column_names=(
            (lambda cols: [_clean_name(c) for c in cols]) if new_columns is None else None
        ),
        raise_if_empty=False,
    )
    return frame, sep


def approximate_rows(raw: pl.LazyFrame, path: Path | None, kind: str) -> int:
    """Rows of a dump, to size buckets: Parquet's metadata; lines of a text file, read in
    16 MB blocks (a polars count would map the whole file into memory); a frame's height
    (``path`` ``None``)."""
    if path is None or kind == "parquet":
        return int(raw.select(pl.len()).collect(engine="streaming").item())
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n") - (kind == "csv")  # a last line without "\n"; header
