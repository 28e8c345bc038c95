"""New items as they really arrive: test clicks on catalog items without training clicks
are kept (and the items added to the vocabulary); items in neither are dropped and
counted; the srgnn protocol stays as published."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.data.protocol_steps import catalog_id_series, with_new_items
from sessionrec.errors import ConfigError

DAY = 86_400
CFG = ProtocolConfig(min_item_support=1, test_days=1)


def _dump() -> pl.DataFrame:
    """Ten training days on items 1, 2, 3; one test day with item 10 (in the catalog, new
    that day) and item 99 (in neither the training clicks nor the catalog)."""
    rows = []
    for s in range(10):  # training sessions, one a day: 1 -> 2 -> 3
        for j, item in enumerate((1, 2, 3)):
            rows.append((s, item, s * DAY + j))
    test_day = 20 * DAY
    for sid, items in ((100, (1, 10)), (101, (2, 99)), (102, (3, 10, 1))):
        for j, item in enumerate(items):
            rows.append((sid, item, test_day + j))
    return pl.DataFrame(rows, schema=["session_id", "item_id", "timestamp"], orient="row")


def _samples(dataset) -> list[tuple[list, object]]:
    ids = dataset.vocab.ids
    test = dataset.test
    return [(ids[test.prefix(i)].tolist(), ids[test.targets[i]].item()) for i in range(len(test))]


def test_new_catalog_item_in_the_test_days_is_kept():
    dataset = prepare(_dump(), CFG, catalog=np.array([1, 2, 3, 10, 11]))
    assert dataset.vocab.ids.tolist() == [1, 2, 3, 10]  # training items, then new ones
    assert sorted(_samples(dataset)) == [([1], 10), ([3], 10), ([3, 10], 1)]
    report = dataset.meta["report"]["protocol"]
    assert report["new_items"] == 1  # 10 (11 is never clicked: not in the vocabulary)
    assert report["test_clicks_on_new_items"] == 2
    assert report["test_clicks_on_unseen_items"] == 1  # 99: in neither, dropped
    assert dataset.meta["protocol"]["keep_new_items"] is True
    # no training click on the new item
    assert np.bincount(dataset.train.items, minlength=4)[3] == 0


def test_without_a_catalog_new_items_are_dropped_as_before():
    dataset = prepare(_dump(), CFG)
    assert dataset.vocab.ids.tolist() == [1, 2, 3]
    assert _samples(dataset) == [([3], 1)]  # session 102 without item 10
    report = dataset.meta["report"]["protocol"]
    assert report["test_clicks_on_unseen_items"] == 3  # 10 twice, 99 once
    assert "new_items" not in report
    assert dataset.meta["protocol"]["keep_new_items"] is False


def test_keep_new_items_false_with_a_catalog_drops_them():
    dataset = prepare(_dump(), ProtocolConfig(min_item_support=1, test_days=1, keep_new_items=False),
                      catalog=[1, 2, 3, 10])  # fmt: skip
    assert dataset.vocab.ids.tolist() == [1, 2, 3]
    assert _samples(dataset) == [([3], 1)]


def test_string_ids_and_a_catalog_of_another_id_type():
    frame = _dump().with_columns(pl.col("item_id").cast(pl.String).map_elements(
        lambda v: f"sku-{v}", return_dtype=pl.String))  # fmt: skip
    dataset = prepare(frame, CFG, catalog=["sku-1", "sku-2", "sku-3", "sku-10"])
    assert dataset.vocab.ids.tolist() == ["sku-1", "sku-2", "sku-3", "sku-10"]
    # integer catalog ids against string clicks: converted, so "10" names nothing here
    assert prepare(frame, CFG, catalog=[10]).vocab.ids.tolist() == ["sku-1", "sku-2", "sku-3"]


def test_keep_new_items_needs_a_catalog_and_the_default_protocol():
    with pytest.raises(ConfigError, match="needs the catalog") as err:
        prepare(_dump(), ProtocolConfig(min_item_support=1, test_days=1, keep_new_items=True))
    assert "prepare.catalog" in err.value.options
    with pytest.raises(ConfigError, match="srgnn protocol"):
        ProtocolConfig(mode="srgnn", keep_new_items=True)


def test_with_new_items_orders_training_items_then_new_ones():
    ids, n_new = with_new_items(
        pl.Series([5, 3, 5, 1]), pl.Series([9, 7, 3, 9, 8]), pl.Series([7, 9, 1])
    )
    assert ids.to_list() == [1, 3, 5, 7, 9] and n_new == 2  # 8: not in the catalog
    assert with_new_items(pl.Series([2, 1]), pl.Series([7]), None)[0].to_list() == [1, 2]
    assert catalog_id_series(
        np.array(["1", "x", "3"], dtype=object), pl.Int64
    ).sort().to_list() == [1, 3]


def test_sharded_preparation_keeps_the_same_new_items(tmp_path):
    from sessionrec.data.shards import prepare_sharded

    sharded = prepare_sharded(_dump(), tmp_path / "shards", CFG, n_shards=3, catalog=[1, 2, 3, 10])
    assert sharded.vocab.ids.tolist() == [1, 2, 3, 10]
    ids = sharded.vocab.ids
    samples = [
        (ids[chunk.prefix(i)].tolist(), ids[chunk.targets[i]].item())
        for chunk in sharded.test.chunks()
        for i in range(len(chunk))
    ]
    assert sorted(samples) == [([1], 10), ([3], 10), ([3, 10], 1)]
    train_items = np.concatenate([sharded.train_shard(i).items for i in range(sharded.n_shards)])
    assert 3 not in train_items.tolist()  # no training click on the new item
    report = sharded.meta["report"]["protocol"]
    assert (report["new_items"], report["test_clicks_on_new_items"]) == (1, 2)
    assert report["test_clicks_on_unseen_items"] == 1


def test_diginetica_sample_end_to_end(tmp_path, capsys):
    """The raw Diginetica rows and their product categories: prepare keeps the test
    clicks on new catalog items, and the new-item study compares the three methods on
    the same samples."""
    import json

    from conftest import shared_dataset

    from sessionrec.cli import main

    folder = shared_dataset("diginetica-sample")
    catalog = str(folder / "product-categories.csv")
    out = tmp_path / "prepared"
    code = main(["prepare", "--clicks", str(folder / "sample_train-item-views.csv"),
                 "--catalog", catalog, "--min-item-support", "1", "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)["report"]["protocol"]
    assert (report["new_items"], report["test_clicks_on_new_items"]) == (556, 718)
    assert report["test_clicks_on_unseen_items"] == 0  # every product is in the catalog
    code = main(["evaluate", str(out), "--catalog", catalog, "--catalog-categorical",
                 "categoryId", "--new-items", "--epochs", "1", "--threads", "1", "--json",
                 "--quiet"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["new_items"], result["new_test_samples"], result["test_samples"]) == (
        556, 636, 969,
    )  # fmt: skip
    for method in ("content", "id_only", "category_popularity"):
        r = result[method]
        assert r["new_n_samples"] + r["warm_n_samples"] == r["n_samples"] == 969
    # deterministic (no training): pinned from the first run on these files
    assert round(result["category_popularity"]["new_hr@20"], 2) == 57.86


def test_new_item_study_refuses_data_prepared_without_the_catalog():
    from sessionrec.data.catalog import read_catalog
    from sessionrec.studies.cold_start import new_items_experiment
    from sessionrec.train import config_preset

    catalog = read_catalog(
        pl.DataFrame({"item_id": [1, 2, 3, 10], "category": ["a", "a", "b", "b"]}),
        "item_id",
        categorical=["category"],
    )
    dataset = prepare(_dump(), CFG)  # no catalog: the clicks on item 10 are gone
    model_config, train_config = config_preset("default", dataset.n_items, epochs=1)
    with pytest.raises(ConfigError, match="no test target is a new item") as err:
        new_items_experiment(dataset, catalog, model_config, train_config)
    assert "prepare.catalog" in err.value.options
