"""Read an item catalog (item content) and encode it into arrays for the content encoder.

A catalog is one row per item: an item id column plus any number of feature columns.
Each feature column has a *role*:

==============  ==========================================================================
role            encoding (per item ``i``)
==============  ==========================================================================
categorical     an int code: ``0`` is unknown/missing, ``1 .. V`` the vocabulary (values
                by falling frequency, ties by value). A column with more than
                ``max_vocabulary`` distinct values is *hashed*:
                :math:`1 + \\mathrm{fnv}(\\texttt{"v:"} + value) \\bmod B_{cat}`.
text            a bag of hashed n-grams (CSR: ``offsets [n + 1]``, ``ids [nnz]``): the text
                is lower-cased and cut into words (``\\w+``); the bag holds every word
                (``"w:" + word``), every pair of adjacent words (``"b:" + w1 + " " + w2``)
                and the character n-grams of ``"<" + word + ">"`` (``"c:" + gram``, for
                each ``n`` in ``char_ngrams``); each token's id is
                :math:`\\mathrm{fnv}(token) \\bmod B_{text}`. Words are cut to 32 chars.
numeric         :math:`(x_i - \\mu) / \\sigma` (mean and population std of the present
                values; :math:`\\sigma = 1` if it is 0) as float32; a missing value
                (null, NaN, inf) is ``0`` with ``missing[i] = True``.
vector          a float32 matrix ``[n, dim]`` (lists of numbers from any external encoder;
                every row the same length); a null row is zeros with ``missing[i] = True``.
==============  ==========================================================================

:math:`\\mathrm{fnv}` is 64-bit FNV-1a over the UTF-8 bytes (:func:`fnv1a_64`): stable
across processes, platforms and library versions (unlike Python's ``hash()``).

Schema inference (for columns whose role is not given): integer columns (and text columns
whose values are all integers, e.g. ``categoryId`` in a CSV) are categorical codes,
floating-point columns (and text holding numbers) numeric, lists of numbers (and text
that starts with ``[``, read as JSON lists) vectors; other text is ``text`` when some
value has a space and ``categorical`` otherwise. Integer quantities such as a price in
cents must be declared ``numeric=[...]``. Text columns are decided from their first 1,000
non-empty values.

Every item id must occur once (``duplicate_ids="first"`` keeps the first row of each item
instead, e.g. for a catalog that lists an item once per category). Bad rows (null or
invalid ids, unparsable numbers, vectors of another length or with non-finite numbers)
raise :class:`~sessionrec.errors.BadRowsError`, or are dropped and counted with
``on_bad_rows="skip"``.

:meth:`ItemCatalog.align` reorders the rows into a vocabulary's index order (catalog
items without clicks appended after it, vocabulary items without a catalog row given
unknown features), which is the table the model indexes.

This module imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from sessionrec.data.ingest import (
    _ROW,
    _SAMPLE_ROWS,
    OnBadRows,
    _detect_kind,
    _gunzip,
    _is_text,
    _reading,
    _scan,
)
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import (
    ArtifactError,
    BadRowsError,
    ConfigError,
    EmptyDataError,
    SchemaError,
)

__all__ = [
    "ROLES",
    "CategoricalFeature",
    "TextFeature",
    "NumericFeature",
    "VectorFeature",
    "ItemCatalog",
    "read_catalog",
    "fnv1a_64",
    "text_tokens",
]

Role = Literal["categorical", "text", "numeric", "vector"]
#: The feature roles, in the order features are stored.
ROLES: tuple[str, ...] = ("categorical", "text", "numeric", "vector")

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MAX_WORD_CHARS = 32
_HASH_CHUNK = 1 << 18
_FORMAT = "sessionrec.item-catalog/1"
_INT_TEXT = r"^[+-]?\d+$"
_FLOAT_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(?i:[+-]?(nan|inf|infinity))$"


# -- hashing ----------------------------------------------------------------------------
def fnv1a_64(strings: Sequence[str] | np.ndarray) -> np.ndarray:
    """64-bit FNV-1a of each string's UTF-8 bytes, as uint64 ``[n]``.

    .. math:: h_0 = \\texttt{0xcbf29ce484222325}, \\quad
              h_{k+1} = (h_k \\oplus b_k) \\cdot \\texttt{0x100000001b3} \\bmod 2^{64}

    Vectorised over strings (a loop over byte positions only). The strings must be valid
    Unicode (as polars' are); trailing NUL characters are ignored (numpy's fixed-width
    bytes drop them).
    """
    array = np.asarray(strings, dtype=object)
    out = np.empty(len(array), dtype=np.uint64)
    for start in range(0, len(array), _HASH_CHUNK):  # bounds the fixed-width copy
        out[start : start + _HASH_CHUNK] = _fnv1a_64_chunk(array[start : start + _HASH_CHUNK])
    return out


def _fnv1a_64_chunk(array: np.ndarray) -> np.ndarray:
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = np.char.encode(array.astype(str), "utf-8")  # bytes, fixed width S{w}
    width = encoded.dtype.itemsize
    lengths = np.char.str_len(encoded)
    h = np.full(len(array), _FNV_OFFSET, dtype=np.uint64)
    data = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(array), width)
    with np.errstate(over="ignore"):
        for j in range(width):
            live = lengths > j
            h = np.where(live, (h ^ data[:, j].astype(np.uint64)) * _FNV_PRIME, h)
    return h


def _buckets(strings: Sequence[str] | np.ndarray, n_buckets: int) -> np.ndarray:
    return (fnv1a_64(strings) % np.uint64(n_buckets)).astype(np.int64)


def text_tokens(
    texts: pl.Series, char_ngrams: Sequence[int] = (3,), word_bigrams: bool = True
) -> pl.DataFrame:
    """The n-gram tokens of each text: a frame ``(row UInt32, token String)``.

    Tokens are described in the module docstring; rows without words have none.
    """
    words = (
        pl.DataFrame({"text": texts.cast(pl.String)})
        .with_row_index("row")
        .select(
            "row",
            pl.col("text").str.to_lowercase().str.extract_all(r"\w+").alias("word"),
        )
        .explode("word")
        .drop_nulls("word")
        .with_columns(pl.col("word").str.slice(0, _MAX_WORD_CHARS))
    )
    parts = [words.select("row", ("w:" + pl.col("word")).alias("token"))]
    if word_bigrams:
        nxt = pl.col("word").shift(-1).over("row")
        parts.append(
            words.select("row", ("b:" + pl.col("word") + " " + nxt).alias("token")).drop_nulls()
        )
    padded = words.select("row", ("<" + pl.col("word") + ">").alias("g"))
    padded = padded.with_columns(pl.col("g").str.len_chars().alias("len"))
    for n in char_ngrams:
        grams = (
            padded.filter(pl.col("len") >= n)
            .with_columns(pl.int_ranges(0, pl.col("len") - n + 1).alias("start"))
            .explode("start")
            .select("row", ("c:" + pl.col("g").str.slice(pl.col("start"), n)).alias("token"))
        )
        parts.append(grams)
    return pl.concat(parts).sort("row", maintain_order=True)


# -- features ---------------------------------------------------------------------------
@dataclass(eq=False)  # arrays inside: compare fields explicitly
class CategoricalFeature:
    """Int codes ``[n]`` (0: unknown); ``vocabulary[k - 1]`` is code ``k`` unless hashed.

    Attributes:
        codes: int64 ``[n]`` in ``0 .. cardinality - 1``.
        vocabulary: the values of codes ``1 .. V`` (as text), or ``None`` when hashed.
        n_buckets: hash buckets (codes ``1 .. n_buckets``) when hashed, else ``None``.
    """

    codes: np.ndarray
    vocabulary: list[str] | None = None
    n_buckets: int | None = None

    @property
    def cardinality(self) -> int:
        """Rows of the embedding table (including the unknown code 0)."""
        if self.vocabulary is not None:
            return len(self.vocabulary) + 1
        assert self.n_buckets is not None
        return self.n_buckets + 1

    def encode(self, values: Sequence[str]) -> np.ndarray:
        """Codes of new raw values (text) under this vocabulary or hash."""
        values = [str(v) for v in values]
        if self.vocabulary is None:
            assert self.n_buckets is not None
            return 1 + _buckets(["v:" + v for v in values], self.n_buckets)
        index = {v: k + 1 for k, v in enumerate(self.vocabulary)}
        return np.fromiter((index.get(v, 0) for v in values), dtype=np.int64, count=len(values))

    def take(self, rows: np.ndarray) -> CategoricalFeature:
        """Rows ``rows`` (``-1``: an unknown item)."""
        codes = np.where(rows >= 0, self.codes[np.maximum(rows, 0)], 0)
        return CategoricalFeature(codes, self.vocabulary, self.n_buckets)


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class TextFeature:
    """Hashed n-gram bags in CSR form: item ``i`` has ``ids[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray  # int64 [n + 1]
    ids: np.ndarray  # int64 [nnz], in 0 .. n_buckets - 1
    n_buckets: int
    char_ngrams: tuple[int, ...] = (3,)
    word_bigrams: bool = True

    def take(self, rows: np.ndarray) -> TextFeature:
        lengths = np.diff(self.offsets)
        safe = np.maximum(rows, 0)
        new_len = np.where(rows >= 0, lengths[safe], 0)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(new_len, out=offsets[1:])
        # position p of the new ids comes from old offset start[row] + (p - new start)
        row_of = np.repeat(np.arange(len(rows)), new_len)
        pos = np.arange(offsets[-1]) - offsets[:-1][row_of] + self.offsets[safe[row_of]]
        return TextFeature(
            offsets, self.ids[pos], self.n_buckets, self.char_ngrams, self.word_bigrams
        )


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class NumericFeature:
    """Standardised values ``(x - mean) / std`` (float32 ``[n]``; missing -> 0)."""

    values: np.ndarray
    missing: np.ndarray  # bool [n]
    mean: float
    std: float

    def take(self, rows: np.ndarray) -> NumericFeature:
        safe = np.maximum(rows, 0)
        values = np.where(rows >= 0, self.values[safe], 0.0).astype(np.float32)
        return NumericFeature(
            values, np.where(rows >= 0, self.missing[safe], True), self.mean, self.std
        )


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class VectorFeature:
    """Precomputed vectors, float32 ``[n, dim]`` (missing rows are zeros)."""

    values: np.ndarray
    missing: np.ndarray  # bool [n]

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def take(self, rows: np.ndarray) -> VectorFeature:
        safe = np.maximum(rows, 0)
        values = np.where((rows >= 0)[:, None], self.values[safe], 0.0).astype(np.float32)
        return VectorFeature(values, np.where(rows >= 0, self.missing[safe], True))


@dataclass(eq=False)  # arrays inside: compare fields explicitly
class ItemCatalog:
    """Encoded item content, one row per item.

    Attributes:
        ids: raw item ids ``[n]`` (int64, or object array of str).
        id_kind: ``"int"`` or ``"str"``.
        categorical, text, numeric, vector: encoded features by column name.
        has_content: bool ``[n]``; ``False`` for vocabulary items that had no catalog row
            (after :meth:`align`).
        n_vocab: after :meth:`align`, the vocabulary size (rows ``0 .. n_vocab - 1`` are
            the vocabulary's items in index order; the rest are catalog items without
            clicks); ``None`` before.
        n_without_clicks: after :meth:`align`, catalog items not in the vocabulary.
        n_without_content: after :meth:`align`, vocabulary items not in the catalog.
        report: how the catalog was read (rows, bad rows, inferred roles).
    """

    ids: np.ndarray
    id_kind: str
    categorical: dict[str, CategoricalFeature] = field(default_factory=dict)
    text: dict[str, TextFeature] = field(default_factory=dict)
    numeric: dict[str, NumericFeature] = field(default_factory=dict)
    vector: dict[str, VectorFeature] = field(default_factory=dict)
    has_content: np.ndarray | None = None
    n_vocab: int | None = None
    n_without_clicks: int = 0
    n_without_content: int = 0
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.has_content is None:
            self.has_content = np.ones(len(self.ids), dtype=bool)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={list(getattr(self, r))}" for r in ROLES if getattr(self, r))
        return f"ItemCatalog({len(self)} {self.id_kind} items; {roles})"

    @property
    def cold_mask(self) -> np.ndarray:
        """bool ``[n]``: rows without clicks (after :meth:`align`; all ``False`` before)."""
        mask = np.zeros(len(self), dtype=bool)
        if self.n_vocab is not None:
            mask[self.n_vocab :] = True
        return mask

    def take(self, rows: np.ndarray) -> ItemCatalog:
        """A catalog of rows ``rows`` (``-1``: an item with unknown features)."""
        rows = np.asarray(rows, dtype=np.int64)
        assert self.has_content is not None
        return ItemCatalog(
            ids=self.ids[np.maximum(rows, 0)] if len(self.ids) else self.ids[:0],
            id_kind=self.id_kind,
            categorical={k: f.take(rows) for k, f in self.categorical.items()},
            text={k: f.take(rows) for k, f in self.text.items()},
            numeric={k: f.take(rows) for k, f in self.numeric.items()},
            vector={k: f.take(rows) for k, f in self.vector.items()},
            has_content=np.where(rows >= 0, self.has_content[np.maximum(rows, 0)], False),
            report=dict(self.report),
        )

    def align(self, vocab: ItemVocab) -> ItemCatalog:
        """Rows in ``vocab``'s index order, then the catalog items without clicks.

        Row ``i < len(vocab)`` is the item ``vocab.ids[i]`` (unknown features if the catalog
        lacks it: categorical 0, an empty text bag, numeric 0 and missing, zero vectors
        and missing); rows ``len(vocab) ..`` are the catalog items not in the vocabulary,
        in catalog order. The counts are in ``n_without_clicks`` and
        ``n_without_content``.

        Raises:
            SchemaError: the vocabulary's ids are ints and the catalog's strings, or the
                other way round.
        """
        if self.n_vocab is not None:
            raise ConfigError("this catalog is already aligned; align the catalog as read")
        if len(vocab) and vocab.kind != self.id_kind:
            source = self.report.get("source", "the catalog")
            hint = (
                "read the catalog with id_type='str'"
                if vocab.kind == "str"
                else "check that the catalog's item column is the clickstream's item id"
            )
            raise SchemaError(
                f"{source}: item ids are {self.id_kind} but the clickstream's are "
                f"{vocab.kind}; {hint}"
            )
        position = {v: i for i, v in enumerate(self.ids.tolist())}
        rows_vocab = np.fromiter(
            (position.get(v, -1) for v in vocab.ids.tolist()), dtype=np.int64, count=len(vocab)
        )
        in_vocab = np.zeros(len(self), dtype=bool)
        in_vocab[rows_vocab[rows_vocab >= 0]] = True
        extra = np.flatnonzero(~in_vocab)
        out = self.take(np.concatenate([rows_vocab, extra]))
        ids = np.concatenate([np.asarray(vocab.ids, dtype=self.ids.dtype), self.ids[extra]])
        out.ids = ids
        out.n_vocab = len(vocab)
        out.n_without_clicks = len(extra)
        out.n_without_content = int((rows_vocab < 0).sum())
        return out

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``catalog.json`` (ids, vocabularies, statistics) and ``catalog.npz``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"has_content": np.asarray(self.has_content)}
        meta: dict[str, Any] = {
            "format": _FORMAT,
            "id_kind": self.id_kind,
            "n_items": len(self),
            "n_vocab": self.n_vocab,
            "n_without_clicks": self.n_without_clicks,
            "n_without_content": self.n_without_content,
            "report": self.report,
            "categorical": {},
            "text": {},
            "numeric": {},
            "vector": {},
        }
        if self.id_kind == "int":
            arrays["ids"] = self.ids.astype(np.int64)
        else:
            meta["ids"] = [str(v) for v in self.ids.tolist()]
        for k, (name, f) in enumerate(self.categorical.items()):
            arrays[f"categorical{k}_codes"] = f.codes
            meta["categorical"][name] = {"vocabulary": f.vocabulary, "n_buckets": f.n_buckets}
        for k, (name, t) in enumerate(self.text.items()):
            arrays[f"text{k}_offsets"], arrays[f"text{k}_ids"] = t.offsets, t.ids
            meta["text"][name] = {
                "n_buckets": t.n_buckets,
                "char_ngrams": list(t.char_ngrams),
                "word_bigrams": t.word_bigrams,
            }
        for k, (name, x) in enumerate(self.numeric.items()):
            arrays[f"numeric{k}_values"], arrays[f"numeric{k}_missing"] = x.values, x.missing
            meta["numeric"][name] = {"mean": x.mean, "std": x.std}
        for k, (name, v) in enumerate(self.vector.items()):
            arrays[f"vector{k}_values"], arrays[f"vector{k}_missing"] = v.values, v.missing
            meta["vector"][name] = {}
        tmp = directory / "catalog.npz.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, directory / "catalog.npz")
        tmp_json = directory / "catalog.json.tmp"
        tmp_json.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp_json, directory / "catalog.json")

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ItemCatalog:
        """Read what :meth:`save` wrote (no pickle)."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / "catalog.json").read_text(encoding="utf-8"))
            with np.load(directory / "catalog.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError as exc:
            raise ArtifactError(f"{directory}: no saved item catalog ({exc.filename})") from None
        except (ValueError, OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{directory}: unreadable item catalog ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ArtifactError(f"{directory}: not a sessionrec item catalog ({_FORMAT})")
        try:
            if meta["id_kind"] == "int":
                ids = arrays["ids"].astype(np.int64)
            else:
                ids = np.asarray([str(v) for v in meta["ids"]], dtype=object)
            catalog = cls(
                ids=ids,
                id_kind=meta["id_kind"],
                categorical={
                    name: CategoricalFeature(
                        arrays[f"categorical{k}_codes"], m["vocabulary"], m["n_buckets"]
                    )
                    for k, (name, m) in enumerate(meta["categorical"].items())
                },
                text={
                    name: TextFeature(
                        arrays[f"text{k}_offsets"],
                        arrays[f"text{k}_ids"],
                        int(m["n_buckets"]),
                        tuple(m["char_ngrams"]),
                        bool(m["word_bigrams"]),
                    )
                    for k, (name, m) in enumerate(meta["text"].items())
                },
                numeric={
                    name: NumericFeature(
                        arrays[f"numeric{k}_values"],
                        arrays[f"numeric{k}_missing"],
                        float(m["mean"]),
                        float(m["std"]),
                    )
                    for k, (name, m) in enumerate(meta["numeric"].items())
                },
                vector={
                    name: VectorFeature(arrays[f"vector{k}_values"], arrays[f"vector{k}_missing"])
                    for k, name in enumerate(meta["vector"])
                },
                has_content=arrays["has_content"].astype(bool),
                n_vocab=meta["n_vocab"],
                n_without_clicks=int(meta["n_without_clicks"]),
                n_without_content=int(meta["n_without_content"]),
                report=meta.get("report", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}: malformed item catalog ({exc!r})") from None
        if len(catalog.ids) != meta["n_items"]:
            raise ArtifactError(f"{directory}: item catalog arrays do not match its metadata")
        return catalog


# -- reading ----------------------------------------------------------------------------
def _read_frame(
    source: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame, separator: str | None
) -> tuple[pl.DataFrame, str]:
    """The whole catalog as a frame (CSV columns as text), and its label for messages."""
    if isinstance(source, pl.DataFrame | pl.LazyFrame):
        with _reading("<frame>", "a table"):
            return source.lazy().collect(), "<frame>"
    if separator is not None and len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    path = Path(source)
    label = str(source)
    if not path.is_file():
        raise ConfigError(f"{label}: no such file; pass the item catalog with --catalog FILE")
    if path.stat().st_size == 0:
        raise EmptyDataError(f"{label}: the item catalog is empty (0 bytes)")
    kind, compression = _detect_kind(path)
    with tempfile.TemporaryDirectory(prefix="sessionrec-catalog-") as tmp:
        if compression == "gzip":
            path = _gunzip(path, tmp)
            kind, _ = _detect_kind(path)
        scan, _ = _scan(path, kind, None, separator, label)
        with _reading(label, kind):
            frame = scan.drop(_ROW).collect()
    return frame, label


def _role_of(frame: pl.DataFrame, name: str) -> Role:
    """The inferred role of a column (see the module docstring)."""
    dtype = frame.schema[name]
    if dtype.is_integer() or dtype == pl.Boolean:
        return "categorical"
    if dtype.is_float():
        return "numeric"
    if isinstance(dtype, pl.List | pl.Array):
        return "vector"
    if _is_text(dtype):
        sample = frame.get_column(name).cast(pl.String).str.strip_chars().drop_nulls()
        sample = sample.filter(sample != "").head(_SAMPLE_ROWS)
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


def _bad_rows_error(label: str, problems: list[tuple[str, int, int]]) -> BadRowsError:
    parts = [f"{what}: {n} row(s), first at data row {first + 1}" for what, n, first in problems]
    total = sum(n for _, n, _ in problems)
    return BadRowsError(
        f"{label}: {total} bad row(s): " + "; ".join(parts) + ". Fix the file, declare the "
        "column's role (categorical=/text=/numeric=/vector=), or pass on_bad_rows='skip' "
        "to drop such rows (they are counted)."
    )


def _item_ids(
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
    if not _is_text(dtype):
        raise SchemaError(
            f"{label}: item column {item_col!r} has dtype {dtype}; ids must be integers or "
            "strings (cast the column, e.g. floats that hold whole numbers to Int64)"
        )
    text = raw.cast(pl.String).str.strip_chars()
    present = text.drop_nulls()
    present = present.filter(present != "")
    if id_type == "auto":
        kind = (
            "int"
            if len(present) and present.head(_SAMPLE_ROWS).str.contains(_INT_TEXT).all()
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


def _numeric_values(series: pl.Series, name: str, label: str) -> tuple[pl.Series, pl.Series]:
    """``(Float64 values with null for missing, bad-row flag)`` of a numeric column."""
    dtype = series.dtype
    if dtype.is_numeric() or dtype in (pl.Boolean, pl.Null):  # Null: every value missing
        values = series.cast(pl.Float64)
        return values, pl.Series([False] * len(series))
    if not _is_text(dtype):
        raise SchemaError(
            f"{label}: column {name!r} has dtype {dtype} and cannot be numeric; "
            "declare it categorical=/vector= or cast it"
        )
    text = series.cast(pl.String).str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    empty = text.is_null() | (text == "") | text.str.to_lowercase().is_in(["na", "nan", "null"])
    bad = values.is_null() & ~empty
    return values, bad.fill_null(False)


def _vector_values(
    series: pl.Series, name: str, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(float32 [n, dim], missing [n], bad [n], dim)`` of a vector column."""
    dtype = series.dtype
    if _is_text(dtype):
        text = series.cast(pl.String).str.strip_chars()
        with _reading(label, f"JSON lists of numbers in column {name!r}"):
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


