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

__all__ = ["TrainingData", "InMemoryData", "ShardedData", "training_data"]


class TrainingData:
    """The training samples of each epoch, the validation samples and the counts the
    trainer needs.

    Attributes:
        valid: validation samples (``None`` without a validation split).
        item_counts: int64 ``[n_items]`` clicks per item over all training sessions.
        fit_counts: the same over the sessions trained on (validation excluded).
        n_fit_samples: training samples per epoch.
        n_train_sessions: training sessions (validation included).
    """

    valid: Samples | ChunkedSamples | None
    item_counts: np.ndarray
    fit_counts: np.ndarray
    n_fit_samples: int
    n_train_sessions: int

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        """``(samples, order)`` chunks of one epoch: train on ``samples`` in ``order``;
        the order depends only on ``(seed, epoch)``, so a resumed run replays it."""
        raise NotImplementedError


class InMemoryData(TrainingData):
    """One chunk: every training sample, shuffled as a whole."""

    def __init__(self, dataset: SessionDataset, contract: DataContract, n_items: int) -> None:
        fraction, max_length = contract.validation_fraction, contract.max_session_length
        if fraction > 0:
            fit, valid = validation_split(dataset.train, fraction, max_length)
        else:  # an epoch count chosen earlier on validation: train on everything
            fit, valid = dataset.train, None
        self.samples = fit.to_samples(max_length)
        self.valid = valid
        self.item_counts = np.bincount(dataset.train.items, minlength=n_items)
        self.fit_counts = np.bincount(fit.items, minlength=n_items)
        self.n_fit_samples = len(self.samples)
        self.n_train_sessions = len(dataset.train)

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        yield self.samples, np.random.default_rng([seed, epoch]).permutation(len(self.samples))


class ShardedData(TrainingData):
    """One shard in memory at a time: each epoch visits the shards in a random order
    and shuffles the samples within each; each shard's latest ``validation_fraction`` of
    sessions validate (:mod:`sessionrec.data.shards`)."""

    def __init__(self, dataset: ShardedDataset, contract: DataContract, n_items: int) -> None:
        self.dataset, self.contract = dataset, contract
        self.item_counts = np.zeros(n_items, dtype=np.int64)
        self.fit_counts = np.zeros(n_items, dtype=np.int64)
        self.n_fit_samples = n_valid = self.n_train_sessions = 0
        for i in range(dataset.n_shards):  # counts: one pass, one shard at a time
            sessions = dataset.train_shard(i)
            fit, valid = self._split(sessions)
            self.item_counts += np.bincount(sessions.items, minlength=n_items)
            self.fit_counts += np.bincount(fit.items, minlength=n_items)
            self.n_fit_samples += fit.n_samples
            n_valid += 0 if valid is None else len(valid)
            self.n_train_sessions += len(sessions)
        self.valid = (
            None
            if contract.validation_fraction <= 0
            else ChunkedSamples(self._valid_shard, dataset.n_shards, n_valid)
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
        return valid

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        for i in np.random.default_rng([seed, epoch]).permutation(self.dataset.n_shards):
            fit = self._split(self.dataset.train_shard(int(i)))[0]
            samples = fit.to_samples(self.contract.max_session_length)
            # one shard shuffles as a dataset in memory does (the same run, sample for sample)
            key = [seed, epoch] if self.dataset.n_shards == 1 else [seed, epoch, int(i)]
            yield samples, np.random.default_rng(key).permutation(len(samples))


def training_data(
    dataset: SessionDataset | ShardedDataset, contract: DataContract, n_items: int
) -> TrainingData:
    """The :class:`TrainingData` of ``dataset`` under ``contract``."""
    if isinstance(dataset, SessionDataset):
        return InMemoryData(dataset, contract, n_items)
    return ShardedData(dataset, contract, n_items)
