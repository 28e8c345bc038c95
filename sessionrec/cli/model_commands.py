"""``sessionrec train`` and ``sessionrec evaluate``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sessionrec.errors import ConfigError

BENCHMARK_CHOICES = ("srgnn-pickle", "yoochoose-categories")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``(DIR | --benchmark NAME --path DIR)``: a prepared dataset or a benchmark folder."""
    parser.add_argument("dataset", nargs="?", help="a prepared dataset (sessionrec prepare --out)")
    parser.add_argument("--benchmark", choices=BENCHMARK_CHOICES, help="a published benchmark")
    parser.add_argument("--path", help="folder of the --benchmark files")


def load_data_argument(args: argparse.Namespace) -> Any:
    """The :class:`SessionDataset` (or :class:`ShardedDataset`) named by
    ``add_data_arguments``' options."""
    from sessionrec.data.benchmarks import load_benchmark
    from sessionrec.data.shards import load_dataset

    if args.benchmark:
        if args.dataset:
            raise ConfigError("give either a dataset DIR or --benchmark NAME --path DIR, not both")
        if not args.path:
            raise ConfigError(f"--benchmark {args.benchmark} needs --path DIR")
        return load_benchmark(args.benchmark, args.path)
    if not args.dataset:
        raise ConfigError("no data: give a dataset DIR or --benchmark NAME --path DIR")
    return load_dataset(args.dataset)


def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """``--catalog FILE`` and how to read it."""
    parser.add_argument(
        "--catalog",
        help="item catalog (CSV/TSV/Parquet, one row per item: id + content columns); item "
        "vectors are then bootstrapped from content and catalog items without clicks are "
        "recommendable",
    )
    parser.add_argument("--catalog-item-col", help="the catalog's item id column")
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


def load_catalog_argument(args: argparse.Namespace, dataset: Any) -> Any:
    """The ``--catalog`` aligned to ``dataset``'s vocabulary, or ``None``."""
    if not args.catalog:
        return None
    from sessionrec.data.catalog import read_catalog

    roles = {
        role: [c for c in value.split(",") if c]
        for role in ("categorical", "text", "numeric", "vector")
        if (value := getattr(args, f"catalog_{role}")) is not None
    }
    catalog = read_catalog(
        args.catalog,
        args.catalog_item_col,
        id_type=dataset.vocab.kind,
        duplicate_ids=args.catalog_duplicates,
        **roles,
    )
    aligned = catalog.align(dataset.vocab)
    if not args.quiet:
        print(
            f"catalog: {len(catalog)} items ({catalog!r}); {aligned.n_without_clicks} without "
            f"clicks (content-only vectors), {aligned.n_without_content} clicked items "
            "without a catalog row",
            file=sys.stderr,
        )
    return aligned


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


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The model config and training options (``train``, ``fit``)."""
    p.add_argument("--config", default="default", help="srgnn (the paper) or default (tuned)")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--max-minutes", type=float, help="stop training after this wall time")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int, help="epochs without validation gain before stopping")
    p.add_argument("--seed", type=int)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the item scoring")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="cpu",
        help="train on the CPU (default) or a GPU (cuda; under torchrun each process its "
        "LOCAL_RANK GPU, nccl backend); auto: cuda when available",
    )
    p.add_argument(
        "--valid-fraction",
        type=float,
        help="latest share of training sessions for validation (default 0.1); 0: no "
        "validation, train exactly --epochs epochs on everything (an epoch count chosen on "
        "validation before)",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="after selecting the epoch on validation, retrain on all training sessions",
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
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last checkpoint",
    )


def trainer_from_args(args: argparse.Namespace, dataset: Any, catalog: Any, out: Any) -> Any:
    """The :class:`Trainer` of ``add_training_arguments``' options for ``dataset``."""
    from sessionrec.train import Trainer, config_preset, with_catalog

    overrides: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "patience": args.patience,
        "bf16_scoring": True if args.bf16 else None,
        "valid_fraction": args.valid_fraction,
        "refit": True if args.refit else None,
        "device": args.device,
    }
    model_config, train_config = config_preset(args.config, dataset.n_items, **overrides)
    if catalog is not None:
        model_config = with_catalog(model_config, catalog)
    if args.set:
        model_config, train_config = apply_sets(args.set, model_config, train_config)
    return Trainer(
        model_config, train_config, out, progress=not args.quiet, max_minutes=args.max_minutes
    )


