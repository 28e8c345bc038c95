r"""Model evaluation and calibration: full-catalogue metrics of an :class:`SRGNN`, and the
evaluation-time terms chosen on validation after training.

Every item of the catalogue is ranked (no sampled negatives); the metrics are those of
:mod:`sessionrec.evaluate.metrics` (HR@K, MRR@K, NDCG@K, coverage, popularity bias, in
percent). Each prefix keeps its last ``max_length`` clicks, as the exported model does
(:attr:`~sessionrec.data.contract.DataContract.inference_max_length`).

Calibration (``TrainConfig.repeat_bonus_grid``, ``new_item_offset_grid``): one forward
pass over the validation samples ranks the same logits under every value of a grid,

.. math::

    z'_{bi} = z_{bi} + \beta\,[i \in S_b] + b\,[i \text{ new}],

and the value with the best sum of the selection metrics is kept.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionrec.data.contract import DEFAULT_MAX_SESSION_LENGTH
from sessionrec.data.sessions import ChunkedSamples, Samples
from sessionrec.errors import ConfigError
from sessionrec.evaluate.metrics import MetricAccumulator
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN

__all__ = [
    "MIN_NEW_ITEM_TARGETS",
    "item_logits",
    "evaluation_batches",
    "evaluate_model",
    "calibrate_repeat_bonus",
    "calibrate_new_item_offset",
    "selection_score",
]

#: Validation samples whose target is a new item (no clicks in the fit part) needed to
#: choose the new-item offset on validation.
MIN_NEW_ITEM_TARGETS = 20


def item_logits(
    model: SRGNN, graph: Any, bf16: bool, table: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, n_items]`` fp32 logits of a batch of session graphs, without the repeat bonus
    or the new-item offset (training uses neither; evaluation adds them); with ``bf16``
    the item-scoring matmul runs under bf16 autocast.

    ``table``: the ``[n_items, d]`` item table computed once for many batches
    (evaluation); in training it must be recomputed every step (``None``).
    """
    table = model.item_table() if table is None else table
    s_h = model.session_embedding(graph, table)
    if bf16:
        with torch.autocast(s_h.device.type, dtype=torch.bfloat16):
            return model.scores(s_h, table).float()
    return model.scores(s_h, table)


