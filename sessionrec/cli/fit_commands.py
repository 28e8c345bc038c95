"""``sessionrec fit``: from a clickstream dump to a deployable model directory, one run.

prepare -> train (selected on validation, early stopping) -> test -> export ONNX ->
compare with the published model (the publication guard) -> training report -> publish.
The model directory then holds::

    model.onnx       the exported model (export/README.md): what services load
    model.pt, config.json, vocab.json, item_counts.npy, history.json, metrics.json
                     the PyTorch model (``sessionrec evaluate --model``, ``export``)
    report.json      per-epoch loss / rate / validation metrics, what was selected and
                     why (``metrics.selected``), validation metrics as shipped (repeat
                     bonus included) and as trained, test metrics, the data report, step
                     timings, the publication guard's comparison and decision
    training.png     loss and validation HR@20 / MRR@20 per epoch, learning-rate decays,
                     the selected epoch (criterion named) and the model as shipped
    manifest.json    SHA-256 and format of every file above

Everything is built in a staging directory beside the model directory
(``.NAME.fit``; training checkpoints live there, so ``--resume`` continues a killed
run) and published in one commit at the end: until then the previous model stays in
place, whole, and a service that loads it meanwhile sees the previous model or the new
one, never a mix.

Unattended runs (:mod:`sessionrec.cli.guards`): a missing ``--warm-start`` model, a
warm start from another config, id kind or item set, and an ``--out`` that holds
something other than a model stop the run before any work. The new model replaces the
published one only if it is not worse on the new test samples both can read (``--publish
guarded``, the default; ``--publish always`` skips the verdict); else the published model
stays, the new one is left in ``OUT.rejected/`` and the exit status is 3.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sessionrec.cli.conventions import add_json, add_quiet, add_threads, print_metrics, show_bars
from sessionrec.cli.guards import (
    DEFAULT_TOLERANCE,
    EXIT_NOT_PUBLISHED,
    check_out_directory,
    publication_decision,
    reject,
    warm_start_model,
)
from sessionrec.cli.options import (
    add_catalog_arguments,
    add_prepare_arguments,
    add_training_arguments,
    load_catalog_argument,
    prepare_from_args,
    print_json,
    set_threads,
    trainer_from_args,
)
from sessionrec.errors import ConfigError


def staging_directory(out: Path) -> Path:
    """Where ``fit --out OUT`` builds the new model before publishing it."""
    return out.parent / f".{out.name}.fit"


def shards_directory(out: Path) -> Path:
    """Where ``fit --shard-clicks`` puts its shards: written by the first process of
    each machine (``torchrun``: one folder per machine, ``GROUP_RANK``), read by every
    process of it, removed by the first when the run ends, whatever the outcome."""
    node = int(os.environ.get("GROUP_RANK", "0"))
    return out.parent / (f".{out.name}.data" + (f".node{node}" if node else ""))


def _fit(args: argparse.Namespace) -> int:
    shards = shards_directory(Path(args.out))
    try:
        return _fit_steps(args, shards)
    finally:
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            shutil.rmtree(shards, ignore_errors=True)


def _fit_steps(args: argparse.Namespace, shards: Path) -> int:
    from sessionrec.data.contract import DataContract
    from sessionrec.data.shards import load_dataset
    from sessionrec.errors import NonFiniteError
    from sessionrec.onnx_export import export_onnx
    from sessionrec.train import init_distributed, leave_distributed, once_per_node
    from sessionrec.train.model_dir import non_finite_weights
    from sessionrec.train.warm import check_warm_start

    out = Path(args.out)
    staging = staging_directory(out)
    if args.resume and not (staging / "checkpoint.pt").is_file():
        from sessionrec.errors import ArtifactError

        raise ArtifactError(
            f"--resume: no interrupted fit of {out} to continue ({staging / 'checkpoint.pt'} "
            "does not exist); run without --resume"
        )
    if not math.isfinite(args.publish_tolerance):
        raise ConfigError(f"--publish-tolerance must be a number, got {args.publish_tolerance}")
    check_out_directory(out, "fit", force=args.force, resume=args.resume)

    def log(message: str) -> None:  # stderr: stdout carries --json's object only
        if rank == 0:
            print(message, file=sys.stderr, flush=True)

    rank, _ = init_distributed(args.device)  # torchrun: one process per share of each batch
    set_threads(args.threads)
    previous = warm_start_model(args, log)  # before any work: a missing model, its config
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"[1/5] preparing {args.clicks}")
    if args.shard_clicks is None:
        dataset = prepare_from_args(args, progress=show_bars(args.quiet))
    else:  # shards beside the staging folder, prepared once per machine
        dataset = once_per_node(
            lambda: prepare_from_args(
                args, progress=show_bars(args.quiet), sharded_out=shards, overwrite=True
            ),
            lambda: load_dataset(shards),
        )
    catalog = load_catalog_argument(args, dataset)
    timings["prepare_s"] = time.perf_counter() - t0
    stats = dataset.stats()
    log(
        f"      {stats['train_sessions']:,} training sessions, {stats['test_samples']:,} test "
        f"samples, {stats['items']:,} items ({timings['prepare_s']:.0f} s)"
    )

    t = time.perf_counter()
    trainer = trainer_from_args(args, dataset, catalog, staging)
    if previous is not None:  # the id kind and the items, before training
        length = DataContract.of(dataset).inference_max_length
        check_warm_start(previous, trainer.model_config, dataset.vocab, length)
    log(f"[2/5] training SR-GNN ({args.config}) in {staging}")
    trained = trainer.fit(dataset, resume=args.resume, catalog=catalog, warm_start=previous)
    timings["train_s"] = time.perf_counter() - t
    leave_distributed()
    if rank != 0:
        return 0  # rank 0 exports, reports and publishes
    _log_training(trained, args, timings, log)
    bad = non_finite_weights(trained.model)
    if bad:  # the trainer's save refuses these too: never export or publish one
        raise NonFiniteError(
            f"the trained model has NaN or infinite weights ({', '.join(bad)}): nothing is "
            f"published, {out} keeps its model. Train again with a lower --lr"
        )

    t = time.perf_counter()
    log("[3/5] exporting model.onnx")
    export_onnx(trained, staging / "model.onnx")
    timings["export_s"] = time.perf_counter() - t
    return _guard_report_publish(args, out, staging, trained, dataset, previous, t0, timings, log)


def _log_training(
    trained: Any, args: argparse.Namespace, timings: dict[str, float], log: Any
) -> None:
    if "warm_start" in trained.metrics:
        w = trained.metrics["warm_start"]
        log(
            f"      warm start from {args.warm_start}: {w['items_kept']:,} items kept, "
            f"{w['items_added']:,} added, {w['items_no_longer_seen']:,} no longer seen "
            "(examples in report.json)"
        )
    test = trained.metrics["test"]
    log(
        f"      best epoch {trained.metrics['best_epoch']}: test HR@20 {test['hr@20']:.2f}, "
        f"MRR@20 {test['mrr@20']:.2f} ({timings['train_s']:.0f} s)"
    )


def _guard_report_publish(
    args: argparse.Namespace,
    out: Path,
    staging: Path,
    trained: Any,
    dataset: Any,
    previous: Any,
    t0: float,
    timings: dict[str, float],
    log: Any,
) -> int:
    """The publication guard, the training report, then publish (or keep back) the model."""
    from sessionrec.artifacts import commit_files, publish_directory
    from sessionrec.train.report import REPORT_FORMAT, plot_history, report_json

    t = time.perf_counter()
    log(f"[4/5] comparing with the published model in {out} (--publish {args.publish})")
    same = previous is not None and Path(args.warm_start).resolve() == out.resolve()
    publication = publication_decision(
        out,
        trained,
        dataset,
        args.publish,
        args.publish_tolerance,
        args.device,
        previous if same else None,
    )
    timings["compare_s"] = time.perf_counter() - t
    overridden = publication["decision"] == "published" and publication["passed"] is False
    because = (
        " because of --publish always (the rule would have kept it back)" if overridden else ""
    )
    log(f"      {publication['decision']}{because}: {publication['reason']}")

    log("[5/5] writing the training report")
    timings["total_s"] = time.perf_counter() - t0
    stats = dataset.stats()
    report = report_json(
        trained.history,
        trained.metrics,
        config=args.config,
        data={"source": str(args.clicks), **stats, "report": dataset.meta.get("report")},
        timings=timings,
        publication=publication,
    )
    title = f"sessionrec fit {Path(args.clicks).name} ({args.config})"
    commit_files(
        staging,
        {
            "report.json": lambda path: path.write_text(report, encoding="utf-8"),
            "training.png": lambda path: path.write_bytes(
                plot_history(
                    trained.history, title, trained.metrics.get("best_epoch"), trained.metrics
                )
            ),
        },
        REPORT_FORMAT,
    )
    published = publication["decision"] == "published"
    if published:
        publish_directory(staging, out)
        shutil.rmtree(staging)
    else:
        kept_back = reject(staging, out)

    result: dict[str, Any] = {
        "out": str(out),
        "config": args.config,
        "dataset": stats,
        **trained.metrics,
        "publication": publication,
        "timings": timings,
    }
    if args.json:
        print_json(result)
    else:  # the result on stdout, the log on stderr
        print_metrics({"split": "test", **trained.metrics["test"]})
    if not published:
        print(
            f"sessionrec: fit: NOT published: {publication['reason']}. The published model "
            f"in {out} stays; the new one is in {kept_back} (its report.json: the comparison "
            "and the decision). --publish always publishes it anyway.",
            file=sys.stderr,
        )
        return EXIT_NOT_PUBLISHED
    if not args.json:
        log(
            f"model in {out}: model.onnx for services, report.json and training.png "
            f"({timings['total_s']:.0f} s in all)"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="clickstream dump -> deployable model directory (prepare, train, test, export, "
        "report) in one run",
        description="Prepare a clickstream dump, train an SR-GNN selected on validation "
        "(early stopping), test it once, export it to ONNX and write a training report, "
        "into one model directory. The previous model in --out stays whole until the new "
        "one is published at the end.",
    )
    add_prepare_arguments(p)
    add_catalog_arguments(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    add_training_arguments(p, validation_fraction=False)  # prepare's: the dataset records it
    p.add_argument(
        "--publish",
        choices=("guarded", "always"),
        default="guarded",
        help="guarded (default): replace the model in --out only if the new one is not worse "
        "on the new test samples both can read (HR@20 + MRR@20, within "
        "--publish-tolerance); else keep it, leave the new one in OUT.rejected and exit 3. "
        "always: publish whatever the comparison says",
    )
    p.add_argument(
        "--publish-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="POINTS",
        help=f"points of HR@20 + MRR@20 (percent) the new model may lose against the "
        f"published one and still be published ({DEFAULT_TOLERANCE:g})",
    )
    add_threads(p, "torch intra-op threads, and polars' while preparing")
    add_json(p)
    add_quiet(p)
    p.set_defaults(func=_fit)
