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

from sessionrec.cli.conventions import add_json, add_quiet, add_threads, print_metrics, show_bars
from sessionrec.cli.options import add_data_arguments, load_data_argument, print_json
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
    add_data_arguments(parser)
    parser.add_argument(
        "--method",
        required=True,
        choices=METHODS,
        help="pop (most clicked), spop (session then global popularity), itemknn, sknn, "
        "vsknn (session neighbours, recent clicks weigh more), stan, vstan, sr (rules)",
    )
    parser.add_argument(
        "--k", type=int, default=20, help="cut-off K (default 20; @10 is added when K > 10)"
    )
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
        "--validation-fraction",
        type=float,
        metavar="F",
        help="share of the latest training sessions held out by --split validation "
        "(default: the dataset's, set by prepare; 0.1 for benchmarks)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, metavar="N", help="samples scored at once (500)"
    )
    add_threads(parser, "numpy's BLAS and polars")
    add_json(parser)
    add_quiet(parser)
    parser.set_defaults(func=run_baseline)


def run_baseline(args: argparse.Namespace) -> int:
    from sessionrec.data.contract import DataContract
    from sessionrec.data.dataset import validation_split
    from sessionrec.evaluate.baselines import item_click_counts, make_baseline
    from sessionrec.evaluate.evaluation import evaluate_recommender
    from sessionrec.overrides import parse_assignments

    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    params = parse_assignments(args.param, "--param")
    model = make_baseline(args.method, **params)
    dataset = load_data_argument(args, in_memory_for="the baselines")
    contract = DataContract.of(dataset).with_validation_fraction(args.validation_fraction)
    if args.split == "validation":
        train, samples = validation_split(
            dataset.train, contract.validation_fraction, contract.max_session_length
        )
    else:
        train, samples = dataset.train, dataset.test
    n_items = dataset.n_items
    ks = (args.k,) if args.k <= 10 else (10, args.k)

    if not args.quiet:
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
        progress=show_bars(args.quiet),
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
        result["validation_fraction"] = contract.validation_fraction
    if args.json:
        print_json(result)
    else:
        print_metrics(result)
    return 0
