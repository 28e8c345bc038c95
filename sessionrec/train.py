"""Training SR-GNN: epochs, validation, early stopping, checkpoints, the final test.

Model selection uses a validation split carved from the training sessions (the latest
ones, :func:`sessionrec.data.dataset.validation_split`); the test set is evaluated once,
with the selected checkpoint, at the end.

A model directory holds::

    config.json      model and training configuration, sessionrec version, data fingerprint
    model.pt         the selected weights (a plain state_dict; load with weights_only=True);
                     a content model's catalog features are buffers in it
    vocab.json       the item vocabulary (a content model's: the dataset's items, then the
                     catalog items without clicks, which it scores from content alone)
    item_counts.npy  training clicks per item (popularity fallback, popularity bias)
    history.json     loss, samples/s and validation metrics per epoch
    metrics.json     validation metrics of the selected epoch and the test metrics
    manifest.json    SHA-256 and format of each file above (:mod:`sessionrec.artifacts`);
                     loading refuses a file that does not match it
    checkpoint.pt    the last epoch's full training state, for ``--resume`` (not listed in
                     the manifest: it changes every epoch)
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sessionrec import __version__
from sessionrec.artifacts import MANIFEST, commit_files, verified_paths
from sessionrec.data.dataset import SessionDataset, validation_split
from sessionrec.data.sessions import ChunkedSamples, Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError, SessionrecError
from sessionrec.evaluate.metrics import MetricAccumulator
from sessionrec.graph import session_graph_batch
from sessionrec.nn.content import catalog_tensors, content_sizes
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.shards import ShardedDataset

__all__ = [
    "TrainConfig",
    "CONFIGS",
    "config_preset",
    "with_catalog",
    "Trainer",
    "TrainedModel",
    "evaluate_model",
    "calibrate_repeat_bonus",
    "calibrate_new_item_offset",
    "load_model",
    "resolve_device",
    "init_distributed",
    "leave_distributed",
    "once_per_node",
]

_T = TypeVar("_T")

MODEL_FORMAT = "sessionrec.model/1"
# what TrainedModel.save writes and load_model reads (each listed in manifest.json)
MODEL_FILES = (
    "config.json",
    "model.pt",
    "vocab.json",
    "item_counts.npy",
    "history.json",
    "metrics.json",
)
# the last clicks of a session a model reads when it recommends (unless trained with a
# max_session_length): sessions longer than this lose their oldest clicks
DEFAULT_MAX_SESSION_LENGTH = 50
#: Validation samples whose target is a new item (no clicks in the fit part) needed to
#: choose the new-item offset on validation.
MIN_NEW_ITEM_TARGETS = 20


@dataclass(frozen=True)
class TrainConfig:
    r"""Optimisation and model-selection parameters.

    Attributes:
        epochs: maximum epochs.
        batch_size: samples per step.
        lr: Adam learning rate.
        lr_decay: multiplicative decay of ``lr`` ...
        lr_decay_every: ... every this many epochs (the paper: 0.1 every 3).
        lr_decay_first: epochs before the first decay (``None``: ``lr_decay_every``). The
            authors' code calls ``scheduler.step()`` at the start of every epoch, so its
            first decay comes after 2 epochs, then every 3: ``lr_decay_first=2``.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        label_smoothing: cross-entropy label smoothing.
        patience: stop after this many epochs without progress on validation.
        repeat_bonus_grid: values of the model's ``repeat_bonus`` (:math:`\beta`, added
            to the logits of the session's own items at evaluation) tried on validation
            after training, the best kept (``()``: none tried, the config's value stays).
            A refit inherits the selected value.
        new_item_offset_grid: values of a content model's ``new_item_offset`` (:math:`b`,
            added to the logits of the items without training clicks at evaluation)
            tried on validation after the repeat bonus, the best kept; only when at
            least :data:`MIN_NEW_ITEM_TARGETS` validation samples have such an item as
            target (items first clicked in the validation sessions are new to the
            selection run), else the config's value stays. A refit inherits it.
        min_improvement: an epoch is progress when its selection score beats the score of
            the last progress epoch by more than this (points of the summed metrics; 0:
            any gain). The best-scoring epoch is kept either way. With a decayed rate the
            score can creep up by hundredths per epoch; ``0.1`` stops such a run.
        valid_fraction: share of the latest training sessions held out for validation.
            ``0`` trains on every training session for exactly ``epochs`` epochs and keeps
            the last one: use it only with an epoch count chosen on validation before.
        refit: after selecting the best epoch on validation, train a fresh model on all
            training sessions (validation included: the latest, most test-like data) for
            that many epochs, with the same seed and schedule; the refit model is tested.
        select_metric: validation metric(s) that pick the checkpoint: their sum.
        max_session_length: keep only the last L clicks of each prefix (``None``: all).
        bf16_scoring: compute the item-scoring matmul under bf16 autocast.
        device: where training and evaluation run: ``"cpu"``, ``"cuda"`` (under
            ``torchrun``: the process's ``LOCAL_RANK`` GPU) or ``"auto"`` (CUDA when
            available). The trained model comes back on the CPU (saving, export and
            serving are CPU code).
        seed: seeds python, numpy and torch.
        eval_batch_size: samples per evaluation batch.
        warm_shrink: :math:`\lambda`, with a warm start (``Trainer.fit(warm_start=...)``):
            every carried weight starts at :math:`\lambda\,\theta_{old} + (1 - \lambda)
            \,\theta_{fresh}`, shrink and perturb (Ash & Adams, 2020). ``1`` copies the
            previous model unchanged; a model trained to a decayed learning rate copied
            as it is levels off below a cold run (README, warm start).
        warm_lr_decay_first: with a warm start, the epochs before the first learning-rate
            decay (then every ``lr_decay_every``; ``None``: as without one): a warm run
            starts near a solution and needs fewer epochs at the full rate.
    """

    epochs: int = 30
    batch_size: int = 100
    lr: float = 1e-3
    lr_decay: float = 0.1
    lr_decay_every: int = 3
    lr_decay_first: int | None = None
    weight_decay: float = 1e-5
    label_smoothing: float = 0.0
    patience: int = 3
    min_improvement: float = 0.0
    repeat_bonus_grid: tuple[float, ...] = ()
    new_item_offset_grid: tuple[float, ...] = ()
    valid_fraction: float = 0.1
    refit: bool = False
    select_metric: tuple[str, ...] = ("hr@20", "mrr@20")
    max_session_length: int | None = None
    bf16_scoring: bool = False
    device: str = "cpu"
    seed: int = 42
    eval_batch_size: int = 500
    warm_shrink: float = 0.4
    warm_lr_decay_first: int | None = 2

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "lr_decay_every", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_decay_first", "warm_lr_decay_first"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.warm_shrink <= 1.0:
            raise ConfigError(f"warm_shrink must be in [0, 1], got {self.warm_shrink}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.refit and self.valid_fraction == 0.0:
            raise ConfigError("refit needs a validation split (valid_fraction > 0) to select on")
        if self.min_improvement < 0:
            raise ConfigError(f"min_improvement must be >= 0, got {self.min_improvement}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["select_metric"] = list(self.select_metric)
        d["repeat_bonus_grid"] = list(self.repeat_bonus_grid)
        d["new_item_offset_grid"] = list(self.new_item_offset_grid)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("select_metric", "repeat_bonus_grid", "new_item_offset_grid"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


# name -> (model overrides, training config)
CONFIGS: dict[str, tuple[dict[str, Any], TrainConfig]] = {
    # the paper: d = 100, one step, batch 100, Adam 1e-3 decayed 0.1 every 3 epochs, L2 1e-5;
    # the schedule of the authors' code, which decays after epoch 2 (scheduler.step() at
    # the start of every epoch), then every 3: +1.0 validation HR@20 on Diginetica
    "srgnn": ({}, TrainConfig(lr_decay_first=2)),
    # ours: NISER normalisation, embedding dropout, reverse-position readout
    "default": (
        {"normalize": True, "temperature": 12.0, "dropout": 0.1, "position_readout": True},
        TrainConfig(
            repeat_bonus_grid=(0.0, 1.0, 2.0, 4.0, 8.0, 12.0),
            new_item_offset_grid=(-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0),
        ),
    ),
}


def inference_max_length(cfg: TrainConfig) -> int:
    """How many of a session's last clicks the model reads when it recommends: the
    training ``max_session_length``, else :data:`DEFAULT_MAX_SESSION_LENGTH`. Evaluation
    (:func:`evaluate_model`) and the exported ONNX file both cut sessions to it."""
    return cfg.max_session_length or DEFAULT_MAX_SESSION_LENGTH


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """The learning-rate multiplier of 0-based ``epoch``: ``lr_decay ** n_decays``.

    ``n_decays = 0`` before epoch ``first``, then ``1 + (epoch - first) // every``, with
    ``first = lr_decay_first or lr_decay_every``.
    """
    first = cfg.lr_decay_every if cfg.lr_decay_first is None else cfg.lr_decay_first
    n_decays = 0 if epoch < first else 1 + (epoch - first) // cfg.lr_decay_every
    return cfg.lr_decay**n_decays


def config_preset(
    name: str, n_items: int, **train_overrides: Any
) -> tuple[SRGNNConfig, TrainConfig]:
    """The model and training configs of preset ``name``, with training overrides."""
    try:
        model_overrides, train = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown config {name!r}; known: {', '.join(CONFIGS)}") from None
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    return SRGNNConfig(n_items=n_items, **model_overrides), replace(train, **overrides)


def with_catalog(model_config: SRGNNConfig, catalog: ItemCatalog) -> SRGNNConfig:
    """``model_config`` turned into a content model over ``catalog``.

    ``catalog`` must be aligned to the training data's vocabulary
    (:meth:`~sessionrec.data.catalog.ItemCatalog.align`): the model's items are the
    vocabulary's, then the catalog items without clicks.
    """
    if catalog.n_vocab is None:
        raise ConfigError(
            "with_catalog: align the catalog to the dataset's vocabulary first "
            "(catalog.align(dataset.vocab))"
        )
    return replace(model_config, n_items=len(catalog), content=content_sizes(catalog))


def _model_vocab(
    dataset: SessionDataset | ShardedDataset,
    model_config: SRGNNConfig,
    catalog: ItemCatalog | None,
) -> ItemVocab:
    """The model's item vocabulary, after checking data, catalog and config agree."""
    n = model_config.n_items
    if catalog is None:
        if model_config.content is not None:
            raise ConfigError("the model config has content columns but no catalog was given")
        if dataset.n_items != n:
            raise ConfigError(f"model has n_items={n}, dataset {dataset.n_items}")
        return dataset.vocab
    if model_config.content is None:
        raise ConfigError("a catalog was given to an id-only config: use with_catalog(config)")
    if catalog.n_vocab != dataset.n_items or len(catalog) != n:
        raise ConfigError(
            f"the catalog ({len(catalog)} rows, aligned to {catalog.n_vocab} items) does not "
            f"match the dataset ({dataset.n_items} items) and the model ({n} items): align "
            "the catalog to this dataset's vocabulary"
        )
    if not extends_vocab(catalog.ids, dataset.vocab):
        raise ConfigError("the catalog was aligned to another vocabulary than the dataset's")
    return ItemVocab(catalog.ids)


