"""What the trainer reads: the training samples of each epoch, the validation samples and
the click counts, from a dataset in memory or in shards (:func:`training_data`).

The validation split is :func:`~sessionrec.data.dataset.validation_split` with the
contract's ``validation_fraction`` (the latest sessions); prefixes keep their last
``max_session_length`` clicks (:class:`~sessionrec.data.contract.DataContract`), in
training and validation alike. Each epoch's order depends only on ``(seed, epoch)``, so
a resumed run replays it sample for sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from sessionrec.data.contract import DataContract
from sessionrec.data.dataset import SessionDataset, validation_split
from sessionrec.data.sessions import ChunkedSamples, Samples, Sessions

if TYPE_CHECKING:
    from sessionrec.data.shards import ShardedDataset

__all__ = [
    "VALID_SCORE_BUDGET",
    "MIN_AUTO_VALID_SAMPLES",
    "TrainingData",
    "InMemoryData",
    "ShardedData",
    "training_data",
    "valid_cap",
]

#: ``valid_samples="auto"``: the item scores one validation pass may cost (samples x
#: items); beyond it a fixed random subset of the validation samples selects the model.
#: Diginetica's 72,000 validation samples over 43,097 items (3.1e9) stay whole.
VALID_SCORE_BUDGET = 5_000_000_000
#: ``valid_samples="auto"`` keeps at least this many validation samples.
MIN_AUTO_VALID_SAMPLES = 2000


def valid_cap(setting: int | str, n_items: int) -> int | None:
    """The most validation samples a run uses (``None``: all of them) for
    ``TrainConfig.valid_samples``: ``"all"``; a count; or ``"auto"``,
    ``max(MIN_AUTO_VALID_SAMPLES, VALID_SCORE_BUDGET / n_items)`` (every item is ranked
    for every validation sample, so at millions of items a whole validation split would
    take longer than the epoch it judges)."""
    if setting == "all":
        return None
    if setting == "auto":
        return max(MIN_AUTO_VALID_SAMPLES, VALID_SCORE_BUDGET // max(n_items, 1))
    return int(setting)


class TrainingData:
    """The training samples of each epoch, the validation samples and the counts the
    trainer needs.

    Attributes:
        valid: validation samples (``None`` without a validation split).
        item_counts: int64 ``[n_items]`` clicks per item over all training sessions.
        fit_counts: the same over the sessions trained on (validation excluded).
        target_counts: int64 ``[n_items]``, how often each item is the target of a
            training sample (every click of a trained session but its first).
        n_fit_samples: training samples per epoch.
        n_train_sessions: training sessions (validation included).
    """

    valid: Samples | ChunkedSamples | None
    item_counts: np.ndarray
    fit_counts: np.ndarray
    target_counts: np.ndarray
    n_fit_samples: int
    n_train_sessions: int

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        """``(samples, order)`` chunks of one epoch: train on ``samples`` in ``order``;
        the order depends only on ``(seed, epoch)``, so a resumed run replays it."""
        raise NotImplementedError


class InMemoryData(TrainingData):
    """One chunk: every training sample, shuffled as a whole."""

    def __init__(
        self,
        dataset: SessionDataset,
        contract: DataContract,
        n_items: int,
        max_valid: int | None = None,
        seed: int = 0,
    ) -> None:
        fraction, max_length = contract.validation_fraction, contract.max_session_length
        if fraction > 0:
            fit, valid = validation_split(dataset.train, fraction, max_length)
            if max_valid is not None and len(valid) > max_valid:  # a fixed random subset
                pick = np.random.default_rng([seed, 7]).choice(len(valid), max_valid, False)
                valid = valid.select(np.sort(pick))
        else:  # an epoch count chosen earlier on validation: train on everything
            fit, valid = dataset.train, None
        self.samples = fit.to_samples(max_length)
        self.valid = valid
        self.item_counts = np.bincount(dataset.train.items, minlength=n_items)
        self.fit_counts = np.bincount(fit.items, minlength=n_items)
        self.target_counts = _target_counts(fit, n_items)
        self.n_fit_samples = len(self.samples)
        self.n_train_sessions = len(dataset.train)

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        yield self.samples, np.random.default_rng([seed, epoch]).permutation(len(self.samples))


class ShardedData(TrainingData):
    """One shard in memory at a time: each epoch visits the shards in a random order
    and shuffles the samples within each; each shard's latest ``validation_fraction`` of
    sessions validate (:mod:`sessionrec.data.shards`)."""

    def __init__(
        self,
        dataset: ShardedDataset,
        contract: DataContract,
        n_items: int,
        max_valid: int | None = None,
        seed: int = 0,
    ) -> None:
        self.dataset, self.contract, self.seed = dataset, contract, seed
        valid_sizes: list[int] = []
        self.item_counts = np.zeros(n_items, dtype=np.int64)
        self.fit_counts = np.zeros(n_items, dtype=np.int64)
        self.target_counts = np.zeros(n_items, dtype=np.int64)
        self.n_fit_samples = n_valid = self.n_train_sessions = 0
        for i in range(dataset.n_shards):  # counts: one pass, one shard at a time
            sessions = dataset.train_shard(i)
            fit, valid = self._split(sessions)
            self.item_counts += np.bincount(sessions.items, minlength=n_items)
            self.fit_counts += np.bincount(fit.items, minlength=n_items)
            self.target_counts += _target_counts(fit, n_items)
            self.n_fit_samples += fit.n_samples
            n_valid += 0 if valid is None else len(valid)
            valid_sizes.append(0 if valid is None else len(valid))
            self.n_train_sessions += len(sessions)
        # with a cap, each shard keeps its share of the validation samples
        share = 1.0 if max_valid is None or n_valid <= max_valid else max_valid / n_valid
        self._valid_keep = [round(size * share) for size in valid_sizes]
        self.valid = (
            None
            if contract.validation_fraction <= 0
            else ChunkedSamples(self._valid_shard, dataset.n_shards, sum(self._valid_keep))
        )

    def _split(self, sessions: Sessions) -> tuple[Sessions, Samples | None]:
        if self.contract.validation_fraction <= 0:
            return sessions, None
        return validation_split(
            sessions,
            self.contract.validation_fraction,
            self.contract.max_session_length,
            allow_empty=True,
        )

    def _valid_shard(self, i: int) -> Samples:
        valid = self._split(self.dataset.train_shard(i))[1]
        assert valid is not None
        keep = self._valid_keep[i]
        if keep < len(valid):  # a fixed random subset of this shard's validation samples
            pick = np.random.default_rng([self.seed, 7, i]).choice(len(valid), keep, False)
            valid = valid.select(np.sort(pick))
        return valid

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        for i in np.random.default_rng([seed, epoch]).permutation(self.dataset.n_shards):
            fit = self._split(self.dataset.train_shard(int(i)))[0]
            samples = fit.to_samples(self.contract.max_session_length)
            # one shard shuffles as a dataset in memory does (the same run, sample for sample)
            key = [seed, epoch] if self.dataset.n_shards == 1 else [seed, epoch, int(i)]
            yield samples, np.random.default_rng(key).permutation(len(samples))


def _target_counts(sessions: Sessions, n_items: int) -> np.ndarray:
    """How often each item is a target of ``sessions``' samples: every click but each
    session's first (int64 ``[n_items]``)."""
    firsts = sessions.items[sessions.offsets[:-1][sessions.lengths > 0]]
    return np.bincount(sessions.items, minlength=n_items) - np.bincount(firsts, minlength=n_items)


def training_data(
    dataset: SessionDataset | ShardedDataset,
    contract: DataContract,
    n_items: int,
    max_valid: int | None = None,
    seed: int = 0,
) -> TrainingData:
    """The :class:`TrainingData` of ``dataset`` under ``contract``; with ``max_valid``,
    at most that many validation samples (a fixed random subset, from ``seed``)."""
    if isinstance(dataset, SessionDataset):
        return InMemoryData(dataset, contract, n_items, max_valid, seed)
    return ShardedData(dataset, contract, n_items, max_valid, seed)
