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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionrec.data.contract import DataContract
from sessionrec.errors import ConfigError, NonFiniteError
from sessionrec.graph import session_graph_batch
from sessionrec.nn.content import catalog_tensors
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train.checkpoint import load_checkpoint, run_identity, save_checkpoint
from sessionrec.train.config import TrainConfig, lr_factor
from sessionrec.train.distributed import (
    all_reduce_sum,
    from_rank_zero,
    rank_and_world,
    resolve_device,
)
from sessionrec.train.evaluation import (
    calibrate_new_item_offset,
    calibrate_repeat_bonus,
    evaluate_model,
    record_selection,
    selection_score,
)
from sessionrec.train.model_dir import TrainedModel
from sessionrec.train.objective import (
    BatchLoss,
    SampledSoftmax,
    choose_loss,
    warn_unused_sampled_settings,
)
from sessionrec.train.optim import Optimizers
from sessionrec.train.training_data import TrainingData, training_data, valid_cap
from sessionrec.train.warm import model_vocab, warm_start

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.shards import ShardedDataset
    from sessionrec.data.vocab import ItemVocab

__all__ = ["Trainer"]


@dataclass
class _Run:
    """The state of one training run: what :meth:`Trainer.fit`'s phases share."""

    model: SRGNN
    step: torch.nn.Module  # the loss of a batch, wrapped for DDP in several processes
    optimizers: Optimizers
    objective: str  # "full" or "sampled"
    data: TrainingData
    device: torch.device
    vocab: ItemVocab
    contract: DataContract
    warm: dict[str, Any] | None
    checkpoint_path: Path | None
    fingerprint: str  # of the training data
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    progress_score: float = -math.inf  # early stopping (min_improvement)
    stale: int = 0
    start_epoch: int = 0


