"""The training loop: epochs, validation, early stopping, checkpoints, calibration, the
final test.

:meth:`Trainer.fit` runs in phases, each a method below: *start* (vocabulary, data,
model, optimiser; a resumed run reloads its checkpoint), *epochs* (train one epoch,
validate, keep the best state, stop early, checkpoint), *calibrate* (the repeat bonus and
the new-item offset on validation), then either *refit* (a fresh model on every training
session for the selected epoch count) or *test* (the selected state on the test set,
once) and *save*.

Model selection uses a validation split carved from the training sessions (the latest
ones, :func:`sessionrec.data.dataset.validation_split`, with the share the dataset
recorded: :class:`~sessionrec.data.contract.DataContract`); the test set is evaluated
once, with the selected checkpoint, at the end.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionrec.data.contract import DataContract
from sessionrec.errors import ConfigError
from sessionrec.nn.content import catalog_tensors
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train.best_state import BestState
from sessionrec.train.budget import measure_costs, plan_budget, time_for_another_epoch
from sessionrec.train.calibration import calibrate
from sessionrec.train.checkpoint import load_checkpoint, run_identity, save_checkpoint
from sessionrec.train.config import TrainConfig, lr_factor
from sessionrec.train.distributed import from_rank_zero, rank_and_world, resolve_device
from sessionrec.train.evaluation import evaluate_model, record_selection, selection_score
from sessionrec.train.model_dir import TrainedModel
from sessionrec.train.objective import (
    BatchLoss,
    SampledSoftmax,
    choose_loss,
    warn_unused_sampled_settings,
)
from sessionrec.train.optim import Optimizers
from sessionrec.train.steps import (
    RunState,
    StepSettings,
    epoch_line,
    eval_rate,
    pass_record,
    recent_pass,
    train_steps,
)
from sessionrec.train.training_data import training_data, valid_cap
from sessionrec.train.warm import model_vocab, warm_start

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.shards import ShardedDataset

__all__ = ["Trainer"]


class Trainer:
    """Trains an :class:`SRGNN` on a :class:`SessionDataset` (or a sharded one).

    Args:
        model_config: architecture.
        train_config: optimisation and selection.
        out_dir: where checkpoints and the final model go (``None``: nothing written).
        progress: tqdm bars and log lines (one per epoch) on stderr; ``"lines"``: the
            lines alone (a log file: no carriage-return redraws); ``False``: nothing.
        max_minutes: a time budget for the whole run, from ``started_at``: the run
            measures its costs on this machine (the first training steps, a validation
            batch), plans the selection epochs, the learning-rate schedule, the refit
            (``"full"`` when it fits after the schedule's natural length, else
            ``"recent"``) and a reserve for calibration, test and saving
            (:mod:`sessionrec.train.budget`), re-checks the plan after every epoch, and
            records it in ``metrics["budget"]``; training steps stop where the rest would
            no longer fit.
        started_at: the :func:`time.monotonic` time the budget counts from (the start of
            the command, so reading the data counts); ``None``: when :meth:`fit` starts.

    Launched by ``torchrun`` (:func:`~sessionrec.train.distributed.init_distributed`
    called first), each process trains on its share of every batch with
    :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged over the
    processes, so a step sees the whole ``batch_size`` batch, as in one process); every
    process validates, rank 0's score decides, and only rank 0 writes checkpoints and
    the model.
    """

    def __init__(
        self,
        model_config: SRGNNConfig,
        train_config: TrainConfig | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        progress: bool | str = True,
        max_minutes: float | None = None,
        started_at: float | None = None,
    ) -> None:
        self.model_config = model_config
        self.train_config = train_config or TrainConfig()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.rank, self.world_size = rank_and_world()
        self.progress_arg = progress  # passed on to the refit's trainer
        self.progress = bool(progress) and self.rank == 0  # the log lines
        self.bars = progress is True and self.rank == 0
        if max_minutes is not None and not (math.isfinite(max_minutes) and max_minutes > 0):
            raise ConfigError(
                f"max_minutes must be a number of minutes > 0, got {max_minutes!r}",
                options=("Trainer.max_minutes",),
            )
        self.max_minutes = max_minutes
        self.started_at = started_at
        self._clock = time.monotonic  # replaced by tests
        self._deadline: float | None = None  # the budget's end on self._clock
        self._hard_deadline: float | None = None  # a refit's: its steps stop there
        self._schedule = self.train_config  # the learning-rate schedule (a plan compresses it)

    def _log(self, msg: str) -> None:
        if self.progress:
            tqdm.write(msg, file=sys.stderr)

    def fit(
        self,
        dataset: SessionDataset | ShardedDataset,
        resume: bool = False,
        catalog: ItemCatalog | None = None,
        warm_start: TrainedModel | None = None,
    ) -> TrainedModel:
        """Train, select on validation (then refit on everything if asked), test once.

        Args:
            dataset: training sessions and test samples; its recorded data settings
                (:class:`~sessionrec.data.contract.DataContract`: the last clicks a model
                reads, the validation share) are the model's.
            resume: continue from ``out_dir/checkpoint.pt``.
            catalog: item content for a content model (``model_config`` from
                :func:`~sessionrec.train.config.with_catalog`), aligned to
                ``dataset.vocab``; its items without training clicks get content-only
                vectors.
            warm_start: a previous model to start from
                (:func:`~sessionrec.train.warm.warm_start`); what was kept, added
                and no longer seen goes to ``metrics["warm_start"]``.

        Raises:
            ConfigError: data, catalog and config disagree; no epoch was trained.
            ArtifactError: ``resume`` without a checkpoint.
        """
        if self.max_minutes is not None:
            start = self._clock() if self.started_at is None else self.started_at
            self._deadline = start + 60 * self.max_minutes
        run = self._start(dataset, catalog, warm_start)
        try:
            if resume:
                self._resume(run)
            self._train_epochs(run, dataset)
            if not run.best.kept:
                raise ConfigError(
                    "no epoch was trained (the epochs were already done, or max_minutes is 0)",
                    options=("TrainConfig.epochs", "Trainer.max_minutes"),
                )
            selection: dict[str, Any] = {
                "valid": next(h["valid"] for h in run.history if h["epoch"] == run.best_epoch + 1),
                "best_epoch": run.best_epoch + 1,
            }
            if run.warm is not None:
                selection["warm_start"] = run.warm
            self._calibrate(run, selection, catalog is not None)
            record_selection(
                selection,
                self.train_config.select_metric,
                run.model.config.repeat_bonus,
                run.model.config.new_item_offset,
                run.refit,
            )
            if run.plan is not None:
                selection["budget"] = run.plan.to_dict()
            if run.refit == "full":
                return self._refit(dataset, run, selection, resume, catalog, warm_start)
            if run.refit == "recent":
                self._refit_recent(run, selection)
            return self._test_and_save(dataset, run, selection)
        finally:
            run.best.close()  # a private temporary file of the best state

    # -- start --------------------------------------------------------------------------
    def _start(
        self,
        dataset: SessionDataset | ShardedDataset,
        catalog: ItemCatalog | None,
        previous: TrainedModel | None,
    ) -> RunState:
        """Vocabulary, data, model (catalog, warm start), device, optimiser, schedule."""
        cfg = self.train_config
        vocab = model_vocab(dataset, self.model_config, catalog)
        contract = DataContract.of(dataset).with_validation_fraction(cfg.validation_fraction)
        if cfg.refit in ("full", "recent") and contract.validation_fraction == 0.0:
            raise ConfigError(
                "refit needs a validation split to select on, and the dataset records none",
                options=("TrainConfig.validation_fraction",),
            )
        _seed_everything(cfg.seed)
        n_items = self.model_config.n_items
        cap = valid_cap(cfg.valid_samples, n_items)
        data = training_data(dataset, contract, n_items, cap, cfg.seed)
        if data.valid is not None and cap is not None and len(data.valid) == cap:
            self._log(f"validating on {cap:,} samples (a fixed random subset: valid_samples)")
        model = SRGNN(self.model_config)
        if catalog is not None:
            # content only for the items this run never sees clicked (validation excluded)
            model.set_catalog(catalog_tensors(catalog), torch.from_numpy(data.fit_counts == 0))
        warm = None
        if previous is not None:
            length = contract.inference_max_length
            warm = warm_start(model, vocab, previous, cfg.warm_shrink, length)
        device = resolve_device(cfg.device)
        model.to(device)  # after the catalog and the warm start, which fill it on the CPU
        if warm is not None:
            self._log(
                f"warm start: {warm['items_kept']} items kept, {warm['items_added']} added, "
                f"{warm['items_no_longer_seen']} of the previous model no longer seen; "
                f"weights at {cfg.warm_shrink:g} x old + {1 - cfg.warm_shrink:g} x fresh"
            )
        objective = choose_loss(cfg.loss, model.config.n_items)
        warn_unused_sampled_settings(cfg, objective, model.config.n_items)
        sampled = None
        if objective == "sampled":
            sampled = SampledSoftmax(
                data.target_counts,
                cfg.num_negatives,
                cfg.negative_exponent,
                include_never_targets=catalog is not None and model.config.cold_negatives,
                device=device,
            )
            # sparse table gradients in one process (DDP all-reduces dense gradients)
            model.set_sparse_gradients(self.world_size == 1)
        step: torch.nn.Module = BatchLoss(model, cfg.bf16_scoring, cfg.label_smoothing, sampled)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # buffers (catalog features) are constant: no broadcast before each forward
            step = DistributedDataParallel(
                step,
                device_ids=[device.index] if device.type == "cuda" else None,
                forward_sync_buffers=False,
            )
        if warm is not None and cfg.warm_lr_decay_first is not None:
            self._schedule = replace(cfg, lr_decay_first=cfg.warm_lr_decay_first)
        optimizers = Optimizers(
            model,
            cfg.lr,
            cfg.weight_decay,
            lambda e: lr_factor(self._schedule, e),  # read each epoch: a plan may compress it
            sparse_tables=model.sparse_gradients,
        )
        checkpoint_path = None if self.out_dir is None else self.out_dir / "checkpoint.pt"
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        return RunState(
            model,
            step,
            optimizers,
            objective,
            data,
            device,
            vocab,
            contract,
            warm,
            checkpoint_path,
            dataset.fingerprint(),
            StepSettings(
                cfg.batch_size, cfg.lr, self.rank, self.world_size, self.bars, self._clock
            ),
            refit="none" if cfg.refit == "auto" else cfg.refit,
            max_epochs=cfg.epochs,
            train_deadline=self._hard_deadline,
            best=BestState(self.out_dir if self.rank == 0 else None),
        )

    def _resume(self, run: RunState) -> None:
        """Reload the last epoch's checkpoint into ``run`` (refused when it is another
        run's: :func:`~sessionrec.train.checkpoint.load_checkpoint`)."""
        ck = load_checkpoint(run.checkpoint_path, self._identity(run))
        run.model.load_state_dict(ck["model"])
        run.optimizers.load_state_dict(ck)
        run.start_epoch = int(ck["epoch"]) + 1
        run.history = json.loads(ck["history"])
        run.best_score, run.best_epoch = float(ck["best_score"]), int(ck["best_epoch"])
        assert run.checkpoint_path is not None  # load_checkpoint refuses a run without one
        run.best.restore(ck, run.checkpoint_path.parent, run.best_epoch)
        run.progress_score = float(ck.get("progress_score", run.best_score))
        run.stale = int(ck.get("stale", run.start_epoch - 1 - run.best_epoch))
        if "schedule" in ck:  # a budget plan's schedule: the resumed epochs keep it
            first, every = ck["schedule"]
            self._schedule = replace(self._schedule, lr_decay_first=first, lr_decay_every=every)
        torch.manual_seed(self.train_config.seed + run.start_epoch)
        self._log(f"resumed after epoch {run.start_epoch} (best epoch {run.best_epoch + 1})")

    # -- epochs -------------------------------------------------------------------------
    def _train_epochs(self, run: RunState, dataset: SessionDataset | ShardedDataset) -> None:
        """Epochs from ``run.start_epoch`` until ``epochs``, early stopping or the time
        budget (planned in the first epoch, re-checked after each); each validated,
        recorded and checkpointed."""
        cfg = self.train_config
        for epoch in range(run.start_epoch, cfg.epochs):
            if epoch >= run.max_epochs or run.stale >= cfg.patience:
                break
            if epoch > run.start_epoch and not self._another_epoch_fits(run):
                break
            probe = None
            if self._deadline is not None and run.plan is None:
                probe = lambda rate: self._plan(run, dataset, rate)  # noqa: E731
            record, complete = self._train_epoch(run, epoch, probe)
            self._end_epoch(run, epoch, record, complete)
            if not complete:
                self._log("stopped: the time budget leaves no time for the rest of this epoch")
                break

    def _train_epoch(
        self, run: RunState, epoch: int, probe: Callable[[float], None] | None
    ) -> tuple[dict[str, Any], bool]:
        """One epoch of steps; returns its record (loss, samples, seconds, rate) and
        whether it ran to its end (``False``: the budget stopped it)."""
        cfg = self.train_config
        run.model.train()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout: replayable per epoch
        epoch_lr, t_epoch = run.optimizers.lr, self._clock()
        # each epoch's order depends only on (seed, epoch): resumed runs replay it
        loss_sum, seen, stopped = train_steps(
            run,
            run.data.epoch(cfg.seed, epoch),
            run.data.n_fit_samples,
            f"epoch {epoch + 1}/{cfg.epochs}",
            epoch,
            probe,
        )
        run.optimizers.end_epoch()
        seconds = self._clock() - t_epoch
        return pass_record(epoch + 1, loss_sum, seen, seconds, epoch_lr), not stopped

    # -- the time budget ----------------------------------------------------------------
    def _plan(self, run: RunState, dataset: SessionDataset | ShardedDataset, rate: float) -> None:
        """Plan the run from the probe's training rate and a timed validation batch."""
        cfg = self.train_config
        assert self._deadline is not None and self.max_minutes is not None
        valid = run.data.valid
        n_valid = 0 if valid is None else len(valid)
        samples = dataset.test if valid is None else valid
        # every process plans from rank 0's measurements (the same epochs everywhere)
        rate_eval = from_rank_zero(eval_rate(run, samples, cfg.eval_batch_size, cfg.bf16_scoring))
        content = run.model.catalog is not None
        grids = 0 if valid is None else bool(cfg.repeat_bonus_grid) + content
        costs = measure_costs(
            rate, rate_eval, run.data.n_fit_samples, n_valid, len(dataset.test), grids
        )
        plan = plan_budget(
            60 * self.max_minutes,
            from_rank_zero(self._deadline - self._clock()),
            costs,
            self._schedule.lr_decay_first,
            self._schedule.lr_decay_every,
            cfg.epochs,
            refit=cfg.refit,
            validation=valid is not None,
        )
        run.plan, run.refit, run.max_epochs = plan, plan.refit, plan.epochs
        self._schedule = replace(
            self._schedule,
            lr_decay_first=plan.lr_decay_first,
            lr_decay_every=plan.lr_decay_every,
        )
        run.train_deadline = plan.steps_deadline(self._deadline, valid is not None)
        self._log(f"budget: {plan.reason}")

    def _another_epoch_fits(self, run: RunState) -> bool:
        """With a budget: whether the next epoch, and what follows it, still fit, by the
        measured epoch and validation times
        (:func:`~sessionrec.train.budget.time_for_another_epoch`)."""
        if run.plan is None or self._deadline is None:
            return True
        left = self._deadline - self._clock()
        fits = time_for_another_epoch(
            left, run.plan, run.history[-1], run.refit, run.best_epoch + 1
        )
        fits = bool(from_rank_zero(float(fits)))  # rank 0's clock decides for all
        if not fits:
            self._log(f"budget: stopping after epoch {len(run.history)} ({left:.0f} s left)")
        return fits

    def _end_epoch(self, run: RunState, epoch: int, record: dict[str, Any], complete: bool) -> None:
        """Validate, record, keep the best state, count stale epochs, log, checkpoint."""
        cfg = self.train_config
        valid_metrics = None
        score = float(epoch)  # no validation: the last epoch
        t_valid = self._clock()
        if run.data.valid is not None:
            valid_metrics = evaluate_model(
                run.model,
                run.data.valid,
                batch_size=cfg.eval_batch_size,
                bf16=cfg.bf16_scoring,
                progress=self.bars,
                desc="validate",
                max_length=run.contract.inference_max_length,
            )
            score = from_rank_zero(selection_score(valid_metrics, cfg.select_metric))
        record = {
            **record,
            "valid": valid_metrics,
            "valid_seconds": self._clock() - t_valid,
            "complete": complete,
        }
        run.history.append(record)
        if score > run.best_score:
            run.best_score, run.best_epoch = score, epoch
            run.best.keep(run.model, epoch)
        if run.data.valid is None or score > run.progress_score + cfg.min_improvement:
            run.progress_score, run.stale = score, 0
        else:
            run.stale += 1
        self._log(epoch_line(record, run.best_epoch == epoch))
        if run.checkpoint_path is not None and self.rank == 0:
            save_checkpoint(
                run.checkpoint_path,
                {
                    "model": run.model.state_dict(),
                    **run.optimizers.state_dict(),
                    "epoch": epoch,
                    "history": json.dumps(run.history),
                    "best_score": run.best_score,
                    "best_epoch": run.best_epoch,
                    **run.best.checkpoint_entries(),
                    "progress_score": run.progress_score,
                    "stale": run.stale,
                    "schedule": [self._schedule.lr_decay_first, self._schedule.lr_decay_every],
                },
                self._identity(run),
            )
            run.best.committed()

    def _identity(self, run: RunState) -> dict[str, Any]:
        """This run's identity in its checkpoint: data, contract, model config."""
        return run_identity(run.fingerprint, run.contract.to_dict(), self.model_config.to_dict())

    # -- calibrate, test, refit ---------------------------------------------------------
    def _calibrate(self, run: RunState, selection: dict[str, Any], content: bool) -> None:
        """The repeat bonus, then a content model's new-item offset, chosen on validation
        with the selected state (:func:`~sessionrec.train.calibration.calibrate`); the
        choices go to ``selection`` and the model config."""
        assert run.best.kept
        max_length = run.contract.inference_max_length
        deadline = None
        if run.plan is not None and self._deadline is not None:
            deadline = run.plan.calibration_deadline(self._deadline)
        selection.update(
            calibrate(
                run.model,
                run.best,
                run.data.valid,
                self.train_config,
                content,
                max_length,
                self._log,
                deadline=deadline,
                clock=self._clock,
            )
        )

    def _refit_recent(self, run: RunState, selection: dict[str, Any]) -> None:
        """``refit="recent"``: :func:`~sessionrec.train.steps.recent_pass`."""
        if run.plan is not None and self._deadline is not None:  # the epochs' limit is past
            run.train_deadline = self._deadline - run.plan.reserve_s
        record = recent_pass(run, self.train_config.seed)
        selection["recent"] = {k: record[k] for k in ("samples", "rates", "seconds")}
        rates = ", then ".join(f"{r:g}" for r in record["rates"])
        self._log(
            f"refit (recent): {len(record['rates'])} pass(es) over the validation samples at "
            f"lr {rates}, {record['samples']:,} samples in {record['seconds']:.0f} s"
            + ("" if record["complete"] else "; stopped by the time budget")
        )

    def _test_and_save(
        self,
        dataset: SessionDataset | ShardedDataset,
        run: RunState,
        selection: dict[str, Any],
    ) -> TrainedModel:
        """The selected state on the test set, once; the model directory written."""
        cfg = self.train_config
        assert run.best.kept
        run.best.load_into(run.model)
        test_metrics = evaluate_model(
            run.model,
            dataset.test,
            batch_size=cfg.eval_batch_size,
            item_counts=run.data.item_counts,
            bf16=cfg.bf16_scoring,
            progress=self.bars,
            desc="test",
            max_length=run.contract.inference_max_length,
        )
        seconds = [h["seconds"] for h in run.history]
        metrics = {
            "test": test_metrics,
            **selection,
            "objective": run.objective,
            "epochs_trained": sum(1 for h in run.history if h.get("phase") != "recent"),
            "train_seconds": float(sum(seconds)),
            "seconds_per_epoch": float(
                np.mean(
                    [h["seconds"] for h in run.history if h["complete"] and "phase" not in h]
                    or [np.nan]
                )
            ),
        }
        run.model.cpu()  # saving, export and serving are CPU code
        trained = TrainedModel(
            run.model,
            run.vocab,
            cfg,
            run.data.item_counts,
            run.history,
            metrics,
            run.fingerprint,
            run.contract,
        )
        if self.out_dir is not None and self.rank == 0:
            trained.save(self.out_dir)
        return trained

    def _refit(
        self,
        dataset: SessionDataset | ShardedDataset,
        run: RunState,
        selection: dict[str, Any],
        resume: bool,
        catalog: ItemCatalog | None,
        previous: TrainedModel | None,
    ) -> TrainedModel:
        """Train a fresh model (or one warm-started like the selection run) on all
        training sessions for the selected epoch count, with the calibrated values."""
        epochs = run.best_epoch + 1
        cfg = replace(
            self.train_config,
            validation_fraction=0.0,
            refit="none",
            epochs=epochs,
            lr_decay_first=self._schedule.lr_decay_first,  # a budget plan's, when one ran
            lr_decay_every=self._schedule.lr_decay_every,
        )
        out = None if self.out_dir is None else self.out_dir / "refit"
        self._log(f"refit: {epochs} epoch(s) on all {run.data.n_train_sessions} training sessions")
        chosen = {
            "repeat_bonus": run.model.config.repeat_bonus,
            "new_item_offset": run.model.config.new_item_offset,
        }
        model_config = replace(self.model_config, **chosen)  # as chosen on validation
        trainer = Trainer(model_config, cfg, out, self.progress_arg)
        trainer._clock = self._clock
        if run.plan is not None and self._deadline is not None:  # its steps stop in time
            trainer._hard_deadline = self._deadline - run.plan.reserve_s
        refit = trainer.fit(
            dataset,
            resume=resume and out is not None and (out / "checkpoint.pt").is_file(),
            catalog=catalog,
            warm_start=previous,
        )
        for record in refit.history:
            record["phase"] = "refit"
        refit.train_config = self.train_config
        refit.contract = run.contract  # the validation share that selected the epochs
        refit.history = run.history + refit.history
        refit.metrics = {
            **refit.metrics,
            **selection,
            "refit_epochs": epochs,
            "epochs_trained": len(refit.history),
            "train_seconds": float(sum(h["seconds"] for h in refit.history)),
        }
        if self.out_dir is not None and self.rank == 0:
            refit.save(self.out_dir)
        return refit


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
