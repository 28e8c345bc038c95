"""``sessionrec bench train-speed``: training speed as a ratio measured in one process.

:func:`train_speed`: samples/s of a full SR-GNN training step (graph building, forward,
backward, Adam step) divided by samples/s of the bare scoring *floor*: for a batch ``S``
of session vectors ``[B, d]`` and the item table ``E [N, d]``, ``logits = S @ E.T``,
cross-entropy, backward, nothing else.
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
from sessionrec.train import config_preset, item_logits

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
    """Training-step samples/s of each config (fp32 and bf16) over the scoring floor."""
    torch.manual_seed(seed)
    samples, n_items, source = diginetica_like_samples(path, seed)
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
        model_config, train_config = config_preset(name, n_items)
        for bf16 in (False, True):
            model = SRGNN(model_config)
            optimizer = torch.optim.Adam(
                model.parameters(),
                lr=train_config.lr,
                weight_decay=train_config.weight_decay,
                fused=True,
            )

            def train_step(
                i: int, model: SRGNN = model, optimizer: Any = optimizer, bf16: bool = bf16
            ) -> int:
                idx = order[(i * batch_size) % len(order) :][:batch_size]
                batch = samples.select(idx)
                graph = session_graph_batch(batch, model.config.edge_weights)
                logits = item_logits(model, graph, bf16)  # the trainer's own forward
                loss = F.cross_entropy(logits, torch.from_numpy(batch.targets))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return len(batch)

            rate = _rate(train_step, warmup, steps)
            suffix = "_bf16" if bf16 else ""
            result[f"{name}_samples_per_s{suffix}"] = rate
            # both ratios use the fp32 floor: bf16 must beat the fp32 reference
            result[f"{name}_ratio{suffix}"] = rate / result["floor_samples_per_s"]
            result[f"{name}_epoch_s{suffix}"] = len(samples) / rate
    result["train_samples"] = len(samples)
    return result