def warm_start_argument(args: argparse.Namespace) -> Any:
    """The ``--warm-start`` model (loaded and verified), or ``None``."""
    if not args.warm_start:
        return None
    from sessionrec.train import load_model

    return load_model(args.warm_start)


def _train(args: argparse.Namespace) -> int:
    from sessionrec.cli import print_json
    from sessionrec.train import init_distributed, leave_distributed

    rank, _ = init_distributed(args.device)  # torchrun: one process per share of each batch
    set_threads(args.threads)
    dataset = load_data_argument(args)
    catalog = load_catalog_argument(args, dataset)
    trainer = trainer_from_args(args, dataset, catalog, args.out)
    trained = trainer.fit(
        dataset, resume=args.resume, catalog=catalog, warm_start=warm_start_argument(args)
    )
    leave_distributed()
    if rank != 0:
        return 0  # rank 0 wrote the model and reports
    result = {"config": args.config, **trained.metrics}
    if args.json:
        print_json(result)
    else:
        t = trained.metrics["test"]
        print(
            f"test: HR@20 {t['hr@20']:.2f}  MRR@20 {t['mrr@20']:.2f}  NDCG@20 {t['ndcg@20']:.2f}"
            f"  (best epoch {trained.metrics['best_epoch']}); model in {args.out}",
            file=sys.stderr,
        )
    return 0


def apply_sets(items: list[str], model_config: Any, train_config: Any) -> tuple[Any, Any]:
    """Apply ``--set NAME=VALUE`` to whichever config (model or training) has NAME."""
    from dataclasses import fields, replace

    model_names = {f.name for f in fields(model_config)}
    train_names = {f.name for f in fields(train_config)}
    model_overrides: dict[str, Any] = {}
    train_overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        if key in model_names:
            model_overrides[key] = _as_field(getattr(model_config, key), _parse_value(value))
        elif key in train_names:
            train_overrides[key] = _as_field(getattr(train_config, key), _parse_value(value))
        else:
            raise ConfigError(
                f"--set: unknown field {key!r}; model fields: {sorted(model_names)}; "
                f"training fields: {sorted(train_names)}"
            )
    try:
        return replace(model_config, **model_overrides), replace(train_config, **train_overrides)
    except TypeError as exc:
        raise ConfigError(f"--set: {exc}") from None


def _as_field(current: Any, value: Any) -> Any:
    """A tuple field (a grid) given one value gets a one-value tuple."""
    if isinstance(current, tuple) and not isinstance(value, tuple):
        return (value,)
    return value


