"""``sessionrec train`` and ``sessionrec evaluate``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from sessionrec.cli.conventions import (
    add_deprecated_alias,
    add_json,
    add_quiet,
    add_threads,
    print_metrics,
    show_bars,
    training_progress,
)
from sessionrec.cli.guards import check_out_directory, warm_start_model
from sessionrec.cli.options import (
    CONFIG_CHOICES,
    add_catalog_arguments,
    add_data_arguments,
    add_training_arguments,
    load_catalog_argument,
    load_data_argument,
    print_json,
    set_threads,
    trainer_from_args,
)
from sessionrec.errors import ConfigError


def _train(args: argparse.Namespace) -> int:
    from sessionrec.data.contract import DataContract
    from sessionrec.train import init_distributed, leave_distributed
    from sessionrec.train.warm import check_warm_start

    # before any work: an --out holding something else, a missing or different warm start
    check_out_directory(Path(args.out), "train", force=args.force, resume=args.resume)
    rank, _ = init_distributed(args.device)  # torchrun: one process per share of each batch
    set_threads(args.threads)
    previous = warm_start_model(args, lambda m: print(m, file=sys.stderr))
    dataset = load_data_argument(args)
    catalog = load_catalog_argument(args, dataset)
    trainer = trainer_from_args(args, dataset, catalog, args.out)
    if previous is not None:  # the id kind and the items, before training
        length = DataContract.of(dataset).inference_max_length
        check_warm_start(previous, trainer.model_config, dataset.vocab, length)
    trained = trainer.fit(dataset, resume=args.resume, catalog=catalog, warm_start=previous)
    leave_distributed()
    if rank != 0:
        return 0  # rank 0 wrote the model and reports
    result = {"config": args.config, **trained.metrics}
    if args.json:
        print_json(result)
    else:
        print(f"model in {args.out} (best epoch {trained.metrics['best_epoch']})", file=sys.stderr)
        print_metrics({"split": "test", **trained.metrics["test"]})
    return 0


def _study_inputs(args: argparse.Namespace, flag: str) -> tuple[Any, Any, Any, Any, Any]:
    """The dataset, catalog, configs and cut-offs of a study (``--cold-items``,
    ``--new-items``)."""
    from sessionrec.train import apply_overrides, config_preset

    if args.model:
        raise ConfigError(f"{flag} trains its own content and id-only models; drop --model")
    if not args.catalog:
        raise ConfigError(f"{flag} needs --catalog FILE (the content of every item)")
    dataset = load_data_argument(args, in_memory_for=f"the {flag} study")
    catalog = load_catalog_argument(args, dataset)
    overrides = {"epochs": args.epochs, "seed": args.seed, "patience": args.patience}
    model_config, train_config = config_preset(args.config, dataset.n_items, **overrides)
    if args.set:
        model_config, train_config = apply_overrides(args.set, model_config, train_config)
    return dataset, catalog, model_config, train_config, tuple(sorted({10, args.k}))


def _print_study(result: dict[str, Any], first: str, k: int) -> None:
    print(
        f"{'':22} {f'{first} HR/MRR@{k}':>17} {f'warm HR/MRR@{k}':>16} "
        f"{f'long-tail HR@{k}':>15} {f'all HR/MRR@{k}':>16}"
    )
    for name in ("content", "id_only", "category_popularity"):
        r = result[name]
        print(
            f"{name:22} {r[f'{first}_hr@{k}']:8.2f} {r[f'{first}_mrr@{k}']:8.2f} "
            f"{r[f'warm_hr@{k}']:8.2f} {r[f'warm_mrr@{k}']:7.2f} "
            f"{r[f'longtail_hr@{k}']:15.2f} {r[f'hr@{k}']:8.2f} {r[f'mrr@{k}']:7.2f}"
        )


def _study(args: argparse.Namespace, flag: str) -> int:
    """A study of ``evaluate``: ``--new-items``, or ``--cold-items F``."""
    from sessionrec.studies.cold_start import cold_start_experiment, new_items_experiment

    dataset, catalog, model_config, train_config, ks = _study_inputs(args, flag)
    common = {
        "category_column": args.category_col,
        "ks": ks,
        "progress": training_progress(args.quiet),
    }
    if flag == "--new-items":
        group = "new"
        result = new_items_experiment(dataset, catalog, model_config, train_config, **common)
    else:
        if args.seed is not None and args.cold_seed is None:
            warnings.warn(
                "evaluate --seed is the models' seed, as in train (in sessionrec 0.1 it picked "
                "the held-out items); the held-out items are picked by --cold-seed (default 0)",
                FutureWarning,
                stacklevel=2,
            )
        group = "cold"
        cold_seed = 0 if args.cold_seed is None else args.cold_seed
        result = cold_start_experiment(
            dataset, catalog, args.cold_items, cold_seed, model_config, train_config, **common
        )
    result["config"] = args.config
    if args.json:
        print_json(result)
    else:
        _print_study(result, group, args.k)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import time

    from sessionrec.train import check_data_items, evaluate_model, load_model

    set_threads(args.threads)
    if args.cold_items is not None and args.new_items:
        raise ConfigError("--cold-items and --new-items are two studies: give one")
    if args.cold_items is not None:
        return _study(args, "--cold-items")
    if args.new_items:
        return _study(args, "--new-items")
    if not args.model:
        raise ConfigError(
            "evaluate needs --model MODEL_DIR (or a study: --cold-items F or --new-items, "
            "with --catalog)"
        )
    if args.catalog:
        raise ConfigError(
            "--catalog is read by the studies (--cold-items, --new-items) only: a trained "
            "model keeps the catalog it was trained with (in model.pt); drop --catalog, or "
            "add --cold-items F or --new-items"
        )
    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    trained = load_model(args.model)
    dataset = load_data_argument(args)
    check_data_items(trained.vocab, dataset.vocab)
    ks = tuple(sorted({10, args.k}))
    t0 = time.perf_counter()
    metrics = evaluate_model(
        trained.model,
        dataset.test,
        ks=ks,
        item_counts=trained.item_counts,
        bf16=args.bf16,
        progress=show_bars(args.quiet),
        max_length=trained.data_contract.inference_max_length,
    )
    metrics["seconds"] = time.perf_counter() - t0
    if args.json:
        print_json(metrics)
    else:
        print_metrics(metrics)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an SR-GNN (validation-selected) and test it once",
        description="Train an SR-GNN on a prepared dataset or a benchmark. The checkpoint is "
        "selected on a validation split carved from the training sessions; the test set is "
        "evaluated once, at the end. The test metrics go to stdout, the log to stderr.",
    )
    add_data_arguments(p)
    add_catalog_arguments(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    add_training_arguments(p)
    add_threads(p, "torch intra-op threads of training and evaluation")
    add_json(p)
    add_quiet(p)
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "evaluate",
        help="full-catalogue metrics of a trained model on test data, or a cold-start or "
        "new-item study",
        description="With --model: the metrics of a trained model on the test samples. With "
        "--cold-items F --catalog FILE: hold a share F of the items out of training (their "
        "clicks removed, their catalog rows kept), train a content model and an id-only "
        "model of --config on the rest, and report cold/warm/long-tail metrics of both and "
        "of a category-popularity baseline. With --new-items --catalog FILE: the same "
        "comparison on the new items of DATA's test period (prepare DATA with --catalog).",
    )
    p.add_argument("--model", metavar="MODEL_DIR", help="model directory (sessionrec train --out)")
    add_data_arguments(p)
    add_catalog_arguments(p)
    p.add_argument(
        "--cold-items",
        type=float,
        metavar="FRACTION",
        help="cold-start study: share of the clicked items held out of training",
    )
    p.add_argument(
        "--new-items",
        action="store_true",
        help="new-item study: on DATA prepared with --catalog (its test keeps the clicks on "
        "catalog items without training clicks), train a content and an id-only model and "
        "report new/warm/long-tail metrics of both and of category popularity",
    )
    p.add_argument(
        "--cold-seed",
        type=int,
        metavar="N",
        help="cold-start study: which items are held out (default 0)",
    )
    p.add_argument(
        "--config",
        default="default",
        choices=CONFIG_CHOICES,
        help="studies: the models' preset (default)",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="studies: maximum epochs")
    p.add_argument("--patience", type=int, metavar="N", help="studies: early-stopping patience")
    p.add_argument("--seed", type=int, metavar="N", help="studies: the models' seed (preset's)")
    add_deprecated_alias(p, "--train-seed", "--seed", "seed", type=int)
    p.add_argument(
        "--category-col",
        metavar="NAME",
        help="studies: the catalog column of category popularity",
    )
    add_deprecated_alias(p, "--category-column", "--category-col", "category_col")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="studies: config override")
    p.add_argument(
        "--k", type=int, default=20, metavar="K", help="cut-off K (default 20; @10 is added)"
    )
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the item scoring")
    add_threads(p, "torch intra-op threads")
    add_json(p)
    add_quiet(p)
    p.set_defaults(func=_evaluate)
