"""Options shared by several commands.

Each command group (``data_commands``, ``model_commands``, ...) declares its own options
and takes the shared ones from here: the data a command reads (a prepared dataset or a
benchmark), the clickstream dump and protocol (``prepare``, ``fit``), the item catalog,
the training options (``train``, ``fit``), threads and the ``--json`` output.

The flag of every API option that library errors name is in :mod:`sessionrec.cli.flags`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sessionrec.cli.conventions import training_progress
from sessionrec.errors import ConfigError


# -- output -------------------------------------------------------------------------------
def print_json(obj: Any) -> None:
    """One JSON object on stdout (the ``--json`` contract)."""
    sys.stdout.write(json.dumps(obj, default=float) + "\n")
    sys.stdout.flush()


def set_threads(threads: int | None) -> None:
    """Torch intra-op threads, and a malloc setting that keeps the big per-step buffers
    (logits, item-table gradients: tens of MB) on the heap instead of fresh mmaps whose
    page faults cost 10-15 % of a CPU training step (glibc only; harmless elsewhere)."""
    import ctypes
    import ctypes.util

    import torch

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


# -- data: a prepared dataset or a published benchmark ---------------------------------
BENCHMARK_CHOICES = ("srgnn-pickle", "yoochoose-categories")
#: the model presets (sessionrec.train.config.CONFIGS; a test keeps them equal)
CONFIG_CHOICES = ("default", "srgnn")
#: The values of `--refit` (`sessionrec.train.config.REFITS`, kept equal by a test).
REFIT_CHOICES = ("auto", "none", "full", "recent")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``(DIR | --benchmark NAME --path DIR)``: a prepared dataset or a benchmark folder."""
    parser.add_argument(
        "dataset", nargs="?", metavar="DIR", help="a prepared dataset (sessionrec prepare --out)"
    )
    parser.add_argument("--benchmark", choices=BENCHMARK_CHOICES, help="a published benchmark")
    parser.add_argument("--path", metavar="DIR", help="folder of the --benchmark files")


def load_data_argument(args: argparse.Namespace, in_memory_for: str | None = None) -> Any:
    """The :class:`SessionDataset` (or :class:`ShardedDataset`) named by
    :func:`add_data_arguments`' options; with ``in_memory_for``, a sharded dataset is
    refused for that purpose."""
    from sessionrec.data.benchmarks import load_benchmark
    from sessionrec.data.shards import in_memory, load_dataset

    if args.benchmark:
        if args.dataset:
            raise ConfigError("give either a dataset DIR or --benchmark NAME --path DIR, not both")
        if not args.path:
            raise ConfigError(f"--benchmark {args.benchmark} needs --path DIR (its folder)")
        dataset = load_benchmark(args.benchmark, args.path)
    else:
        if args.path:
            raise ConfigError("--path goes with --benchmark; give a prepared dataset as DIR")
        if not args.dataset:
            raise ConfigError(
                "no data: give a prepared dataset DIR (from `sessionrec prepare`) or "
                "--benchmark NAME --path DIR"
            )
        dataset = load_dataset(args.dataset)
    return dataset if in_memory_for is None else in_memory(dataset, in_memory_for)


