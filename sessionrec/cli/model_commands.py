"""``sessionrec train`` and ``sessionrec evaluate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sessionrec.cli.guards import check_out_directory, warm_start_model
from sessionrec.cli.options import (
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
        t = trained.metrics["test"]
        print(
            f"test: HR@20 {t['hr@20']:.2f}  MRR@20 {t['mrr@20']:.2f}  NDCG@20 {t['ndcg@20']:.2f}"
            f"  (best epoch {trained.metrics['best_epoch']}); model in {args.out}",
            file=sys.stderr,
        )
    return 0


def _cold_start(args: argparse.Namespace) -> int:
    from sessionrec.studies.cold_start import cold_start_experiment
    from sessionrec.train import apply_overrides, config_preset

    if args.model:
        raise ConfigError(
            "--cold-items trains its own content and id-only models on the reduced "
            "training data; drop --model"
        )
    if not args.catalog:
        raise ConfigError("--cold-items needs --catalog FILE (the content of every item)")
    dataset = load_data_argument(args, in_memory_for="the cold-start study (--cold-items)")
    catalog = load_catalog_argument(args, dataset)
    overrides = {"epochs": args.epochs, "seed": args.train_seed, "patience": args.patience}
    model_config, train_config = config_preset(args.config, dataset.n_items, **overrides)
    if args.set:
        model_config, train_config = apply_overrides(args.set, model_config, train_config)
    ks = tuple(sorted({10, args.k}))
    result = cold_start_experiment(
        dataset,
        catalog,
        args.cold_items,
        args.seed,
        model_config,
        train_config,
        category_column=args.category_col,
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

    from sessionrec.train import check_data_items, evaluate_model, load_model

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
        progress=not args.quiet,
        max_length=trained.data_contract.inference_max_length,
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
        "--category-col",
        metavar="NAME",
        help="cold-start study: the catalog column of category popularity",
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
