r"""``sessionrec bench scale``: training, export and serving on catalogs of millions of items.

For each catalog size a planted clickstream (:mod:`sessionrec.data.planted`: Zipf-popular
items in latent groups that sessions walk through) is prepared with
``ProtocolConfig(min_item_support=2, test_days=1)``, and each part is measured in a
process of its own, so that its peak memory is its own:

- ``train``: ``steps`` training steps of the ``default`` config (batch 100) with each
  loss (``full``: cross-entropy over every item; ``sampled``: the sampled softmax of
  :mod:`sessionrec.train.objective` with sparse row-wise updates), after ``warmup``
  steps: CPU seconds per batch and samples per CPU second (``time.process_time``: user
  plus kernel time of the process, so other load on the machine changes it little),
  minor page faults per step, then a validation pass over 2,000 samples as the trainer
  makes after each epoch (every item ranked, scores in blocks), and the process's peak
  RSS;
- ``export``: the exported files of an untrained model of that size (fp32 table; a data
  file beside the ``.onnx`` above 256 MiB; the two-stage files from 1M items when faiss
  is installed): seconds, bytes, peak RSS, or the error it ends with;
- ``serve``: ``next_items`` latency (one session per call, one thread) of exact scoring
  and, when the export has them, of the two-stage files, against the numpy floor
  measured in the same process (``table @ vector`` and an exact top-20), and the
  two-stage answers' recall@20 against the exact top-20 (on untrained vectors, which
  have no neighbourhoods for an index to find, recall is low: the README reports it on
  trained ones).

The result maps each size to its figures; ratios such as the step cost at 5M items over
the cost at 100k come from one run.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["scale", "SIZES"]

#: Catalog size -> clicks of the planted clickstream (the issue's table: 100k / 2M,
#: 1M / 5M, 5M / 15M).
SIZES: dict[int, int] = {100_000: 2_000_000, 1_000_000: 5_000_000, 5_000_000: 15_000_000}


def scale(
    sizes: dict[int, int] | None = None,
    losses: tuple[str, ...] = ("full", "sampled"),
    steps: int = 50,
    full_steps: int | None = None,
    warmup: int = 5,
    parts: tuple[str, ...] = ("train", "export", "serve"),
    work_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the benchmark (module docstring) and return its JSON-ready result.

    Args:
        sizes: catalog size -> clicks (default :data:`SIZES`).
        losses: the training losses measured.
        steps: timed training steps per loss; ``full_steps`` for the full softmax (its
            steps cost up to tens of seconds at millions of items; default ``steps``).
        warmup: untimed steps first.
        parts: which of ``train``, ``export``, ``serve`` to run.
        work_dir: where the prepared datasets go (default: a temporary folder).
        seed: the clickstreams' and models' seed.
    """
    sizes = sizes or SIZES
    result: dict[str, Any] = {"steps": steps, "warmup": warmup, "batch_size": 100, "sizes": {}}
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sessionrec-scale-", dir=work_dir) as tmp:
        for n_items, n_clicks in sizes.items():
            data = Path(tmp) / f"planted-{n_items}"
            row: dict[str, Any] = {"clicks": n_clicks}
            row["prepare"] = _child("prepare", data, n_items, n_clicks, seed)
            if "train" in parts:
                for loss in losses:
                    n = full_steps if loss == "full" and full_steps is not None else steps
                    row[f"train_{loss}"] = _child("train", data, loss, n, warmup, seed)
            if "export" in parts or "serve" in parts:
                row["export"] = _child("export", data, seed, "serve" in parts)
            result["sizes"][str(n_items)] = row
    return result


