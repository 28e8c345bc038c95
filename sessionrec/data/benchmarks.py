"""Loaders for published benchmark files.

``srgnn-pickle``: the preprocessed datasets of the SR-GNN paper (Wu et al., AAAI 2019)
and most later papers, a folder with Python pickles:

- ``all_train_seq.txt``: list of training sessions (lists of int item ids, time order);
- ``train.txt`` (optional): ``(prefixes, targets)``, the augmented training samples;
- ``test.txt``: ``(prefixes, targets)``, the augmented test samples.

A pickle can run arbitrary code when loaded. :func:`restricted_load` admits only the
opcodes that build lists, tuples and ints: any global, class or callable is refused
*before* anything is constructed, so nothing is ever executed.

``yoochoose-categories``: a small YooChoose subset with item categories (see
:func:`load_yoochoose_categories`), text files ``sessions_{train,valid,test}.tsv`` and
``item_categories.tsv``.

This module imports numpy only (:func:`yoochoose_categories_catalog` imports polars
through :mod:`sessionrec.data.catalog` when called).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples, Sessions, lengths_to_offsets
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, UnsafePickleError

if TYPE_CHECKING:  # pragma: no cover
    from sessionrec.data.catalog import ItemCatalog

__all__ = [
    "restricted_load",
    "load_srgnn_pickle",
    "load_yoochoose_categories",
    "yoochoose_categories_catalog",
    "BENCHMARKS",
    "load_benchmark",
]


class _RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global lookup: lists, tuples and ints need none."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401
        raise UnsafePickleError(
            f"refused to load {module}.{name}: benchmark pickles may hold only lists, "
            "tuples and ints (nothing was executed)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: benchmark pickles hold plain data")


def _check_plain(obj: Any, source: str) -> None:
    """Iteratively verify ``obj`` is lists/tuples of lists/tuples/ints (bool excluded)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is list or t is tuple:
            if x and type(x[0]) is int and all(type(v) is int for v in x):
                continue  # fast path for a flat list of ints
            stack.extend(x)
        elif t is not int:
            raise UnsafePickleError(
                f"{source}: holds a {t.__name__}; benchmark pickles may hold only lists, "
                "tuples and ints"
            )


