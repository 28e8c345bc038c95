"""Read a catalog's columns: the file as a frame, role inference, and one reader per role
(item ids, numbers, vectors, categorical codes, text bags).

The rules (role inference, encodings, bad rows) are described in
:mod:`sessionrec.data.catalog`.

This module imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl

from sessionrec.data.catalog.features import CategoricalFeature, Role, TextFeature
from sessionrec.data.catalog.hashing import hash_buckets, text_tokens
from sessionrec.data.files import ROW_INDEX, SAMPLE_ROWS, opened, reading, scan
from sessionrec.data.parsing import changed_as_int, is_text
from sessionrec.errors import BadRowsError, ConfigError, SchemaError

__all__ = [
    "read_frame",
    "role_of",
    "bad_rows_error",
    "item_ids",
    "numeric_values",
    "vector_values",
    "categorical_feature",
    "text_feature",
]

_INT_TEXT = r"^[+-]?\d+$"
_FLOAT_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(?i:[+-]?(nan|inf|infinity))$"


def read_frame(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame, separator: str | None
) -> tuple[pl.DataFrame, str]:
    """The whole catalog as a frame (CSV columns as text), and its label for messages."""
    if isinstance(source, pl.DataFrame | pl.LazyFrame):
        with reading("<frame>", "a table", options=()):
            return source.lazy().collect(), "<frame>"
    if separator is not None and len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    label = str(source)
    with opened(source, "the item catalog", "read_catalog.source") as (path, kind, _):
        lazy, _ = scan(path, kind, label, separator)
        with reading(label, kind, options=()):
            frame = lazy.drop(ROW_INDEX).collect()
    return frame, label


def role_of(frame: pl.DataFrame, name: str) -> Role:
    """The inferred role of a column (the rules are in :mod:`sessionrec.data.catalog`)."""
    dtype = frame.schema[name]
    if dtype.is_integer() or dtype == pl.Boolean:
        return "categorical"
    if dtype.is_float():
        return "numeric"
    if isinstance(dtype, pl.List | pl.Array):
        return "vector"
    if is_text(dtype):
        sample = frame.get_column(name).cast(pl.String).str.strip_chars().drop_nulls()
        sample = sample.filter(sample != "").head(SAMPLE_ROWS)
        if len(sample) == 0:
            return "categorical"
        if sample.str.contains(_INT_TEXT).all():
            return "categorical"
        if sample.str.contains(_FLOAT_TEXT).all():
            return "numeric"
        if sample.str.starts_with("[").all():
            return "vector"
        return "text" if sample.str.contains(r"\s").any() else "categorical"
    return "categorical"


def bad_rows_error(label: str, problems: list[tuple[str, int, int]]) -> BadRowsError:
    """The error naming each kind of bad row: ``problems`` are ``(reason, rows, first
    0-based data row)``."""
    parts = [f"{what}: {n} row(s), first at data row {first + 1}" for what, n, first in problems]
    total = sum(n for _, n, _ in problems)
    return BadRowsError(
        f"{label}: {total} bad row(s): " + "; ".join(parts) + ". Fix the file, declare the "
        "column's role (categorical=/text=/numeric=/vector=), or pass on_bad_rows='skip' "
        "to drop such rows (they are counted).",
        options=(
            "read_catalog.categorical",
            "read_catalog.text",
            "read_catalog.numeric",
            "read_catalog.vector",
        ),
    )


def item_ids(
    frame: pl.DataFrame, item_col: str, id_type: str, label: str
) -> tuple[pl.Series, str, pl.Series]:
    """``(ids, kind, bad reason per row or null)``."""
    dtype = frame.schema[item_col]
    raw = frame.get_column(item_col)
    if dtype.is_integer():
        values = raw.cast(pl.Int64, strict=False)
        kind = "int" if id_type != "str" else "str"
        bad = (
            pl.select(
                pl.when(raw.is_null())
                .then(pl.lit("null or empty item id"))
                .when(values.is_null())
                .then(pl.lit("item id above 2**63-1"))
                .when(values < 0)
                .then(pl.lit("negative item id"))
            )
            .to_series()
            .alias("bad")
        )
        ids = values.cast(pl.String) if kind == "str" else values
        return ids, kind, bad
    if not is_text(dtype):
        raise SchemaError(
            f"{label}: item column {item_col!r} has dtype {dtype}; ids must be integers or "
            "strings (cast the column, e.g. floats that hold whole numbers to Int64)"
        )
    text = raw.cast(pl.String).str.strip_chars()
    present = text.drop_nulls()
    present = present.filter(present != "")
    if id_type == "auto":  # as clickstream ids: text that integers would change stays text
        sample = present.head(SAMPLE_ROWS)
        kind = (
            "int"
            if len(sample)
            and sample.str.contains(_INT_TEXT).all()
            and not sample.to_frame().select(changed_as_int(sample.name)).to_series().any()
            else "str"
        )
    else:
        kind = id_type
    empty = text.is_null() | (text == "")
    if kind == "str":
        bad = pl.select(pl.when(empty).then(pl.lit("null or empty item id"))).to_series()
        return text, kind, bad.alias("bad")
    values = text.cast(pl.Int64, strict=False)
    bad = pl.select(
        pl.when(empty)
        .then(pl.lit("null or empty item id"))
        .when(~text.str.contains(_INT_TEXT))
        .then(pl.lit("non-integer item id"))
        .when(text.str.starts_with("-"))
        .then(pl.lit("negative item id"))
        .when(values.is_null() | (values < 0))
        .then(pl.lit("item id above 2**63-1"))
    ).to_series()
    return values, kind, bad.alias("bad")


def numeric_values(series: pl.Series, name: str, label: str) -> tuple[pl.Series, pl.Series]:
    """``(Float64 values with null for missing, bad-row flag)`` of a numeric column."""
    dtype = series.dtype
    if dtype.is_numeric() or dtype in (pl.Boolean, pl.Null):  # Null: every value missing
        values = series.cast(pl.Float64)
        return values, pl.Series([False] * len(series))
    if not is_text(dtype):
        raise SchemaError(
            f"{label}: column {name!r} has dtype {dtype} and cannot be numeric; "
            "declare it categorical=/vector= or cast it",
            options=("read_catalog.categorical", "read_catalog.vector"),
        )
    text = series.cast(pl.String).str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    empty = text.is_null() | (text == "") | text.str.to_lowercase().is_in(["na", "nan", "null"])
    bad = values.is_null() & ~empty
    return values, bad.fill_null(False)


def vector_values(
    series: pl.Series, name: str, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(float32 [n, dim], missing [n], bad [n], dim)`` of a vector column."""
    dtype = series.dtype
    if is_text(dtype):
        text = series.cast(pl.String).str.strip_chars()
        with reading(label, f"JSON lists of numbers in column {name!r}", options=()):
            series = text.str.json_decode(pl.List(pl.Float64))
    elif isinstance(dtype, pl.Array):
        series = series.cast(pl.List(dtype.inner))  # type: ignore[arg-type]
    if not isinstance(series.dtype, pl.List) or not (
        series.dtype.inner.is_numeric()  # type: ignore[union-attr]
    ):
        raise SchemaError(
            f"{label}: column {name!r} has dtype {dtype}; a vector column holds lists of "
            "numbers (or text like '[0.1, 0.2]')"
        )
    lengths = series.list.len().fill_null(0).to_numpy().astype(np.int64)
    missing = series.is_null().to_numpy()
    present = lengths[~missing]
    if len(present) == 0:
        raise SchemaError(f"{label}: vector column {name!r} has no values")
    dim = int(np.bincount(present).argmax())  # the most common length
    if dim == 0:
        raise SchemaError(f"{label}: vector column {name!r} holds empty lists")
    finite = pl.element().cast(pl.Float64).is_finite().fill_null(False)
    has_nan = series.list.eval(finite.not_().any()).list.first()
    bad = (~missing) & ((lengths != dim) | has_nan.fill_null(False).to_numpy())
    keep = (~missing) & (~bad)
    values = np.zeros((len(series), dim), dtype=np.float32)
    if keep.any():
        flat = series.filter(pl.Series(keep)).explode().cast(pl.Float64).to_numpy()
        values[keep] = flat.reshape(-1, dim)
    return values, missing, bad, dim


