"""What keeps retraining safe to leave unattended (``train`` and ``fit``).

- **The output directory** (:func:`check_out_directory`): ``train --out DIR`` writes into
  an empty or new directory, or continues its own run with ``--resume``; over anything
  else (a model of its own included: ``train`` would replace it and delete its other
  files, such as an exported ``model.onnx``) it needs ``--force``. ``fit --out DIR``
  replaces the sessionrec model directory there (yesterday's model: that is its job,
  under the publication guard below), but writes into a directory that holds anything
  else only with ``--force``.
- **The warm start, before any work** (:func:`warm_start_model`): a missing
  ``--warm-start`` directory stops the run before the data is prepared (or, with
  ``--warm-start-missing cold``, the run trains from scratch: the first night of a
  nightly retraining); the previous model's config is compared with this run's
  (:func:`sessionrec.train.warm.check_warm_start`), and so is the number of last clicks
  it reads (``fit`` without ``--max-session-length`` keeps the model's), then, once the
  data is read, its id kind and vocabulary.
- **The publication guard of ``fit``** (:func:`publication_decision`): before the new
  model replaces a published one, both are evaluated on the new data's test samples that
  the published model can read (prefix and target among its items:
  :func:`sessionrec.train.warm.comparable_samples`); the new model is published when its
  HR@20 + MRR@20 there is not lower than the published model's by more than the
  tolerance (:data:`DEFAULT_TOLERANCE` points). Otherwise the published model stays, the
  new one goes to ``OUT.rejected/`` beside it (:func:`rejected_directory`) and ``fit``
  exits with :data:`EXIT_NOT_PUBLISHED`. ``--publish always`` publishes either way.

Heavy modules (torch, the training code) are imported inside the functions, so that
``sessionrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessionrec.artifacts import read_manifest
from sessionrec.errors import ArtifactError, ConfigError, SessionrecError

__all__ = [
    "DEFAULT_TOLERANCE",
    "EXIT_NOT_PUBLISHED",
    "PUBLICATION_RULE",
    "check_out_directory",
    "guard_passes",
    "is_model_directory",
    "publication_decision",
    "reject",
    "rejected_directory",
    "warm_start_model",
]

#: Points of HR@20 + MRR@20 (percent) the new model may lose against the published one on
#: the same test samples and still be published. Measured on the synthetic dump (2,805
#: test samples): cold `default` fits with 5 seeds score 110.90 to 113.50 (within 1.4 of
#: seed 42's 112.26), warm starts from seed 42's model +5.5 to +6.7 above it; the
#: regressions this guards against lose tens of points (a cold `srgnn` fit over that
#: model: -67.7).
DEFAULT_TOLERANCE = 2.0
#: ``fit``'s exit status when the guard kept the published model (1: an error).
EXIT_NOT_PUBLISHED = 3
PUBLICATION_RULE = (
    "publish when new HR@20 + MRR@20 >= published HR@20 + MRR@20 - tolerance, both "
    "measured on the new test samples whose prefix and target the published model knows"
)
_SCORE = ("hr@20", "mrr@20")
# what train writes into its --out (the model's files, its manifest and checkpoint)
_TRAIN_WRITES = frozenset(
    {"config.json", "model.pt", "vocab.json", "item_counts.npy", "history.json",
     "metrics.json", "manifest.json", "checkpoint.pt"}
)  # fmt: skip
_SHOWN = ("n_samples", "hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@20")


# -- the output directory ---------------------------------------------------------------
def is_model_directory(path: Path) -> bool:
    """Whether ``path`` is a sessionrec model directory: its manifest lists a
    ``config.json`` (or, without a manifest, a ``config.json`` is there)."""
    try:
        manifest = read_manifest(path)
    except ArtifactError:
        return False
    if manifest is not None:
        return "config.json" in manifest["files"]
    return (path / "config.json").is_file()


def _is_empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def check_out_directory(out: Path, command: str, force: bool, resume: bool) -> None:
    """Refuse to write over a directory that holds something else, before any work.

    ``train``: any existing files need ``--force`` (``--resume`` continues its own run);
    ``fit``: anything but a sessionrec model directory (which it replaces, guarded).

    Raises:
        ConfigError: ``out`` is a file, or holds something else and ``force`` is off.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a directory; give a directory")
    if force or resume or _is_empty(out):
        return
    model = is_model_directory(out)
    if command == "fit" and model:
        return  # yesterday's model: replaced if the new one passes the publication guard
    if model:
        others = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in _TRAIN_WRITES and not p.name.startswith(".")
        )
        what = "holds a model; train would replace it" + (
            f" and delete its other files ({', '.join(others)})" if others else ""
        )
    elif (out / "checkpoint.pt").is_file() and command == "train":
        what = "holds the checkpoint of an interrupted run (--resume continues it)"
    else:
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        what = f"is not a sessionrec model directory (it holds {shown})"
    raise ConfigError(
        f"--out {out} {what}. Give a new or empty directory, or add --force to write into it anyway"
    )


