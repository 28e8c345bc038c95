"""The encoded features of an item catalog, and :class:`ItemCatalog` (align, take, save,
load).

How each role is encoded is described in :mod:`sessionrec.data.catalog`.
:meth:`ItemCatalog.align` reorders the rows into a vocabulary's index order (catalog
items without clicks appended after it, vocabulary items without a catalog row given
unknown features), which is the table the model indexes.

This module imports numpy; it is not imported by the serving path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sessionrec.data.catalog.hashing import hash_buckets
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError, SchemaError

__all__ = [
    "Role",
    "ROLES",
    "CategoricalFeature",
    "TextFeature",
    "NumericFeature",
    "VectorFeature",
    "ItemCatalog",
]

#: A feature column's role.
Role = Literal["categorical", "text", "numeric", "vector"]
#: The feature roles, in the order features are stored.
ROLES: tuple[str, ...] = ("categorical", "text", "numeric", "vector")

_FORMAT = "sessionrec.item-catalog/1"


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
            return 1 + hash_buckets(["v:" + v for v in values], self.n_buckets)
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
