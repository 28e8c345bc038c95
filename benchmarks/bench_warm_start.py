"""Benchmark: a warm-started retrain reaches the cold retrain's validation HR@20 sooner.

The nightly-retrain scenario on a time split of a clickstream:

1. *yesterday's model*: prepare the clicks of the first 80 % of days and train the
   ``default`` config on them (selected on validation);
2. *today*: prepare all clicks; train the same config twice for ``--epochs`` epochs
   without early stopping: from scratch (cold), and from yesterday's model
   (``Trainer.fit(warm_start=...)``, what ``--warm-start`` does);
3. report, per epoch, the validation HR@20 / MRR@20 of both runs (the same validation
   split: the latest 10 % of today's training sessions, which yesterday's model never
   saw), the cold run's best HR@20, and after how many epochs each run first reaches
   it (``epochs_to_cold_best``), plus the items kept, added and no longer seen.

With ``--seeds a,b,...`` the three models are trained once per seed; ``summary`` gives
the mean curves over the seeds, the epochs the mean warm curve needs to reach the mean
cold curve's best, and in how many seeds the warm run reached its cold run's best in
fewer epochs (a best of 8 noisy epochs is a high bar for a run that levels off at the
same accuracy: one seed decides little).

Usage::

    python benchmarks/bench_warm_start.py --data synthetic --threads 1 --seeds 42,0,1,2,3
    python benchmarks/bench_warm_start.py --data yoochoose-100k --threads 1 --seeds 42,0,1,2,3

``yoochoose-100k`` reads the training and test files of ``../shared/datasets/yoochoose-100k``
as one dump (the benchmark stops with a message when they are absent): 7 UTC days of
sessions and one stray session on an 8th, so yesterday's dump is the first 6 days (the
training file), whose last day its protocol tests on, and the new validation sessions
are on that day.
``synthetic`` the embedded ``data/synthetic/clicks.csv`` (30 days).
One JSON object goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.ingest import read_clicks
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.train import Trainer, apply_overrides, config_preset

ROOT = Path(__file__).resolve().parents[1]
YOOCHOOSE = ROOT.parent / "shared" / "datasets" / "yoochoose-100k"
# name: (dump files, read as one clickstream; format; test days: the protocol's default)
SOURCES: dict[str, tuple[list[Path], str, int]] = {
    "synthetic": ([ROOT / "data" / "synthetic" / "clicks.csv"], "auto", 7),
    # sessions start on UTC days 16161-16166 (train file) and 16167 (test file), plus
    # 3 + 1 stray ones on the next day of each: 8 calendar days in all
    "yoochoose-100k": (
        [
            YOOCHOOSE / "yoochoose-clicks-100k_train_full.txt",
            YOOCHOOSE / "yoochoose-clicks-100k_test.txt",
        ],
        "session-rec",
        1,
    ),
}


def _curve(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [
        {"epoch": h["epoch"], "hr@20": h["valid"]["hr@20"], "mrr@20": h["valid"]["mrr@20"]}
        for h in history
    ]


def _first_epoch_reaching(curve: list[dict[str, float]], target: float) -> int | None:
    return next((c["epoch"] for c in curve if c["hr@20"] >= target), None)


def split(data: str, old_fraction: float) -> tuple[SessionDataset, SessionDataset, dict[str, Any]]:
    """Yesterday's dataset (the first ``old_fraction`` of days) and today's (all days)."""
    paths, format, test_days = SOURCES[data]
    for path in paths:
        if not path.is_file():
            sys.exit(f"bench_warm_start: {path} not found (datasets live in ../shared/datasets)")
    columns = ["session_id", "item_id", "timestamp"]
    frame = pl.concat([read_clicks(path, format).frame.select(columns) for path in paths])
    day = (pl.col("timestamp") // 86_400).cast(pl.Int64)
    first, last = frame.select(day.min().alias("first"), day.max().alias("last")).row(0)
    cutoff = first + math.floor(old_fraction * (last - first + 1))  # first day of "today"
    protocol = ProtocolConfig(test_days=test_days)
    old_data = prepare(frame.filter(day < cutoff), protocol)
    new_data = prepare(frame, protocol)
    about = {
        "data": data,
        "source": [str(p) for p in paths],
        "days": last - first + 1,
        "old_days": cutoff - first,
        "old_train_sessions": len(old_data.train),
        "old_items": old_data.n_items,
        "new_train_sessions": len(new_data.train),
        "new_items": new_data.n_items,
    }
    return old_data, new_data, about


def run(
    old_data: SessionDataset,
    new_data: SessionDataset,
    epochs: int,
    old_epochs: int,
    seed: int,
    sets: list[str],
) -> dict[str, Any]:
    """Yesterday's model, then today's cold and warm runs, all with ``seed`` and the
    ``--set`` overrides ``sets``."""

    def trainer(n_items: int, n_epochs: int, patience: int) -> Trainer:
        model_config, train_config = config_preset(
            "default", n_items, epochs=n_epochs, patience=patience, seed=seed
        )
        model_config, train_config = apply_overrides(sets, model_config, train_config)
        return Trainer(model_config, train_config, progress=False)

    t0 = time.perf_counter()
    old = trainer(old_data.n_items, old_epochs, 2).fit(old_data)
    old_s = time.perf_counter() - t0
    runs: dict[str, Any] = {}
    for name, warm in (("cold", None), ("warm", old)):
        t0 = time.perf_counter()
        trained = trainer(new_data.n_items, epochs, epochs).fit(new_data, warm_start=warm)
        runs[name] = {
            "curve": _curve(trained.history),
            "seconds": time.perf_counter() - t0,
            "test": {k: trained.metrics["test"][k] for k in ("hr@20", "mrr@20")},
        }
        if warm is not None:
            runs[name]["warm_start"] = trained.metrics["warm_start"]
    target = max(c["hr@20"] for c in runs["cold"]["curve"])
    for name in runs:
        runs[name]["epochs_to_cold_best"] = _first_epoch_reaching(runs[name]["curve"], target)
    return {
        "seed": seed,
        "old": {
            "best_epoch": old.metrics["best_epoch"],
            "valid_hr@20": old.metrics["valid"]["hr@20"],
            "seconds": old_s,
        },
        "cold_best_valid_hr@20": target,
        **runs,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the seeds: mean validation HR@20 per epoch of each run, the epochs the mean
    warm curve needs to reach the mean cold curve's best, and in how many seeds the warm
    run reached its cold run's best in fewer epochs."""
    mean = {
        name: [
            {"epoch": e + 1, "hr@20": sum(r[name]["curve"][e]["hr@20"] for r in runs) / len(runs)}
            for e in range(len(runs[0][name]["curve"]))
        ]
        for name in ("cold", "warm")
    }
    target = max(c["hr@20"] for c in mean["cold"])
    sooner = [
        r["warm"]["epochs_to_cold_best"] is not None
        and r["warm"]["epochs_to_cold_best"] < r["cold"]["epochs_to_cold_best"]
        for r in runs
    ]
    return {
        "mean_curve": mean,
        "mean_cold_best_valid_hr@20": target,
        "mean_epochs_to_cold_best": {
            name: _first_epoch_reaching(mean[name], target) for name in mean
        },
        "seeds_warm_sooner": int(sum(sooner)),
        "seeds": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(SOURCES), default="synthetic")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of today's runs")
    parser.add_argument("--old-epochs", type=int, default=8, help="max epochs of yesterday's")
    parser.add_argument("--old-fraction", type=float, default=0.8, help="share of days (0.8)")
    parser.add_argument(
        "--seeds", default="42", help="comma-separated seeds, one old/cold/warm trio each (42)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="config override of every run, as sessionrec train --set (e.g. warm_shrink=1)",
    )
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    old_data, new_data, about = split(args.data, args.old_fraction)
    runs = [run(old_data, new_data, args.epochs, args.old_epochs, seed, args.set) for seed in seeds]
    result = {
        **about,
        "config": "default",
        "set": args.set,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "runs": runs,
        "summary": summary(runs),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
