"""``sessionrec bench latency``: serving latency of the exported model, against references
measured in the same process.

The model is Diginetica-sized (43,097 items, d = 100, the ``default`` preset; random
weights: latency does not depend on their values) and the sessions are the real
Diginetica test prefixes (a synthetic set with a similar length distribution when the
data are absent). Measured, all on one thread (``threads``) unless stated:

- ``p50_ms``, ``p99_ms``: :meth:`SessionRecommender.next_items` (raw ids in, top-20 ids
  out, the Python API included), one session per call;
- ``floor_p50_ms``: the bare scoring floor, ``table @ vector`` in numpy plus
  ``argpartition`` (and a sort of the 20): what any exact top-20 over the catalog costs;
- ``torch_p50_ms``: PyTorch eager inference of the same model on the same sessions (id
  lookup, graph building, ``model(graph)``, exclusion of seen items, top-20), as the model
  runs: ``SRGNN.forward`` normalises the NISER item table on every call;
  ``torch_cached_table_p50_ms``: the same with the normalised table computed once;
- ``batch256_sessions_per_s_1t`` / ``_2t``: :meth:`SessionRecommender.next_items_batch`
  with 256 sessions per call, onnxruntime on 1 and 2 threads.

The ONNX and floor measurements alternate in blocks of calls, so that load from other
processes on the machine hits both alike; within a block each keeps its table warm in
cache, as a service that serves one model does.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.bench.workloads import (
    diginetica_sessions,
    diginetica_sized_model,
    percentiles_ms,
    timed,
)

__all__ = ["latency"]

BLOCK = 100  # calls per alternating block


def latency(
    path: str | os.PathLike[str] | None = None,
    n_sessions: int = 3000,
    n_torch_sessions: int = 500,
    batch_size: int = 256,
    batch_rounds: int = 6,
    k: int = 20,
    item_table_dtype: str = "fp32",
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) with the one-session timings on
    ``threads`` threads (onnxruntime, torch); returns the JSON-ready result."""
    import onnxruntime as ort
    import torch

    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender

    torch.set_num_threads(threads)
    trained = diginetica_sized_model(seed)
    n_items, dim = trained.model.config.n_items, trained.model.config.dim
    sessions, source = diginetica_sessions(path, trained.vocab, n_sessions, seed)  # raw ids

    with tempfile.TemporaryDirectory(prefix="sessionrec-latency-") as tmp:
        onnx_path = export_onnx(
            trained, Path(tmp) / "model.onnx", item_table_dtype=item_table_dtype
        )
        file_mb = os.path.getsize(onnx_path) / 1e6
        rec = SessionRecommender.load(onnx_path, threads=threads)
        rec1 = rec if threads == 1 else SessionRecommender.load(onnx_path, threads=1)
        rec2 = SessionRecommender.load(onnx_path, threads=2)

    onnx_s, floor_s = _onnx_and_floor(rec, trained, sessions, k, seed)
    p50, p99 = percentiles_ms(onnx_s)
    floor_p50, floor_p99 = percentiles_ms(floor_s)
    torch_s, torch_cached_s = _torch_eager(trained, sessions, n_torch_sessions, k)
    torch_p50, torch_p99 = percentiles_ms(torch_s)
    torch_cached_p50, _ = percentiles_ms(torch_cached_s)
    # batches of 256 sessions, onnxruntime on 1 and 2 threads
    session_lists = [s.tolist() for s in sessions]
    batches = [
        session_lists[(r * batch_size) % len(session_lists) :][:batch_size]
        for r in range(batch_rounds)
    ]
    rate_1t = _batch_rate(rec1, batches, k)
    rate_2t = _batch_rate(rec2, batches[: max(2, batch_rounds // 2)], k)  # a shared machine

    lengths = np.array([len(s) for s in sessions])
    return {
        "threads": threads,
        "p50_ms": p50,
        "p99_ms": p99,
        "floor_p50_ms": floor_p50,
        "torch_p50_ms": torch_p50,
        "batch256_sessions_per_s_1t": rate_1t,
        "batch256_sessions_per_s_2t": rate_2t,
        "p50_over_floor": p50 / floor_p50,
        "p99_over_floor": p99 / floor_p50,
        "torch_over_onnx_p50": torch_p50 / p50,
        "torch_cached_table_p50_ms": torch_cached_p50,
        "torch_cached_table_over_onnx_p50": torch_cached_p50 / p50,
        "floor_p99_ms": floor_p99,
        "torch_p99_ms": torch_p99,
        "data": source,
        "sessions": len(sessions),
        "torch_sessions": len(torch_s),
        "mean_session_length": float(lengths.mean()),
        "max_session_length": int(lengths.max()),
        "n_items": n_items,
        "dim": dim,
        "k": k,
        "model_config": "default (random weights)",
        "item_table_dtype": item_table_dtype,
        "onnx_file_mb": file_mb,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
    }


def _onnx_and_floor(
    rec: Any, trained: Any, sessions: list[np.ndarray], k: int, seed: int
) -> tuple[list[float], list[float]]:
    """Seconds per ``next_items`` call and per floor call (``table @ vector`` and an exact
    top-k in numpy), measured in alternating blocks of :data:`BLOCK` calls."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        table = np.ascontiguousarray(trained.model.item_table().numpy(), dtype=np.float32)
    vectors = rng.standard_normal((64, trained.model.config.dim)).astype(np.float32)
    session_lists = [s.tolist() for s in sessions]

    def floor(i: int) -> np.ndarray:
        scores = table @ vectors[i % len(vectors)]
        top = np.argpartition(scores, -k)[-k:]
        return top[np.argsort(-scores[top])]

    # warm-up, then alternate blocks of ONNX and floor calls
    for i in range(50):
        rec.next_items(session_lists[i % len(session_lists)], k=k)
        floor(i)
    onnx_s: list[float] = []
    floor_s: list[float] = []
    for start in range(0, len(session_lists), BLOCK):
        block = range(start, min(start + BLOCK, len(session_lists)))
        onnx_s += [timed(lambda i=i: rec.next_items(session_lists[i], k=k)) for i in block]
        floor_s += [timed(lambda i=i: floor(i)) for i in block]
    return onnx_s, floor_s


def _torch_eager(
    trained: Any, sessions: list[np.ndarray], n_torch_sessions: int, k: int
) -> tuple[list[float], list[float]]:
    """Seconds per PyTorch eager call on the same model and sessions, the whole path from
    raw ids to top-k ids: as the model runs (``SRGNN.forward`` normalises the NISER item
    table on every call), and with the normalised table computed once and reused, as a
    torch server could do."""
    import torch

    from sessionrec.data.sessions import Samples
    from sessionrec.graph import session_graph_batch

    model, vocab = trained.model, trained.vocab
    with torch.no_grad():
        table_t = model.item_table().detach()  # [N, d]

    def torch_next_items(raw: np.ndarray, cached: bool) -> np.ndarray:
        index = vocab.index_of(raw.tolist())
        index = index[index >= 0]
        graph = session_graph_batch(
            Samples(index, np.array([0, len(index)]), np.zeros(1, dtype=np.int64)),
            model.config.edge_weights,
        )
        if cached:
            scores = model.scores(model.session_embedding(graph, table_t), table_t)
        else:
            scores = model(graph)
        scores[0, torch.from_numpy(index)] = -torch.inf
        return vocab.id_of(torch.topk(scores, k, dim=1).indices[0].numpy())

    torch_s: list[float] = []
    torch_cached_s: list[float] = []
    with torch.inference_mode():
        for i in range(10):
            torch_next_items(sessions[i], cached=False)
            torch_next_items(sessions[i], cached=True)
        for start in range(0, min(n_torch_sessions, len(sessions)), BLOCK):
            block = sessions[start : min(start + BLOCK, n_torch_sessions)]
            torch_s += [timed(lambda s=s: torch_next_items(s, cached=False)) for s in block]
            torch_cached_s += [timed(lambda s=s: torch_next_items(s, cached=True)) for s in block]
    return torch_s, torch_cached_s


def _batch_rate(rec: Any, rounds: list[list[list[int]]], k: int) -> float:
    """Sessions per second of ``next_items_batch`` over ``rounds`` batches."""
    rec.next_items_batch(rounds[0], k=k)  # warm-up
    elapsed = sum(timed(lambda b=b: rec.next_items_batch(b, k=k)) for b in rounds)
    return sum(len(b) for b in rounds) / elapsed