def restricted_load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` admitting only lists, tuples and ints."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: file not found") from None
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except Exception as exc:  # malformed stream: truncated, wrong opcodes, ...
        raise ArtifactError(
            f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"
        ) from None
    _check_plain(obj, str(path))
    return obj


def _samples_from_pair(obj: Any, source: str) -> Samples:
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise ArtifactError(f"{source}: expected a pair (prefixes, targets)")
    prefixes, targets = obj
    if len(prefixes) != len(targets):
        raise ArtifactError(f"{source}: {len(prefixes)} prefixes but {len(targets)} targets")
    if any(len(p) == 0 for p in prefixes):
        raise ArtifactError(f"{source}: a prefix is empty")
    return Samples.from_lists(prefixes, targets)


def load_srgnn_pickle(path: str | os.PathLike[str]) -> SessionDataset:
    """Load an SR-GNN benchmark folder as a :class:`SessionDataset`.

    Training data are the whole sessions of ``all_train_seq.txt`` (their prefix
    augmentation gives the paper's training samples); the test set is ``test.txt`` as
    published. Item ids become indices through a vocabulary of the sorted ids seen in
    either file (for Diginetica: ids 1..43,097 -> indices 0..43,096).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(
            f"{folder}: no such folder; the srgnn-pickle benchmark (load_benchmark name "
            "'srgnn-pickle') expects a folder (path) with all_train_seq.txt and test.txt",
            options=("load_benchmark.path",),
        )
    seq_path = folder / "all_train_seq.txt"
    sequences = restricted_load(seq_path)
    if not isinstance(sequences, list) or not all(isinstance(s, (list, tuple)) for s in sequences):
        raise ArtifactError(f"{seq_path}: expected a list of sessions (lists of ints)")
    test_raw = _samples_from_pair(restricted_load(folder / "test.txt"), str(folder / "test.txt"))

    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(lengths.sum()))
    vocab = ItemVocab(np.unique(np.concatenate([flat, test_raw.items, test_raw.targets])))
    # ids are sorted, so searchsorted maps id -> index
    to_index = lambda a: np.searchsorted(vocab.ids, a).astype(np.int64)  # noqa: E731
    train = Sessions(to_index(flat), lengths_to_offsets(lengths))
    test = Samples(to_index(test_raw.items), test_raw.offsets, to_index(test_raw.targets))
    meta = {
        "source": str(folder.resolve()),
        "benchmark": "srgnn-pickle",
        "protocol": {"name": "srgnn-pickle", "note": "preprocessed by the SR-GNN authors"},
    }
    return SessionDataset(train, test, vocab, meta)


_YOOCHOOSE_COLUMNS = ("sessionId", "categorys", "items")


def _read_yoochoose_sessions(path: Path) -> tuple[np.ndarray, Sessions]:
    """``(session_ids [n], sessions of raw item ids)`` of one ``sessions_*.tsv`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: file not found; the yoochoose-categories benchmark (load_benchmark name "
            "'yoochoose-categories') expects a folder (path) with sessions_train.tsv, "
            "sessions_valid.tsv and sessions_test.tsv",
            options=("load_benchmark.path",),
        ) from None
    lines = text.splitlines()
    header = tuple(lines[0].split("\t")) if lines else ()
    if header != _YOOCHOOSE_COLUMNS:
        raise ArtifactError(
            f"{path}: expected the tab-separated columns {', '.join(_YOOCHOOSE_COLUMNS)}, "
            f"found {', '.join(header) or 'nothing'}"
        )
    session_ids: list[int] = []
    lengths: list[int] = []
    flat: list[int] = []
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            if len(fields) != 3:
                raise ValueError(f"{len(fields)} fields")
            items = [int(v) for v in fields[2].split(",")]
            n_categories = len(fields[1].split(","))
            session_ids.append(int(fields[0]))
        except ValueError as exc:
            raise ArtifactError(
                f"{path}, line {line_no}: expected sessionId<TAB>categorys<TAB>items with "
                f"comma-separated integer items ({exc})"
            ) from None
        if n_categories != len(items):
            raise ArtifactError(
                f"{path}, line {line_no}: {n_categories} categories for {len(items)} items "
                "(the two lists must be aligned)"
            )
        lengths.append(len(items))
        flat.extend(items)
    sessions = Sessions(
        np.asarray(flat, dtype=np.int64),
        lengths_to_offsets(np.asarray(lengths, dtype=np.int64)),
    )
    return np.asarray(session_ids, dtype=np.int64), sessions


