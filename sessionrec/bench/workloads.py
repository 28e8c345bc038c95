"""What the speed benchmarks run on: Diginetica-sized samples, sessions and models, and
the measurements they share (memory, percentiles, timing).

Every benchmark reads the real Diginetica benchmark when it is at ``path`` (default:
``../shared/datasets/diginetica`` beside the project), else synthetic data of the same
item count and a similar session-length distribution, and says which in its result.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.data.sessions import Samples, Sessions, lengths_to_offsets

__all__ = [
    "DIGINETICA_ITEMS",
    "DEFAULT_DIGINETICA",
    "diginetica_like_samples",
    "diginetica_test_samples",
    "diginetica_sessions",
    "diginetica_sized_model",
    "rss_mb",
    "peak_rss_mb",
    "percentiles_ms",
    "timed",
]

DIGINETICA_ITEMS = 43_097
DEFAULT_DIGINETICA = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "diginetica"
)


def diginetica_like_samples(
    path: str | os.PathLike[str] | None = None, seed: int = 0
) -> tuple[Samples, int, str]:
    """Training samples of the Diginetica benchmark when ``path`` has it, else synthetic
    samples with its item count and a similar session-length distribution; returns
    ``(samples, n_items, where they came from)``."""
    folder = Path(path) if path is not None else DEFAULT_DIGINETICA
    if (folder / "all_train_seq.txt").is_file():
        from sessionrec.data.benchmarks import load_srgnn_pickle

        dataset = load_srgnn_pickle(folder)
        return dataset.train_samples(), dataset.n_items, f"diginetica ({folder.resolve()})"
    rng = np.random.default_rng(seed)
    n_sessions = 50_000
    lengths = np.clip(rng.geometric(1 / 4.85, n_sessions), 2, 70)
    items = rng.zipf(1.3, int(lengths.sum())) % DIGINETICA_ITEMS
    sessions = Sessions(items, lengths_to_offsets(lengths))
    return sessions.to_samples(), DIGINETICA_ITEMS, "synthetic (Diginetica-sized)"


def diginetica_test_samples(
    path: str | os.PathLike[str] | None, seed: int = 0
) -> tuple[Samples, str]:
    """Test prefixes (item indices) of Diginetica, or synthetic ones of similar lengths."""
    folder = Path(path) if path is not None else DEFAULT_DIGINETICA
    if (folder / "test.txt").is_file() and (folder / "all_train_seq.txt").is_file():
        from sessionrec.data.benchmarks import load_srgnn_pickle

        return load_srgnn_pickle(folder).test, f"diginetica test prefixes ({folder.resolve()})"
    samples, _, source = diginetica_like_samples(folder, seed)
    return samples, source


def diginetica_sized_model(seed: int = 0) -> Any:
    """A :class:`~sessionrec.train.TrainedModel` of the ``default`` preset at Diginetica's
    size (43,097 items, d = 100) with random weights and raw ids ``1..43097``: serving
    speed does not depend on the weights' values."""
    import torch

    from sessionrec.data.vocab import ItemVocab
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train import TrainedModel, config_preset

    torch.manual_seed(seed)
    n_items = DIGINETICA_ITEMS
    model_config, train_config = config_preset("default", n_items)
    vocab = ItemVocab(np.arange(1, n_items + 1, dtype=np.int64))  # Diginetica's raw ids
    counts = np.random.default_rng(seed).integers(0, 100, n_items)
    return TrainedModel(
        SRGNN(model_config).eval(), vocab, train_config, counts, data_fingerprint="random-weights"
    )


def diginetica_sessions(
    path: str | os.PathLike[str] | None, vocab: Any, n_sessions: int, seed: int = 0
) -> tuple[list[np.ndarray], str]:
    """``n_sessions`` random Diginetica test prefixes as raw-id arrays of ``vocab`` (or
    synthetic ones of similar lengths), and where they came from."""
    samples, source = diginetica_test_samples(path, seed)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(n_sessions, len(samples)), replace=False)
    return [vocab.id_of(samples.prefix(i) % len(vocab)) for i in pick], source


def rss_mb() -> float:
    """Resident set size of this process now (MB; Linux ``/proc``, else the peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover (not Linux)
        pass
    return peak_rss_mb()  # pragma: no cover


def peak_rss_mb() -> float:
    """The peak resident set size of this process (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentiles_ms(times_s: list[float]) -> tuple[float, float]:
    """``(p50, p99)`` of durations in seconds, in milliseconds."""
    p50, p99 = np.percentile(np.asarray(times_s), [50, 99]) * 1e3
    return float(p50), float(p99)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
