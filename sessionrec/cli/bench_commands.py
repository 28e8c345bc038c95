"""``sessionrec bench ...``: speed benchmarks reporting ratios measured in one process."""

from __future__ import annotations

import argparse
import sys
import warnings

from sessionrec.cli.conventions import add_deprecated_alias, add_json, add_threads, light_command
from sessionrec.cli.options import print_json, set_threads
from sessionrec.errors import ConfigError


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        print(f"{key:>32}: {value:.3f}" if isinstance(value, float) else f"{key:>32}: {value}")


DIGINETICA_PATH_HELP = (
    "Diginetica SR-GNN pickle folder (default: ../shared/datasets/diginetica; synthetic "
    "sessions of similar lengths if absent)"
)


def _train_speed(args: argparse.Namespace) -> int:
    from sessionrec.bench.train_speed import train_speed

    set_threads(args.threads)
    result = train_speed(args.path, batch_size=args.batch_size, steps=args.steps)
    _print_result(result, args.json)
    return 0


def _latency(args: argparse.Namespace) -> int:
    from sessionrec.bench.latency import latency

    result = latency(
        args.path,
        threads=args.threads,
        n_sessions=args.sessions,
        n_torch_sessions=args.torch_sessions,
        item_table_dtype=args.item_table,
    )
    _print_result(result, args.json)
    return 0


def _load(args: argparse.Namespace) -> int:
    from sessionrec.bench.load import load_test

    if args.clients is None and args.threads != 1:  # the old meaning of --threads 8
        warnings.warn(
            "bench load --threads is now onnxruntime's threads per call (the convention); "
            "the calling threads are --clients (default 8)",
            FutureWarning,
            stacklevel=2,
        )
    result = load_test(
        args.path,
        clients=8 if args.clients is None else args.clients,
        threads=args.threads,
        calls=args.calls,
        n_sessions=args.sessions,
    )
    _print_result(result, args.json)
    return 0 if result["errors"] == 0 and result["mismatches"] == 0 else 1


def _scale(args: argparse.Namespace) -> int:
    from sessionrec.bench.scale import scale

    items = [int(x) for x in args.items.split(",") if x]
    clicks = [int(x) for x in args.n_clicks.split(",") if x] if args.n_clicks else []
    if clicks and len(clicks) != len(items):
        raise ConfigError("--n-clicks needs one count per --items size")
    for flag, given, allowed in (
        ("--loss", args.loss, ("full", "sampled")),
        ("--parts", args.parts, ("train", "export", "serve")),
    ):
        unknown = [x for x in given.split(",") if x and x not in allowed]
        if unknown or not given.strip(","):
            raise ConfigError(f"{flag} takes some of {','.join(allowed)}, got {given!r}")
    sizes = {n: (clicks[i] if clicks else 3 * n) for i, n in enumerate(items)}
    result = scale(
        sizes,
        losses=tuple(x for x in args.loss.split(",") if x),
        steps=args.steps,
        full_steps=args.full_steps,
        parts=tuple(x for x in args.parts.split(",") if x),
        work_dir=args.work_dir,
    )
    _print_result(result, args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench",
        help="speed benchmarks (ratios measured in one process)",
        description="Speed benchmarks: each reports ratios against references measured in "
        "the same process (so that other load on the machine hits both alike).",
    )
    kinds = bench.add_subparsers(dest="bench", metavar="BENCHMARK")
    bench.set_defaults(func=lambda args: (bench.print_help(sys.stderr), 2)[1])

    p = kinds.add_parser(
        "train-speed",
        help="training step samples/s over the bare scoring floor (S @ E.T + CE + backward)",
        description="Training step samples/s of SR-GNN over the bare scoring floor "
        "(S @ E.T + cross-entropy + backward), on a Diginetica-sized model.",
    )
    p.add_argument("--path", metavar="DIR", help=DIGINETICA_PATH_HELP)
    p.add_argument(
        "--batch-size", type=int, default=100, metavar="N", help="samples per step (100)"
    )
    p.add_argument("--steps", type=int, default=60, metavar="N", help="timed steps per measurement")
    add_threads(p, "torch intra-op threads")
    add_json(p)
    p.set_defaults(func=_train_speed)

    p = kinds.add_parser(
        "latency",
        help="next_items latency of the exported model (1 thread) over the numpy scoring "
        "floor and PyTorch eager; batch-256 throughput on 1 and 2 threads",
        description="Latency of SessionRecommender.next_items (one session per call) over "
        "the numpy scoring floor and PyTorch eager, all on --threads threads (1: as a "
        "service runs); batch-256 throughput on 1 and 2 threads, whatever --threads.",
    )
    p.add_argument("--path", metavar="DIR", help=DIGINETICA_PATH_HELP)
    p.add_argument(
        "--sessions", type=int, default=3000, metavar="N", help="sessions timed (one per call)"
    )
    p.add_argument(
        "--torch-sessions", type=int, default=500, metavar="N", help="sessions timed in PyTorch"
    )
    p.add_argument(
        "--item-table",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="item table precision of the export (fp32)",
    )
    add_threads(p, "onnxruntime and torch threads of the per-session timings", default=1)
    add_json(p)
    p.set_defaults(func=_latency)

    p = kinds.add_parser(
        "load",
        help="one SessionRecommender called from many threads: same answers as serial "
        "calls, throughput, memory before and after",
        description="One SessionRecommender called from --clients threads at once: the "
        "answers must equal serial calls' (exit 1 otherwise); throughput and memory.",
    )
    p.add_argument("--path", metavar="DIR", help=DIGINETICA_PATH_HELP)
    p.add_argument(
        "--clients", type=int, metavar="N", help="threads calling the recommender (default 8)"
    )
    add_threads(p, "onnxruntime intra-op threads per call", default=1)
    p.add_argument(
        "--calls", type=int, default=10_000, metavar="N", help="calls per client (10,000)"
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=2000,
        metavar="N",
        help="distinct real sessions in the pool (2,000)",
    )
    add_json(p)
    p.set_defaults(func=_load)

    p = kinds.add_parser(
        "scale",
        help="training steps, export and next_items latency on planted catalogs of millions "
        "of items (each part in its own process: CPU seconds, peak RSS)",
        description="Training steps, export and next_items latency on planted catalogs of "
        "millions of items; each part runs in its own process on one thread (CPU seconds, "
        "peak RSS).",
    )
    light_command(p, "each part runs in its own process with one thread, by design")
    p.add_argument(
        "--items",
        default="100000,1000000,5000000",
        metavar="N,N",
        help="catalog sizes (default 100000,1000000,5000000)",
    )
    p.add_argument(
        "--n-clicks",
        metavar="N,N",
        help="clicks of each size's clickstream (default: 3 per item)",
    )
    add_deprecated_alias(p, "--clicks", "--n-clicks", "n_clicks")
    p.add_argument(
        "--loss",
        default="full,sampled",
        metavar="L,L",
        help="training losses timed, some of full,sampled (both)",
    )
    p.add_argument(
        "--steps", type=int, default=50, metavar="N", help="timed training steps per loss"
    )
    p.add_argument(
        "--full-steps",
        type=int,
        metavar="N",
        help="timed steps of the full softmax (default --steps)",
    )
    p.add_argument(
        "--parts",
        default="train,export,serve",
        metavar="P,P",
        help="which parts to run, some of train,export,serve (all); each runs in its own "
        "process with one thread",
    )
    p.add_argument(
        "--work-dir", metavar="DIR", help="folder for the prepared datasets (default: a temp one)"
    )
    add_json(p)
    p.set_defaults(func=_scale)
