"""``sessionrec baseline``: fit a baseline on the training data and score it.

::

    sessionrec baseline DIR --method vsknn --json
    sessionrec baseline --benchmark srgnn-pickle --path ../shared/datasets/diginetica \\
        --method sknn --param k=100 --param sample_size=500 --json
    sessionrec baseline DIR --method vsknn --split validation   # for tuning, never test

Heavy modules are imported inside the command, so ``sessionrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from sessionrec.errors import ConfigError

METHODS = ("pop", "spop", "itemknn", "sknn", "vsknn", "stan", "vstan", "sr")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="fit and evaluate a baseline (POP, S-POP, Item-KNN, SKNN, V-SKNN, STAN, VSTAN, SR)",
        description=(
            "Fit a baseline on the training sessions and rank all items for every test "
            "sample (HR@K, MRR@K, NDCG@K in percent). Give a prepared dataset DIR or "
            "--benchmark srgnn-pickle --path DIR."
        ),
    )
    parser.add_argument("dataset", nargs="?", metavar="DIR", help="a prepared dataset folder")
    parser.add_argument(
        "--benchmark",
        choices=["srgnn-pickle", "yoochoose-categories"],
        help="load a published benchmark instead of DIR",
    )
    parser.add_argument("--path", help="folder of the --benchmark files")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--k", type=int, default=20, help="cut-off K (default 20; 10 is added)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a baseline parameter, e.g. --param k=100 (repeatable)",
    )
    parser.add_argument(
        "--split",
        choices=["test", "validation"],
        default="test",
        help="evaluate on the test set, or fit on the training data minus its latest "
        "sessions and evaluate on those (for tuning; default: test)",
    )
    parser.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of the latest training sessions held out by --split validation (0.1)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="samples scored at once")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run_baseline)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["k=100", "weighting=div", "remind=false"]`` -> ``{"k": 100, ...}``.

    Values are read as int, then float, then ``true``/``false``/``none``, else string.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--param expects NAME=VALUE, got {pair!r}")
        params[name] = _parse_value(raw.strip())
    return params


def _parse_value(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    return raw


def _load_dataset(args: argparse.Namespace) -> Any:
    from sessionrec.data.benchmarks import load_benchmark
    from sessionrec.data.shards import in_memory, load_dataset

    if args.benchmark and args.dataset:
        raise ConfigError("give either a dataset DIR or --benchmark NAME --path DIR, not both")
    if args.benchmark:
        if not args.path:
            raise ConfigError(f"--benchmark {args.benchmark} needs --path DIR (its folder)")
        return load_benchmark(args.benchmark, args.path)
    if args.path:
        raise ConfigError("--path is for --benchmark; give a prepared dataset as DIR")
    if not args.dataset:
        raise ConfigError(
            "no data: give a prepared dataset DIR (from `sessionrec prepare`) or "
            "--benchmark srgnn-pickle --path DIR"
        )
    return in_memory(load_dataset(args.dataset), "the baselines")


def run_baseline(args: argparse.Namespace) -> int:
    from sessionrec.cli import print_json
    from sessionrec.data.dataset import validation_split
    from sessionrec.evaluate.baselines import item_click_counts, make_baseline
    from sessionrec.evaluate.evaluation import evaluate_recommender

    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    params = parse_params(args.param)
    model = make_baseline(args.method, **params)
    dataset = _load_dataset(args)
    if args.split == "validation":
        train, samples = validation_split(dataset.train, args.valid_fraction)
    else:
        train, samples = dataset.train, dataset.test
    n_items = dataset.n_items
    ks = (args.k,) if args.k <= 10 else (10, args.k)

    print(
        f"baseline {args.method}: fitting on {len(train):,} sessions, "
        f"{args.split} {len(samples):,} samples, {n_items:,} items",
        file=sys.stderr,
    )
    start = time.perf_counter()
    model.fit(train, n_items)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_recommender(
        model,
        samples,
        n_items,
        ks=ks,
        batch_size=args.batch_size,
        item_counts=item_click_counts(train, n_items),
        progress=True,
        desc=args.method,
    )
    predict_seconds = time.perf_counter() - start

    result: dict[str, Any] = {
        "method": args.method,
        "params": model.get_params(),
        "data": args.path if args.benchmark else args.dataset,
        "benchmark": args.benchmark,
        "split": args.split,
        **metrics,
        "n_items": n_items,
        "train_sessions": len(train),
        "fit_seconds": round(fit_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
        "seconds": round(fit_seconds + predict_seconds, 3),
    }
    if args.split == "validation":
        result["valid_fraction"] = args.valid_fraction
    if args.json:
        print_json(result)
    else:
        for key, value in result.items():
            shown = f"{value:.2f}" if isinstance(value, float) else value
            print(f"{key:>22}  {shown}")
    return 0