def _parse_value(text: str) -> Any:
    """``--set`` values: none, true/false, ints, floats, ``a,b,c`` (a tuple; ``()``:
    empty), else the text."""
    if text.strip() in ("()", "[]"):
        return ()
    if "," in text:
        return tuple(_parse_value(part.strip()) for part in text.split(",") if part.strip())
    low = text.lower()
    if low == "none":
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _cold_start(args: argparse.Namespace) -> int:
    from sessionrec.cli import print_json
    from sessionrec.evaluate.cold_start import cold_start_experiment
    from sessionrec.train import config_preset

    if args.model:
        raise ConfigError(
            "--cold-items trains its own content and id-only models on the reduced "
            "training data; drop --model"
        )
    if not args.catalog:
        raise ConfigError("--cold-items needs --catalog FILE (the content of every item)")
    from sessionrec.data.shards import in_memory

    dataset = in_memory(load_data_argument(args), "the cold-start study (--cold-items)")
    catalog = load_catalog_argument(args, dataset)
    overrides = {"epochs": args.epochs, "seed": args.train_seed, "patience": args.patience}
    model_config, train_config = config_preset(args.config, dataset.n_items, **overrides)
    if args.set:
        model_config, train_config = apply_sets(args.set, model_config, train_config)
    ks = tuple(sorted({10, args.k}))
    result = cold_start_experiment(
        dataset,
        catalog,
        args.cold_items,
        args.seed,
        model_config,
        train_config,
        category_column=args.category_column,
        ks=ks,
        progress=not args.quiet,
    )
    result["config"] = args.config
    if args.json:
        print_json(result)
    else:
        k = args.k
        print(f"{'':22} {'cold HR/MRR@' + str(k):>18} {'warm HR/MRR':>16} {'long-tail HR':>13}")
        for name in ("content", "id_only", "category_popularity"):
            r = result[name]
            print(
                f"{name:22} {r[f'cold_hr@{k}']:8.2f} {r[f'cold_mrr@{k}']:8.2f} "
                f"{r[f'warm_hr@{k}']:8.2f} {r[f'warm_mrr@{k}']:7.2f} "
                f"{r[f'longtail_hr@{k}']:12.2f}"
            )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import time

    from sessionrec.cli import print_json
    from sessionrec.train import evaluate_model, extends_vocab, inference_max_length, load_model

    set_threads(args.threads)
    if args.cold_items is not None:
        return _cold_start(args)
    if not args.model:
        raise ConfigError("evaluate needs --model MODEL_DIR (or --cold-items with --catalog)")
    if args.catalog:
        raise ConfigError(
            "--catalog is read by --cold-items only: a trained model keeps the catalog it was "
            "trained with (in model.pt); drop --catalog, or add --cold-items F"
        )
    trained = load_model(args.model)
    dataset = load_data_argument(args)
    if not extends_vocab(trained.vocab.ids, dataset.vocab):
        raise ConfigError(
            f"the dataset's item vocabulary ({len(dataset.vocab)} items) differs from the "
            f"model's ({len(trained.vocab)}); evaluate on data prepared with the same items"
        )
    ks = tuple(sorted({10, args.k}))
    t0 = time.perf_counter()
    metrics = evaluate_model(
        trained.model,
        dataset.test,
        ks=ks,
        item_counts=trained.item_counts,
        bf16=args.bf16,
        progress=not args.quiet,
        max_length=inference_max_length(trained.train_config),
    )
    metrics["seconds"] = time.perf_counter() - t0
    if args.json:
        print_json(metrics)
    else:
        for key, value in metrics.items():
            print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an SR-GNN (validation-selected) and test it once",
        description="Train an SR-GNN on a prepared dataset or a benchmark. The checkpoint is "
        "selected on a validation split carved from the training sessions; the test set is "
        "evaluated once, at the end.",
    )
    add_data_arguments(p)
    add_catalog_arguments(p)
    p.add_argument("--out", required=True, help="model directory to write")
    add_training_arguments(p)
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "evaluate",
        help="full-catalogue metrics of a trained model on test data, or a cold-start study",
        description="With --model: the metrics of a trained model on the test samples. With "
        "--cold-items F --catalog FILE: hold a share F of the items out of training (their "
        "clicks removed, their catalog rows kept), train a content model and an id-only "
        "model of --config on the rest, and report cold/warm/long-tail metrics of both and "
        "of a category-popularity baseline.",
    )
    p.add_argument("--model", help="model directory (sessionrec train --out)")
    add_data_arguments(p)
    add_catalog_arguments(p)
    p.add_argument(
        "--cold-items",
        type=float,
        metavar="FRACTION",
        help="cold-start study: share of the clicked items held out of training",
    )
    p.add_argument("--seed", type=int, default=0, help="which items are held out (default 0)")
    p.add_argument("--config", default="default", help="cold-start study: the model config")
    p.add_argument("--epochs", type=int, help="cold-start study: maximum epochs")
    p.add_argument("--patience", type=int, help="cold-start study: early-stopping patience")
    p.add_argument("--train-seed", type=int, help="cold-start study: the models' seed")
    p.add_argument(
        "--category-column", help="cold-start study: the catalog column of category popularity"
    )
    p.add_argument(
        "--set", action="append", metavar="NAME=VALUE", help="cold-start study: config override"
    )
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)