def categorical_feature(
    series: pl.Series, name: str, label: str, max_vocabulary: int, n_buckets: int
) -> CategoricalFeature:
    """The int codes of a categorical column: a vocabulary by falling frequency, or
    ``n_buckets`` hash buckets when it has more than ``max_vocabulary`` values."""
    if isinstance(series.dtype, pl.List | pl.Array | pl.Struct):
        raise SchemaError(
            f"{label}: column {name!r} has dtype {series.dtype} and cannot be categorical; "
            "declare it vector= (lists of numbers)",
            options=("read_catalog.vector",),
        )
    text = series.cast(pl.String).str.strip_chars()
    text = pl.select(pl.when(text == "").then(None).otherwise(text)).to_series().alias(name)
    counts = text.drop_nulls().value_counts(name="n").sort(["n", name], descending=[True, False])
    distinct = counts.height
    if distinct > max_vocabulary:
        codes = np.zeros(len(text), dtype=np.int64)
        present = text.is_not_null().to_numpy()
        codes[present] = 1 + hash_buckets(
            ("v:" + text.drop_nulls()).to_numpy().astype(object), n_buckets
        )
        return CategoricalFeature(codes, None, n_buckets)
    vocabulary = counts.get_column(counts.columns[0]).to_list()
    codes = (
        text.replace_strict(
            vocabulary, list(range(1, distinct + 1)), default=0, return_dtype=pl.Int64
        )
        .fill_null(0)
        .to_numpy()
        .astype(np.int64)
    )
    return CategoricalFeature(codes, vocabulary, None)


def text_feature(
    series: pl.Series,
    name: str,
    label: str,
    n_buckets: int,
    char_ngrams: tuple[int, ...],
    word_bigrams: bool,
) -> TextFeature:
    """The hashed n-gram bags of a text column (:func:`text_tokens`), in CSR form."""
    if not (is_text(series.dtype) or series.dtype.is_numeric()):
        raise SchemaError(f"{label}: column {name!r} has dtype {series.dtype} and cannot be text")
    tokens = text_tokens(series, char_ngrams, word_bigrams)
    rows = tokens.get_column("row").to_numpy().astype(np.int64)
    # hash each distinct token once (n-grams repeat across items)
    token = tokens.get_column("token")
    distinct = token.unique()
    bucket = hash_buckets(distinct.to_numpy().astype(object), n_buckets)
    ids = token.replace_strict(distinct, bucket, return_dtype=pl.Int64).to_numpy().copy()
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(series)), out=offsets[1:])
    return TextFeature(offsets, ids, n_buckets, char_ngrams, word_bigrams)
