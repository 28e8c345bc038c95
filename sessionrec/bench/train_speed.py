"""``sessionrec bench train-speed``: training speed as a ratio measured in one process.

:func:`train_speed`: samples/s of a full SR-GNN training step (graph building, forward,
backward, Adam step) divided by samples/s of the bare scoring *floor*: for a batch ``S``
of session vectors ``[B, d]`` and the item table ``E [N, d]``, ``logits = S @ E.T``,
cross-entropy, backward, nothing else. The training step is the trainer's own
(:class:`~sessionrec.train.objective.BatchLoss` and
:class:`~sessionrec.train.optim.Optimizers`), so the ratio measures what ``sessionrec
train`` runs, its objective (full or sampled softmax) included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sessionrec.bench.workloads import diginetica_like_samples
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN
from sessionrec.train import config_preset
from sessionrec.train.objective import BatchLoss, SampledSoftmax, choose_loss
from sessionrec.train.optim import Optimizers

__all__ = ["train_speed"]


def _rate(step: Callable[[int], int], warmup: int, steps: int) -> float:
    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    n = 0
    for i in range(warmup, warmup + steps):
        n += step(i)
    return n / (time.perf_counter() - t0)


def train_speed(
    path: str | os.PathLike[str] | None = None,
    batch_size: int = 100,
    steps: int = 60,
    warmup: int = 5,
    configs: tuple[str, ...] = ("srgnn", "default"),
    seed: int = 0,
) -> dict[str, Any]:
    """Training-step samples/s of each config (fp32 and bf16) over the scoring floor.

    Each config is timed with the trainer's own step at its own objective (``loss="auto"``:
    the sampled softmax above
    :data:`~sessionrec.train.objective.SAMPLED_SOFTMAX_MIN_ITEMS` items, so on
    Diginetica), and, when that is not the full softmax, again with the full softmax
    (``{name}_full_...``); ``{name}_objective`` names the objective of each.
    """
    torch.manual_seed(seed)
    samples, n_items, source = diginetica_like_samples(path, seed)
    target_counts = np.bincount(samples.targets, minlength=n_items)
    order = np.random.default_rng(seed).permutation(len(samples))
    d = 100
    result: dict[str, Any] = {
        "data": source,
        "batch_size": batch_size,
        "n_items": n_items,
        "threads": torch.get_num_threads(),
    }

    for bf16 in (False, True):
        table = torch.nn.Parameter(torch.randn(n_items, d) * 0.1)
        s = torch.nn.Parameter(torch.randn(batch_size, d) * 0.1)
        targets = torch.randint(0, n_items, (batch_size,))

        def floor_step(
            i: int,
            s: torch.Tensor = s,
            table: torch.Tensor = table,
            targets: torch.Tensor = targets,
            bf16: bool = bf16,
        ) -> int:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = s @ table.T
            F.cross_entropy(logits.float(), targets).backward()
            table.grad = None
            s.grad = None
            return batch_size

        key = "floor_samples_per_s" + ("_bf16" if bf16 else "")
        result[key] = _rate(floor_step, warmup, steps)

    for name in configs:
        for loss in ("auto", "full"):
            model_config, train_config = config_preset(name, n_items, loss=loss)
            objective = choose_loss(train_config.loss, n_items)
            if loss == "full" and objective == choose_loss("auto", n_items):
                continue  # the same step as the config's own
            key = name if loss == "auto" else f"{name}_full"
            result[f"{key}_objective"] = objective
            for bf16 in (False, True):
                step = _trainer_step(model_config, train_config, objective, bf16, target_counts)

                def train_step(i: int, step: Callable[[Any], None] = step) -> int:
                    idx = order[(i * batch_size) % len(order) :][:batch_size]
                    batch = samples.select(idx)
                    step(batch)
                    return len(batch)

                rate = _rate(train_step, warmup, steps)
                suffix = "_bf16" if bf16 else ""
                result[f"{key}_samples_per_s{suffix}"] = rate
                # both ratios use the fp32 floor: bf16 must beat the fp32 reference
                result[f"{key}_ratio{suffix}"] = rate / result["floor_samples_per_s"]
                result[f"{key}_epoch_s{suffix}"] = len(samples) / rate
    result["train_samples"] = len(samples)
    return result


def _trainer_step(
    model_config: Any,
    train_config: Any,
    objective: str,
    bf16: bool,
    target_counts: np.ndarray,
) -> Callable[[Any], None]:
    """The trainer's own training step (:class:`~sessionrec.train.objective.BatchLoss`:
    the full or the sampled softmax, :class:`~sessionrec.train.optim.Optimizers`: Adam,
    and the row-wise Adam of the item tables under the sampled softmax) for a batch."""
    model = SRGNN(model_config)
    sampled = None
    if objective == "sampled":
        sampled = SampledSoftmax(
            target_counts, train_config.num_negatives, train_config.negative_exponent
        )
        model.set_sparse_gradients(True)
    loss_of = BatchLoss(model, bf16, train_config.label_smoothing, sampled)
    optimizers = Optimizers(
        model,
        train_config.lr,
        train_config.weight_decay,
        lambda e: 1.0,
        sparse_tables=model.sparse_gradients,
    )
    model.train()

    def step(batch: Any) -> None:
        graph = session_graph_batch(batch, model.config.edge_weights)
        loss = loss_of(graph, torch.from_numpy(batch.targets))
        optimizers.zero_grad()
        loss.backward()
        optimizers.step()

    return step