def _child(part: str, *args: Any) -> dict[str, Any]:
    """One part in a fresh process (``python -m sessionrec.bench.scale PART ARGS``):
    its JSON result with its peak RSS, or the error it ended with."""
    run = subprocess.run(
        [sys.executable, "-m", "sessionrec.bench.scale", part, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(run.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _prepare(out: Path, n_items: int, n_clicks: int, seed: int) -> dict[str, Any]:
    from sessionrec.data.planted import PlantedConfig, planted_clicks
    from sessionrec.data.protocol import ProtocolConfig, prepare

    t0 = time.perf_counter()
    clicks = planted_clicks(PlantedConfig(n_items=n_items, n_clicks=n_clicks, seed=seed))
    dataset = prepare(clicks, ProtocolConfig(min_item_support=2, test_days=1))
    dataset.save(out)
    return {
        **{k: dataset.stats()[k] for k in ("items", "train_samples", "test_samples")},
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _train(data: Path, loss: str, steps: int, warmup: int, seed: int) -> dict[str, Any]:
    """``steps`` timed training steps of the trainer's own loss and optimisers."""
    import torch

    from sessionrec.data.contract import DataContract
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.graph import session_graph_batch
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train import config_preset, evaluate_model, lr_factor
    from sessionrec.train.objective import BatchLoss, SampledSoftmax
    from sessionrec.train.optim import Optimizers
    from sessionrec.train.training_data import training_data

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    dataset = SessionDataset.load(data)
    model_config, cfg = config_preset("default", dataset.n_items, loss=loss)
    data_ = training_data(dataset, DataContract.of(dataset), dataset.n_items)
    model = SRGNN(model_config)
    sampled = None
    if loss == "sampled":
        sampled = SampledSoftmax(data_.target_counts, cfg.num_negatives, cfg.negative_exponent)
        model.set_sparse_gradients(True)
    step = BatchLoss(model, False, cfg.label_smoothing, sampled)
    optimizers = Optimizers(
        model, cfg.lr, cfg.weight_decay, lambda e: lr_factor(cfg, e), model.sparse_gradients
    )
    samples, order = next(data_.epoch(seed, 0))
    model.train()

    def one_step(i: int) -> None:
        batch = samples.select(order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        graph = session_graph_batch(batch, model_config.edge_weights)
        loss_value = step(graph, torch.from_numpy(batch.targets))
        optimizers.zero_grad()
        loss_value.backward()
        optimizers.step()

    for i in range(warmup):
        one_step(i)
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(warmup, warmup + steps):
        one_step(i)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    # a validation pass as the trainer makes after each epoch (2,000 samples: its memory
    # counts in the peak; the scores are made in blocks, never [batch, n_items])
    t0 = time.perf_counter()
    assert data_.valid is not None
    valid = next(iter(data_.valid.chunks()))
    valid = valid.select(np.arange(min(2000, len(valid))))
    metrics = evaluate_model(model, valid, batch_size=cfg.eval_batch_size, max_length=50)
    return {
        "items": dataset.n_items,
        "steps": steps,
        "cpu_s_per_batch": cpu / steps,
        "samples_per_cpu_s": steps * cfg.batch_size / cpu,
        "wall_s_per_batch": wall / steps,
        "minor_faults_per_step": faults / steps,
        "epoch_hours": len(samples) / (steps * cfg.batch_size / cpu) / 3600,
        "validate_2000_samples_s": time.perf_counter() - t0,
        "validate_hr@20": metrics["hr@20"],
        "peak_rss_mb": _peak_rss_mb(),
    }


def _export(data: Path, seed: int, serve: bool) -> dict[str, Any]:
    """The ONNX file of an untrained ``default`` model of the dataset's size; with
    ``serve``, the latency of ``next_items`` on its test prefixes against the floor."""
    import torch

    from sessionrec.data.dataset import SessionDataset
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.onnx_export import export_onnx
    from sessionrec.train import TrainedModel, config_preset

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    dataset = SessionDataset.load(data)
    model_config, cfg = config_preset("default", dataset.n_items)
    counts = np.bincount(dataset.train.items, minlength=dataset.n_items)
    trained = TrainedModel(SRGNN(model_config).eval(), dataset.vocab, cfg, counts)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sessionrec-scale-export-") as tmp:
        t0 = time.perf_counter()
        try:
            path = export_onnx(trained, Path(tmp) / "model.onnx")
        except Exception as exc:  # noqa: BLE001 (reported: what an export at this size does)
            return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        out["seconds"] = time.perf_counter() - t0
        out["bytes"] = sum(f.stat().st_size for f in Path(tmp).iterdir())
        out["peak_rss_mb"] = _peak_rss_mb()
        if serve:
            del trained
            out.update(_latency(path, dataset, seed))
    return out


def _latency(path: Path, dataset: Any, seed: int, calls: int = 500, k: int = 20) -> dict[str, Any]:
    from sessionrec.bench.workloads import percentiles_ms, timed
    from sessionrec.recommender import SessionRecommender

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(dataset.test), size=min(calls, len(dataset.test)), replace=False)
    sessions = [dataset.vocab.id_of(dataset.test.prefix(i)).tolist() for i in pick]
    table = rng.standard_normal((dataset.n_items, 100)).astype(np.float32)
    vector = rng.standard_normal(100).astype(np.float32)

    def floor() -> np.ndarray:
        scores = table @ vector
        top = np.argpartition(scores, -k)[-k:]
        return top[np.argsort(-scores[top])]

    out: dict[str, Any] = {}
    answers: dict[str, list[list[Any]]] = {}
    for mode in ("exact", "two_stage"):
        rec = SessionRecommender.load(path, threads=1, exact=mode == "exact")
        if mode == "two_stage" and rec.mode != "two_stage":
            break  # an export without the two-stage files
        for s in sessions[:20]:
            rec.next_items(s, k=k)
            floor()
        times, floor_s, got = [], [], []
        for s in sessions:
            start = time.perf_counter()
            got.append(rec.next_items(s, k=k).ids)
            times.append(time.perf_counter() - start)
            floor_s.append(timed(floor))
        answers[mode] = got
        p50, p99 = percentiles_ms(times)
        floor_p50, _ = percentiles_ms(floor_s)
        out[mode] = {"p50_ms": p50, "p99_ms": p99, "floor_p50_ms": floor_p50,
                     "p50_over_floor": p50 / floor_p50}  # fmt: skip
    if "two_stage" in answers:
        hits = [
            len(set(a) & set(b)) / max(len(b), 1)
            for a, b in zip(answers["two_stage"], answers["exact"])
        ]
        out["two_stage"]["recall@20_vs_exact"] = float(np.mean(hits))
    return out


def main(argv: list[str]) -> None:
    """The parts' entry point in their own processes (see :func:`_child`)."""
    part, args = argv[0], argv[1:]
    if part == "prepare":
        result = _prepare(Path(args[0]), int(args[1]), int(args[2]), int(args[3]))
    elif part == "train":
        result = _train(Path(args[0]), args[1], int(args[2]), int(args[3]), int(args[4]))
    else:
        result = _export(Path(args[0]), int(args[1]), args[2] == "True")
    print(json.dumps(result))


if __name__ == "__main__":  # pragma: no cover (run by _child)
    main(sys.argv[1:])
