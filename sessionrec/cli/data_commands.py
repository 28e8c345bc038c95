"""``sessionrec prepare`` and ``sessionrec stats``: from a clickstream dump to a dataset.

``prepare`` reads a dump (any preset or column mapping), applies the protocol and writes
a :class:`~sessionrec.data.dataset.SessionDataset` folder plus the report of rows read,
skipped and dropped (also stored in its ``dataset.json``). ``stats`` prints the counts
of a prepared folder or of a published benchmark.

polars and the data modules are imported inside the command functions, so building the
parser stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sessionrec.cli.conventions import add_json, add_threads, light_command, show_bars
from sessionrec.cli.options import (
    BENCHMARK_CHOICES,
    add_catalog_arguments,
    add_prepare_arguments,
    prepare_from_args,
    print_json,
)
from sessionrec.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare`` and ``stats`` to the ``sessionrec`` parser."""
    p = subparsers.add_parser(
        "prepare",
        help="clickstream dump -> prepared dataset (protocol, split, vocabulary)",
        description=(
            "Read a clickstream dump (CSV/TSV/Parquet/NDJSON, gzip too), apply the "
            "preprocessing protocol and write a dataset folder. Progress goes to stderr; "
            "--json prints one JSON object (counts and the report) on stdout."
        ),
    )
    add_prepare_arguments(p)
    add_catalog_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that holds other files (a dataset replaces the whole "
        "folder: they are deleted); an existing prepared dataset is replaced without it",
    )
    add_threads(p, "polars (its pool is sized when the command starts)")
    add_json(p)
    p.set_defaults(func=_prepare)

    s = subparsers.add_parser(
        "stats",
        help="counts of a prepared dataset or a benchmark",
        description=(
            "Counts (train_sessions, test_sessions, items, train_samples, test_samples, ...) "
            "of a folder written by `sessionrec prepare`, or of a published benchmark."
        ),
    )
    s.add_argument("dir", nargs="?", metavar="DIR", help="a prepared dataset folder")
    s.add_argument(
        "--benchmark",
        choices=BENCHMARK_CHOICES,
        help="a published benchmark",
    )
    s.add_argument("--path", metavar="DIR", help="the benchmark folder")
    add_json(s)
    light_command(s, "reads a dataset's counts and contract: no heavy work")
    s.set_defaults(func=_stats)


def _prepare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sessionrec.data.dataset import check_replaceable

    check_replaceable(Path(args.out), args.force)  # before the work, not after
    if args.shard_clicks is not None:
        dataset = prepare_from_args(
            args, progress=show_bars(False), sharded_out=args.out, overwrite=args.force
        )
        out = args.out
    else:
        dataset = prepare_from_args(args, progress=show_bars(False))
        out = dataset.save(args.out, overwrite=args.force)
    report = dataset.meta["report"]
    result = {
        "out": str(Path(out)),
        **dataset.stats(),
        "test_sessions_in_split": report["protocol"]["test_sessions_in_split"],
        "clicks_format": dataset.meta["clicks_format"],
        "protocol": dataset.meta["protocol"],
        "fingerprint": dataset.fingerprint(),
        "report": report,
    }
    if args.json:
        print_json(result)
    else:
        ingest = report["ingest"]
        print(
            f"{ingest['source']}: {ingest['rows_read']} rows read "
            f"({ingest['format']}), {ingest['rows_skipped']} bad rows skipped, "
            f"{ingest['duplicates_dropped']} duplicates dropped, "
            f"{ingest['rows_other_events']} rows of other events dropped"
        )
        for role in ("session", "item"):  # ids kept as strings: integers would lose text
            if "lost as integers" in (ingest.get(f"{role}_id_kind_reason") or ""):
                print(f"{role} ids kept as strings: {ingest[f'{role}_id_kind_reason']}")
        _print_counts(result)
        protocol = report["protocol"]
        if "new_items" in protocol:
            print(
                f"new items kept: {protocol['new_items']:,} catalog items without training "
                f"clicks, {protocol['test_clicks_on_new_items']:,} test clicks on them; "
                f"{protocol['test_clicks_on_unseen_items']:,} test clicks on items in neither "
                "the training clicks nor the catalog dropped"
            )
        print(f"written to {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    if (args.dir is None) == (args.benchmark is None):
        raise ConfigError(
            "give either a prepared dataset folder (sessionrec stats DIR) or a benchmark "
            "(sessionrec stats --benchmark srgnn-pickle --path DIR), not both or neither"
        )
    if args.benchmark is not None:
        if args.path is None:
            raise ConfigError("--benchmark needs --path DIR (the benchmark folder)")
        from sessionrec.data.benchmarks import load_benchmark

        dataset = load_benchmark(args.benchmark, args.path)
        result: dict[str, Any] = {"benchmark": args.benchmark, "path": args.path, **dataset.stats()}
    else:
        if args.path is not None:
            raise ConfigError("--path goes with --benchmark; for a prepared folder pass DIR")
        from sessionrec.data.shards import load_dataset

        dataset = load_dataset(args.dir)
        result = {"path": args.dir, **dataset.stats()}
        protocol_report = dataset.meta.get("report", {}).get("protocol", {})
        if "test_sessions_in_split" in protocol_report:
            result["test_sessions_in_split"] = protocol_report["test_sessions_in_split"]
        for key in ("clicks_format", "protocol", "fingerprint"):
            if key in dataset.meta:
                result[key] = dataset.meta[key]
    from sessionrec.data.contract import DataContract

    # what a model trained on it will read: the settings decided at prepare
    result["contract"] = DataContract.of(dataset).to_dict()
    if args.json:
        print_json(result)
    else:
        _print_counts(result)
        contract = result["contract"]
        print(
            "contract: max_session_length {max_session_length}, validation_fraction "
            "{validation_fraction}, time_unit {time_unit}, id_kind {id_kind}".format(**contract)
        )
    return 0


def _print_counts(result: dict[str, Any]) -> None:
    keys = (
        "train_sessions",
        "test_sessions",
        "test_sessions_in_split",
        "items",
        "train_samples",
        "test_samples",
        "train_clicks",
        "avg_train_session_length",
    )
    for key in keys:
        if key in result and result[key] is not None:
            value = result[key]
            text = f"{value:.3f}" if isinstance(value, float) else f"{value:,}"
            print(f"{key:>26}  {text}", file=sys.stdout)