# -- preparing a clickstream dump (prepare, fit) ---------------------------------------
_FORMATS = ("yoochoose", "diginetica", "retailrocket", "session-rec", "auto")


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
        help="last N days are the test set (default: 1 for yoochoose, else 7, shortened "
        "with a warning when the dump spans less than twice that)",
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
        help="models read the last L clicks of a session: every sample's prefix keeps its "
        "last L clicks, in training, validation, test and the exported model (default: "
        "whole prefixes; recommending reads the last 50)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of the latest training sessions that select the model (0.1); "
        "recorded with the dataset, read by training",
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
        choices=("auto", "s", "ms", "us", "ns", "iso"),
        help="timestamp unit: Unix epoch s, ms, us or ns, or ISO-8601 text (auto: from the "
        "first 1,000 values, ISO-8601 text or the epoch unit of their median: below 1e11 "
        "s, 1e14 ms, 1e17 us, else ns)",
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
        help="read ids as integers or strings (auto: integers when the first 1,000 are "
        "integers that keep their text; leading zeros as in 00123, or +5, keep them strings)",
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
    p.add_argument(
        "--keep-new-items",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --catalog: keep the test clicks on new items (a catalog row, no "
        "training click) and add them to the vocabulary, so the content model is tested on "
        "them (default: on with --catalog under the default protocol; test items missing "
        "from the catalog are dropped and counted either way)",
    )


def _column_map(args: argparse.Namespace) -> Any:
    from sessionrec.data.presets import ColumnMap

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
    args: argparse.Namespace,
    progress: bool = True,
    sharded_out: Any = None,
    overwrite: bool = False,
) -> Any:
    """The :class:`SessionDataset` of :func:`add_prepare_arguments`' options; with
    ``--shard-clicks``, the :class:`ShardedDataset` written to ``sharded_out`` (a folder
    that is not a dataset replaced only with ``overwrite``)."""
    from sessionrec.data.protocol import ProtocolConfig, prepare
    from sessionrec.data.shards import prepare_sharded

    config = ProtocolConfig(
        mode=args.protocol,
        min_session_length=args.min_session_length,
        min_item_support=args.min_item_support,
        test_days=args.test_days,
        max_session_length=args.max_session_length,
        validation_fraction=args.validation_fraction,
        keep_new_items=args.keep_new_items,
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
        "catalog": _catalog_ids(args) if config.keep_new_items is not False else None,
    }
    if args.shard_clicks is not None:
        assert sharded_out is not None
        return prepare_sharded(
            args.clicks,
            sharded_out,
            config,
            clicks_per_shard=args.shard_clicks,
            overwrite=overwrite,
            **options,
        )
    return prepare(args.clicks, config, **options)


# -- item catalogs -----------------------------------------------------------------------
def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """``--catalog FILE`` and how to read it."""
    parser.add_argument(
        "--catalog",
        metavar="FILE",
        help="item catalog (CSV/TSV/Parquet, one row per item: id + content columns); item "
        "vectors are then bootstrapped from content and catalog items without clicks are "
        "recommendable",
    )
    parser.add_argument("--catalog-item-col", metavar="NAME", help="the catalog's item id column")
    for role, example in (
        ("categorical", "category,brand"),
        ("text", "title,description"),
        ("numeric", "price"),
        ("vector", "image_embedding"),
    ):
        parser.add_argument(
            f"--catalog-{role}",
            metavar="COLS",
            help=f"comma-separated catalog columns read as {role} (e.g. {example}); given "
            "roles override inference, and other columns are then ignored",
        )
    parser.add_argument(
        "--catalog-duplicates",
        choices=("error", "first"),
        default="error",
        help="an item on several catalog rows: refuse (default) or keep its first row",
    )


def _read_catalog(args: argparse.Namespace, id_type: str) -> Any:
    from sessionrec.data.catalog import read_catalog

    roles = {
        role: [c for c in value.split(",") if c]
        for role in ("categorical", "text", "numeric", "vector")
        if (value := getattr(args, f"catalog_{role}")) is not None
    }
    return read_catalog(
        args.catalog,
        args.catalog_item_col,
        id_type=id_type,
        duplicate_ids=args.catalog_duplicates,
        **roles,
    )


def _catalog_ids(args: argparse.Namespace) -> Any:
    """The raw item ids of ``--catalog`` (the protocol keeps test clicks on its new
    items), or ``None`` without one."""
    if not getattr(args, "catalog", None):
        return None
    return _read_catalog(args, args.id_type).ids


def load_catalog_argument(args: argparse.Namespace, dataset: Any) -> Any:
    """The ``--catalog`` aligned to ``dataset``'s vocabulary, or ``None``."""
    if not args.catalog:
        return None
    catalog = _read_catalog(args, dataset.vocab.kind)
    aligned = catalog.align(dataset.vocab)
    if not args.quiet:
        print(
            f"catalog: {len(catalog)} items ({catalog!r}); {aligned.n_without_clicks} without "
            f"clicks (content-only vectors), {aligned.n_without_content} clicked items "
            "without a catalog row",
            file=sys.stderr,
        )
    return aligned


