r"""Vocabularies and warm starts: which items a model scores, and starting from a previous
model.

:func:`model_vocab` checks that the data, the catalog and the model config agree and
returns the model's item vocabulary (the data's items, then a content model's catalog
items without clicks). :func:`warm_start` carries a previous model's weights into a new
one (``Trainer.fit(warm_start=...)``): every weight of the propagation and readout, and
the id embedding of every item the previous model knows, with shrink and perturb
(Ash & Adams, NeurIPS 2020):

.. math::

    \theta_0 = \lambda\,\theta_{old} + (1 - \lambda)\,\theta_{fresh}.

A warm start is refused (:func:`check_warm_start`, which :func:`warm_start` calls and the
command line calls before any work) when the previous model's config differs from this
run's in any field but the data-dependent ones (:data:`DATA_DEPENDENT_FIELDS`), when it
reads another number of last clicks (the data contract's ``max_session_length``), when its
item ids are of another kind (integers vs strings), or when no item of the new data is
known to it. :func:`comparable_samples` picks the test samples a previous model can read,
so that it and its successor are compared on the same samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sessionrec.data.sessions import Samples
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train.config import CONFIGS

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.shards import ShardedDataset
    from sessionrec.train.model_dir import TrainedModel

__all__ = [
    "DATA_DEPENDENT_FIELDS",
    "model_vocab",
    "extends_vocab",
    "check_data_items",
    "config_differences",
    "preset_names",
    "check_warm_start",
    "warm_start",
    "comparable_samples",
]

#: :class:`SRGNNConfig` fields that legitimately differ between a model and its warm-started
#: successor: they follow the data (the catalogue size, a catalog's content sizes) or are
#: chosen on validation after training (the repeat bonus, the new-item offset). Whether a
#: model has content at all (``content is None``) must still match.
DATA_DEPENDENT_FIELDS = ("n_items", "content", "repeat_bonus", "new_item_offset")

_ID_TABLES = ("embedding.weight", "item_repr.id_embedding.weight")  # [n_items, d]
# rebuilt from each run's catalog, never carried over
_CONTENT_PREFIXES = ("content_encoder.", "catalog.", "item_repr.content_proj")


def model_vocab(
    dataset: SessionDataset | ShardedDataset,
    model_config: SRGNNConfig,
    catalog: ItemCatalog | None,
) -> ItemVocab:
    """The model's item vocabulary, after checking data, catalog and config agree.

    Raises:
        ConfigError: a content config without a catalog or the reverse, or sizes that
            differ (the catalog not aligned to this dataset).
    """
    n = model_config.n_items
    if catalog is None:
        if model_config.content is not None:
            raise ConfigError(
                "the model config has content columns but no catalog was given",
                options=("Trainer.fit.catalog",),
            )
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


def check_data_items(model_vocab: ItemVocab, data_vocab: ItemVocab) -> None:
    """Refuse to evaluate a model on data whose item indices are not the model's
    (:func:`extends_vocab`), naming why: ids of another kind (integers vs strings: the
    same dump read with another ``id_type``), or other items.

    Raises:
        ConfigError: the id kinds differ, or the data's items are not the model's first
            ones in the model's order.
    """
    if model_vocab.kind != data_vocab.kind:
        raise ConfigError(
            f"the model's item ids are {_KIND_WORDS[model_vocab.kind]} (e.g. "
            f"{_examples(model_vocab.ids)}) and the data's are {_KIND_WORDS[data_vocab.kind]} "
            f"(e.g. {_examples(data_vocab.ids)}): the id kinds differ, so no item matches. "
            f"Prepare the data with the model's id kind (ColumnMap.id_type="
            f"{model_vocab.kind!r}; the model's DataContract.id_kind is "
            f"{model_vocab.kind!r})",
            options=("ColumnMap.id_type",),
        )
    if not extends_vocab(model_vocab.ids, data_vocab):
        raise ConfigError(
            f"the data's item vocabulary ({len(data_vocab):,} items, e.g. "
            f"{_examples(data_vocab.ids)}) holds other items than the model's "
            f"({len(model_vocab):,}, e.g. {_examples(model_vocab.ids)}), or in another "
            "order: evaluate on data prepared from the model's training clicks",
        )


def _lineage(config: SRGNNConfig) -> dict[str, Any]:
    """The fields of ``config`` a warm-started successor must share: every field but the
    data-dependent ones, and whether it is a content model."""
    fields = config.to_dict()
    lineage = {k: v for k, v in fields.items() if k not in DATA_DEPENDENT_FIELDS}
    return {**lineage, "content model": config.content is not None}


def config_differences(previous: SRGNNConfig, config: SRGNNConfig) -> dict[str, tuple[Any, Any]]:
    """The fields in which ``config`` differs from ``previous`` for a warm start: name ->
    ``(previous value, this value)``, every :class:`SRGNNConfig` field but
    :data:`DATA_DEPENDENT_FIELDS` (plus ``"content model"``: one has content, the other
    not). Empty: ``config`` may warm-start from a model of ``previous``."""
    old, new = _lineage(previous), _lineage(config)
    return {k: (old[k], new[k]) for k in old if old[k] != new[k]}


def preset_names(config: SRGNNConfig) -> list[str]:
    """The presets (:data:`~sessionrec.train.config.CONFIGS`) whose model config ``config``
    has, ignoring the data-dependent fields and content (``[]``: overridden fields)."""
    found = []
    for name, (overrides, _) in CONFIGS.items():
        preset = SRGNNConfig(n_items=config.n_items, **overrides)
        if set(config_differences(preset, config)) <= {"content model"}:
            found.append(name)
    return found


def check_warm_start(
    previous: TrainedModel,
    model_config: SRGNNConfig,
    vocab: ItemVocab | None = None,
    max_session_length: int | None = None,
) -> None:
    """Refuse a warm start that would carry nothing useful, or the wrong thing, before
    any work: :func:`warm_start` calls it, and the command line calls it first with the
    config alone (before preparing the data), then with the vocabulary.

    Args:
        previous: the model to start from.
        model_config: the new run's model config.
        vocab: the new run's item vocabulary (``None``: check the config only).
        max_session_length: the last clicks of a session the new run's model reads
            (:attr:`~sessionrec.data.contract.DataContract.inference_max_length` of its
            data); ``None``: not checked.

    Raises:
        ConfigError: ``model_config`` differs from the previous model's in a field that
            is not data-dependent (:func:`config_differences`: another preset or
            override); the previous model reads another number of last clicks (a warm
            start keeps a model's contract: a longer cut would read positions of the
            position readout it never trained, a shorter one would change what the
            published model reads); the item ids are of another kind (integers vs
            strings); no item of ``vocab`` is known to the previous model.
    """
    differences = config_differences(previous.model.config, model_config)
    if differences:
        listed = "; ".join(
            f"{k}: {old!r} there, {new!r} here" for k, (old, new) in differences.items()
        )
        presets = preset_names(previous.model.config)
        preset = f"preset {presets[0]!r}" if presets else "a preset with overrides"
        raise ConfigError(
            f"warm start: the previous model was trained with another model config ({preset}"
            f"; {listed}): its weights would start a model that computes something else. "
            "Warm-start with the previous model's config (the same preset, config_preset, "
            "and the same SRGNNConfig overrides), or train from scratch without a warm start",
            options=("config_preset.name", "SRGNNConfig", "Trainer.fit.warm_start"),
        )
    old_length = previous.data_contract.inference_max_length
    if max_session_length is not None and max_session_length != old_length:
        raise ConfigError(
            f"warm start: the previous model reads the last {old_length} clicks of a session, "
            f"this run's data keeps the last {max_session_length}: a warm start keeps the "
            f"model's contract. Prepare the data with max_session_length={old_length}, or "
            "train from scratch without a warm start to change it",
            options=("ProtocolConfig.max_session_length", "Trainer.fit.warm_start"),
        )
    if vocab is None:
        return
    old_kind, new_kind = previous.vocab.kind, vocab.kind
    if old_kind != new_kind:
        raise ConfigError(
            f"warm start: the previous model's item ids are {_KIND_WORDS[old_kind]} (e.g. "
            f"{_examples(previous.vocab.ids)}), this data's are {_KIND_WORDS[new_kind]} (e.g. "
            f"{_examples(vocab.ids)}): no item can carry over, and the published model would "
            "take another id type from every service. If the ids are the same numbers "
            "read as text, read them as integers (ColumnMap.id_type); if the ids really "
            "changed, train from scratch without a warm start",
            options=("ColumnMap.id_type", "Trainer.fit.warm_start"),
        )
    if not np.any(previous.vocab.index_of(vocab.ids.tolist()) >= 0):
        raise ConfigError(
            f"warm start: none of this data's {len(vocab):,} items (e.g. "
            f"{_examples(vocab.ids)}) is known to the previous model ({len(previous.vocab):,} "
            f"items, e.g. {_examples(previous.vocab.ids)}): nothing would carry over. Check "
            "that the item column is the same one (ColumnMap.item), or train from scratch "
            "without a warm start",
            options=("ColumnMap.item", "Trainer.fit.warm_start"),
        )


_KIND_WORDS = {"int": "integers", "str": "strings"}


def _examples(ids: np.ndarray, n: int = 3) -> str:
    return ", ".join(repr(v) for v in ids[:n].tolist())


def warm_start(
    model: SRGNN,
    vocab: ItemVocab,
    previous: TrainedModel,
    shrink: float = 1.0,
    max_session_length: int | None = None,
) -> dict[str, Any]:
    r"""Carry a previous model's weights into ``model`` (trained next on ``vocab``'s items).

    Every weight of the propagation and readout is copied; the id embedding of each item
    of ``vocab`` that ``previous`` knows is copied to its new row; new items keep their
    fresh initialisation (content vectors in a content model). The content encoder starts
    afresh: category codes and text buckets are recomputed from each run's catalog.
    With ``shrink`` :math:`\lambda < 1` (``TrainConfig.warm_shrink``) a copied weight
    becomes :math:`\lambda\,\theta_{old} + (1 - \lambda)\,\theta_{fresh}`, with
    :math:`\theta_{fresh}` ``model``'s own initialisation (shrink and perturb).

    Args:
        model: the new model (its fresh initialisation), filled in place.
        vocab: the items ``model`` scores, in row order.
        previous: the model to start from.
        shrink: :math:`\lambda` above (1: the old weights as they are).
        max_session_length: the last clicks the new model reads (checked against the
            previous model's contract); ``None``: not checked.

    Returns:
        What happened: ``shrink``, ``items_kept``, ``items_added`` and ``items_no_longer_seen``
        (counts) with up to 20 example ids of the last two (JSON-ready).

    Raises:
        ConfigError: :func:`check_warm_start` refuses it (another model config, another
            ``max_session_length``, another id kind, no item in common), or a weight of
            another shape, or missing.
    """
    check_warm_start(previous, model.config, vocab, max_session_length)
    old_state = previous.model.state_dict()
    new_state = model.state_dict()
    updates = _carried_weights(old_state, new_state)
    old_index = previous.vocab.index_of(vocab.ids.tolist())  # [n_new], -1: a new item
    known = old_index >= 0
    table_name = next(k for k in _ID_TABLES if k in new_state)
    old_ids_table = next((old_state[k] for k in _ID_TABLES if k in old_state), None)
    if old_ids_table is None or old_ids_table.shape[1] != new_state[table_name].shape[1]:
        raise ConfigError(
            "warm start: the previous model has no id table of this size",
            options=("Trainer.fit.warm_start",),
        )
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


def _carried_weights(
    old_state: dict[str, torch.Tensor], new_state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The previous model's propagation and readout weights (not the id table, not the
    content encoder), each checked against this model's shape.

    Raises:
        ConfigError: a weight of another shape, or missing.
    """
    updates: dict[str, torch.Tensor] = {}
    for name, value in new_state.items():
        if name.startswith(_CONTENT_PREFIXES) or name == "cold_mask" or name in _ID_TABLES:
            continue
        old = old_state.get(name)
        if old is None or old.shape != value.shape:
            found = "missing" if old is None else f"of shape {tuple(old.shape)}"
            raise ConfigError(
                f"warm start: the previous model's {name!r} is {found}, this config's is "
                f"{tuple(value.shape)}; warm-start with the same model config",
                options=("config_preset.name", "SRGNNConfig", "Trainer.fit.warm_start"),
            )
        updates[name] = old
    return updates


def comparable_samples(
    samples: Samples, to_previous: np.ndarray, max_length: int
) -> tuple[Samples, Samples]:
    """The samples a previous model can read, for comparing it with its successor on the
    same samples: those whose target and last ``max_length`` prefix clicks (what the
    previous model reads: its ``data_contract.inference_max_length``) it knows.

    Args:
        samples: test samples in the new data's item indices.
        to_previous: int64 ``[n_new_items]``, the previous model's index of each new item,
            ``-1`` for items it does not know
            (``previous.vocab.index_of(data_vocab.ids.tolist())``).
        max_length: the clicks of a prefix the previous model reads (the last ones).

    Returns:
        ``(kept, for_previous)``: the kept samples in the new indices (whole prefixes),
        and the same samples, prefixes cut to ``max_length``, in the previous model's
        indices; both in the order of ``samples``.
    """
    if len(samples) == 0:
        return samples, samples
    cut = samples.last_clicks(max_length)
    unknown_clicks = np.add.reduceat(
        (to_previous[cut.items] < 0).astype(np.int64), cut.offsets[:-1]
    )
    keep = np.flatnonzero((unknown_clicks == 0) & (to_previous[cut.targets] >= 0))
    kept = cut.select(keep)
    for_previous = Samples(
        to_previous[kept.items],
        kept.offsets,
        to_previous[kept.targets],
        kept.session_index,
        kept.times,
    )
    return samples.select(keep), for_previous
