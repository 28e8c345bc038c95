"""Sessions and next-item samples in compressed (CSR) form.

Every stage after ingestion works on item *indices* (``0 .. n_items - 1``, given by an
:class:`~sessionrec.data.vocab.ItemVocab`), never on raw ids. Variable-length sequences
are stored as one flat ``items`` array plus ``offsets`` (length ``n + 1``): sequence ``i``
is ``items[offsets[i]:offsets[i + 1]]``. This keeps 700k samples in a few MB and lets
every consumer (baselines, graph building, evaluation) slice batches without Python
lists.

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sessionrec.errors import ConfigError

__all__ = ["Sessions", "Samples", "ChunkedSamples", "lengths_to_offsets"]


def lengths_to_offsets(lengths: np.ndarray) -> np.ndarray:
    """``[2, 3, 1] -> [0, 2, 5, 6]`` (int64)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _check_csr(items: np.ndarray, offsets: np.ndarray, what: str) -> None:
    if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0:
        raise ConfigError(f"{what}: offsets must be 1-D and start at 0")
    if offsets[-1] != len(items):
        raise ConfigError(
            f"{what}: offsets end at {int(offsets[-1])} but there are {len(items)} items"
        )
    if len(offsets) > 1 and np.any(np.diff(offsets) < 0):
        raise ConfigError(f"{what}: offsets must be non-decreasing")


