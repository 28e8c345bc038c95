"""The cold-start study: hold items out of training, then compare content and ids.

:func:`cold_start_experiment` removes a random share of items from the training sessions
(:func:`sessionrec.data.cold.hold_out_items`; they stay in the catalog), trains a content
model (item vectors from the catalog, :func:`sessionrec.train.with_catalog`) and an
id-only model of the same config on what is left, and scores the untouched test samples
with both and with the category-popularity baseline
(:class:`sessionrec.evaluate.baselines.CategoryPopularity`). Each is reported over all
test samples and by the group of the target item:

- ``cold``: the held-out items (no training click; only content can rank them);
- ``warm``: every other item;
- ``longtail``: the least-clicked half of the warm items
  (:func:`sessionrec.data.cold.longtail_mask`).

The validation sessions (the latest ``validation_fraction`` of the training sessions:
the training config's, else the dataset's) keep
their clicks on the held-out items, as the newest sessions of a live catalog click its
new items: the models never train on them, and the content model's ``new_item_offset``
(how often it recommends items without clicks) is chosen on them
(``TrainConfig.new_item_offset_grid``). The category-popularity baseline, which has no
validation step, is fitted on the training sessions with every held-out click removed.

Keys per method: ``hr@K``, ``mrr@K``, ``{group}_hr@K``, ``{group}_mrr@K``,
``{group}_ndcg@K`` and ``{group}_n_samples`` (percent, ``K`` in ``ks``).

:func:`new_items_experiment` is the same comparison on the new items a dataset's test
period really has (prepared with its catalog, which keeps the test clicks on catalog
items without training clicks): nothing is held out, and the group ``new`` (targets
without a training click) takes the place of ``cold``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sessionrec.errors import ConfigError

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.nn.srgnn import SRGNNConfig
    from sessionrec.train import TrainConfig

__all__ = ["cold_start_experiment", "new_items_experiment", "category_codes"]

_REPORTED = ("hr", "mrr")


def category_codes(catalog: ItemCatalog, column: str | None = None) -> np.ndarray:
    """int64 ``[n]`` codes of the categorical ``column`` (default: the first one).

    Raises:
        ConfigError: the catalog has no categorical column, or not ``column``.
    """
    if not catalog.categorical:
        raise ConfigError(
            "the category-popularity baseline needs a categorical catalog column; this "
            "catalog has none (declare one with categorical=[...])"
        )
    name = column if column is not None else next(iter(catalog.categorical))
    if name not in catalog.categorical:
        raise ConfigError(
            f"no categorical column {name!r} in the catalog "
            f"(categorical columns: {list(catalog.categorical)})"
        )
    return np.asarray(catalog.categorical[name].codes, dtype=np.int64)


def _summary(metrics: dict[str, Any], ks: tuple[int, ...], first: str = "cold") -> dict[str, Any]:
    """The overall and per-group figures of an evaluation, in a fixed key order."""
    out: dict[str, Any] = {}
    for group in ("", f"{first}_", "warm_", "longtail_"):
        for k in ks:
            for m in _REPORTED:
                out[f"{group}{m}@{k}"] = metrics[f"{group}{m}@{k}"]
        out[f"{group}n_samples"] = metrics[f"{group}n_samples"]
    return out


def cold_start_experiment(
    dataset: SessionDataset,
    catalog: ItemCatalog,
    fraction: float,
    seed: int,
    model_config: SRGNNConfig,
    train_config: TrainConfig,
    category_column: str | None = None,
    ks: tuple[int, ...] = (10, 20),
    progress: bool | str = False,
) -> dict[str, Any]:
    """Hold out ``fraction`` of the items, train content and id-only models, compare.

    Args:
        dataset: the full dataset; its test samples are used unchanged.
        catalog: the item catalog as read (not aligned), or aligned to ``dataset.vocab``.
        fraction: share of the clicked items held out of training.
        seed: picks the held-out items (the models train with ``train_config.seed``).
        model_config: the id-only architecture (``n_items`` of ``dataset``); the content
            model is :func:`~sessionrec.train.with_catalog` of it.
        train_config: optimisation and selection, the same for both models.
        category_column: the catalog column of the category-popularity baseline.
        ks: cut-offs.
        progress: progress bars and logs on stderr (``"lines"``: the logs alone; as
            :class:`~sessionrec.train.Trainer`'s).

    Returns:
        ``{"content": {...}, "id_only": {...}, "category_popularity": {...},
        "held_out_items": int, "train_sessions": int, ...}`` (see the module docstring).
    """
    from sessionrec.data.cold import hold_out_items, longtail_mask
    from sessionrec.data.contract import DataContract

    if model_config.content is not None:
        raise ConfigError("cold_start_experiment: give the id-only model config")
    aligned = catalog if catalog.n_vocab is not None else catalog.align(dataset.vocab)
    contract = DataContract.of(dataset).with_validation_fraction(train_config.validation_fraction)
    split = hold_out_items(dataset, fraction, seed, keep_recent=contract.validation_fraction)
    train_data = split.dataset
    n_vocab, n_all = dataset.n_items, len(aligned)
    counts = np.bincount(train_data.train.items, minlength=n_all)  # [n_all]
    cold = np.zeros(n_all, dtype=bool)
    cold[:n_vocab] = split.cold
    longtail = np.zeros(n_all, dtype=bool)
    longtail[:n_vocab] = longtail_mask(counts[:n_vocab], split.cold)
    groups = {"cold": cold, "warm": ~cold, "longtail": longtail}  # over the content items

    results: dict[str, Any] = {
        "fraction": fraction,
        "seed": seed,
        "held_out_items": int(split.cold.sum()),
        "catalog_items_without_clicks": int(aligned.n_without_clicks),
        "train_sessions": len(train_data.train),
        "recent_sessions_with_held_out_clicks": int(
            train_data.meta["cold_items"]["recent_sessions_kept_whole"]
        ),
        "test_samples": len(dataset.test),
    }

    baseline_train = hold_out_items(dataset, fraction, seed).dataset.train
    _compare(
        results, train_data, dataset, aligned, groups, baseline_train, model_config,
        train_config, category_column, ks, progress, "cold",
    )  # fmt: skip
    return results


def _compare(
    results: dict[str, Any],
    train_data: SessionDataset,
    dataset: SessionDataset,
    aligned: ItemCatalog,
    groups: dict[str, np.ndarray],
    baseline_train: Any,
    model_config: SRGNNConfig,
    train_config: TrainConfig,
    category_column: str | None,
    ks: tuple[int, ...],
    progress: bool | str,
    first: str,
) -> None:
    """Train a content and an id-only model on ``train_data``, fit category popularity
    on ``baseline_train``, and add each one's figures on ``dataset.test`` by group
    (``groups``: bool masks over the content model's items) to ``results``."""
    from sessionrec.evaluate.baselines import CategoryPopularity
    from sessionrec.evaluate.evaluation import evaluate_recommender
    from sessionrec.train import Trainer, evaluate_model, with_catalog

    n_vocab = dataset.n_items
    vocab_groups = {name: mask[:n_vocab] for name, mask in groups.items()}
    content_config = with_catalog(replace(model_config, n_items=n_vocab), aligned)
    runs = (
        ("content", content_config, aligned, groups),
        ("id_only", model_config, None, vocab_groups),
    )
    for name, config, run_catalog, target_groups in runs:
        trained = Trainer(config, train_config, progress=progress).fit(
            train_data, catalog=run_catalog
        )
        metrics = evaluate_model(
            trained.model,
            dataset.test,
            ks=ks,
            groups=target_groups,
            max_length=trained.data_contract.inference_max_length,
        )
        results[name] = {
            **_summary(metrics, ks, first),
            "best_epoch": trained.metrics["best_epoch"],
            "repeat_bonus": trained.model.config.repeat_bonus,
        }
        if "new_item_offset" in trained.metrics:
            chosen = trained.metrics["new_item_offset"]
            results[name]["new_item_offset"] = trained.model.config.new_item_offset
            results[name]["validation_new_targets"] = chosen["new_targets"]

    baseline = CategoryPopularity(category_codes(aligned, category_column)[:n_vocab])
    baseline.fit(baseline_train, n_vocab)
    metrics = evaluate_recommender(baseline, dataset.test, n_vocab, ks=ks, groups=vocab_groups)
    results["category_popularity"] = _summary(metrics, ks, first)


def new_items_experiment(
    dataset: SessionDataset,
    catalog: ItemCatalog,
    model_config: SRGNNConfig,
    train_config: TrainConfig,
    category_column: str | None = None,
    ks: tuple[int, ...] = (10, 20),
    progress: bool | str = False,
) -> dict[str, Any]:
    """Content model, id-only model and category popularity on the new items a dataset's
    test period really has.

    ``dataset`` is prepared with its catalog (:func:`sessionrec.data.protocol.prepare`
    with ``catalog=``: the test keeps the clicks on *new items*, catalog items without a
    training click). Nothing is held out: the three methods train on the training
    sessions as they are and are scored on the same test samples, by the group of the
    target: ``new`` (no training click), ``warm`` (every other item), ``longtail`` (the
    least-clicked half of the warm items). The content model chooses its
    ``new_item_offset`` on validation, as in training.

    Args:
        dataset: the prepared dataset (in memory).
        catalog: the item catalog, as read or aligned to ``dataset.vocab``.
        model_config: the id-only architecture; the content model is
            :func:`~sessionrec.train.with_catalog` of it.
        train_config: optimisation and selection, the same for both models.
        category_column: the catalog column of the category-popularity baseline.
        ks: cut-offs.
        progress: progress on stderr (``"lines"``: one line per epoch).

    Returns:
        ``{"content": {...}, "id_only": {...}, "category_popularity": {...},
        "new_items": int, "new_test_samples": int, ...}`` with ``new_hr@K``,
        ``warm_hr@K``, ``longtail_hr@K`` (and MRR, ``n_samples``) per method.

    Raises:
        ConfigError: ``model_config`` is a content model, or no test target is a new
            item (the dataset was prepared without its catalog).
    """
    from sessionrec.data.cold import longtail_mask

    if model_config.content is not None:
        raise ConfigError("new_items_experiment: give the id-only model config")
    aligned = catalog if catalog.n_vocab is not None else catalog.align(dataset.vocab)
    n_vocab, n_all = dataset.n_items, len(aligned)
    counts = np.bincount(dataset.train.items, minlength=n_all)  # [n_all]
    new = np.zeros(n_all, dtype=bool)
    new[:n_vocab] = counts[:n_vocab] == 0
    new_targets = int(new[dataset.test.targets].sum())
    if new_targets == 0:
        raise ConfigError(
            "no test target is a new item (a catalog item without training clicks): "
            "prepare the dataset with its catalog, which keeps the test clicks on new items",
            options=("prepare.catalog", "ProtocolConfig.keep_new_items"),
        )
    longtail = np.zeros(n_all, dtype=bool)
    longtail[:n_vocab] = longtail_mask(counts[:n_vocab], new[:n_vocab])
    groups = {"new": new, "warm": ~new, "longtail": longtail}
    results: dict[str, Any] = {
        "new_items": int(new[:n_vocab].sum()),
        "catalog_items_without_clicks": int(aligned.n_without_clicks),
        "train_sessions": len(dataset.train),
        "test_samples": len(dataset.test),
        "new_test_samples": new_targets,
    }
    _compare(
        results, dataset, dataset, aligned, groups, dataset.train, model_config,
        train_config, category_column, ks, progress, "new",
    )  # fmt: skip
    return results