def load_yoochoose_categories(path: str | os.PathLike[str]) -> SessionDataset:
    """Load the ``yoochoose-categories`` folder as a :class:`SessionDataset`.

    - *Training sessions*: those of ``sessions_train.tsv``, then those of
      ``sessions_valid.tsv``, each file in its own row order (ascending session id).
      The files carry no timestamps (``times`` is ``None``), so
      :func:`~sessionrec.data.dataset.validation_split` treats the position as time: the
      trainer's "latest" sessions are the last ones of ``sessions_valid.tsv``, the
      validation sessions of the dataset's authors. (Session ids of the three files
      interleave over the same range, so they are not a time order across files.)
    - *Test samples*: the sessions of ``sessions_test.tsv``, prefix-augmented
      (``[a, b, c]`` gives ``([a], b), ([a, b], c)``, shortest prefix first, with
      ``session_index`` the row of the session in the test file), following the SR-GNN
      protocol: test clicks on items without a training click are dropped and test
      sessions left with fewer than 2 clicks give no sample (on the published files no
      click is dropped: every test item occurs in training).
    - *Vocabulary*: the sorted raw item ids of the training clicks, as
      :func:`load_srgnn_pickle` (5,397 of the 5,399 ids ``0 .. 5398``; the two others are
      catalog items without clicks, which :meth:`ItemCatalog.align` appends).

    On the published files: 37,261 training sessions (28,806 + 8,455), 106,559 training
    samples, 24,205 test samples from 8,456 test sessions, 5,397 items. Beware: 5,000 of
    the 8,456 test sessions are exact copies (same session id and clicks) of sessions of
    ``sessions_train.tsv``; they are kept, as published, and counted in
    ``meta["test_sessions_also_in_train"]``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(
            f"{folder}: no such folder; the yoochoose-categories benchmark (load_benchmark name "
            "'yoochoose-categories') expects a folder (path) with sessions_train.tsv, "
            "sessions_valid.tsv, sessions_test.tsv (and item_categories.tsv)",
            options=("load_benchmark.path",),
        )
    ids_train, train_raw = _read_yoochoose_sessions(folder / "sessions_train.tsv")
    ids_valid, valid_raw = _read_yoochoose_sessions(folder / "sessions_valid.tsv")
    ids_test, test_raw = _read_yoochoose_sessions(folder / "sessions_test.tsv")

    train_items = np.concatenate([train_raw.items, valid_raw.items])
    train_lengths = np.concatenate([train_raw.lengths, valid_raw.lengths])
    vocab = ItemVocab(np.unique(train_items))
    # ids are sorted, so searchsorted maps id -> index
    train = Sessions(
        np.searchsorted(vocab.ids, train_items).astype(np.int64),
        lengths_to_offsets(train_lengths),
        session_ids=np.concatenate([ids_train, ids_valid]),
    )

    # SR-GNN protocol: drop test clicks on items unknown to training, then short sessions
    known = np.isin(test_raw.items, vocab.ids)
    kept = test_raw.keep_clicks(known)
    kept_lengths = kept.lengths
    test_sessions = Sessions(
        np.searchsorted(vocab.ids, kept.items).astype(np.int64),
        kept.offsets,
        session_ids=ids_test,
    )
    test = test_sessions.to_samples()  # session_index: row in sessions_test.tsv

    train_keys = {
        (int(sid), tuple(s.tolist())) for sid, s in zip(ids_train, train_raw, strict=True)
    }
    in_train = sum(
        (int(sid), tuple(s.tolist())) in train_keys
        for sid, s in zip(ids_test, test_raw, strict=True)
    )
    meta = {
        "source": str(folder.resolve()),
        "benchmark": "yoochoose-categories",
        "protocol": {
            "name": "yoochoose-categories",
            "note": "train = sessions_train.tsv then sessions_valid.tsv; test = "
            "sessions_test.tsv, prefix-augmented; test clicks on items without training "
            "clicks dropped, test sessions need 2 clicks",
        },
        "test_sessions": len(test_raw),
        "test_clicks_dropped_unknown_item": int((~known).sum()),
        "test_sessions_without_samples": int((kept_lengths < 2).sum()),
        "test_sessions_also_in_train": int(in_train),
    }
    return SessionDataset(train, test, vocab, meta)


def yoochoose_categories_catalog(path: str | os.PathLike[str]) -> ItemCatalog:
    """The item catalog of the ``yoochoose-categories`` folder: ``item_categories.tsv``.

    One categorical feature ``category``. The file lists 27 items more than once (26
    twice, item 121 three times: 5,427 rows for 5,399 items, ids ``0 .. 5398``); the
    first row of each item is kept (``duplicate_ids="first"``; the 28 dropped rows are
    counted in ``report["duplicate_id_rows_dropped"]``). The file holds 25 category
    values, but 13 of them (11 and 13 .. 24) occur only on the dropped rows, so the
    feature has 12 values (codes 1 .. 12; code 0, unknown, is unused). Align it with a
    dataset's vocabulary (:meth:`ItemCatalog.align`) before use.
    """
    from sessionrec.data.catalog import read_catalog

    file = Path(path) / "item_categories.tsv"
    if not file.is_file():
        raise ArtifactError(f"{file}: file not found (the yoochoose-categories item catalog)")
    return read_catalog(
        file,
        "itemId",
        categorical=["category"],
        id_type="int",
        separator="\t",
        duplicate_ids="first",
    )


BENCHMARKS = {
    "srgnn-pickle": load_srgnn_pickle,
    "yoochoose-categories": load_yoochoose_categories,
}


def load_benchmark(name: str, path: str | os.PathLike[str]) -> SessionDataset:
    """Load benchmark ``name`` (one of :data:`BENCHMARKS`) from ``path``."""
    try:
        loader = BENCHMARKS[name]
    except KeyError:
        raise ArtifactError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}",
            options=("load_benchmark.name",),
        ) from None
    return loader(path)