@dataclass(frozen=True)
class Sessions:
    """Whole sessions (click sequences of item indices), in time order of their clicks.

    Attributes:
        items: ``int64 [n_clicks]``, the item index of every click, session after session.
        offsets: ``int64 [n_sessions + 1]``.
        times: ``float64 [n_sessions]`` or ``None``: Unix seconds of each session's last
            click (used for temporal splits and by recency-aware baselines). Benchmarks
            without timestamps leave it ``None``; their sessions are in time order, so
            the position stands in for time.
        session_ids: optional ``[n_sessions]`` raw session ids, for reports.
    """

    items: np.ndarray
    offsets: np.ndarray
    times: np.ndarray | None = None
    session_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", np.ascontiguousarray(self.items, dtype=np.int64))
        object.__setattr__(self, "offsets", np.ascontiguousarray(self.offsets, dtype=np.int64))
        _check_csr(self.items, self.offsets, "Sessions")
        if self.times is not None:
            times = np.ascontiguousarray(self.times, dtype=np.float64)
            if len(times) != len(self):
                raise ConfigError(f"Sessions: {len(times)} times for {len(self)} sessions")
            object.__setattr__(self, "times", times)

    @classmethod
    def from_lists(
        cls, sequences: Sequence[Sequence[int]], times: Sequence[float] | None = None
    ) -> Sessions:
        """Build from Python lists of item indices (tests, small data)."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        flat = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if len(sequences)
            else np.zeros(0, dtype=np.int64)
        )
        return cls(flat, lengths_to_offsets(lengths), None if times is None else np.asarray(times))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_clicks(self) -> int:
        return len(self.items)

    def recency_order(self) -> np.ndarray:
        """int64 session indices from oldest to newest: by :attr:`times`, ties by
        position; by position alone without times."""
        n = len(self)
        if self.times is None:
            return np.arange(n, dtype=np.int64)
        return np.lexsort((np.arange(n), self.times)).astype(np.int64)

    @property
    def n_samples(self) -> int:
        """Samples of :meth:`to_samples`: ``length - 1`` per session (none for one click)."""
        return int(np.maximum(self.lengths - 1, 0).sum())

    def to_lists(self) -> list[list[int]]:
        return [s.tolist() for s in self]

    def select(self, index: np.ndarray) -> Sessions:
        """The sessions at ``index`` (an int array or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        lengths = self.offsets[index + 1] - self.offsets[index]  # O(len(index))
        offsets = lengths_to_offsets(lengths)
        # gather positions of every selected click without a Python loop
        starts = np.repeat(self.offsets[index], lengths)
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        return Sessions(
            self.items[starts + within],
            offsets,
            None if self.times is None else self.times[index],
            None if self.session_ids is None else self.session_ids[index],
        )

    def keep_clicks(self, mask: np.ndarray) -> Sessions:
        """The same sessions with only the clicks where ``mask [n_clicks]`` is ``True``.

        Every session stays, in order, with its ``times`` and ``session_ids`` (a session
        may become shorter, or empty: drop those with :meth:`select`).
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.items.shape:
            raise ConfigError(f"keep_clicks: mask of shape {mask.shape}, {self.n_clicks} clicks")
        session_of_click = np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)
        kept_lengths = np.bincount(session_of_click[mask], minlength=len(self))
        return Sessions(
            self.items[mask], lengths_to_offsets(kept_lengths), self.times, self.session_ids
        )

    def to_samples(self, max_length: int | None = None) -> Samples:
        """Prefix augmentation: ``[a, b, c, d]`` gives ``([a], b), ([a, b], c), ([a, b, c], d)``.

        Samples come session by session, shortest prefix first. With ``max_length`` each
        prefix keeps only its last ``max_length`` clicks.
        """
        lengths = self.lengths
        n_per_session = np.maximum(lengths - 1, 0)
        n = int(n_per_session.sum())
        session_index = np.repeat(np.arange(len(self), dtype=np.int64), n_per_session)
        # k-th sample of a session has prefix length k + 1
        first_sample = lengths_to_offsets(n_per_session)
        prefix_len = np.arange(n, dtype=np.int64) - first_sample[session_index] + 1
        start = self.offsets[session_index]
        targets = self.items[start + prefix_len]
        if max_length is not None:
            cut = np.maximum(prefix_len - max_length, 0)
            start = start + cut
            prefix_len = prefix_len - cut
        offsets = lengths_to_offsets(prefix_len)
        gather = np.repeat(start, prefix_len) + (
            np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], prefix_len)
        )
        return Samples(
            self.items[gather],
            offsets,
            targets,
            session_index=session_index,
            times=None if self.times is None else self.times[session_index],
        )


@dataclass(frozen=True)
class Samples:
    """Next-item samples: a prefix of item indices and the item clicked next.

    Attributes:
        items: ``int64 [total prefix clicks]``; prefix ``i`` is ``items[offsets[i]:offsets[i+1]]``.
        offsets: ``int64 [n_samples + 1]``.
        targets: ``int64 [n_samples]``.
        session_index: optional ``int64 [n_samples]``, the session each sample comes from.
        times: optional ``float64 [n_samples]``, the time of the sample's session.
    """

    items: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    session_index: np.ndarray | None = None
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", np.ascontiguousarray(self.items, dtype=np.int64))
        object.__setattr__(self, "offsets", np.ascontiguousarray(self.offsets, dtype=np.int64))
        object.__setattr__(self, "targets", np.ascontiguousarray(self.targets, dtype=np.int64))
        _check_csr(self.items, self.offsets, "Samples")
        if len(self.targets) != len(self):
            raise ConfigError(f"Samples: {len(self.targets)} targets for {len(self)} prefixes")
        if np.any(np.diff(self.offsets) == 0):
            raise ConfigError("Samples: every prefix needs at least one click")

    @classmethod
    def from_lists(cls, prefixes: Sequence[Sequence[int]], targets: Sequence[int]) -> Samples:
        lengths = np.fromiter((len(s) for s in prefixes), dtype=np.int64, count=len(prefixes))
        flat = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in prefixes])
            if len(prefixes)
            else np.zeros(0, dtype=np.int64)
        )
        return cls(flat, lengths_to_offsets(lengths), np.asarray(targets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def prefix(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, index: np.ndarray) -> Samples:
        """The samples at ``index`` (an int array or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        starts = self.offsets[index]
        lengths = self.offsets[index + 1] - starts  # O(len(index)), not O(len(self))
        offsets = lengths_to_offsets(lengths)
        gather = np.repeat(starts, lengths) + (
            np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        )
        return Samples(
            self.items[gather],
            offsets,
            self.targets[index],
            None if self.session_index is None else self.session_index[index],
            None if self.times is None else self.times[index],
        )

    def last_clicks(self, max_length: int) -> Samples:
        """Every prefix cut to its last ``max_length`` clicks (targets unchanged)."""
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length must be an integer >= 1, got {max_length!r}")
        lengths = self.lengths
        if len(self) == 0 or lengths.max() <= max_length:
            return self
        from_end = np.repeat(self.offsets[1:], lengths) - np.arange(len(self.items)) - 1
        return Samples(
            self.items[from_end < max_length],
            lengths_to_offsets(np.minimum(lengths, max_length)),
            self.targets,
            self.session_index,
            self.times,
        )

    def chunks(self) -> Iterator[Samples]:
        """The samples as one chunk (the interface of :class:`ChunkedSamples`)."""
        yield self

    def batches(self, batch_size: int) -> Iterator[Samples]:
        """Consecutive batches of at most ``batch_size`` samples."""
        for start in range(0, len(self), batch_size):
            yield self.select(np.arange(start, min(start + batch_size, len(self))))

    def padded(self, length: int | None = None, pad: int = -1) -> np.ndarray:
        """Left-aligned ``[n, L]`` matrix of prefixes, ``pad`` after each prefix's end."""
        lengths = self.lengths
        width = int(lengths.max(initial=0)) if length is None else length
        out = np.full((len(self), width), pad, dtype=np.int64)
        rows = np.repeat(np.arange(len(self)), lengths)
        cols = np.arange(len(self.items)) - np.repeat(self.offsets[:-1], lengths)
        keep = cols < width
        out[rows[keep], cols[keep]] = self.items[keep]
        return out


class ChunkedSamples:
    """Samples held chunk by chunk (a sharded dataset's), one chunk in memory at a time.

    ``load(i)`` gives chunk ``i``; :meth:`chunks` yields them in order. Consumers that
    accept ``Samples | ChunkedSamples`` (evaluation) iterate ``chunks()``: a plain
    :class:`Samples` is its own single chunk.
    """

    def __init__(self, load: Callable[[int], Samples], n_chunks: int, n_samples: int) -> None:
        self._load = load
        self.n_chunks = n_chunks
        self._n_samples = n_samples

    def __len__(self) -> int:
        return self._n_samples

    def chunks(self) -> Iterator[Samples]:
        for i in range(self.n_chunks):
            yield self._load(i)