# -- the warm start ---------------------------------------------------------------------
def warm_start_model(args: argparse.Namespace, log: Callable[[str], None]) -> Any:
    """The ``--warm-start`` model, loaded, verified and checked against this run's model
    config before any work; ``None`` without ``--warm-start``, or when its directory
    does not exist yet (or is empty) and ``--warm-start-missing cold``.

    Raises:
        ConfigError: the directory does not exist (``--warm-start-missing error``), or
            the configs or the ``--max-session-length`` differ
            (:func:`sessionrec.train.warm.check_warm_start`).
        ArtifactError: a directory that is not a loadable model.
    """
    if not args.warm_start:
        return None
    path = Path(args.warm_start)
    if _is_empty(path):
        if args.warm_start_missing == "cold":
            log(
                f"warm start: no model in {path} yet, training from scratch (--warm-start-missing cold)"
            )
            return None
        found = "an empty directory" if path.exists() else "no such directory"
        raise ConfigError(
            f"--warm-start {path}: no model there ({found}). "
            "On the first night of a nightly retraining add --warm-start-missing cold (a "
            "missing model then means: train from scratch); else check the path"
        )
    from dataclasses import replace

    from sessionrec.train import apply_overrides, config_preset, load_model
    from sessionrec.train.warm import check_warm_start

    previous = load_model(path)
    model_config, train_config = config_preset(args.config, previous.model.config.n_items)
    if args.set:
        model_config, _ = apply_overrides(args.set, model_config, train_config)
    # only whether there is content counts here: its sizes come from today's catalog
    content = (previous.model.config.content or {}) if args.catalog else None
    length = _keep_the_cut(args, previous, log)
    check_warm_start(previous, replace(model_config, content=content), max_session_length=length)
    return previous


def _keep_the_cut(
    args: argparse.Namespace, previous: Any, log: Callable[[str], None]
) -> int | None:
    """``fit`` prepares its data after this check: without ``--max-session-length`` the
    warm start keeps the previous model's (its data contract), so that a nightly line need
    not repeat it; the length the new model will read, for :func:`check_warm_start` (which
    refuses another one given explicitly). ``None`` for ``train``, whose data was prepared
    before (checked with the data)."""
    from sessionrec.data.contract import DEFAULT_MAX_SESSION_LENGTH

    if "max_session_length" not in vars(args):
        return None
    old = previous.data_contract.max_session_length
    # the srgnn protocol has no cut (its data reads 50 clicks): refused below, not changed
    if args.max_session_length is None and old is not None and args.protocol != "srgnn":
        args.max_session_length = old
        log(f"warm start: the data keeps the model's --max-session-length {old} (its contract)")
    reads = previous.data_contract.inference_max_length
    if args.max_session_length is not None and args.max_session_length != reads:
        raise ConfigError(
            f"--max-session-length {args.max_session_length}: the --warm-start model "
            f"{args.warm_start} reads the last {reads} clicks of a session, and a warm start "
            f"keeps that. Leave --max-session-length out (the model's {reads} is kept) or "
            f"give {reads}; to change it, train from scratch without --warm-start"
        )
    return args.max_session_length or DEFAULT_MAX_SESSION_LENGTH


# -- the publication guard --------------------------------------------------------------
def rejected_directory(out: Path) -> Path:
    """Where ``fit --out OUT`` leaves a new model the publication guard kept back:
    ``OUT.rejected`` beside ``OUT`` (the last rejected run only)."""
    return out.parent / f"{out.name}.rejected"


def reject(staging: Path, out: Path) -> Path:
    """Move the staged model to :func:`rejected_directory` (replacing an older one),
    without its training checkpoints."""
    target = rejected_directory(out)
    shutil.rmtree(target, ignore_errors=True)
    (staging / "checkpoint.pt").unlink(missing_ok=True)
    shutil.rmtree(staging / "refit", ignore_errors=True)
    os.replace(staging, target)
    return target


def _score(metrics: dict[str, Any]) -> float:
    return float(sum(metrics[k] for k in _SCORE))


def guard_passes(new_score: float, published_score: float, tolerance: float) -> bool:
    """The publication rule: the new model's HR@20 + MRR@20 is at least the published
    model's minus ``tolerance`` (points, on the same samples)."""
    return new_score >= published_score - tolerance


def _comparison_sets(previous: Any, dataset: Any) -> tuple[Any, Any, int]:
    """The new test samples the previous model can read, for the new model and for the
    previous one (its indices), and their count; a sharded dataset's one shard at a time."""
    from sessionrec.data.sessions import ChunkedSamples, Samples
    from sessionrec.train.warm import comparable_samples

    to_previous = previous.vocab.index_of(dataset.vocab.ids.tolist())
    length = previous.data_contract.inference_max_length

    def common(samples: Samples) -> tuple[Samples, Samples]:
        return comparable_samples(samples, to_previous, length)

    if isinstance(dataset.test, Samples):
        kept, for_previous = common(dataset.test)
        return kept, for_previous, len(kept)
    n = sum(len(common(dataset.test_shard(i))[0]) for i in range(dataset.n_shards))
    return (
        ChunkedSamples(lambda i: common(dataset.test_shard(i))[0], dataset.n_shards, n),
        ChunkedSamples(lambda i: common(dataset.test_shard(i))[1], dataset.n_shards, n),
        n,
    )


