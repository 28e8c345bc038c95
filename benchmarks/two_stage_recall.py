"""Two-stage serving on trained item vectors (README, "Large catalogs"): train the
``default`` config with the sampled softmax on a prepared dataset, export it with the
two-stage files, and compare the two-stage answers with exact ones on test prefixes
(recall@20 against the exact top-20, HR@20 of both, latency on one thread), for each
``nprobe`` asked.

    python benchmarks/two_stage_recall.py --items 1000000 --clicks 5000000 --out runs/two-stage-1m --epochs 1 --nprobe 64,128,256,512

``--items``/``--clicks`` prepare the planted clickstream of ``sessionrec bench scale``
(seed 0, ``min_item_support`` 2, test day 1) into ``OUT/data``; ``--data DIR`` takes a
prepared dataset instead. ``--model DIR`` measures a model trained before (an exported
model directory) instead of training one, and with ``--export flat|pq4|auto`` exports it
again first with that index (``export_onnx(ann_codes=...)``); ``--max-minutes M
--train-only`` trains under a time budget and stops there (its peak RSS). The trainer's
own test is cut to 2,000 samples (ranking millions of items for every test sample would
take hours); the comparison uses other random test prefixes.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.planted import PlantedConfig, planted_clicks
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.onnx_export import export_onnx
from sessionrec.recommender import SessionRecommender
from sessionrec.train import Trainer, config_preset


def _export(model: Path, codes: str) -> dict:
    """Export ``model`` (a model directory) with two-stage files of index ``codes``."""
    start = time.perf_counter()
    export_onnx(model, model / "model.onnx", ann=True, ann_codes=codes)
    index = model / "model.ann.faiss"
    return {"export_s": time.perf_counter() - start, "index_mb": index.stat().st_size / 1e6}


def _train(
    dataset: SessionDataset, out: Path, epochs: int, max_minutes: float | None, export: bool
) -> dict:
    test = dataset.test
    dataset.test = test.select(np.arange(min(2000, len(test))))
    model_config, train_config = config_preset(
        "default", dataset.n_items, epochs=epochs, loss="sampled",
        repeat_bonus_grid=(0.0, 2.0, 8.0),
    )  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(model_config, train_config, out, progress="lines", max_minutes=max_minutes)
    trained = trainer.fit(dataset)
    result = {
        "train_s": time.perf_counter() - start,
        "train_peak_rss_gb": _peak_rss_gb(),  # reading the data, training, evaluating
        "test_hr@20": trained.metrics["test"]["hr@20"],
        "valid_hr@20": [(row.get("valid") or {}).get("hr@20") for row in trained.history],
        "repeat_bonus": trained.model.config.repeat_bonus,
    }
    print(json.dumps(result), flush=True)
    dataset.test = test
    if not export:
        return result
    result.update(_export(out, "auto"))
    return result


def _peak_rss_gb() -> float:
    """This process's peak resident set so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _serve(rec: SessionRecommender, sessions: list, targets: list) -> tuple[dict, list]:
    for s in sessions[:20]:  # warm-up
        rec.next_items(s, k=20)
    times, ids = [], []
    for s in sessions:
        t = time.perf_counter()
        ids.append(rec.next_items(s, k=20).ids)
        times.append(time.perf_counter() - t)
    return {
        "mode": rec.mode,
        "p50_ms": 1e3 * float(np.percentile(times, 50)),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
        "hr@20": 100 * float(np.mean([t in i for t, i in zip(targets, ids)])),
    }, ids


def _one_faiss_thread() -> None:
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a prepared dataset folder")
    parser.add_argument("--items", type=int, help="prepare a planted catalog of this size")
    parser.add_argument("--clicks", type=int, help="... with this many clicks")
    parser.add_argument("--out", help="where the model and its export go (when training)")
    parser.add_argument("--model", help="an exported model directory to measure instead")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, help="train under this time budget")
    parser.add_argument(
        "--train-only", action="store_true", help="stop after training (its time and peak RSS)"
    )
    parser.add_argument(
        "--export",
        choices=("auto", "flat", "pq4"),
        help="with --model: export it again first, with this two-stage index",
    )
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--nprobe", default="", help="comma-separated; default: the export's")
    parser.add_argument(
        "--threads", type=int, default=1, help="training threads (serving is timed on one)"
    )
    args = parser.parse_args()
    if (args.out is None) == (args.model is None):
        parser.error("give --out (train, then measure) or --model (measure), not both")
    if (args.data is None) == (args.items is None) or (args.items is None) != (args.clicks is None):
        parser.error("give --data DIR, or --items N and --clicks M (a planted catalog)")
    if args.data is None and args.out is None:
        parser.error("--items needs --out (the dataset goes to OUT/data)")
    torch.set_num_threads(args.threads)
    data = Path(args.data or Path(args.out) / "data")
    if args.data is None:
        start = time.perf_counter()
        clicks = planted_clicks(PlantedConfig(n_items=args.items, n_clicks=args.clicks, seed=0))
        prepare(clicks, ProtocolConfig(min_item_support=2, test_days=1)).save(data)
        print(json.dumps({"prepare_s": time.perf_counter() - start}), flush=True)
    dataset = SessionDataset.load(data)
    result: dict = {"items": dataset.n_items}
    model = Path(args.model or Path(args.out) / "model")
    if args.export is not None:
        if args.model is None:
            parser.error("--export needs --model (a trained run exports itself)")
        result.update(_export(model, args.export))
        print(json.dumps(result), flush=True)
    if args.model is None:
        result.update(_train(dataset, model, args.epochs, args.max_minutes, not args.train_only))
        if args.train_only:
            return
    torch.set_num_threads(1)
    _one_faiss_thread()
    test = dataset.test
    pick = np.random.default_rng(0).choice(len(test), args.sessions, replace=False)
    sessions = [dataset.vocab.id_of(test.prefix(i)).tolist() for i in pick]
    targets = [dataset.vocab.ids[test.targets[i]] for i in pick]
    result["exact"], exact = _serve(
        SessionRecommender.load(model, threads=1, exact=True), sessions, targets
    )
    for nprobe in [int(n) for n in args.nprobe.split(",") if n] or [None]:
        rec = SessionRecommender.load(model, threads=1, nprobe=nprobe)
        row, ids = _serve(rec, sessions, targets)
        row["nprobe"] = rec.nprobe
        row["index"] = rec.metadata.get("ann_index")
        row["recall@20_vs_exact"] = float(
            np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(ids, exact)])
        )
        result.setdefault("two_stage", []).append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
