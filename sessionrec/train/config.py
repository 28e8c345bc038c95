"""Training configuration: :class:`TrainConfig`, the presets, and ``NAME=VALUE`` overrides.

The presets (:data:`CONFIGS`) pair an :class:`~sessionrec.nn.srgnn.SRGNNConfig` with a
:class:`TrainConfig`; :func:`config_preset` returns both for a catalogue size, and
:func:`apply_overrides` changes any field of either by name (``--set NAME=VALUE`` on the
command line). The data settings a model is trained under (the last clicks it reads, the
validation share) are not training options: they come from the dataset
(:class:`~sessionrec.data.contract.DataContract`), except that
:attr:`TrainConfig.validation_fraction` may override the dataset's share.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from sessionrec.errors import ConfigError
from sessionrec.nn.content import content_sizes
from sessionrec.nn.srgnn import SRGNNConfig
from sessionrec.overrides import parse_assignments

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog

__all__ = [
    "TrainConfig",
    "REFITS",
    "CONFIGS",
    "config_preset",
    "lr_factor",
    "with_catalog",
    "apply_overrides",
]

_GRIDS = ("repeat_bonus_grid", "new_item_offset_grid")
#: The values of :attr:`TrainConfig.refit`.
REFITS = ("auto", "none", "full", "recent")


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
            least :data:`~sessionrec.train.evaluation.MIN_NEW_ITEM_TARGETS` validation
            samples have such an item as target (items first clicked in the validation
            sessions are new to the selection run), else the config's value stays. A
            refit inherits it.
        min_improvement: an epoch is progress when its selection score beats the score of
            the last progress epoch by more than this (points of the summed metrics; 0:
            any gain). The best-scoring epoch is kept either way. With a decayed rate the
            score can creep up by hundredths per epoch; ``0.1`` stops such a run.
        validation_fraction: share of the latest training sessions held out for
            validation; ``None`` (default): the dataset's, decided when it was prepared
            (``ProtocolConfig.validation_fraction``; 0.1 for published benchmarks). ``0``
            trains on every training session for exactly ``epochs`` epochs and keeps the
            last one: use it only with an epoch count chosen on validation before.
        refit: what follows the selection on validation (the validation sessions are the
            latest, most test-like training data, and the selection run never trained on
            them): ``"none"`` (the selected state is shipped), ``"full"`` (a fresh model
            trained on all training sessions, validation included, for the selected epoch
            count, with the same seed and schedule) or ``"recent"`` (the selected state
            continues on the validation sessions, one pass at each learning rate its
            epochs used: a tenth of an epoch a pass, where ``"full"`` costs as many
            epochs again; README, "Time to accuracy") or ``"auto"`` (the default:
            ``"none"``, and under a time budget, ``Trainer(max_minutes=...)``, the plan's
            choice: ``"full"`` where it fits, else ``"recent"``;
            :mod:`sessionrec.train.budget`).
            ``True`` / ``False`` (older configs) mean ``"full"`` / ``"none"``. The
            shipped model is tested.
        select_metric: validation metric(s) that pick the checkpoint: their sum.
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
        loss: ``"full"`` (cross-entropy over every item), ``"sampled"`` (a sampled
            softmax with in-batch and shared sampled negatives and the logQ correction,
            whose step cost does not grow with the catalog: :mod:`sessionrec.train.objective`)
            or ``"auto"`` (sampled above
            :data:`~sessionrec.train.objective.SAMPLED_SOFTMAX_MIN_ITEMS` items).
        num_negatives: with the sampled softmax, the items drawn per step (:math:`K`).
        negative_exponent: with the sampled softmax, :math:`\alpha` of the drawing
            distribution :math:`q_c \propto (n_c + 1)^\alpha` (:math:`n_c` an item's
            target count; 0: uniform, 1: popularity).
        valid_samples: the validation samples that select the model: ``"all"``, a count
            (a fixed random subset), or ``"auto"`` (all, unless ranking every item for
            each would cost more than
            :data:`~sessionrec.train.training_data.VALID_SCORE_BUDGET` scores: at millions
            of items a subset; :func:`~sessionrec.train.training_data.valid_cap`).

    Raises:
        ConfigError: a value outside what is allowed, naming the field.
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
    validation_fraction: float | None = None
    refit: str = "auto"
    select_metric: tuple[str, ...] = ("hr@20", "mrr@20")
    bf16_scoring: bool = False
    device: str = "cpu"
    seed: int = 42
    eval_batch_size: int = 500
    warm_shrink: float = 0.4
    warm_lr_decay_first: int | None = 2
    loss: str = "auto"
    num_negatives: int = 2048
    negative_exponent: float = 0.5
    valid_samples: int | str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.refit, bool):  # configs written before the refit modes
            object.__setattr__(self, "refit", "full" if self.refit else "none")

        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(
                f"{name} must be {rule}, got {getattr(self, name)!r}",
                options=(f"TrainConfig.{name}",),
            )

        for name in (
            "epochs",
            "batch_size",
            "lr_decay_every",
            "patience",
            "eval_batch_size",
            "num_negatives",
        ):
            if getattr(self, name) < 1:
                raise bad(name, ">= 1")
        for name in ("lr_decay_first", "warm_lr_decay_first"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise bad(name, ">= 1")
        for name in (
            "lr",
            "lr_decay",
            "weight_decay",
            "label_smoothing",
            "min_improvement",
            "negative_exponent",
        ):
            if not math.isfinite(getattr(self, name)):
                raise bad(name, "a finite number")
        if not 0.0 <= self.warm_shrink <= 1.0:
            raise bad("warm_shrink", "in [0, 1]")
        if self.lr <= 0:
            raise bad("lr", "> 0")
        if not 0.0 < self.lr_decay <= 1.0:
            raise bad("lr_decay", "in (0, 1]")
        if self.weight_decay < 0:
            raise bad("weight_decay", ">= 0")
        fraction = self.validation_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
            raise bad("validation_fraction", "in [0, 1) or None (the dataset's)")
        if self.refit not in REFITS:
            raise bad("refit", "one of " + ", ".join(repr(r) for r in REFITS))
        if self.refit in ("full", "recent") and fraction == 0.0:
            raise ConfigError(
                "refit needs a validation split (validation_fraction > 0) to select on",
                options=("TrainConfig.refit", "TrainConfig.validation_fraction"),
            )
        if self.min_improvement < 0:
            raise bad("min_improvement", ">= 0")
        if self.device not in ("cpu", "cuda", "auto"):
            raise bad("device", "'cpu', 'cuda' or 'auto'")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise bad("label_smoothing", "in [0, 1)")
        if self.loss not in ("auto", "full", "sampled"):
            raise bad("loss", "'auto', 'full' or 'sampled'")
        if not 0.0 <= self.negative_exponent <= 1.0:
            raise bad("negative_exponent", "in [0, 1]")
        if self.valid_samples not in ("auto", "all") and not (
            isinstance(self.valid_samples, int)
            and not isinstance(self.valid_samples, bool)
            and self.valid_samples >= 1
        ):
            raise bad("valid_samples", "'auto', 'all' or an integer >= 1")
        for name in _GRIDS:
            if not all(math.isfinite(v) for v in getattr(self, name)):
                raise bad(name, "finite numbers")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("select_metric", *_GRIDS):
            d[key] = list(getattr(self, key))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`.

        Raises:
            ConfigError: unknown keys, or values outside what is allowed.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("select_metric", *_GRIDS):
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
    """The model and training configs of preset ``name`` (a key of :data:`CONFIGS`) for
    ``n_items`` items, with training overrides (``None`` values are ignored).

    Raises:
        ConfigError: an unknown preset or override.
    """
    try:
        model_overrides, train = CONFIGS[name]
    except KeyError:
        raise ConfigError(
            f"unknown config {name!r}; known: {', '.join(CONFIGS)}",
            options=("config_preset.name",),
        ) from None
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    try:
        train = replace(train, **overrides)
    except TypeError as exc:
        raise ConfigError(f"config_preset: {exc}") from None
    return SRGNNConfig(n_items=n_items, **model_overrides), train


def with_catalog(model_config: SRGNNConfig, catalog: ItemCatalog) -> SRGNNConfig:
    """``model_config`` turned into a content model over ``catalog``.

    ``catalog`` must be aligned to the training data's vocabulary
    (:meth:`~sessionrec.data.catalog.ItemCatalog.align`): the model's items are the
    vocabulary's, then the catalog items without clicks.

    Raises:
        ConfigError: the catalog is not aligned.
    """
    if catalog.n_vocab is None:
        raise ConfigError(
            "with_catalog: align the catalog to the dataset's vocabulary first "
            "(catalog.align(dataset.vocab))"
        )
    return replace(model_config, n_items=len(catalog), content=content_sizes(catalog))


def apply_overrides(
    overrides: Iterable[str] | Mapping[str, Any],
    model_config: SRGNNConfig,
    train_config: TrainConfig,
) -> tuple[SRGNNConfig, TrainConfig]:
    """Set fields of whichever config (model or training) has them, by name.

    Args:
        overrides: ``{name: value}``, or ``NAME=VALUE`` texts parsed by
            :func:`sessionrec.overrides.parse_assignments` (``dropout=0.2``,
            ``repeat_bonus_grid=0,2,4``). A tuple field (a grid) given one value gets a
            one-value tuple.

    Raises:
        ConfigError: not ``NAME=VALUE``, an unknown field, or a value the config refuses.
    """
    values = overrides if isinstance(overrides, Mapping) else parse_assignments(overrides)
    model_names = {f.name for f in fields(model_config)}
    train_names = {f.name for f in fields(train_config)}
    model_overrides: dict[str, Any] = {}
    train_overrides: dict[str, Any] = {}
    for key, value in values.items():
        if key in model_names:
            config, target = model_config, model_overrides
        elif key in train_names:
            config, target = train_config, train_overrides
        else:
            close = difflib.get_close_matches(key, model_names | train_names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown config field {key!r}{hint}; model fields: {sorted(model_names)}; "
                f"training fields: {sorted(train_names)}",
                options=("SRGNNConfig", "TrainConfig"),
            )
        if isinstance(getattr(config, key), tuple) and not isinstance(value, tuple):
            value = (value,)
        target[key] = value
    try:
        return replace(model_config, **model_overrides), replace(train_config, **train_overrides)
    except TypeError as exc:
        raise ConfigError(f"override: {exc}") from None
