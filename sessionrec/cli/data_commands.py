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

from sessionrec.errors import ConfigError

_FORMATS = ("yoochoose", "diginetica", "retailrocket", "session-rec", "auto")


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
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
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
        choices=("srgnn-pickle", "yoochoose-categories"),
        help="a published benchmark",
    )
    s.add_argument("--path", metavar="DIR", help="the benchmark folder")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.set_defaults(func=_stats)


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """``--clicks FILE`` and how to read it and apply the protocol (``prepare``, ``fit``)."""
    p.add_argument("--clicks", required=True, metavar="FILE", help="the clickstream dump")
    p.add_argument("--format", default="auto", choices=_FORMATS, help="dump layout (auto)")
    p.add_argument(
        "--protocol",
        default="default",
        choices=("default", "srgnn"),
        help="default, or srgnn: the SR-GNN authors' preprocess.py exactly",
    )
    p.add_argument(
        "--test-days",
        type=float,
        default=None,
        metavar="N",
        help="last N days are the test set (default: 1 for yoochoose, else 7)",
    )
    p.add_argument(
        "--min-item-support",
        type=int,
        default=5,
        metavar="N",
        help="drop items with fewer clicks (5)",
    )
    p.add_argument(
        "--min-session-length",
        type=int,
        default=2,
        metavar="N",
        help="drop sessions with fewer clicks (2)",
    )
    p.add_argument(
        "--max-session-length",
        type=int,
        default=None,
        metavar="L",
        help="keep only the last L clicks of each session",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of the latest training sessions for validation (0.1)",
    )
    p.add_argument(
        "--on-bad-rows",
        default="error",
        choices=("error", "skip"),
        help="stop at bad rows (default) or skip and count them",
    )
    p.add_argument("--session-col", metavar="NAME", help="session id column")
    p.add_argument("--item-col", metavar="NAME", help="item id column")
    p.add_argument("--time-col", metavar="NAME", help="timestamp column")
    p.add_argument(
        "--time-unit",
        default="auto",
        choices=("auto", "s", "ms", "iso"),
        help="timestamp unit (auto: from the first 1,000 values)",
    )
    p.add_argument("--date-col", metavar="NAME", help="date column (date + offset times)")
    p.add_argument("--offset-col", metavar="NAME", help="offset column (date + offset)")
    p.add_argument("--offset-unit", default="ms", choices=("s", "ms"), help="offset unit")
    p.add_argument("--event-col", metavar="NAME", help="event type column")
    p.add_argument("--event-types", metavar="A,B", help="event types to keep, comma-separated")
    p.add_argument("--category-col", metavar="NAME", help="item category column")
    p.add_argument("--user-col", metavar="NAME", help="user column (sessions cut by gaps)")
    p.add_argument(
        "--id-type",
        default="auto",
        choices=("auto", "int", "str"),
        help="read ids as integers or strings (auto)",
    )
    p.add_argument(
        "--session-gap-s",
        type=float,
        default=None,
        metavar="S",
        help="start a new session after S seconds of inactivity",
    )
    p.add_argument("--separator", default=None, metavar="C", help="field separator (sniffed)")
    p.add_argument(
        "--shard-clicks",
        type=int,
        default=None,
        metavar="N",
        help="prepare and train in shards of about N clicks, one shard in memory at a time, "
        "for dumps larger than memory (default protocol; e.g. 2000000)",
    )


def _column_map(args: argparse.Namespace) -> Any:
    from sessionrec.data.ingest import ColumnMap

    return ColumnMap(
        session=args.session_col,
        item=args.item_col,
        time=args.time_col,
        time_unit=args.time_unit,
        date=args.date_col,
        offset=args.offset_col,
        offset_unit=args.offset_unit,
        event=args.event_col,
        category=args.category_col,
        user=args.user_col,
        id_type=args.id_type,
    )


def prepare_from_args(
    args: argparse.Namespace, progress: bool = True, sharded_out: Any = None
) -> Any:
    """The :class:`SessionDataset` of ``add_prepare_arguments``' options; with
    ``--shard-clicks``, the :class:`ShardedDataset` written to ``sharded_out``."""
    from sessionrec.data.protocol import ProtocolConfig, prepare
    from sessionrec.data.shards import prepare_sharded

    config = ProtocolConfig(
        mode=args.protocol,
        min_session_length=args.min_session_length,
        min_item_support=args.min_item_support,
        test_days=args.test_days,
        max_session_length=args.max_session_length,
        validation_fraction=args.validation_fraction,
    )
    events = (
        [e.strip() for e in args.event_types.split(",") if e.strip()] if args.event_types else None
    )
    separator = args.separator
    if separator is not None:  # a shell passes a tab as the two characters "\t"
        separator = {"\\t": "\t", "tab": "\t"}.get(separator, separator)
    options: dict[str, Any] = {
        "format": args.format,
        "columns": _column_map(args),
        "separator": separator,
        "on_bad_rows": args.on_bad_rows,
        "event_types": events,
        "session_gap_s": args.session_gap_s,
        "progress": progress,
    }
    if args.shard_clicks is not None:
        assert sharded_out is not None
        return prepare_sharded(
            args.clicks, sharded_out, config, clicks_per_shard=args.shard_clicks, **options
        )
    return prepare(args.clicks, config, **options)


def _prepare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sessionrec.cli import print_json

    if args.shard_clicks is not None:
        dataset = prepare_from_args(args, sharded_out=args.out)
        out = args.out
    else:
        dataset = prepare_from_args(args)
        out = dataset.save(args.out)
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
        _print_counts(result)
        print(f"written to {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from sessionrec.cli import print_json

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
    if args.json:
        print_json(result)
    else:
        _print_counts(result)
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
