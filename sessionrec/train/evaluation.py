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
from sessionrec.errors import ConfigError, NonFiniteError
from sessionrec.evaluate.metrics import MetricAccumulator
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN

__all__ = [
    "MIN_NEW_ITEM_TARGETS",
    "SCORE_BLOCK_BYTES",
    "BatchScores",
    "item_logits",
    "evaluation_batches",
    "evaluate_model",
    "calibrate_repeat_bonus",
    "calibrate_new_item_offset",
    "selection_score",
    "record_selection",
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


#: The most scores (bytes) evaluation holds for one batch: beyond it the items are scored
#: in chunks with a running top-k, so memory does not grow with the catalog.
SCORE_BLOCK_BYTES = 256 * 2**20


class BatchScores:
    """The scores of a batch of sessions over every item, ranked in item blocks.

    The session vectors are computed once; the scores ``[B, n_items]`` are made in blocks
    of at most ``block_bytes`` (``[B, C]`` with ``C = block_bytes / (4 B)`` items), each
    adjusted in place (new-item offset, repeat bonus) and merged into a running top-k
    (ties: the lower item index first), so no block larger than the budget exists,
    whatever the catalog. With the item table given and a catalog that fits in one block,
    the scores are made as a whole (the same computation as a single ``[B, n_items]``
    product). Without the table, the item vectors of each block are made when it is
    scored (``SRGNN.item_block``), so the normalised ``[n_items, d]`` table never exists
    either.

    Args:
        model: the network, in evaluation mode.
        graph: the batch's session graphs.
        table: ``[n_items, d]`` item table (``model.item_table()``, computed once), or
            ``None`` to make it block by block.
        bf16: score under bf16 autocast.
        block_bytes: the budget of one block of scores.

    Raises:
        NonFiniteError: (by :meth:`top_k`) a score is NaN or infinite.
    """

    def __init__(
        self,
        model: SRGNN,
        graph: Any,
        table: torch.Tensor | None,
        bf16: bool = False,
        block_bytes: int = SCORE_BLOCK_BYTES,
    ) -> None:
        self.model, self.graph, self.table, self.bf16 = model, graph, table, bf16
        if table is None:
            self.s_h = model.session_embedding(graph, node_vectors=model.item_rows(graph.x))
        else:
            self.s_h = model.session_embedding(graph, table)  # [B, d]
        self.n_items = model.config.n_items
        rows = max(self.s_h.shape[0], 1)
        self.block = min(max(1, block_bytes // (4 * rows)), self.n_items)  # items per block

    def _scores(self, start: int, stop: int) -> torch.Tensor:
        """Raw scores ``[B, stop - start]`` of the items ``start .. stop - 1``.

        Raises:
            NonFiniteError: the session vectors or these items' vectors are not finite.
        """
        if self.table is None:
            table = self.model.item_block(start, stop)
        elif start == 0 and stop == len(self.table):
            table = self.table
        else:
            table = self.table[start:stop]
        # [B, d] and [C, d] checked, not the [B, C] scores: NaN weights give NaN vectors
        if not (torch.isfinite(self.s_h).all() and torch.isfinite(table).all()):
            raise NonFiniteError(
                "the model's scores hold NaN or infinity: its weights are not finite "
                "(a diverged training run); train it again"
            )
        if self.bf16:
            with torch.autocast(self.s_h.device.type, dtype=torch.bfloat16):
                return self.model.scores(self.s_h, table).float()
        return self.model.scores(self.s_h, table)

    def top_k(
        self, k: int, adjustments: list[tuple[float | None, float | None]] | None = None
    ) -> list[np.ndarray]:
        """The ``k`` best item indices of every session (``[B, k]`` int64, best first)
        under each adjustment ``(repeat bonus, new-item offset)`` (``None``: the model's
        value); one array per adjustment, from one pass over the items."""
        adjustments = adjustments or [(None, None)]
        n = self.n_items
        k = min(k, n)
        if self.table is not None and self.block >= n:  # the whole [B, n_items] product
            logits = self._scores(0, n)
            return [
                torch.topk(self.model.adjust(logits, self.graph, b, o), k, dim=1)
                .indices.cpu()
                .numpy()
                for b, o in adjustments
            ]
        best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(adjustments)
        for start in range(0, n, self.block):
            raw = self._scores(start, min(start + self.block, n))  # [B, C]
            # the columns an adjustment changes (the block's new items and the sessions'
            # own items) are saved and put back before the next one: no copy of the block
            touched = self._touched_columns(start, raw.shape[1]) if len(adjustments) > 1 else None
            saved = None if touched is None else raw[:, touched]  # [B, T] (a copy)
            for a, (b, o) in enumerate(adjustments):
                if a > 0 and touched is not None:
                    raw[:, touched] = saved
                block = self.model.adjust(raw, self.graph, b, o, start=start)  # in place
                values, index = torch.topk(block, min(k, block.shape[1]), dim=1)
                best[a] = _merge_top_k(best[a], values, index + start, k)
            del raw, block, saved  # before the next block's scores exist: one at a time
        return [pair[1].cpu().numpy() for pair in best if pair is not None]

    def _touched_columns(self, start: int, width: int) -> torch.Tensor:
        """Block-relative indices ``[T]`` of the columns ``SRGNN.adjust`` may change in
        the block of items ``start .. start + width - 1``: the sessions' items (repeat
        bonus) and a content model's items without training clicks (new-item offset)."""
        x = self.graph.x
        columns = [x[(x >= start) & (x < start + width)] - start]
        if self.model.catalog is not None:
            columns.append(torch.nonzero(self.model.cold_mask[start : start + width])[:, 0])
        return torch.unique(torch.cat(columns))


def _merge_top_k(
    best: tuple[torch.Tensor, torch.Tensor] | None,
    values: torch.Tensor,
    index: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best of a running top-k and a block's, by score, ties to the lower item
    index (``([B, k] scores, [B, k] item indices)``)."""
    if best is not None:
        values, index = torch.cat([best[0], values], 1), torch.cat([best[1], index], 1)
    by_index = torch.argsort(index, dim=1)
    values, index = values.gather(1, by_index), index.gather(1, by_index)
    order = torch.argsort(values, dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, order), index.gather(1, order)


def evaluation_batches(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    batch_size: int,
    bf16: bool,
    max_length: int | None,
    progress: bool = False,
    desc: str = "evaluate",
) -> Iterator[tuple[Samples, BatchScores]]:
    """``(batch, scores)`` over ``samples`` in evaluation mode (:class:`BatchScores`).
    Prefixes keep their last ``max_length`` clicks, as the exported model does; the item
    table is computed once; the model's mode is restored at the end. ``samples`` in
    chunks (a sharded dataset's) are read one chunk at a time. Run it under
    ``torch.no_grad()``."""
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
        # the item table once (the weights do not change here), unless the scores of a
        # batch do not fit in one block: then each block makes its own rows
        blocks = SCORE_BLOCK_BYTES // (4 * batch_size) < model.config.n_items
        table = None if blocks else model.item_table()  # [n_items, d]
        device = next(model.parameters()).device
        for chunk in samples.chunks():
            if max_length is not None:
                chunk = chunk.last_clicks(max_length)
            for batch in chunk.batches(batch_size):
                graph = session_graph_batch(batch, model.config.edge_weights).to(device)
                yield batch, BatchScores(model, graph, table, bf16, SCORE_BLOCK_BYTES)
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
    for batch, scores in evaluation_batches(
        model, samples, batch_size, bf16, max_length, progress, desc
    ):
        acc.update(scores.top_k(k_max)[0], batch.targets)
    return acc.result()


def selection_score(metrics: dict[str, float | int], names: tuple[str, ...]) -> float:
    """The selection score of validation ``metrics``: the sum of the metrics ``names``."""
    return float(sum(metrics[n] for n in names))


def _grid_results(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    grid: tuple[float, ...],
    adjustment: Callable[[float], tuple[float | None, float | None]],
    select_metric: tuple[str, ...],
    batch_size: int,
    max_length: int | None,
    groups: dict[str, np.ndarray] | None = None,
) -> dict[float, dict[str, float | int]]:
    """Metrics under ``adjustment(value)`` (a ``(repeat bonus, new-item offset)`` pair)
    for every value of ``grid`` over ``samples``: one forward pass for the whole grid."""
    ks = tuple(sorted({int(m.split("@")[1]) for m in select_metric} | {10, 20}))
    k_max = min(max(ks), model.config.n_items)
    accs = {v: MetricAccumulator(model.config.n_items, ks, groups=groups) for v in grid}
    for batch, scores in evaluation_batches(model, samples, batch_size, False, max_length):
        tops = scores.top_k(k_max, [adjustment(v) for v in grid])
        for v, top in zip(grid, tops):
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
        ``{"selected": beta, "selected_metrics": {...}, "valid": {str(beta): {"hr@20": ...,
        "mrr@20": ...}, ...}}``: ``selected_metrics`` are every metric of
        :func:`evaluate_model` under the selected :math:`\beta`.
    """
    grid = tuple(sorted(set(float(b) for b in grid)))
    results = _grid_results(
        model,
        samples,
        grid,
        lambda b: (b, None),
        select_metric,
        batch_size,
        max_length,
    )
    best = max(grid, key=lambda b: (selection_score(results[b], select_metric), -b))
    return {
        "selected": best,
        "selected_metrics": results[best],
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
        ``{"selected": b or None, "selected_metrics": {...}, "new_targets": n, "valid":
        {str(b): {"hr@20": ..., "mrr@20": ..., "new_hr@20": ...}, ...}}``
        (``selected_metrics``: every metric under the best :math:`b`).

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
        lambda b: (None, b),
        select_metric,
        batch_size,
        max_length,
        groups={"new": new},
    )
    n_new = int(results[grid[0]]["new_n_samples"])
    best = max(grid, key=lambda b: (selection_score(results[b], select_metric), -abs(b), b))
    return {
        "selected": best if n_new >= min_new_targets else None,
        "selected_metrics": results[best],
        "new_targets": n_new,
        "valid": {
            str(b): {m: r[m] for m in ("hr@20", "mrr@20", *select_metric, "new_hr@20")}
            for b, r in results.items()
        },
    }


def record_selection(
    selection: dict[str, Any],
    select_metric: tuple[str, ...],
    repeat_bonus: float,
    new_item_offset: float,
    refit: str = "none",
) -> None:
    """Complete the trainer's record of how the model was chosen (``metrics``, then
    ``report.json``), in place.

    ``selection`` holds ``valid`` (the selected epoch's validation metrics as trained),
    ``best_epoch`` and the calibrations made after it (``repeat_bonus``,
    ``new_item_offset``: :func:`calibrate_repeat_bonus`, :func:`calibrate_new_item_offset`).
    After this call ``valid`` holds the validation metrics of the model as shipped (the
    calibrated repeat bonus and new-item offset included), ``valid_before_calibration``
    those as trained (without them; only when a calibration ran), and ``selected`` says
    what was chosen and why: the criterion (``select_metric``, summed), the epoch and its
    score, the repeat bonus and new-item offset shipped (``repeat_bonus``,
    ``new_item_offset``: the model's values) and the grids they came from.
    """
    shipped = None
    for name in ("repeat_bonus", "new_item_offset"):
        chosen = selection.get(name)
        if isinstance(chosen, dict) and "selected_metrics" in chosen:
            metrics = chosen.pop("selected_metrics")
            if chosen["selected"] is not None:  # applied to the model: the last one counts
                shipped = metrics
    valid = selection.get("valid")
    if shipped is not None and valid is not None:
        selection["valid_before_calibration"] = valid
        selection["valid"] = shipped
    criterion = " + ".join(m.upper() for m in select_metric)
    epoch = selection.get("best_epoch")
    summary: dict[str, Any] = {
        "criterion": f"{criterion} on the validation split" if valid else "the last epoch",
        "select_metric": list(select_metric),
        "epoch": epoch,
        "score": selection_score(valid, select_metric) if valid else None,
        "validation_samples": valid.get("n_samples") if valid else None,
        "repeat_bonus": repeat_bonus,
        "new_item_offset": new_item_offset,
    }
    why = (
        f"epoch {epoch} scored the highest {criterion} on validation ({summary['score']:.2f})"
        if valid
        else f"no validation split: the last epoch ({epoch}) is kept"
    )
    for name, label in (("repeat_bonus", "repeat bonus"), ("new_item_offset", "new-item offset")):
        chosen = selection.get(name)
        if isinstance(chosen, dict):
            grid = [float(v) for v in chosen["valid"]]
            summary[f"{name}_grid"] = grid
            if chosen["selected"] is not None:
                why += f"; then {label} {chosen['selected']:g} scored best of {grid} on it"
    if refit == "full":
        why += (
            "; the shipped model is a refit of that many epochs on all training sessions "
            "(no validation split of its own: valid is the selection run's)"
        )
    elif refit == "recent":
        why += (
            "; the shipped model is that state continued on the validation sessions, one "
            "pass per learning rate of its epochs (refit='recent': valid is the state's "
            "before the passes)"
        )
    summary["why"] = why
    selection["selected"] = summary