def _categorical(
    series: pl.Series, name: str, label: str, max_vocabulary: int, n_buckets: int
) -> CategoricalFeature:
    if isinstance(series.dtype, pl.List | pl.Array | pl.Struct):
        raise SchemaError(
            f"{label}: column {name!r} has dtype {series.dtype} and cannot be categorical; "
            "declare it vector= (lists of numbers)"
        )
    text = series.cast(pl.String).str.strip_chars()
    text = pl.select(pl.when(text == "").then(None).otherwise(text)).to_series().alias(name)
    counts = text.drop_nulls().value_counts(name="n").sort(["n", name], descending=[True, False])
    distinct = counts.height
    if distinct > max_vocabulary:
        codes = np.zeros(len(text), dtype=np.int64)
        present = text.is_not_null().to_numpy()
        codes[present] = 1 + _buckets(
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


def _text_feature(
    series: pl.Series,
    name: str,
    label: str,
    n_buckets: int,
    char_ngrams: tuple[int, ...],
    word_bigrams: bool,
) -> TextFeature:
    if not (_is_text(series.dtype) or series.dtype.is_numeric()):
        raise SchemaError(f"{label}: column {name!r} has dtype {series.dtype} and cannot be text")
    tokens = text_tokens(series, char_ngrams, word_bigrams)
    rows = tokens.get_column("row").to_numpy().astype(np.int64)
    # hash each distinct token once (n-grams repeat across items)
    token = tokens.get_column("token")
    distinct = token.unique()
    bucket = _buckets(distinct.to_numpy().astype(object), n_buckets)
    ids = token.replace_strict(distinct, bucket, return_dtype=pl.Int64).to_numpy().copy()
    offsets = np.zeros(len(series) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(series)), out=offsets[1:])
    return TextFeature(offsets, ids, n_buckets, char_ngrams, word_bigrams)


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
        categorical, text, numeric, vector: columns with that role (see the module
            docstring); they override inference.
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
    if on_bad_rows not in ("error", "skip"):
        raise ConfigError(f"on_bad_rows must be 'error' or 'skip', got {on_bad_rows!r}")
    if duplicate_ids not in ("error", "first"):
        raise ConfigError(f"duplicate_ids must be 'error' or 'first', got {duplicate_ids!r}")
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

    frame, label = _read_frame(source, separator)
    names = frame.columns
    found = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    if item_col is None:
        norm = {"".join(ch for ch in n.lower() if ch.isalnum()): n for n in reversed(names)}
        guesses = ("itemid", "item", "productid", "product", "articleid", "sku", "iid", "id")
        item_col = next((norm[g] for g in guesses if g in norm), names[0] if names else None)
    if item_col is None or item_col not in names:
        raise SchemaError(f"{label} has no item id column {item_col!r} (found: {found})")

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
            roles[c] = _role_of(frame, c)

    if frame.height == 0:
        raise EmptyDataError(f"{label}: the item catalog has no rows")

    # bad rows: ids, numbers, vectors
    ids, kind, bad_id = _item_ids(frame, item_col, id_type, label)
    reasons: list[tuple[str, np.ndarray]] = []
    bad_id_np = bad_id.is_not_null().to_numpy()
    for reason in bad_id.drop_nulls().unique(maintain_order=True).to_list():
        reasons.append((reason, (bad_id == reason).fill_null(False).to_numpy()))
    numbers: dict[str, pl.Series] = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c, role in roles.items():
        if role == "numeric":
            values, bad = _numeric_values(frame.get_column(c), c, label)
            numbers[c] = values
            reasons.append((f"unparsable number in column {c!r}", bad.to_numpy()))
        elif role == "vector":
            values_v, missing, bad_v, dim = _vector_values(frame.get_column(c), c, label)
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
        raise _bad_rows_error(
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

    report["duplicate_id_rows_dropped"] = 0
    duplicated = ids.is_duplicated()
    if duplicated.any() and duplicate_ids == "error":
        dups = ids.filter(duplicated).unique(maintain_order=True)
        rows = data_rows[(ids == dups[0]).to_numpy()][:2] + 1
        raise SchemaError(
            f"{label}: {len(dups)} item id(s) occur more than once in column {item_col!r} "
            f"(first: {dups[0]!r}, data rows {rows[0]} and {rows[1]}); a catalog has one "
            "row per item: merge the rows, or pass duplicate_ids='first' to keep the first "
            "row of each item (the others are counted)"
        )
    if duplicated.any():
        first = ids.is_first_distinct()
        report["duplicate_id_rows_dropped"] = int((~first).sum())
        frame, ids = frame.filter(first), ids.filter(first)
        numbers = {c: v.filter(first) for c, v in numbers.items()}
        keep_np = first.to_numpy()
        vectors = {c: (v[keep_np], m[keep_np]) for c, (v, m) in vectors.items()}

    catalog = ItemCatalog(
        ids=ids.to_numpy().astype(np.int64)
        if kind == "int"
        else np.asarray(ids.to_list(), dtype=object),
        id_kind=kind,
        report=report,
    )
    for c, role in roles.items():
        series = frame.get_column(c)
        if role == "categorical":
            catalog.categorical[c] = _categorical(
                series, c, label, max_vocabulary, category_buckets
            )
        elif role == "text":
            catalog.text[c] = _text_feature(
                series, c, label, text_buckets, char_ngrams, word_bigrams
            )
        elif role == "numeric":
            values = numbers[c].to_numpy().astype(np.float64)
            missing = ~np.isfinite(values)
            present = values[~missing]
            # standardise in units of the largest magnitude: sums of values near the
            # float64 limit (1e300 as a "price") would overflow to inf, and give NaNs
            unit = float(np.abs(present).max()) if len(present) else 1.0
            unit = unit if unit > 0 else 1.0
            mean = float((present / unit).mean()) if len(present) else 0.0
            std = float((present / unit).std()) if len(present) else 0.0
            scaled = np.where(missing, 0.0, (values / unit - mean) / (std or 1.0))
            catalog.numeric[c] = NumericFeature(
                scaled.astype(np.float32), missing, mean * unit, std * unit or 1.0
            )
        else:
            catalog.vector[c] = VectorFeature(*vectors[c])
    return catalog
