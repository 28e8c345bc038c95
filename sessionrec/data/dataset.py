"""A prepared dataset: training sessions, test samples, the item vocabulary.

On disk (``sessionrec prepare --out DIR``)::

    DIR/
      dataset.json   format, counts, protocol parameters, a fingerprint of the arrays
      arrays.npz     train_items, train_offsets, train_times, test_items, test_offsets,
                     test_targets, test_session_index (numeric arrays only, no pickle)
      vocab.json     the item vocabulary (raw ids in index order)

This module imports numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError, EmptyDataError

__all__ = ["SessionDataset", "validation_split"]

FORMAT = "sessionrec.dataset/1"


def validation_split(
    train: Sessions,
    fraction: float = 0.1,
    max_length: int | None = None,
    allow_empty: bool = False,
) -> tuple[Sessions, Samples]:
    """Carve a validation set from training data: the latest ``fraction`` of sessions.

    Sessions are ordered by :attr:`Sessions.times` (ties and missing times: by position,
    which is time order in the benchmarks). The latest sessions become validation
    samples (prefix-augmented); the rest stay training sessions. Model selection and
    tuning use this split, never the test set.

    ``allow_empty``: a side may be empty (one shard of a sharded dataset may be small).

    Returns:
        ``(fit_sessions, valid_samples)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    n = len(train)
    n_valid = int(round(n * fraction))
    if (n_valid == 0 or n_valid == n) and not allow_empty:
        raise EmptyDataError(
            f"cannot carve a {fraction:.0%} validation split from {n} training sessions"
        )
    order = train.recency_order()
    fit_index = np.sort(order[: n - n_valid])
    valid_index = np.sort(order[n - n_valid :])
    return train.select(fit_index), train.select(valid_index).to_samples(max_length)