def extends_vocab(model_ids: np.ndarray, data_vocab: ItemVocab) -> bool:
    """Whether a model's item ids are ``data_vocab``'s, in order, then possibly more (a
    content model's catalog items without clicks): the data's indices are the model's."""
    n = len(data_vocab)
    return len(model_ids) >= n and np.array_equal(
        np.asarray(model_ids[:n]), np.asarray(data_vocab.ids)
    )


_ID_TABLES = ("embedding.weight", "item_repr.id_embedding.weight")  # [n_items, d]


def _warm_start(
    model: SRGNN, vocab: ItemVocab, previous: TrainedModel, shrink: float = 1.0
) -> dict[str, Any]:
    r"""Carry a previous model's weights into ``model`` (trained next on ``vocab``'s items)
    (``Trainer.fit(warm_start=...)``, ``--warm-start``).

    Every weight of the propagation and readout is copied; the id embedding of each item
    of ``vocab`` that ``previous`` knows is copied to its new row; new items keep their
    fresh initialisation (content vectors in a content model). The content encoder starts
    afresh: category codes and text buckets are recomputed from each run's catalog.
    With ``shrink`` :math:`\lambda < 1` (``TrainConfig.warm_shrink``) a copied weight
    becomes :math:`\lambda\,\theta_{old} + (1 - \lambda)\,\theta_{fresh}`, with
    :math:`\theta_{fresh}` ``model``'s own initialisation (shrink and perturb).

    Returns:
        What happened: ``shrink``, ``items_kept``, ``items_added`` and ``items_no_longer_seen``
        (counts) with up to 20 example ids of the last two (JSON-ready).

    Raises:
        ConfigError: the architectures differ (a weight of another shape, or missing).
    """
    old_state = previous.model.state_dict()
    old_ids_table = next((old_state[k] for k in _ID_TABLES if k in old_state), None)
    new_state = model.state_dict()
    updates: dict[str, torch.Tensor] = {}
    for name, value in new_state.items():
        if name.startswith(("content_encoder.", "catalog.", "item_repr.content_proj")) or (
            name == "cold_mask"
        ):
            continue  # content: rebuilt from this run's catalog
        if name in _ID_TABLES:
            continue
        old = old_state.get(name)
        if old is None or old.shape != value.shape:
            found = "missing" if old is None else f"of shape {tuple(old.shape)}"
            raise ConfigError(
                f"--warm-start: the previous model's {name!r} is {found}, this config's is "
                f"{tuple(value.shape)}; warm-start with the same --config and --set options"
            )
        updates[name] = old
    old_index = previous.vocab.index_of(vocab.ids.tolist())  # [n_new], -1: a new item
    known = old_index >= 0
    table_name = next(k for k in _ID_TABLES if k in new_state)
    if old_ids_table is None or old_ids_table.shape[1] != new_state[table_name].shape[1]:
        raise ConfigError("--warm-start: the previous model has no id table of this size")
    table = new_state[table_name].clone()
    table[torch.from_numpy(np.flatnonzero(known))] = old_ids_table[
        torch.from_numpy(old_index[known])
    ]
    updates[table_name] = table
    if shrink != 1.0:
        parameters = {name for name, _ in model.named_parameters()}
        for name in updates.keys() & parameters:
            # new rows of the id table: shrink * fresh + (1 - shrink) * fresh = fresh
            updates[name] = shrink * updates[name] + (1.0 - shrink) * new_state[name]
    # the whole state, this model's own buffers (catalog features) included: a partial
    # state would leave CatalogFeatures without its tensors
    model.load_state_dict({**new_state, **updates})
    still_seen = np.zeros(len(previous.vocab), dtype=bool)
    still_seen[old_index[known]] = True
    added = vocab.ids[~known]
    gone = previous.vocab.ids[~still_seen]
    return {
        "shrink": shrink,
        "items_kept": int(known.sum()),
        "items_added": int(len(added)),
        "items_no_longer_seen": int(len(gone)),
        "examples_added": added[:20].tolist(),
        "examples_no_longer_seen": gone[:20].tolist(),
    }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _logits(
    model: SRGNN, graph: Any, bf16: bool, table: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, n_items]`` fp32 logits, without the repeat bonus (training uses none; the
    evaluation adds it); with ``bf16`` the item-scoring matmul runs in bf16.

    ``table``: the item table computed once for many batches (evaluation); in training it
    must be recomputed every step (``None``).
    """
    table = model.item_table() if table is None else table
    s_h = model.session_embedding(graph, table)
    if bf16:
        with torch.autocast(s_h.device.type, dtype=torch.bfloat16):
            return model.scores(s_h, table).float()
    return model.scores(s_h, table)


def _evaluation_batches(
    model: SRGNN,
    samples: Samples | ChunkedSamples,
    batch_size: int,
    bf16: bool,
    max_length: int | None,
    progress: bool = False,
    desc: str = "evaluate",
) -> Iterator[tuple[Samples, Any, torch.Tensor]]:
    """``(batch, graph, logits)`` over ``samples`` in evaluation mode, logits without the
    repeat bonus. Prefixes keep their last ``max_length`` clicks, as the exported model
    does; the item table is computed once; the model's mode is restored at the end.
    ``samples`` in chunks (a sharded dataset's) are read one chunk at a time."""
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
    try:  # the callers run it under torch.no_grad()
        table = model.item_table()  # [n_items, d], once: the weights do not change here
        for chunk in samples.chunks():
            if max_length is not None:
                chunk = chunk.last_clicks(max_length)
            for batch in chunk.batches(batch_size):
                graph = session_graph_batch(batch, model.config.edge_weights).to(table.device)
                yield batch, graph, _logits(model, graph, bf16, table)
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
    """Full-catalogue metrics of ``model`` on ``samples`` (percent; see metrics.py).

    ``groups`` (name -> bool mask over items) adds the metrics of the samples whose
    target is in each group (``{name}_hr@K``, ...; see :class:`MetricAccumulator`).
    Each prefix keeps its last ``max_length`` clicks, as the exported model does (pass
    :func:`inference_max_length` of the training config; ``None``: no cut).
    """
    acc = MetricAccumulator(model.config.n_items, ks, item_counts, groups=groups)
    k_max = min(max(ks), model.config.n_items)
    for batch, graph, logits in _evaluation_batches(
        model, samples, batch_size, bf16, max_length, progress, desc
    ):
        logits = model.adjust(logits, graph)
        acc.update(torch.topk(logits, k_max, dim=1).indices.cpu().numpy(), batch.targets)
    return acc.result()


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
    for batch, graph, logits in _evaluation_batches(model, samples, batch_size, False, max_length):
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
    best = max(grid, key=lambda b: (_score(results[b], select_metric), -b))
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
    best = max(grid, key=lambda b: (_score(results[b], select_metric), -abs(b), b))
    return {
        "selected": best if n_new >= min_new_targets else None,
        "new_targets": n_new,
        "valid": {
            str(b): {m: r[m] for m in ("hr@20", "mrr@20", *select_metric, "new_hr@20")}
            for b, r in results.items()
        },
    }


def _score(metrics: dict[str, float | int], names: tuple[str, ...]) -> float:
    return float(sum(metrics[n] for n in names))


@dataclass
class TrainedModel:
    """A trained SR-GNN with what is needed to use and export it."""

    model: SRGNN
    vocab: ItemVocab
    train_config: TrainConfig
    item_counts: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model directory, crash-safely.

        The files and their SHA-256 go into ``manifest.json``
        (:func:`sessionrec.artifacts.commit_files`): a save killed half-way leaves the
        previous model of ``directory`` loadable and unchanged. Files of the previous model
        that this one does not write (an old ``model.onnx``) are removed.
        """
        directory = Path(directory)
        config = {
            "format": MODEL_FORMAT,
            "sessionrec_version": __version__,
            "model": self.model.config.to_dict(),
            "train": self.train_config.to_dict(),
            "data_fingerprint": self.data_fingerprint,
        }
        state = self.model.state_dict()
        counts = self.item_counts.astype(np.int64)

        def json_writer(obj: Any) -> Callable[[Path], None]:
            return lambda path: path.write_text(json.dumps(obj, indent=2), encoding="utf-8")

        def save_counts(path: Path) -> None:
            with open(path, "wb") as fh:
                np.save(fh, counts, allow_pickle=False)

        commit_files(
            directory,
            {
                "model.pt": lambda path: torch.save(state, path),
                "vocab.json": self.vocab.save,
                "item_counts.npy": save_counts,
                "history.json": json_writer(self.history),
                "metrics.json": json_writer(self.metrics),
                "config.json": json_writer(config),
            },
            MODEL_FORMAT,
            replace_listed=True,
        )
        return directory


def load_model(directory: str | os.PathLike[str]) -> TrainedModel:
    """Load a model directory written by :meth:`TrainedModel.save` (no pickle).

    Every file is checked against ``manifest.json`` first (SHA-256 and format).

    Raises:
        ArtifactError: not a model directory, a file missing, modified or of another format.
    """
    directory = Path(directory)
    if not (directory / "config.json").is_file() and not (directory / MANIFEST).is_file():
        raise ArtifactError(f"{directory}: not a sessionrec model (no config.json)")
    paths = verified_paths(directory, dict.fromkeys(MODEL_FILES, MODEL_FORMAT))
    config = json.loads(paths["config.json"].read_text())
    if config.get("format") != MODEL_FORMAT:
        raise ArtifactError(
            f"{paths['config.json']}: format {config.get('format')!r}, this sessionrec reads "
            f"{MODEL_FORMAT!r}"
        )
    model = SRGNN(SRGNNConfig.from_dict(config["model"]))
    try:
        state = torch.load(paths["model.pt"], map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{directory / 'model.pt'}: cannot be loaded ({exc})") from None
    model.load_state_dict(state)
    model.eval()
    vocab = ItemVocab.load(paths["vocab.json"])
    if len(vocab) != model.config.n_items:
        raise ArtifactError(
            f"{directory}: vocabulary has {len(vocab)} items, the model {model.config.n_items}"
        )
    counts = np.load(paths["item_counts.npy"], allow_pickle=False)
    history = json.loads(paths["history.json"].read_text())
    metrics = json.loads(paths["metrics.json"].read_text())
    return TrainedModel(
        model,
        vocab,
        TrainConfig.from_dict(config["train"]),
        counts,
        history,
        metrics,
        config.get("data_fingerprint"),
    )


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` -> the device this process trains on: under
    ``torchrun``, CUDA device ``LOCAL_RANK``.

    Raises:
        ConfigError: ``"cuda"`` without a CUDA build of torch and a GPU.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ConfigError(f"device must be 'cpu', 'cuda' or 'auto', got {name!r}")
    if not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda': this torch has no CUDA device (a CPU build, or no GPU); use "
            "--device cpu"
        )
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment): the ``nccl`` backend when ``device`` (as :func:`resolve_device`) is a
    GPU, ``gloo`` on the CPU. Returns ``(rank, world_size)``; ``(0, 1)`` when not
    launched by ``torchrun``."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        where = resolve_device(device)
        if where.type == "cuda":
            torch.cuda.set_device(where)
            dist.init_process_group(backend="nccl", device_id=where)
        else:
            dist.init_process_group(backend="gloo")
    return _rank_and_world()


def once_per_node(work: Callable[[], _T], then: Callable[[], _T]) -> _T:
    """``work()`` on the first process of each machine (``LOCAL_RANK`` 0), ``then()`` on
    the others once every first process is done: files written once per machine (e.g.
    ``fit --shard-clicks``'s shards), then read by every process.

    The others wait in a collective of a ``gloo`` group without the default 30-minute
    timeout (the work may take hours). An error of a first process is raised on it and,
    as a :class:`~sessionrec.errors.SessionrecError`, on every other process. Outside
    ``torchrun`` (no process group): ``work()``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return work()
    group = dist.new_group(backend="gloo", timeout=timedelta(days=7))
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    result, error = None, None
    if first:
        try:
            result = work()
        except Exception as e:  # every process must reach the collective below
            error = e
    failed = torch.tensor([float(error is not None)])
    dist.all_reduce(failed, group=group)
    dist.destroy_process_group(group)
    if error is not None:
        raise error
    if failed.item() > 0:
        raise SessionrecError(
            "the first process of a machine failed (its error is in its output); this "
            "process stops too"
        )
    return result if first else then()  # type: ignore[return-value]


def _collective_device() -> torch.device:
    """Where tensors of collectives live: the GPU under nccl, else the CPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def leave_distributed() -> None:
    """Leave the process group (after training; a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _TrainingStep(torch.nn.Module):
    """The forward of a training step (logits of a batch) as one module, for
    :class:`~torch.nn.parallel.DistributedDataParallel` to wrap."""

    def __init__(self, model: SRGNN, bf16: bool) -> None:
        super().__init__()
        self.model = model
        self.bf16 = bf16

    def forward(self, graph: Any) -> torch.Tensor:
        return _logits(self.model, graph, self.bf16)


def _all_reduce_sum(*values: float) -> list[float]:
    """Sums of ``values`` over the processes (the values themselves in one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return t.tolist()


def _from_rank_zero(value: float) -> float:
    """Rank 0's ``value`` on every process (so all stop and select alike)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.broadcast(t, 0)
    return float(t.item())


class _TrainingData:
    """The training samples of each epoch, the validation samples and the counts the
    trainer needs, from a dataset in memory or in shards (:func:`_training_data`).

    Attributes:
        valid: validation samples (``None`` without a validation split).
        item_counts: int64 ``[n_items]`` clicks per item over all training sessions.
        fit_counts: the same over the sessions trained on (validation excluded).
        n_fit_samples: training samples per epoch.
        n_train_sessions: training sessions (validation included).
    """

    valid: Samples | ChunkedSamples | None
    item_counts: np.ndarray
    fit_counts: np.ndarray
    n_fit_samples: int
    n_train_sessions: int

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        """``(samples, order)`` chunks of one epoch: train on ``samples`` in ``order``;
        the order depends only on ``(seed, epoch)``, so a resumed run replays it."""
        raise NotImplementedError


class _InMemoryData(_TrainingData):
    """One chunk: every training sample, shuffled as a whole."""

    def __init__(self, dataset: SessionDataset, cfg: TrainConfig, n_items: int) -> None:
        if cfg.valid_fraction > 0:
            fit, valid = validation_split(dataset.train, cfg.valid_fraction, cfg.max_session_length)
        else:  # an epoch count chosen earlier on validation: train on everything
            fit, valid = dataset.train, None
        self.samples = fit.to_samples(cfg.max_session_length)
        self.valid = valid
        self.item_counts = np.bincount(dataset.train.items, minlength=n_items)
        self.fit_counts = np.bincount(fit.items, minlength=n_items)
        self.n_fit_samples = len(self.samples)
        self.n_train_sessions = len(dataset.train)

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        yield self.samples, np.random.default_rng([seed, epoch]).permutation(len(self.samples))


class _ShardedData(_TrainingData):
    """One shard in memory at a time: each epoch visits the shards in a random order
    and shuffles the samples within each; each shard's latest ``valid_fraction`` of
    sessions validate (:mod:`sessionrec.data.shards`)."""

    def __init__(self, dataset: ShardedDataset, cfg: TrainConfig, n_items: int) -> None:
        self.dataset, self.cfg = dataset, cfg
        self.item_counts = np.zeros(n_items, dtype=np.int64)
        self.fit_counts = np.zeros(n_items, dtype=np.int64)
        self.n_fit_samples = n_valid = self.n_train_sessions = 0
        for i in range(dataset.n_shards):  # counts: one pass, one shard at a time
            sessions = dataset.train_shard(i)
            fit, valid = self._split(sessions)
            self.item_counts += np.bincount(sessions.items, minlength=n_items)
            self.fit_counts += np.bincount(fit.items, minlength=n_items)
            self.n_fit_samples += fit.n_samples
            n_valid += 0 if valid is None else len(valid)
            self.n_train_sessions += len(sessions)
        self.valid = (
            None
            if cfg.valid_fraction <= 0
            else ChunkedSamples(self._valid_shard, dataset.n_shards, n_valid)
        )

    def _split(self, sessions: Sessions) -> tuple[Sessions, Samples | None]:
        if self.cfg.valid_fraction <= 0:
            return sessions, None
        return validation_split(
            sessions, self.cfg.valid_fraction, self.cfg.max_session_length, allow_empty=True
        )

    def _valid_shard(self, i: int) -> Samples:
        valid = self._split(self.dataset.train_shard(i))[1]
        assert valid is not None
        return valid

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[Samples, np.ndarray]]:
        for i in np.random.default_rng([seed, epoch]).permutation(self.dataset.n_shards):
            fit = self._split(self.dataset.train_shard(int(i)))[0]
            samples = fit.to_samples(self.cfg.max_session_length)
            # one shard shuffles as a dataset in memory does (the same run, sample for sample)
            key = [seed, epoch] if self.dataset.n_shards == 1 else [seed, epoch, int(i)]
            yield samples, np.random.default_rng(key).permutation(len(samples))


def _training_data(
    dataset: SessionDataset | ShardedDataset, cfg: TrainConfig, n_items: int
) -> _TrainingData:
    if isinstance(dataset, SessionDataset):
        return _InMemoryData(dataset, cfg, n_items)
    return _ShardedData(dataset, cfg, n_items)


class Trainer:
    """Trains an :class:`SRGNN` on a :class:`SessionDataset`.

    Args:
        model_config: architecture.
        train_config: optimisation and selection.
        out_dir: where checkpoints and the final model go (``None``: nothing written).
        progress: tqdm bars on stderr.
        max_minutes: stop training (after the current step) past this wall time; the best
            checkpoint so far is kept and tested.

    Launched by ``torchrun`` (:func:`init_distributed` called first), each process trains
    on its share of every batch with :class:`~torch.nn.parallel.DistributedDataParallel`
    (gradients averaged over the processes, so a step sees the whole ``batch_size``
    batch, as in one process); every process validates, rank 0's score decides, and only
    rank 0 writes checkpoints and the model.
    """

    def __init__(
        self,
        model_config: SRGNNConfig,
        train_config: TrainConfig | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        max_minutes: float | None = None,
    ) -> None:
        self.model_config = model_config
        self.train_config = train_config or TrainConfig()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.rank, self.world_size = _rank_and_world()
        self.progress = progress and self.rank == 0
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
            dataset: training sessions and test samples.
            resume: continue from ``out_dir/checkpoint.pt``.
            catalog: item content for a content model (``model_config`` from
                :func:`with_catalog`), aligned to ``dataset.vocab``; its items without
                training clicks get content-only vectors.
            warm_start: a previous model to start from (:func:`_warm_start`); what was
                kept, added and no longer seen goes to ``metrics["warm_start"]``.
        """
        cfg = self.train_config
        vocab = _model_vocab(dataset, self.model_config, catalog)
        _seed_everything(cfg.seed)
        data = _training_data(dataset, cfg, self.model_config.n_items)
        valid, item_counts = data.valid, data.item_counts

        model = SRGNN(self.model_config)
        if catalog is not None:
            # content only for the items this run never sees clicked (validation excluded)
            model.set_catalog(catalog_tensors(catalog), torch.from_numpy(data.fit_counts == 0))
        warm = (
            None if warm_start is None else _warm_start(model, vocab, warm_start, cfg.warm_shrink)
        )
        device = resolve_device(cfg.device)
        model.to(device)  # after the catalog and the warm start, which fill it on the CPU
        if warm is not None:
            self._log(
                f"warm start: {warm['items_kept']} items kept, {warm['items_added']} added, "
                f"{warm['items_no_longer_seen']} of the previous model no longer seen; "
                f"weights at {cfg.warm_shrink:g} x old + {1 - cfg.warm_shrink:g} x fresh"
            )
        step: torch.nn.Module = _TrainingStep(model, cfg.bf16_scoring)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # buffers (catalog features) are constant: no broadcast before each forward
            step = DistributedDataParallel(
                step,
                device_ids=[device.index] if device.type == "cuda" else None,
                forward_sync_buffers=False,
            )
        optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        schedule = (
            cfg
            if warm is None or cfg.warm_lr_decay_first is None
            else replace(cfg, lr_decay_first=cfg.warm_lr_decay_first)
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(schedule, e))
        history: list[dict[str, Any]] = []
        best_score, best_epoch, best_state = -math.inf, -1, None
        progress_score, stale = -math.inf, 0  # early stopping (min_improvement)
        start_epoch = 0
        checkpoint_path = None if self.out_dir is None else self.out_dir / "checkpoint.pt"
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            if checkpoint_path is None or not checkpoint_path.is_file():
                raise ArtifactError(f"--resume: no checkpoint.pt in {self.out_dir}")
            ck = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            start_epoch = int(ck["epoch"]) + 1
            history = json.loads(ck["history"])
            best_score, best_epoch = float(ck["best_score"]), int(ck["best_epoch"])
            best_state = ck["best_model"]
            progress_score = float(ck.get("progress_score", best_score))
            stale = int(ck.get("stale", start_epoch - 1 - best_epoch))
            torch.manual_seed(cfg.seed + start_epoch)
            self._log(f"resumed after epoch {start_epoch} (best epoch {best_epoch + 1})")

        t0 = time.monotonic()
        deadline = None if self.max_minutes is None else t0 + 60.0 * self.max_minutes
        stopped_early = False
        for epoch in range(start_epoch, cfg.epochs):
            if stale >= cfg.patience:
                break
            model.train()
            torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout: replayable per epoch
            bar = tqdm(
                total=data.n_fit_samples,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="sample",
                disable=not self.progress,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            loss_sum, seen, t_epoch = 0.0, 0, time.monotonic()
            epoch_lr = optimizer.param_groups[0]["lr"]
            step_nr = 0
            # each epoch's order depends only on (seed, epoch): resumed runs replay it
            for samples, order in data.epoch(cfg.seed, epoch):
                n_batches = math.ceil(len(order) / cfg.batch_size)
                if self.world_size > 1 and len(order) % cfg.batch_size < self.world_size:
                    n_batches = len(order) // cfg.batch_size  # every process needs a share
                for b in range(n_batches):
                    share = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                    batch = samples.select(share[self.rank :: self.world_size])
                    graph = session_graph_batch(batch, self.model_config.edge_weights)
                    logits = step(graph.to(device))
                    loss = F.cross_entropy(
                        logits,
                        torch.from_numpy(batch.targets).to(device),
                        label_smoothing=cfg.label_smoothing,
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += loss.item() * len(batch)
                    seen += len(batch)
                    bar.update(len(batch))
                    if step_nr % 50 == 0:
                        rate = seen / max(time.monotonic() - t_epoch, 1e-9)
                        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", samples_s=f"{rate:.0f}")
                    step_nr += 1
                    if deadline is not None and _from_rank_zero(time.monotonic() > deadline):
                        stopped_early = True
                        break
                if stopped_early:
                    break
            bar.close()
            scheduler.step()
            epoch_seconds = time.monotonic() - t_epoch
            loss_sum, seen = _all_reduce_sum(loss_sum, seen)
            seen = int(seen)
            if valid is not None:
                valid_metrics = evaluate_model(
                    model,
                    valid,
                    batch_size=cfg.eval_batch_size,
                    bf16=cfg.bf16_scoring,
                    progress=self.progress,
                    desc="validate",
                    max_length=inference_max_length(cfg),
                )
                score = _from_rank_zero(_score(valid_metrics, cfg.select_metric))
            else:
                valid_metrics, score = None, float(epoch)  # no validation: the last epoch
            record = {
                "epoch": epoch + 1,
                "loss": loss_sum / max(seen, 1),
                "samples": seen,
                "seconds": epoch_seconds,
                "samples_per_s": seen / max(epoch_seconds, 1e-9),
                "lr": epoch_lr,  # the rate this epoch trained with
                "valid": valid_metrics,
                "complete": not stopped_early,
            }
            history.append(record)
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if valid is None or score > progress_score + cfg.min_improvement:
                progress_score, stale = score, 0
            else:
                stale += 1
            self._log(
                f"epoch {epoch + 1}: loss {record['loss']:.4f}, {record['samples_per_s']:.0f} "
                f"samples/s, {epoch_seconds:.0f} s"
                + (
                    f"; valid HR@20 {valid_metrics['hr@20']:.2f} "
                    f"MRR@20 {valid_metrics['mrr@20']:.2f}"
                    + (" (best)" if best_epoch == epoch else "")
                    if valid_metrics is not None
                    else ""
                )
            )
            if checkpoint_path is not None and self.rank == 0:
                _atomic_torch_save(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch,
                        "history": json.dumps(history),
                        "best_score": best_score,
                        "best_epoch": best_epoch,
                        "best_model": best_state,
                        "progress_score": progress_score,
                        "stale": stale,
                    },
                    checkpoint_path,
                )
            if stopped_early:
                self._log(f"stopped: --max-minutes {self.max_minutes} reached")
                break

        if best_state is None:
            raise ConfigError("no epoch was trained (epochs already done, or max-minutes = 0)")
        selection = {
            "valid": next(h["valid"] for h in history if h["epoch"] == best_epoch + 1),
            "best_epoch": best_epoch + 1,
        }
        if warm is not None:
            selection["warm_start"] = warm
        if valid is not None and cfg.repeat_bonus_grid:
            model.load_state_dict(best_state)
            bonus = calibrate_repeat_bonus(
                model,
                valid,
                cfg.repeat_bonus_grid,
                cfg.select_metric,
                cfg.eval_batch_size,
                inference_max_length(cfg),
            )
            selection["repeat_bonus"] = bonus
            model.config = replace(model.config, repeat_bonus=bonus["selected"])
            self._log(f"repeat bonus: {bonus['selected']} (chosen on validation)")
        if valid is not None and cfg.new_item_offset_grid and catalog is not None:
            model.load_state_dict(best_state)
            offset = calibrate_new_item_offset(
                model,
                valid,
                cfg.new_item_offset_grid,
                cfg.select_metric,
                cfg.eval_batch_size,
                inference_max_length(cfg),
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
        if cfg.refit:
            return self._refit(
                dataset,
                best_epoch + 1,
                history,
                selection,
                resume,
                catalog,
                warm_start,
                {
                    "repeat_bonus": model.config.repeat_bonus,
                    "new_item_offset": model.config.new_item_offset,
                },
            )
        model.load_state_dict(best_state)
        test_metrics = evaluate_model(
            model,
            dataset.test,
            batch_size=cfg.eval_batch_size,
            item_counts=item_counts,
            bf16=cfg.bf16_scoring,
            progress=self.progress,
            desc="test",
            max_length=inference_max_length(cfg),
        )
        metrics = {
            "test": test_metrics,
            **selection,
            "epochs_trained": len(history),
            "train_seconds": float(sum(h["seconds"] for h in history)),
            "seconds_per_epoch": float(
                np.mean([h["seconds"] for h in history if h["complete"]] or [np.nan])
            ),
        }
        model.cpu()  # saving, export and serving are CPU code
        trained = TrainedModel(
            model, vocab, cfg, item_counts, history, metrics, dataset.fingerprint()
        )
        if self.out_dir is not None and self.rank == 0:
            trained.save(self.out_dir)
        return trained

    def _refit(
        self,
        dataset: SessionDataset | ShardedDataset,
        epochs: int,
        selection_history: list[dict[str, Any]],
        selection: dict[str, Any],
        resume: bool,
        catalog: ItemCatalog | None,
        warm_start: TrainedModel | None,
        selected: dict[str, float],
    ) -> TrainedModel:
        """Train a fresh model (or one warm-started like the selection run) on all
        training sessions for the selected epoch count."""
        cfg = replace(self.train_config, valid_fraction=0.0, refit=False, epochs=epochs)
        out = None if self.out_dir is None else self.out_dir / "refit"
        n = dataset.stats()["train_sessions"]
        self._log(f"refit: {epochs} epoch(s) on all {n} training sessions")
        model_config = replace(self.model_config, **selected)  # as chosen on validation
        refit = Trainer(model_config, cfg, out, self.progress).fit(
            dataset,
            resume=resume and out is not None and (out / "checkpoint.pt").is_file(),
            catalog=catalog,
            warm_start=warm_start,
        )
        for record in refit.history:
            record["phase"] = "refit"
        refit.train_config = self.train_config
        refit.history = selection_history + refit.history
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
