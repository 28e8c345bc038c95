"""Shared fixtures: tiny learnable data and the real datasets (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Sessions
from sessionrec.data.vocab import ItemVocab

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    """Path of ``../shared/datasets/NAME``; skips the test when it is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"real dataset {name!r} not found at {path} (it lives beside the project)")
    return path


@pytest.fixture
def tiny_dataset() -> SessionDataset:
    """30 items whose next click is mostly ``(previous + 1) % 30``: learnable in seconds."""
    rng = np.random.default_rng(0)
    n_items = 30
    sequences = []
    for start in rng.integers(0, n_items, 400):
        length = int(rng.integers(2, 7))
        seq = [(int(start) + i) % n_items for i in range(length)]
        if rng.random() < 0.1:
            seq[-1] = int(rng.integers(0, n_items))  # a little noise
        sequences.append(seq)
    train = Sessions.from_lists(sequences[:300], times=np.arange(300.0))
    test = Sessions.from_lists(sequences[300:]).to_samples()
    return SessionDataset(train, test, ItemVocab(np.arange(1000, 1000 + n_items)))
