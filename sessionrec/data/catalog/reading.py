"""Read an item catalog into an :class:`~sessionrec.data.catalog.features.ItemCatalog`.

:func:`read_catalog` runs in steps: the options are checked, the file is read, the item
id column and each column's role are resolved, bad rows are counted (and refused or
dropped), duplicate item ids are refused (or all but the first row of each dropped), and
the features are encoded. The rules of each step are described in
:mod:`sessionrec.data.catalog`.

This module imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from sessionrec.data.catalog.columns import (
    bad_rows_error,
    categorical_feature,
    item_ids,
    numeric_values,
    read_frame,
    role_of,
    text_feature,
    vector_values,
)
from sessionrec.data.catalog.features import ItemCatalog, NumericFeature, Role, VectorFeature
from sessionrec.data.parsing import OnBadRows
from sessionrec.errors import ConfigError, EmptyDataError, SchemaError

__all__ = ["read_catalog"]


def read_catalog(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame,
    item_col: str | None = None,
    *,
    categorical: Sequence[str] | None = None,
    text: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    vector: Sequence[str] | None = None,
    infer: bool | None = None,
    id_type: Literal["auto", "int", "str"] = "auto",
    separator: str | None = None,
    on_bad_rows: OnBadRows = "error",
    duplicate_ids: Literal["error", "first"] = "error",
    max_vocabulary: int = 50_000,
    category_buckets: int = 1 << 14,
    text_buckets: int = 1 << 18,
    char_ngrams: Sequence[int] = (3,),
    word_bigrams: bool = True,
) -> ItemCatalog:
    """Read an item catalog (CSV/TSV/Parquet/NDJSON, optionally gzip, or a polars frame).

    Args:
        source: the file or frame, one row per item.
        item_col: the item id column (default: ``itemId``/``item_id``/``item``/... as in
            clickstreams, else the first column).
        categorical, text, numeric, vector: columns with that role (see
            :mod:`sessionrec.data.catalog`); they override inference.
        infer: infer the roles of the other columns (default: only when no role list is
            given; ``False`` ignores them).
        id_type: ``"int"``, ``"str"`` or ``"auto"`` (int when the ids are integers).
        separator: field separator of text files (default: sniffed).
        on_bad_rows: ``"error"`` raises :class:`BadRowsError` naming the first bad row of
            each kind (null/invalid ids, unparsable numbers, vectors of another length
            or with non-finite numbers); ``"skip"`` drops them (counted in ``report``).
        duplicate_ids: ``"error"`` refuses an item id on two rows; ``"first"`` keeps the
            first row of each item (others counted in ``report``), e.g. for catalogs that
            list an item once per category.
        max_vocabulary: categorical columns with more distinct values are hashed into
            ``category_buckets`` buckets.
        text_buckets: hash buckets of text n-grams.
        char_ngrams: character n-gram sizes of text columns (``()``: none).
        word_bigrams: add pairs of adjacent words to text bags.

    Raises:
        SchemaError: unknown columns, a column given two roles, wrong types, duplicate ids.
        BadRowsError: bad rows with ``on_bad_rows="error"``.
        EmptyDataError: no items.
        ConfigError: bad parameters.
    """
    char_ngrams = _check_options(
        on_bad_rows,
        duplicate_ids,
        id_type,
        max_vocabulary,
        category_buckets,
        text_buckets,
        char_ngrams,
    )
    frame, label = read_frame(source, separator)
    item_col, roles, given = _resolve_roles(
        frame, label, item_col, categorical, text, numeric, vector, infer
    )
    if frame.height == 0:
        raise EmptyDataError(f"{label}: the item catalog has no rows")
    rows = _drop_bad_rows(frame, label, item_col, id_type, roles, given, on_bad_rows)
    _drop_duplicate_ids(rows, label, item_col, duplicate_ids)
    return _encode(
        rows, roles, label, max_vocabulary, category_buckets, text_buckets, char_ngrams,
        word_bigrams,
    )  # fmt: skip


def _check_options(
    on_bad_rows: str,
    duplicate_ids: str,
    id_type: str,
    max_vocabulary: int,
    category_buckets: int,
    text_buckets: int,
    char_ngrams: Sequence[int],
) -> tuple[int, ...]:
    """Refuse bad parameters; returns ``char_ngrams`` as a tuple."""
    if on_bad_rows not in ("error", "skip"):
        raise ConfigError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
    if duplicate_ids not in ("error", "first"):
        raise ConfigError(
            f"duplicate_ids must be 'error' or 'first', got {duplicate_ids!r}",
            options=("read_catalog.duplicate_ids",),
        )
    if id_type not in ("auto", "int", "str"):
        raise ConfigError(f"id_type must be 'auto', 'int' or 'str', got {id_type!r}")
    for what, value in (
        ("max_vocabulary", max_vocabulary),
        ("category_buckets", category_buckets),
        ("text_buckets", text_buckets),
    ):
        if not (isinstance(value, int) and value >= 1):
            raise ConfigError(f"{what} must be an int >= 1, got {value!r}")
    char_ngrams = tuple(char_ngrams)
    if not all(isinstance(n, int) and n >= 1 for n in char_ngrams):
        raise ConfigError(f"char_ngrams must be ints >= 1, got {char_ngrams!r}")
    return char_ngrams


def _resolve_roles(
    frame: pl.DataFrame,
    label: str,
    item_col: str | None,
    categorical: Sequence[str] | None,
    text: Sequence[str] | None,
    numeric: Sequence[str] | None,
    vector: Sequence[str] | None,
    infer: bool | None,
) -> tuple[str, dict[str, Role], dict[str, Role]]:
    """``(item id column, role of each feature column, roles given)``: the roles given,
    checked against the columns, and (with ``infer``) inferred for the rest."""
    names = frame.columns
    found = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    if item_col is None:
        norm = {"".join(ch for ch in n.lower() if ch.isalnum()): n for n in reversed(names)}
        guesses = ("itemid", "item", "productid", "product", "articleid", "sku", "iid", "id")
        item_col = next((norm[g] for g in guesses if g in norm), names[0] if names else None)
    if item_col is None or item_col not in names:
        raise SchemaError(
            f"{label} has no item id column {item_col!r} (found: {found})",
            options=("read_catalog.item_col",),
        )

    given: dict[str, Role] = {}
    for role, cols in (
        ("categorical", categorical),
        ("text", text),
        ("numeric", numeric),
        ("vector", vector),
    ):
        if isinstance(cols, str):
            raise ConfigError(f"{role}= takes a list of column names, got the string {cols!r}")
        for c in cols or ():
            if c not in names:
                raise SchemaError(f"{label} has no column {c!r} (given as {role}; found: {found})")
            if c == item_col:
                raise SchemaError(f"{label}: column {c!r} is the item id and cannot be {role}")
            if c in given:
                raise SchemaError(f"{label}: column {c!r} is given as both {given[c]} and {role}")
            given[c] = role  # type: ignore[assignment]
    if infer is None:
        infer = not given
    roles: dict[str, Role] = {}
    for c in names:
        if c == item_col:
            continue
        if c in given:
            roles[c] = given[c]
        elif infer:
            roles[c] = role_of(frame, c)
    return item_col, roles, given


@dataclass
class _Rows:
    """The catalog's rows as they pass the steps: the frame, the item ids and their kind,
    each row's 0-based data row in the file, the values of numeric and vector columns,
    and the report."""

    frame: pl.DataFrame
    ids: pl.Series
    kind: str
    data_rows: np.ndarray
    numbers: dict[str, pl.Series]
    vectors: dict[str, tuple[np.ndarray, np.ndarray]]
    report: dict[str, Any]


def _drop_bad_rows(
    frame: pl.DataFrame,
    label: str,
    item_col: str,
    id_type: str,
    roles: dict[str, Role],
    given: dict[str, Role],
    on_bad_rows: str,
) -> _Rows:
    """Bad rows (ids, numbers, vectors) counted in the report; refused with
    ``on_bad_rows="error"``, else dropped."""
    ids, kind, bad_id = item_ids(frame, item_col, id_type, label)
    reasons: list[tuple[str, np.ndarray]] = []
    bad_id_np = bad_id.is_not_null().to_numpy()
    for reason in bad_id.drop_nulls().unique(maintain_order=True).to_list():
        reasons.append((reason, (bad_id == reason).fill_null(False).to_numpy()))
    numbers: dict[str, pl.Series] = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c, role in roles.items():
        if role == "numeric":
            values, bad = numeric_values(frame.get_column(c), c, label)
            numbers[c] = values
            reasons.append((f"unparsable number in column {c!r}", bad.to_numpy()))
        elif role == "vector":
            values_v, missing, bad_v, dim = vector_values(frame.get_column(c), c, label)
            vectors[c] = (values_v, missing)
            reasons.append((f"vector in column {c!r} not of length {dim} or not finite", bad_v))
    reasons = [(r, m) for r, m in reasons if m.any()]
    bad_any = bad_id_np.copy()
    for _, mask in reasons:
        bad_any |= mask
    report: dict[str, Any] = {
        "source": label,
        "item_col": item_col,
        "id_kind": kind,
        "roles": dict(roles),
        "inferred": [c for c in roles if c not in given],
        "rows_read": frame.height,
        "bad_rows": {r: int(m.sum()) for r, m in reasons},
        "rows_skipped": 0,
    }
    if reasons and on_bad_rows == "error":
        raise bad_rows_error(
            label, [(r, int(m.sum()), int(np.flatnonzero(m)[0])) for r, m in reasons]
        )
    keep = ~bad_any
    data_rows = np.arange(frame.height)  # 0-based data row of each row kept
    if not keep.all():
        report["rows_skipped"] = int(bad_any.sum())
        keep_s = pl.Series(keep)
        frame = frame.filter(keep_s)
        ids = ids.filter(keep_s)
        data_rows = data_rows[keep]
        numbers = {c: v.filter(keep_s) for c, v in numbers.items()}
        vectors = {c: (v[keep], m[keep]) for c, (v, m) in vectors.items()}
    if frame.height == 0:
        raise EmptyDataError(
            f"{label}: no items left after skipping {report['rows_skipped']} bad rows"
        )
    return _Rows(frame, ids, kind, data_rows, numbers, vectors, report)


def _drop_duplicate_ids(rows: _Rows, label: str, item_col: str, duplicate_ids: str) -> None:
    """An item id on two rows: refused with ``duplicate_ids="error"``, else every row but
    the first of each item dropped from ``rows`` (counted in the report)."""
    ids, report = rows.ids, rows.report
    report["duplicate_id_rows_dropped"] = 0
    duplicated = ids.is_duplicated()
    if duplicated.any() and duplicate_ids == "error":
        dups = ids.filter(duplicated).unique(maintain_order=True)
        first_rows = rows.data_rows[(ids == dups[0]).to_numpy()][:2] + 1
        raise SchemaError(
            f"{label}: {len(dups)} item id(s) occur more than once in column {item_col!r} "
            f"(first: {dups[0]!r}, data rows {first_rows[0]} and {first_rows[1]}); a catalog "
            "has one row per item: merge the rows, or pass duplicate_ids='first' to keep the "
            "first row of each item (the others are counted)",
            options=("read_catalog.duplicate_ids",),
        )
    if duplicated.any():
        first = ids.is_first_distinct()
        report["duplicate_id_rows_dropped"] = int((~first).sum())
        rows.frame, rows.ids = rows.frame.filter(first), ids.filter(first)
        rows.numbers = {c: v.filter(first) for c, v in rows.numbers.items()}
        keep_np = first.to_numpy()
        rows.vectors = {c: (v[keep_np], m[keep_np]) for c, (v, m) in rows.vectors.items()}


def _encode(
    rows: _Rows,
    roles: dict[str, Role],
    label: str,
    max_vocabulary: int,
    category_buckets: int,
    text_buckets: int,
    char_ngrams: tuple[int, ...],
    word_bigrams: bool,
) -> ItemCatalog:
    """The catalog of ``rows``: each feature column encoded by its role."""
    ids, kind = rows.ids, rows.kind
    catalog = ItemCatalog(
        ids=ids.to_numpy().astype(np.int64)
        if kind == "int"
        else np.asarray(ids.to_list(), dtype=object),
        id_kind=kind,
        report=rows.report,
    )
    for c, role in roles.items():
        series = rows.frame.get_column(c)
        if role == "categorical":
            catalog.categorical[c] = categorical_feature(
                series, c, label, max_vocabulary, category_buckets
            )
        elif role == "text":
            catalog.text[c] = text_feature(
                series, c, label, text_buckets, char_ngrams, word_bigrams
            )
        elif role == "numeric":
            catalog.numeric[c] = _standardised(rows.numbers[c])
        else:
            catalog.vector[c] = VectorFeature(*rows.vectors[c])
    return catalog


def _standardised(numbers: pl.Series) -> NumericFeature:
    """A numeric column's values as :math:`(x - \\mu) / \\sigma` (missing: 0)."""
    values = numbers.to_numpy().astype(np.float64)
    missing = ~np.isfinite(values)
    present = values[~missing]
    # standardise in units of the largest magnitude: sums of values near the
    # float64 limit (1e300 as a "price") would overflow to inf, and give NaNs
    unit = float(np.abs(present).max()) if len(present) else 1.0
    unit = unit if unit > 0 else 1.0
    mean = float((present / unit).mean()) if len(present) else 0.0
    std = float((present / unit).std()) if len(present) else 0.0
    scaled = np.where(missing, 0.0, (values / unit - mean) / (std or 1.0))
    return NumericFeature(scaled.astype(np.float32), missing, mean * unit, std * unit or 1.0)
