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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.shards import ShardedDataset
    from sessionrec.train.model_dir import TrainedModel

__all__ = ["model_vocab", "extends_vocab", "warm_start"]

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


def warm_start(
    model: SRGNN, vocab: ItemVocab, previous: TrainedModel, shrink: float = 1.0
) -> dict[str, Any]:
    r"""Carry a previous model's weights into ``model`` (trained next on ``vocab``'s items).

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
