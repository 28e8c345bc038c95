"""``sessionrec bench load``: one :class:`SessionRecommender` shared by many threads.

A service shares one loaded model between its request threads. This benchmark calls
:meth:`SessionRecommender.next_items` from ``threads`` threads, ``calls`` times each, on
a pool of sessions whose serial answers were recorded first, and reports:

- ``mismatches`` and ``errors``: calls whose ids or scores differ from the serial answer
  (bit for bit), and exceptions; both must be 0;
- ``calls_per_s`` under load, against ``serial_calls_per_s`` measured in the same run
  (``speedup_over_serial``: what the extra threads bring on this machine's cores);
- ``p50_ms`` / ``p99_ms`` per call under load;
- ``rss_mb_before`` / ``rss_mb_after`` (resident memory after the serial pass and after
  the threads ran: growth would be a leak) and ``peak_rss_mb``.

The pool mixes real Diginetica test prefixes with the inputs a service meets: empty
sessions, unknown ids only, repeated clicks, and sessions of 10,000 clicks (cut to the
model's last ``max_session_length``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.bench.workloads import (
    diginetica_sessions,
    diginetica_sized_model,
    peak_rss_mb,
    rss_mb,
)

__all__ = ["concurrent_calls", "service_sessions", "load_test"]


def concurrent_calls(
    rec: Any,
    sessions: Sequence[Sequence[int] | Sequence[str]],
    threads: int = 8,
    calls: int = 10_000,
    k: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Call ``rec.next_items`` on ``sessions`` serially, then from ``threads`` threads
    ``calls`` times each (every thread its own random order), and compare.

    Returns:
        The figures listed in the module docstring (JSON-ready).
    """
    sessions = list(sessions)
    t0 = time.perf_counter()
    expected = [rec.next_items(s, k=k) for s in sessions]
    serial_s = time.perf_counter() - t0
    rss_before = rss_mb()

    mismatches = [0] * threads
    errors: list[str] = []
    latencies: list[np.ndarray] = [np.empty(0)] * threads
    start = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        order = np.random.default_rng(seed + 1 + t).integers(0, len(sessions), calls)
        times = np.empty(calls)
        start.wait()
        try:
            for j, i in enumerate(order):
                c0 = time.perf_counter()
                got = rec.next_items(sessions[i], k=k)
                times[j] = time.perf_counter() - c0
                if got != expected[i]:
                    mismatches[t] += 1
        except Exception as exc:  # noqa: BLE001 (counted and reported, never hidden)
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")
        latencies[t] = times

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for th in pool:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in pool:
        th.join()
    wall_s = time.perf_counter() - t0
    all_ms = np.concatenate(latencies) * 1e3
    total = threads * calls
    return {
        "threads": threads,
        "calls_per_thread": calls,
        "calls": total,
        "mismatches": int(sum(mismatches)),
        "errors": len(errors),
        "first_errors": errors[:5],
        "calls_per_s": total / wall_s,
        "serial_calls_per_s": len(sessions) / serial_s,
        "speedup_over_serial": (total / wall_s) / (len(sessions) / serial_s),
        "p50_ms": float(np.percentile(all_ms, 50)) if len(all_ms) else float("nan"),
        "p99_ms": float(np.percentile(all_ms, 99)) if len(all_ms) else float("nan"),
        "wall_s": wall_s,
        "rss_mb_before": rss_before,
        "rss_mb_after": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
        "distinct_sessions": len(sessions),
    }


def service_sessions(
    real: Sequence[np.ndarray], known_ids: np.ndarray, seed: int = 0
) -> list[list[Any]]:
    """``real`` sessions plus the awkward inputs a service meets (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(known_ids)
    unknown: Any = -12345 if ids.dtype.kind in "iu" else "no-such-item"
    mixed: list[list[Any]] = [s.tolist() for s in real]
    mixed += [[], [unknown], [unknown] * 3]
    mixed += [[ids[i].item()] * 5 for i in rng.integers(0, len(ids), 10)]  # one item, repeated
    mixed += [rng.choice(ids, 10_000).tolist() for _ in range(5)]  # 10,000 clicks
    mixed += [[ids[0].item(), unknown, ids[1].item()]]
    return mixed


def load_test(
    path: str | os.PathLike[str] | None = None,
    clients: int = 8,
    calls: int = 10_000,
    n_sessions: int = 2000,
    k: int = 20,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """The benchmark on a Diginetica-sized model (random weights) and Diginetica test
    prefixes (synthetic ones of similar lengths when the data are absent): ``clients``
    threads call one recommender that runs each call on ``threads`` onnxruntime threads
    (``"threads"`` in the result: the calling threads)."""
    import onnxruntime as ort

    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender

    trained = diginetica_sized_model(seed)
    real, source = diginetica_sessions(path, trained.vocab, n_sessions, seed)
    sessions = service_sessions(real, trained.vocab.ids, seed)
    with tempfile.TemporaryDirectory(prefix="sessionrec-load-") as tmp:
        onnx_path = export_onnx(trained, Path(tmp) / "model.onnx")
        rec = SessionRecommender.load(onnx_path, threads=threads)
    del trained  # serving holds the ONNX session only
    result = concurrent_calls(rec, sessions, threads=clients, calls=calls, k=k, seed=seed)
    return {
        **result,
        "data": source,
        "n_items": rec.n_items,
        "max_session_length": rec.max_session_length,
        "k": k,
        "onnxruntime_threads_per_call": threads,
        "onnxruntime": ort.__version__,
        "cpu_count": os.cpu_count(),
    }