@dataclass
class SessionDataset:
    """Training sessions, test samples and the item vocabulary, under one protocol.

    Attributes:
        train: whole training sessions (item indices), in time order.
        test: test samples (prefix -> next item), already augmented.
        vocab: raw item id of every index; ``n_items == len(vocab)``.
        meta: provenance: source file, protocol parameters, counts.
    """

    train: Sessions
    test: Samples
    vocab: ItemVocab
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.vocab)

    def train_samples(self, max_length: int | None = None) -> Samples:
        return self.train.to_samples(max_length)

    def stats(self) -> dict[str, Any]:
        """Counts under the keys of ``sessionrec stats --json``.

        ``test_sessions`` counts the sessions of the test period that pass the session
        filters (the SR-GNN authors' count), ``test_sessions_with_samples`` those that
        still have two clicks on training items and so give test samples. Benchmarks
        published as bare samples have neither (``None``).
        """
        with_samples = (
            int(len(np.unique(self.test.session_index)))
            if self.test.session_index is not None
            else None
        )
        in_split = self.meta.get("report", {}).get("protocol", {}).get("test_sessions_in_split")
        lengths = self.train.lengths
        return {
            "train_sessions": len(self.train),
            "test_sessions": int(in_split) if in_split is not None else with_samples,
            "test_sessions_with_samples": with_samples,
            "items": self.n_items,
            "train_samples": self.train.n_samples,
            "test_samples": len(self.test),
            "train_clicks": self.train.n_clicks,
            "avg_train_session_length": float(lengths.mean()) if len(lengths) else 0.0,
        }

    def fingerprint(self) -> str:
        """SHA-256 over the arrays and the vocabulary: identifies the training data."""
        h = hashlib.sha256()
        for array in (self.train.items, self.train.offsets, self.test.items, self.test.targets):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(json.dumps(self.vocab.to_json()).encode())
        return h.hexdigest()

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write to ``directory`` atomically: built in a sibling temp dir, then renamed.

        A dataset replaces the whole folder: an existing prepared dataset there is
        replaced; a folder that holds anything else is refused unless ``overwrite``
        (:func:`check_replaceable`).

        Raises:
            ArtifactError: ``directory`` holds other files and ``overwrite`` is off.
        """
        directory = Path(directory)
        check_replaceable(directory, overwrite)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_build_directory(directory)
        try:
            save_arrays(tmp / "arrays.npz", self.train, self.test)
            self.vocab.save(tmp / "vocab.json")
            meta = {
                **self.meta,
                "format": FORMAT,  # after meta: a stray "format" key must not replace it
                "stats": self.stats(),
                "fingerprint": self.fingerprint(),
            }
            (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))
            replace_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SessionDataset:
        directory = Path(directory)
        meta = read_dataset_meta(directory)
        meta_path = directory / "dataset.json"
        if meta.get("format") != FORMAT:
            raise ArtifactError(
                f"{meta_path}: format {meta.get('format')!r}, this sessionrec reads {FORMAT!r}"
            )
        train, test = load_arrays(directory / "arrays.npz")
        vocab = ItemVocab.load(directory / "vocab.json")
        dataset = cls(train, test, vocab, {k: v for k, v in meta.items() if k != "format"})
        expected = meta.get("fingerprint")
        if expected is not None and expected != dataset.fingerprint():
            raise ArtifactError(
                f"{directory}: arrays do not match the fingerprint in dataset.json "
                "(modified or corrupted); prepare the dataset again"
            )
        return dataset


def read_dataset_meta(directory: Path) -> dict[str, Any]:
    """``directory/dataset.json`` of a prepared dataset (in memory or sharded).

    Raises:
        ArtifactError: missing, or not a JSON object.
    """
    meta_path = directory / "dataset.json"
    if not meta_path.is_file():
        raise ArtifactError(
            f"{directory}: not a prepared dataset (no dataset.json); create one with "
            "sessionrec.prepare(...) and save it with .save(DIR)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{meta_path}: not a JSON object")
    return meta


def check_replaceable(directory: Path, overwrite: bool) -> None:
    """Refuse, before any work, to replace a folder that is not a prepared dataset: a
    dataset's folder is replaced whole, and the files in it would be lost (the dump
    itself, when a dataset is written into the dump's folder).

    Raises:
        ArtifactError: ``directory`` is a file, or a non-empty folder without a
            ``dataset.json``, and ``overwrite`` is off.
    """
    if overwrite or not directory.exists():
        return
    if not directory.is_dir():
        raise ArtifactError(
            f"{directory} is a file; a dataset is a folder: give another path",
            options=("SessionDataset.save.directory",),
        )
    names = sorted(p.name for p in directory.iterdir())
    if not names or "dataset.json" in names:
        return  # empty, or a prepared dataset: replaced
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise ArtifactError(
        f"{directory} is not a prepared dataset and holds {shown}: writing a dataset there "
        "would replace the whole folder and delete them. Give a new or empty folder, or "
        "overwrite it on purpose",
        options=("SessionDataset.save.overwrite",),
    )


def new_build_directory(directory: Path) -> Path:
    """A new empty sibling of ``directory`` (``.NAME.RANDOM``) to build it in, created
    with the process's umask like any folder (``tempfile.mkdtemp`` makes it 0700, and the
    rename would give the finished dataset that mode: 0700 datasets beside 0755 models)."""
    while True:
        tmp = directory.parent / f".{directory.name}.{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def replace_directory(built: Path, directory: Path) -> None:
    """Put the finished folder ``built`` (a sibling of ``directory``) in its place; an
    existing ``directory`` is moved aside first and removed after."""
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
        os.replace(built, directory)
        shutil.rmtree(old)
    else:
        os.replace(built, directory)


def save_arrays(path: Path, train: Sessions, test: Samples) -> None:
    """Training sessions and test samples to one ``.npz`` (numeric arrays, no pickle)."""
    arrays = {
        "train_items": train.items,
        "train_offsets": train.offsets,
        "test_items": test.items,
        "test_offsets": test.offsets,
        "test_targets": test.targets,
    }
    if train.times is not None:
        arrays["train_times"] = train.times
    if test.session_index is not None:
        arrays["test_session_index"] = test.session_index
    if test.times is not None:
        arrays["test_times"] = test.times
    np.savez(path, **arrays)


def load_arrays(path: Path) -> tuple[Sessions, Samples]:
    """The inverse of :func:`save_arrays`.

    Raises:
        ArtifactError: the file cannot be read.
    """
    return load_sessions(path), load_samples(path)


def _arrays(path: Path, prefix: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:  # reads only the named arrays
            return {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot be read ({exc})") from None


def load_sessions(path: Path) -> Sessions:
    """The training sessions of a :func:`save_arrays` file."""
    a = _arrays(path, "train_")
    try:
        return Sessions(a["items"], a["offsets"], a.get("times"))
    except (KeyError, ConfigError) as exc:
        raise ArtifactError(f"{path}: no valid training sessions ({exc})") from None


def load_samples(path: Path) -> Samples:
    """The test samples of a :func:`save_arrays` file."""
    a = _arrays(path, "test_")
    try:
        return Samples(
            a["items"], a["offsets"], a["targets"], a.get("session_index"), a.get("times")
        )
    except (KeyError, ConfigError) as exc:
        raise ArtifactError(f"{path}: no valid test samples ({exc})") from None