def _metrics(model: Any, samples: Any, device: Any) -> dict[str, Any]:
    from sessionrec.train import evaluate_model

    model.model.to(device)
    try:
        metrics = evaluate_model(
            model.model,
            samples,
            ks=(10, 20),
            batch_size=model.train_config.eval_batch_size,
            item_counts=model.item_counts,
            max_length=model.data_contract.inference_max_length,
        )
    finally:
        model.model.cpu()
    return {k: metrics[k] for k in _SHOWN}


def _compare(previous: Any, new: Any, dataset: Any, device: Any) -> dict[str, Any]:
    """Both models' metrics on the test samples both can read (the previous model's
    non-finite scores count as a score of minus infinity)."""
    from sessionrec.errors import NonFiniteError

    kept, for_previous, n = _comparison_sets(previous, dataset)
    comparison: dict[str, Any] = {"n_samples": n, "test_samples": len(dataset.test)}
    if n == 0:
        return comparison
    comparison["new"] = _metrics(new, kept, device)
    try:
        comparison["published"] = _metrics(previous, for_previous, device)
        comparison["published_score"] = _score(comparison["published"])
    except NonFiniteError as exc:
        comparison["published"] = {"error": str(exc)}
        comparison["published_score"] = float("-inf")
    comparison["new_score"] = _score(comparison["new"])
    comparison["difference"] = comparison["new_score"] - comparison["published_score"]
    return comparison


def publication_decision(
    out: Path,
    new: Any,
    dataset: Any,
    mode: str,
    tolerance: float,
    device_name: str = "cpu",
    previous: Any = None,
) -> dict[str, Any]:
    """Whether ``fit`` publishes ``new`` (a :class:`~sessionrec.train.TrainedModel`)
    over the model in ``out``: :data:`PUBLICATION_RULE`, with ``tolerance`` points.

    Args:
        out: the published model directory (new or empty: nothing to compare with).
        new: the new model, trained on ``dataset``.
        dataset: the new run's data; its test samples are the comparison's.
        mode: ``"guarded"`` (the rule decides) or ``"always"`` (publish; the comparison
            is still made and reported when it can be).
        tolerance: points of HR@20 + MRR@20 the new model may lose.
        device_name: where to evaluate (``--device``).
        previous: the model in ``out`` when already loaded (a warm start from it).

    Returns:
        ``report.json``'s ``publication``: ``decision`` (``"published"`` or
        ``"rejected"``), ``passed`` (the rule's verdict, ``None`` without a published
        model), ``reason``, ``mode``, ``rule``, ``tolerance``, ``comparison``
        (``n_samples``, ``test_samples``, ``new`` and ``published`` metrics, their
        scores and ``difference``) and ``published_model`` (its directory, data
        fingerprint and test metrics when it was trained).
    """
    from sessionrec.train import load_model, resolve_device

    result: dict[str, Any] = {"mode": mode, "rule": PUBLICATION_RULE, "tolerance": tolerance}

    def decide(passed: bool | None, reason: str) -> dict[str, Any]:
        published = passed is not False or mode == "always"
        decision = "published" if published else "rejected"
        return {**result, "decision": decision, "passed": passed, "reason": reason}

    if not is_model_directory(out):
        return decide(None, f"no published model in {out} yet")
    try:
        previous = previous if previous is not None else load_model(out)
    except SessionrecError as exc:
        return decide(
            False,
            f"the published model in {out} cannot be read, so nothing can be compared "
            f"({type(exc).__name__}: {exc})",
        )
    result["published_model"] = {
        "directory": str(out),
        "data_fingerprint": previous.data_fingerprint,
        "test_when_trained": {
            k: v for k, v in previous.metrics.get("test", {}).items() if k in _SHOWN
        },
    }
    if previous.vocab.kind != new.vocab.kind:
        return decide(
            False,
            f"the published model reads {previous.vocab.kind} item ids, the new one "
            f"{new.vocab.kind} ids: every service would have to change the ids it sends",
        )
    comparison = _compare(previous, new, dataset, resolve_device(device_name))
    result["comparison"] = comparison
    n = comparison["n_samples"]
    if n == 0:
        return decide(
            False,
            f"none of the {comparison['test_samples']:,} test samples has a prefix and a "
            "target the published model knows: nothing to compare on",
        )
    new_score, old_score = comparison["new_score"], comparison["published_score"]
    passed = guard_passes(new_score, old_score, tolerance)
    verdict = "not worse than" if passed else "worse than"
    return decide(
        passed,
        f"on the {n:,} test samples both models read (of {comparison['test_samples']:,}), "
        f"HR@20 + MRR@20 is {new_score:.2f} for the new model and {old_score:.2f} for the "
        f"published one ({comparison['difference']:+.2f} points): {verdict} the published "
        f"model beyond the tolerance of {tolerance:g} point{'' if tolerance == 1 else 's'}",
    )
