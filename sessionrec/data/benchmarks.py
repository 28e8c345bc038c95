"""Loaders for published benchmark files.

``srgnn-pickle``: the preprocessed datasets of the SR-GNN paper (Wu et al., AAAI 2019)
and most later papers, a folder with Python pickles:

- ``all_train_seq.txt``: list of training sessions (lists of int item ids, time order);
- ``train.txt`` (optional): ``(prefixes, targets)``, the augmented training samples;
- ``test.txt``: ``(prefixes, targets)``, the augmented test samples.

A pickle can run arbitrary code when loaded. :func:`restricted_load` admits only the
opcodes that build lists, tuples and ints: any global, class or callable is refused
*before* anything is constructed, so nothing is ever executed.

This module imports numpy only.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples, Sessions, lengths_to_offsets
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, UnsafePickleError

__all__ = ["restricted_load", "load_srgnn_pickle", "BENCHMARKS", "load_benchmark"]


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
            f"{folder}: no such folder; --benchmark srgnn-pickle expects a folder with "
            "all_train_seq.txt and test.txt"
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


BENCHMARKS = {"srgnn-pickle": load_srgnn_pickle}


def load_benchmark(name: str, path: str | os.PathLike[str]) -> SessionDataset:
    """Load benchmark ``name`` (one of :data:`BENCHMARKS`) from ``path``."""
    try:
        loader = BENCHMARKS[name]
    except KeyError:
        raise ArtifactError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}"
        ) from None
    return loader(path)