class Trainer:
    """Trains an :class:`SRGNN` on a :class:`SessionDataset` (or a sharded one).

    Args:
        model_config: architecture.
        train_config: optimisation and selection.
        out_dir: where checkpoints and the final model go (``None``: nothing written).
        progress: tqdm bars and log lines (one per epoch) on stderr; ``"lines"``: the
            lines alone (a log file: no carriage-return redraws); ``False``: nothing.
        max_minutes: stop training (after the current step) past this wall time; the best
            checkpoint so far is kept and tested.

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
        run = self._start(dataset, catalog, warm_start)
        if resume:
            self._resume(run)
        self._train_epochs(run)
        if run.best_state is None:
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
            self.train_config.refit,
        )
        if self.train_config.refit:
            return self._refit(dataset, run, selection, resume, catalog, warm_start)
        return self._test_and_save(dataset, run, selection)

    # -- start --------------------------------------------------------------------------
    def _start(
        self,
        dataset: SessionDataset | ShardedDataset,
        catalog: ItemCatalog | None,
        previous: TrainedModel | None,
    ) -> _Run:
        """Vocabulary, data, model (catalog, warm start), device, optimiser, schedule."""
        cfg = self.train_config
        vocab = model_vocab(dataset, self.model_config, catalog)
        contract = DataContract.of(dataset).with_validation_fraction(cfg.validation_fraction)
        if cfg.refit and contract.validation_fraction == 0.0:
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
        schedule = (
            cfg
            if warm is None or cfg.warm_lr_decay_first is None
            else replace(cfg, lr_decay_first=cfg.warm_lr_decay_first)
        )
        optimizers = Optimizers(
            model,
            cfg.lr,
            cfg.weight_decay,
            lambda e: lr_factor(schedule, e),
            sparse_tables=model.sparse_gradients,
        )
        checkpoint_path = None if self.out_dir is None else self.out_dir / "checkpoint.pt"
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        return _Run(
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
        )

    def _resume(self, run: _Run) -> None:
        """Reload the last epoch's checkpoint into ``run`` (refused when it is another
        run's: :func:`~sessionrec.train.checkpoint.load_checkpoint`)."""
        ck = load_checkpoint(run.checkpoint_path, self._identity(run))
        run.model.load_state_dict(ck["model"])
        run.optimizers.load_state_dict(ck)
        run.start_epoch = int(ck["epoch"]) + 1
        run.history = json.loads(ck["history"])
        run.best_score, run.best_epoch = float(ck["best_score"]), int(ck["best_epoch"])
        run.best_state = ck["best_model"]
        run.progress_score = float(ck.get("progress_score", run.best_score))
        run.stale = int(ck.get("stale", run.start_epoch - 1 - run.best_epoch))
        torch.manual_seed(self.train_config.seed + run.start_epoch)
        self._log(f"resumed after epoch {run.start_epoch} (best epoch {run.best_epoch + 1})")

    # -- epochs -------------------------------------------------------------------------
    def _train_epochs(self, run: _Run) -> None:
        """Epochs from ``run.start_epoch`` until ``epochs``, early stopping or the time
        limit; each validated, recorded and checkpointed."""
        cfg = self.train_config
        deadline = None if self.max_minutes is None else time.monotonic() + 60 * self.max_minutes
        for epoch in range(run.start_epoch, cfg.epochs):
            if run.stale >= cfg.patience:
                break
            record, complete = self._train_epoch(run, epoch, deadline)
            self._end_epoch(run, epoch, record, complete)
            if not complete:
                self._log(f"stopped: the time limit of {self.max_minutes} minutes was reached")
                break

    def _train_epoch(
        self, run: _Run, epoch: int, deadline: float | None
    ) -> tuple[dict[str, Any], bool]:
        """One epoch of steps; returns its record (loss, samples, seconds, rate) and
        whether it ran to its end (``False``: the deadline stopped it)."""
        cfg = self.train_config
        run.model.train()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout: replayable per epoch
        bar = tqdm(
            total=run.data.n_fit_samples,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="sample",
            disable=not self.bars,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        loss_sum, seen, t_epoch = 0.0, 0, time.monotonic()
        epoch_lr = run.optimizers.lr
        step_nr, stopped = 0, False
        # each epoch's order depends only on (seed, epoch): resumed runs replay it
        for samples, order in run.data.epoch(cfg.seed, epoch):
            n_batches = math.ceil(len(order) / cfg.batch_size)
            if self.world_size > 1 and len(order) % cfg.batch_size < self.world_size:
                n_batches = len(order) // cfg.batch_size  # every process needs a share
            for b in range(n_batches):
                share = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                batch = samples.select(share[self.rank :: self.world_size])
                graph = session_graph_batch(batch, self.model_config.edge_weights)
                targets = torch.from_numpy(batch.targets).to(run.device)
                loss = run.step(graph.to(run.device), targets)
                run.optimizers.zero_grad()
                loss.backward()
                self._check_finite(run, loss, epoch, step_nr)
                run.optimizers.step()
                loss_sum += loss.item() * len(batch)
                seen += len(batch)
                bar.update(len(batch))
                if step_nr % 50 == 0:
                    rate = seen / max(time.monotonic() - t_epoch, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", samples_s=f"{rate:.0f}")
                step_nr += 1
                if deadline is not None and from_rank_zero(time.monotonic() > deadline):
                    stopped = True
                    break
            if stopped:
                break
        bar.close()
        run.optimizers.end_epoch()
        seconds = time.monotonic() - t_epoch
        loss_sum, seen = all_reduce_sum(loss_sum, seen)
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1),
            "samples": int(seen),
            "seconds": seconds,
            "samples_per_s": int(seen) / max(seconds, 1e-9),
            "lr": epoch_lr,  # the rate this epoch trained with
        }
        return record, not stopped

    def _end_epoch(self, run: _Run, epoch: int, record: dict[str, Any], complete: bool) -> None:
        """Validate, record, keep the best state, count stale epochs, log, checkpoint."""
        cfg = self.train_config
        valid_metrics = None
        score = float(epoch)  # no validation: the last epoch
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
        record = {**record, "valid": valid_metrics, "complete": complete}
        run.history.append(record)
        if score > run.best_score:
            run.best_score, run.best_epoch = score, epoch
            run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        if run.data.valid is None or score > run.progress_score + cfg.min_improvement:
            run.progress_score, run.stale = score, 0
        else:
            run.stale += 1
        self._log_epoch(record, run.best_epoch == epoch)
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
                    "best_model": run.best_state,
                    "progress_score": run.progress_score,
                    "stale": run.stale,
                },
                self._identity(run),
            )

    def _identity(self, run: _Run) -> dict[str, Any]:
        """This run's identity in its checkpoint: data, contract, model config."""
        return run_identity(run.fingerprint, run.contract.to_dict(), self.model_config.to_dict())

    def _check_finite(self, run: _Run, loss: torch.Tensor, epoch: int, step_nr: int) -> None:
        """Stop at the first non-finite loss or gradient, before the optimiser applies it;
        the checkpoint of the last finished epoch stays as it was.

        Raises:
            NonFiniteError: naming the epoch and the step (1-based).
        """
        what = None
        if not torch.isfinite(loss.detach()):
            what = f"the loss is {loss.item()}"
        else:
            for name, p in run.model.named_parameters():
                grad = p.grad
                if grad is None:
                    continue
                values = grad.coalesce().values() if grad.is_sparse else grad
                if not torch.isfinite(values.sum()):  # NaN or inf anywhere: the sum is too
                    what = f"the gradient of {name} is not finite (NaN, inf or overflowing)"
                    break
        if what is None:
            return
        kept = (
            f"; the checkpoint of epoch {epoch} is kept in {run.checkpoint_path}"
            if run.checkpoint_path is not None and epoch > 0
            else ""
        )
        raise NonFiniteError(
            f"training diverged at epoch {epoch + 1}, step {step_nr + 1}: {what}{kept}. "
            f"Lower the learning rate (lr is {self.train_config.lr:g}), or check the data",
            options=("TrainConfig.lr",),
        )

    def _log_epoch(self, record: dict[str, Any], best: bool) -> None:
        valid = record["valid"]
        self._log(
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, "
            f"{record['samples_per_s']:.0f} samples/s, {record['seconds']:.0f} s"
            + (
                f"; valid HR@20 {valid['hr@20']:.2f} MRR@20 {valid['mrr@20']:.2f}"
                + (" (best)" if best else "")
                if valid is not None
                else ""
            )
        )

    # -- calibrate, test, refit ---------------------------------------------------------
    def _calibrate(self, run: _Run, selection: dict[str, Any], content: bool) -> None:
        """The repeat bonus, then a content model's new-item offset, chosen on validation
        with the selected state; the choices go to ``selection`` and the model config."""
        cfg, model, valid = self.train_config, run.model, run.data.valid
        max_length = run.contract.inference_max_length
        assert run.best_state is not None
        if valid is not None and cfg.repeat_bonus_grid:
            model.load_state_dict(run.best_state)
            bonus = calibrate_repeat_bonus(
                model,
                valid,
                cfg.repeat_bonus_grid,
                cfg.select_metric,
                cfg.eval_batch_size,
                max_length,
            )
            selection["repeat_bonus"] = bonus
            model.config = replace(model.config, repeat_bonus=bonus["selected"])
            self._log(f"repeat bonus: {bonus['selected']} (chosen on validation)")
        if valid is not None and cfg.new_item_offset_grid and content:
            model.load_state_dict(run.best_state)
            offset = calibrate_new_item_offset(
                model,
                valid,
                cfg.new_item_offset_grid,
                cfg.select_metric,
                cfg.eval_batch_size,
                max_length,
            )
            selection["new_item_offset"] = offset
            if offset["selected"] is not None:
                model.config = replace(model.config, new_item_offset=offset["selected"])
                self._log(f"new-item offset: {offset['selected']} (chosen on validation)")
            else:
                self._log(
                    f"new-item offset: kept at {model.config.new_item_offset} (only "
                    f"{offset['new_targets']} validation targets are new items)"
                )

    def _test_and_save(
        self,
        dataset: SessionDataset | ShardedDataset,
        run: _Run,
        selection: dict[str, Any],
    ) -> TrainedModel:
        """The selected state on the test set, once; the model directory written."""
        cfg = self.train_config
        assert run.best_state is not None
        run.model.load_state_dict(run.best_state)
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
            "epochs_trained": len(run.history),
            "train_seconds": float(sum(seconds)),
            "seconds_per_epoch": float(
                np.mean([h["seconds"] for h in run.history if h["complete"]] or [np.nan])
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
        run: _Run,
        selection: dict[str, Any],
        resume: bool,
        catalog: ItemCatalog | None,
        previous: TrainedModel | None,
    ) -> TrainedModel:
        """Train a fresh model (or one warm-started like the selection run) on all
        training sessions for the selected epoch count, with the calibrated values."""
        epochs = run.best_epoch + 1
        cfg = replace(self.train_config, validation_fraction=0.0, refit=False, epochs=epochs)
        out = None if self.out_dir is None else self.out_dir / "refit"
        self._log(f"refit: {epochs} epoch(s) on all {run.data.n_train_sessions} training sessions")
        chosen = {
            "repeat_bonus": run.model.config.repeat_bonus,
            "new_item_offset": run.model.config.new_item_offset,
        }
        model_config = replace(self.model_config, **chosen)  # as chosen on validation
        refit = Trainer(model_config, cfg, out, self.progress_arg).fit(
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