def evaluation_batches(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    batch_size: int,
    bf16: bool,
    max_length: int | None,
    progress: bool = False,
    desc: str = "evaluate",
) -> Iterator[tuple[Samples, Any, torch.Tensor]]:
    """``(batch, graph, logits)`` over ``samples`` in evaluation mode, logits as
    :func:`item_logits` gives them. Prefixes keep their last ``max_length`` clicks, as the
    exported model does; the item table is computed once; the model's mode is restored
    at the end. ``samples`` in chunks (a sharded dataset's) are read one chunk at a time.
    Run it under ``torch.no_grad()``."""
    was_training = model.training
    model.eval()
    bar = tqdm(
        total=len(samples),
        desc=desc,
        unit="sample",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    try:
        table = model.item_table()  # [n_items, d], once: the weights do not change here
        for chunk in samples.chunks():
            if max_length is not None:
                chunk = chunk.last_clicks(max_length)
            for batch in chunk.batches(batch_size):
                graph = session_graph_batch(batch, model.config.edge_weights).to(table.device)
                yield batch, graph, item_logits(model, graph, bf16, table)
                bar.update(len(batch))
    finally:
        bar.close()
        model.train(was_training)


@torch.no_grad()
def evaluate_model(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    ks: tuple[int, ...] = (10, 20),
    batch_size: int = 500,
    item_counts: np.ndarray | None = None,
    bf16: bool = False,
    progress: bool = False,
    desc: str = "evaluate",
    groups: dict[str, np.ndarray] | None = None,
    max_length: int | None = DEFAULT_MAX_SESSION_LENGTH,
) -> dict[str, float | int]:
    """Full-catalogue metrics of ``model`` on ``samples`` (percent; see
    :class:`~sessionrec.evaluate.metrics.MetricAccumulator`), with the model's repeat
    bonus and new-item offset.

    Args:
        ks: the cut-offs K of HR@K, MRR@K, NDCG@K.
        batch_size: samples per forward pass.
        item_counts: training clicks per item (for the popularity bias).
        bf16: score under bf16 autocast.
        groups: name -> bool mask over items: adds the metrics of the samples whose
            target is in each group (``{name}_hr@K``, ...).
        max_length: each prefix keeps its last ``max_length`` clicks, as the exported
            model does (pass the model's ``contract.inference_max_length``; ``None``: no
            cut).
    """
    acc = MetricAccumulator(model.config.n_items, ks, item_counts, groups=groups)
    k_max = min(max(ks), model.config.n_items)
    for batch, graph, logits in evaluation_batches(
        model, samples, batch_size, bf16, max_length, progress, desc
    ):
        logits = model.adjust(logits, graph)
        acc.update(torch.topk(logits, k_max, dim=1).indices.cpu().numpy(), batch.targets)
    return acc.result()


def selection_score(metrics: dict[str, float | int], names: tuple[str, ...]) -> float:
    """The selection score of validation ``metrics``: the sum of the metrics ``names``."""
    return float(sum(metrics[n] for n in names))


def _grid_results(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    grid: tuple[float, ...],
    adjust: Callable[[torch.Tensor, Any, float], torch.Tensor],
    select_metric: tuple[str, ...],
    batch_size: int,
    max_length: int | None,
    groups: dict[str, np.ndarray] | None = None,
) -> dict[float, dict[str, float | int]]:
    """Metrics of ``adjust(logits, graph, value)`` for every value of ``grid`` over
    ``samples``: one forward pass for the whole grid."""
    ks = tuple(sorted({int(m.split("@")[1]) for m in select_metric} | {20}))
    k_max = min(max(ks), model.config.n_items)
    accs = {v: MetricAccumulator(model.config.n_items, ks, groups=groups) for v in grid}
    for batch, graph, logits in evaluation_batches(model, samples, batch_size, False, max_length):
        for v in grid:
            ranked = adjust(logits, graph, v)
            top = torch.topk(ranked, k_max, dim=1).indices.cpu().numpy()
            accs[v].update(top, batch.targets)
    return {v: acc.result() for v, acc in accs.items()}


@torch.no_grad()
def calibrate_repeat_bonus(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    grid: tuple[float, ...],
    select_metric: tuple[str, ...] = ("hr@20", "mrr@20"),
    batch_size: int = 500,
    max_length: int | None = DEFAULT_MAX_SESSION_LENGTH,
) -> dict[str, Any]:
    r"""The repeat bonus :math:`\beta` of ``grid`` that scores best on ``samples``.

    Every :math:`\beta` ranks the same logits :math:`z_{bi} + \beta [i \in S_b]` (one
    forward pass for the whole grid; the model's ``new_item_offset`` applies); the best
    sum of ``select_metric`` wins, ties to the smaller :math:`\beta`.

    Returns:
        ``{"selected": beta, "valid": {str(beta): {"hr@20": ..., "mrr@20": ...}, ...}}``.
    """
    grid = tuple(sorted(set(float(b) for b in grid)))
    results = _grid_results(
        model,
        samples,
        grid,
        lambda logits, graph, b: model.adjust(logits, graph, beta=b),
        select_metric,
        batch_size,
        max_length,
    )
    best = max(grid, key=lambda b: (selection_score(results[b], select_metric), -b))
    return {
        "selected": best,
        "valid": {
            str(b): {m: r[m] for m in ("hr@20", "mrr@20", *select_metric)}
            for b, r in results.items()
        },
    }


@torch.no_grad()
def calibrate_new_item_offset(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    grid: tuple[float, ...],
    select_metric: tuple[str, ...] = ("hr@20", "mrr@20"),
    batch_size: int = 500,
    max_length: int | None = DEFAULT_MAX_SESSION_LENGTH,
    min_new_targets: int = MIN_NEW_ITEM_TARGETS,
) -> dict[str, Any]:
    r"""The new-item offset :math:`b` of ``grid`` that scores best on ``samples``.

    A content model's items without training clicks (``cold_mask``) get :math:`b` added
    to their logits, :math:`z_{bi} + b\,[i \text{ new}]` (with the model's repeat
    bonus); the best sum of ``select_metric`` over all samples wins, ties to the
    :math:`b` nearest 0. The choice needs validation targets among the new items: with
    fewer than ``min_new_targets`` of them, the model's value stays (``"selected":
    None``): otherwise the grid's most negative :math:`b` would win by default and new
    items would never be recommended.

    Returns:
        ``{"selected": b or None, "new_targets": n, "valid": {str(b): {"hr@20": ...,
        "mrr@20": ..., "new_hr@20": ...}, ...}}``.

    Raises:
        ConfigError: ``model`` is not a content model.
    """
    if model.catalog is None:
        raise ConfigError("the new-item offset needs a content model (a catalog)")
    grid = tuple(sorted(set(float(b) for b in grid)))
    new = model.cold_mask.cpu().numpy()
    results = _grid_results(
        model,
        samples,
        grid,
        lambda logits, graph, b: model.adjust(logits, graph, offset=b),
        select_metric,
        batch_size,
        max_length,
        groups={"new": new},
    )
    n_new = int(results[grid[0]]["new_n_samples"])
    best = max(grid, key=lambda b: (selection_score(results[b], select_metric), -abs(b), b))
    return {
        "selected": best if n_new >= min_new_targets else None,
        "new_targets": n_new,
        "valid": {
            str(b): {m: r[m] for m in ("hr@20", "mrr@20", *select_metric, "new_hr@20")}
            for b, r in results.items()
        },
    }