# -- training (train, fit) ---------------------------------------------------------------
def add_training_arguments(p: argparse.ArgumentParser, validation_fraction: bool = True) -> None:
    """The model config and training options (``train``, ``fit``); ``validation_fraction``:
    add ``--validation-fraction`` (``fit`` has it from :func:`add_prepare_arguments`)."""
    p.add_argument(
        "--config",
        default="default",
        choices=CONFIG_CHOICES,
        help="model preset: default (tuned) or srgnn (the paper's settings)",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="maximum epochs")
    p.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="a time budget for the whole command (reading the data, epochs, calibration, "
        "refit, test, saving): the run measures its costs on this machine, plans the "
        "epochs, the learning-rate schedule and the refit to finish within M minutes, and "
        "reports the plan (metrics 'budget'); without it: as many epochs as --epochs and "
        "early stopping allow",
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per step (preset's)")
    p.add_argument("--lr", type=float, metavar="RATE", help="learning rate (preset's)")
    p.add_argument(
        "--patience", type=int, metavar="N", help="epochs without validation gain before stopping"
    )
    p.add_argument("--seed", type=int, metavar="N", help="the model's seed (init, order, dropout)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the item scoring")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="cpu",
        help="train on the CPU (default) or a GPU (cuda; under torchrun each process its "
        "LOCAL_RANK GPU, nccl backend); auto: cuda when available",
    )
    if validation_fraction:
        p.add_argument(
            "--validation-fraction",
            type=float,
            dest="train_validation_fraction",
            metavar="F",
            help="share of the latest training sessions that select the model (default: the "
            "dataset's, set by prepare; 0.1 for benchmarks); 0: no validation, train exactly "
            "--epochs epochs on everything (an epoch count chosen on validation before)",
        )
    p.add_argument(
        "--refit",
        nargs="?",
        const="full",
        choices=REFIT_CHOICES,
        help="after selecting the epoch on validation: full (the flag alone) retrains a fresh "
        "model on all training sessions for that many epochs; recent continues the selected "
        "model on the validation sessions (the latest), one pass per learning rate of its "
        "epochs (seconds, where full costs as many epochs again); none ships the selected "
        "model; auto (the default): none, and under --max-minutes the plan's choice (full "
        "where the whole schedule fits twice, else recent). Put it after DIR: its value is "
        "optional",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a model or training config field (repeatable), e.g. dropout=0.2 or "
        "lr_decay_first=2",
    )
    p.add_argument(
        "--warm-start",
        metavar="MODEL_DIR",
        help="start from a previous model: its weights, and the embeddings of the items it "
        "knows; new items start fresh (from content with --catalog); items added and no "
        "longer seen are reported",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last checkpoint",
    )
    p.add_argument(
        "--warm-start-missing",
        choices=("error", "cold"),
        default="error",
        help="when the --warm-start directory does not exist yet (or is empty): stop before "
        "any work (error, the default) or train from scratch (cold: the first night of a "
        "nightly retraining)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an --out directory that holds something else: for train, any "
        "existing files (a model included: it is replaced); for fit, anything that is not "
        "a sessionrec model directory",
    )


def trainer_from_args(args: argparse.Namespace, dataset: Any, catalog: Any, out: Any) -> Any:
    """The :class:`~sessionrec.train.Trainer` of :func:`add_training_arguments`' options
    for ``dataset``."""
    from sessionrec.train import Trainer, apply_overrides, config_preset, with_catalog

    overrides: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "patience": args.patience,
        "bf16_scoring": True if args.bf16 else None,
        "refit": args.refit,
        "device": args.device,
        # train's override of the dataset's share (fit prepares the dataset with it)
        "validation_fraction": getattr(args, "train_validation_fraction", None),
    }
    model_config, train_config = config_preset(args.config, dataset.n_items, **overrides)
    if catalog is not None:
        model_config = with_catalog(model_config, catalog)
    if args.set:
        model_config, train_config = apply_overrides(args.set, model_config, train_config)
    progress = training_progress(args.quiet)  # bars on a terminal, else one line per epoch
    return Trainer(
        model_config,
        train_config,
        out,
        progress=progress,
        max_minutes=args.max_minutes,
        started_at=getattr(args, "started_at", None),
    )


def check_onnx_path(model: str, command: str) -> None:
    """A PyTorch model file given where the exported model is read: name the file to pass."""
    path = Path(model)
    if not path.is_file() or path.suffix not in (".pt", ".json", ".npy"):
        return  # the recommender's own checks (a file of another name may be ONNX)
    onnx = path.parent / "model.onnx"
    fix = (
        f"pass {onnx} or the directory {path.parent}"
        if onnx.is_file()
        else f"export it first (sessionrec export --model {path.parent} --out {path.parent}/), "
        "then pass the .onnx file or the directory"
    )
    what = "the PyTorch model (read by evaluate and export)" if path.suffix == ".pt" else "a file"
    raise ConfigError(
        f"{path} is {what}, not an exported model: {command} reads the ONNX file that "
        f"sessionrec export writes; {fix}"
    )
