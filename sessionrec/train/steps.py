"""The state of a training run and its steps: what :class:`~sessionrec.train.Trainer`'s
phases share (:class:`RunState`), the step loop of an epoch or of the recent refit's pass
(:func:`train_steps`), the stop at the first non-finite loss or gradient
(:func:`check_finite`), and the timed evaluation batch a time budget is planned from
(:func:`eval_rate`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionrec.data.contract import DataContract
from sessionrec.data.sessions import ChunkedSamples, Samples
from sessionrec.errors import NonFiniteError
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN
from sessionrec.train.best_state import BestState
from sessionrec.train.budget import PROBE_STEPS, PROBE_WARMUP_STEPS, BudgetPlan
from sessionrec.train.distributed import all_reduce_sum, from_rank_zero
from sessionrec.train.evaluation import evaluate_model
from sessionrec.train.optim import Optimizers
from sessionrec.train.training_data import TrainingData

if TYPE_CHECKING:
    from sessionrec.data.vocab import ItemVocab

__all__ = [
    "StepSettings",
    "RunState",
    "train_steps",
    "check_finite",
    "shuffled_chunks",
    "pass_record",
    "recent_pass",
    "eval_rate",
    "epoch_line",
]


@dataclass(frozen=True)
class StepSettings:
    """What the steps of a run read besides its state.

    Attributes:
        batch_size: samples per step (all processes together).
        lr: the configured learning rate (named when training diverges).
        rank, world_size: this process and the number of processes (DDP).
        bars: draw tqdm bars.
        clock: the time source of the budget (:func:`time.monotonic`; tests replace it).
    """

    batch_size: int
    lr: float
    rank: int
    world_size: int
    bars: bool
    clock: Callable[[], float]


@dataclass
class RunState:
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
    settings: StepSettings
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best: BestState = field(default_factory=lambda: BestState(None))  # the selected weights
    progress_score: float = -math.inf  # early stopping (min_improvement)
    stale: int = 0
    start_epoch: int = 0
    refit: str = "none"  # the configured one, or the budget plan's
    max_epochs: int = 0
    plan: BudgetPlan | None = None
    train_deadline: float | None = None  # the clock time training steps stop at


def train_steps(
    run: RunState,
    chunks: Iterable[tuple[Samples, np.ndarray]],
    total: int,
    desc: str,
    epoch: int,
    probe: Callable[[float], None] | None = None,
) -> tuple[float, int, bool]:
    """Training steps over ``(samples, order)`` chunks, ``batch_size`` samples a step (a
    share per process under DDP).

    Args:
        total: the samples of all chunks (the bar's length).
        epoch: the 0-based epoch (named when training diverges).
        probe: called once with the training samples per second of
            :data:`~sessionrec.train.budget.PROBE_STEPS` steps (after
            :data:`~sessionrec.train.budget.PROBE_WARMUP_STEPS`), or of all steps when
            there are fewer.

    Returns:
        The summed loss, the samples seen (all-reduced over the processes) and whether
        ``run.train_deadline`` stopped the steps.

    Raises:
        NonFiniteError: :func:`check_finite`.
    """
    st = run.settings
    bar = tqdm(
        total=total,
        desc=desc,
        unit="sample",
        disable=not st.bars,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    edge_weights = run.model.config.edge_weights
    loss_sum, seen, t0 = 0.0, 0, st.clock()
    step_nr, stopped, probe_t, probe_seen = 0, False, t0, 0
    for samples, order in chunks:
        n_batches = math.ceil(len(order) / st.batch_size)
        if st.world_size > 1 and len(order) % st.batch_size < st.world_size:
            n_batches = len(order) // st.batch_size  # every process needs a share
        for b in range(n_batches):
            share = order[b * st.batch_size : (b + 1) * st.batch_size]
            batch = samples.select(share[st.rank :: st.world_size])
            graph = session_graph_batch(batch, edge_weights)
            targets = torch.from_numpy(batch.targets).to(run.device)
            loss = run.step(graph.to(run.device), targets)
            run.optimizers.zero_grad()
            loss.backward()
            check_finite(run, loss, epoch, step_nr)
            run.optimizers.step()
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
            bar.update(len(batch))
            now = st.clock()  # read once a step
            if step_nr % 50 == 0:
                rate = seen / max(now - t0, 1e-9)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", samples_s=f"{rate:.0f}")
            step_nr += 1
            if probe is not None and step_nr == PROBE_WARMUP_STEPS:
                probe_t, probe_seen = now, seen
            elif probe is not None and step_nr == PROBE_WARMUP_STEPS + PROBE_STEPS:
                elapsed = max(now - probe_t, 1e-9)
                probe(from_rank_zero((seen - probe_seen) * st.world_size / elapsed))
                probe = None
            if run.train_deadline is not None and from_rank_zero(now > run.train_deadline):
                stopped = True
                break
        if stopped:
            break
    bar.close()
    loss_sum, seen = all_reduce_sum(loss_sum, seen)
    if probe is not None and seen:  # fewer steps than the probe: the rate of them all
        probe(seen / max(st.clock() - t0, 1e-9))
    return loss_sum, seen, stopped


def check_finite(run: RunState, loss: torch.Tensor, epoch: int, step_nr: int) -> None:
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
        f"Lower the learning rate (lr is {run.settings.lr:g}), or check the data",
        options=("TrainConfig.lr",),
    )


def shuffled_chunks(
    samples: Samples | ChunkedSamples, rng: np.random.Generator
) -> Iterable[tuple[Samples, np.ndarray]]:
    """``(chunk, order)`` pairs for :func:`train_steps`: each chunk in a random order."""
    return ((part, rng.permutation(len(part))) for part in samples.chunks())


def pass_record(
    number: int, loss_sum: float, seen: int, seconds: float, lr: float
) -> dict[str, Any]:
    """The history record of a pass over training samples: ``epoch`` (its 1-based
    number), the mean ``loss``, ``samples``, ``seconds``, ``samples_per_s`` and ``lr``
    (the rate it trained with)."""
    return {
        "epoch": number,
        "loss": loss_sum / max(seen, 1),
        "samples": int(seen),
        "seconds": seconds,
        "samples_per_s": int(seen) / max(seconds, 1e-9),
        "lr": lr,
    }


def recent_pass(run: RunState, seed: int) -> dict[str, Any]:
    """The recent refit (``TrainConfig.refit="recent"``): the selected state, calibrated,
    continues on the validation samples (the latest training sessions, which the
    selection run never trained on) with the selected run's schedule in miniature: one
    pass at each learning rate the run trained with up to the selected epoch (Diginetica,
    `default`, best epoch 6: a pass at 1e-3, then one at 1e-4), the optimiser's state as
    the epochs left it. The result becomes ``run.best`` and its record joins
    ``run.history`` (``"phase": "recent"``), which it returns.

    Measured (README, "Time to accuracy"; Diginetica, `default`, the same model selected
    after 6 epochs, test HR@20 / MRR@20): shipped as selected 53.01 / 19.03; after the
    passes at 1e-3 and 1e-4 (32 s on one thread) 55.48 / 19.45; a full refit (9 epochs
    on every session) of a 12-epoch selection 55.11 / 19.52. A single pass at the
    selected epoch's own 1e-4 gained half a point in a trial: the pass at the initial
    rate is what moves the model to the latest sessions.
    """
    assert run.best.kept and run.data.valid is not None
    valid, clock = run.data.valid, run.settings.clock
    rates: list[float] = []
    for h in run.history:
        if "phase" not in h and h["epoch"] <= run.best_epoch + 1 and float(h["lr"]) not in rates:
            rates.append(float(h["lr"]))
    rates = rates or [run.settings.lr]
    run.best.load_into(run.model)
    loss = getattr(run.step, "module", run.step)  # the BatchLoss, wrapped by DDP or not
    sampled = getattr(loss, "sampled", None)
    if sampled is not None:  # the validation targets join the counts (logQ of the pass)
        counts = run.data.target_counts.copy()
        for part in valid.chunks():
            counts += np.bincount(part.targets, minlength=len(counts))
        loss.sampled = sampled.with_counts(counts)
    run.model.train()
    loss_sum, seen, stopped, t0 = 0.0, 0, False, clock()
    for i, lr in enumerate(rates):
        run.optimizers.set_lr(lr)
        torch.manual_seed(seed * 1000 + 999 + i)  # the pass's dropout
        chunks = shuffled_chunks(valid, np.random.default_rng([seed, 999, i]))
        part_loss, part_seen, stopped = train_steps(
            run, chunks, len(valid), f"recent {i + 1}/{len(rates)}", len(run.history)
        )
        loss_sum, seen = loss_sum + part_loss, seen + part_seen
        if stopped:
            break
    record = {
        **pass_record(len(run.history) + 1, loss_sum, seen, clock() - t0, rates[0]),
        "phase": "recent",
        "rates": rates,
        "valid": None,
        "complete": not stopped,
    }
    run.history.append(record)
    run.best.keep(run.model, len(run.history) - 1)
    return record


def eval_rate(
    run: RunState, samples: Samples | ChunkedSamples, batch_size: int, bf16: bool
) -> float:
    """Evaluated samples per second, timed on one batch of ``samples`` (the validation
    samples, or the test's without them; ``inf`` for none)."""
    if len(samples) == 0:
        return math.inf
    first = next(samples.chunks())
    batch = first.select(np.arange(min(len(first), batch_size)))
    clock = run.settings.clock
    t0 = clock()
    evaluate_model(run.model, batch, batch_size=len(batch), bf16=bf16)
    run.model.train()
    return len(batch) / max(clock() - t0, 1e-9)


def epoch_line(record: dict[str, Any], best: bool) -> str:
    """The log line of an epoch's ``record``."""
    valid = record["valid"]
    line = (
        f"epoch {record['epoch']}: loss {record['loss']:.4f}, "
        f"{record['samples_per_s']:.0f} samples/s, {record['seconds']:.0f} s"
    )
    if valid is not None:
        line += f"; valid HR@20 {valid['hr@20']:.2f} MRR@20 {valid['mrr@20']:.2f}"
        line += " (best)" if best else ""
    return line
