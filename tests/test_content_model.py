"""Content models end to end: training with a catalog, items without clicks, saving,
ONNX export, the CLI, and the cold-start study."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.cli import main
from sessionrec.data.catalog import read_catalog
from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train import Trainer, config_preset, load_model, with_catalog
from tests.conftest import shared_dataset

N = 24  # items 0..23 in 4 categories of 6; item i is followed by i + 1 in its category


def _category(i: int) -> int:
    return i // 6


def _dataset(held_out: tuple[int, ...] = ()) -> SessionDataset:
    """Sessions walk within one category: ``c*6 + j -> c*6 + (j + 1) % 6``."""
    rng = np.random.default_rng(0)
    sessions = []
    for _ in range(400):
        c, j = int(rng.integers(0, 4)), int(rng.integers(0, 6))
        sessions.append([c * 6 + (j + t) % 6 for t in range(int(rng.integers(2, 6)))])
    train = [[i for i in s if i not in held_out] for s in sessions[:340]]
    train = [s for s in train if len(s) >= 2]
    return SessionDataset(
        Sessions.from_lists(train, times=np.arange(float(len(train)))),
        Sessions.from_lists(sessions[340:]).to_samples(),
        ItemVocab(np.arange(100, 100 + N)),
    )


def _catalog_frame(extra: int = 2) -> pl.DataFrame:
    """Every item's category and title, plus ``extra`` catalog items without clicks."""
    ids = list(range(100, 100 + N + extra))
    cats = [f"c{_category(i - 100) % 4}" for i in ids]
    return pl.DataFrame(
        {
            "item_id": ids,
            "category": cats,
            "title": [f"{c} thing number {i}" for c, i in zip(cats, ids, strict=True)],
            "price": [float(i % 7) for i in ids],
        }
    )


def _fit(dataset, catalog, epochs=3, **model_overrides):
    torch.set_num_threads(1)
    model_config, train_config = config_preset(
        "default", dataset.n_items, epochs=epochs, batch_size=32, lr=0.01, patience=10
    )
    if catalog is not None:
        model_config = with_catalog(model_config, catalog)
    model_config = replace(model_config, dim=16, **model_overrides)
    return Trainer(model_config, train_config, progress=False).fit(dataset, catalog=catalog)


@pytest.fixture(scope="module")
def content_model():
    dataset = _dataset()
    catalog = read_catalog(_catalog_frame()).align(dataset.vocab)
    return dataset, catalog, _fit(dataset, catalog)


def test_catalog_items_without_clicks_join_the_vocabulary(content_model):
    dataset, catalog, trained = content_model
    assert trained.model.config.n_items == N + 2
    assert list(trained.vocab.ids[:N]) == list(dataset.vocab.ids)
    assert list(trained.vocab.ids[N:]) == [100 + N, 101 + N]
    assert trained.item_counts[N:].tolist() == [0, 0]
    assert trained.model.cold_mask.tolist() == [False] * N + [True, True]


def test_items_clicked_only_in_validation_are_content_only_while_selecting():
    base = _dataset(held_out=(23,))
    bounds = zip(base.train.offsets[:-1], base.train.offsets[1:], strict=True)
    lists = [base.train.items[a:b].tolist() for a, b in bounds]
    lists.append([22, 23])  # the latest session: in the validation split
    train = Sessions.from_lists(lists, times=np.arange(float(len(lists))))
    dataset = SessionDataset(train, base.test, base.vocab)
    catalog = read_catalog(_catalog_frame()).align(dataset.vocab)
    trained = _fit(dataset, catalog, epochs=1)
    assert trained.item_counts[23] == 1  # counted for popularity...
    assert bool(trained.model.cold_mask[23])  # ...but its id part was never trained


def test_cold_items_get_content_only_vectors(content_model):
    _, _, trained = content_model
    model = trained.model.eval()
    repr_ = model.item_repr
    assert repr_ is not None and model.content_encoder is not None and model.catalog is not None
    with torch.no_grad():
        content = model.content_encoder(model.catalog.features())
        expected = repr_.content_proj(content)  # W c_i, no id part
        expected = expected / expected.norm(dim=1, keepdim=True)  # NISER
        table = model.item_table()
    torch.testing.assert_close(table[N:], expected[N:])
    # clicked items keep their trained id part
    assert not torch.allclose(table[:N], expected[:N])


def test_cold_items_are_left_out_of_the_training_softmax():
    model = SRGNN(SRGNNConfig(n_items=4, dim=4, content={"cardinalities": [3]}))
    model.set_catalog(
        {"categorical": torch.tensor([[1], [1], [2], [2]]), "numeric": torch.zeros(4, 0)},
        torch.tensor([False, False, False, True]),
    )
    s = torch.randn(2, 4)
    model.train()
    assert torch.isinf(model.scores(s)[:, 3]).all() and torch.isfinite(model.scores(s)[:, :3]).all()
    model.eval()
    assert torch.isfinite(model.scores(s)).all()  # recommendable at inference
    with_negatives = SRGNN(replace(model.config, cold_negatives=True))
    with_negatives.set_catalog(model.catalog.features(), model.cold_mask)
    assert torch.isfinite(with_negatives.train().scores(s)).all()


def test_learns_and_recommends_a_held_out_item_from_its_content():
    held_out = (7,)  # category 1; 6 -> 7 -> 8 in training data is gone
    dataset = _dataset(held_out)
    catalog = read_catalog(_catalog_frame(extra=0)).align(dataset.vocab)
    trained = _fit(dataset, catalog, epochs=4)
    assert trained.item_counts[7] == 0 and bool(trained.model.cold_mask[7])
    model = trained.model.eval()
    graph = session_graph_batch(Samples.from_lists([[6]], [7]), model.config.edge_weights)
    with torch.no_grad():
        scores = model(graph)[0].numpy()
    top = np.argsort(-scores)[:8]
    # the content-only item is ranked with its category, not pushed to the bottom
    assert 7 in top
    assert sum(_category(int(i)) == 1 for i in top[:6]) >= 3


def test_save_load_keeps_the_catalog(content_model, tmp_path):
    dataset, _, trained = content_model
    trained.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.vocab == trained.vocab
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.model.eval().item_table(), trained.model.eval().item_table()
        )


def test_onnx_export_recommends_items_without_clicks(content_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender

    _, _, trained = content_model
    path = export_onnx(trained, tmp_path / "m.onnx")
    rec = SessionRecommender.load(path, threads=1)
    got = rec.next_items([100, 101], k=N + 2, exclude_seen=False)
    ids = [r.item_id for r in got]
    assert sorted(ids) == sorted(trained.vocab.ids.tolist())  # cold ones included
    graph = session_graph_batch(Samples.from_lists([[0, 1]], [0]), "binary")
    with torch.no_grad():
        reference = trained.model.eval()(graph)[0].numpy()
    scores = np.array([r.score for r in got])
    np.testing.assert_allclose(scores, -np.sort(-reference), atol=1e-4)
    index = trained.vocab.index_of(ids)
    np.testing.assert_allclose(reference[index], scores, atol=1e-4)


def test_new_item_offset_by_hand():
    model = SRGNN(SRGNNConfig(n_items=4, dim=4, content={"cardinalities": [3]}))
    model.set_catalog(
        {"categorical": torch.tensor([[1], [1], [2], [2]]), "numeric": torch.zeros(4, 0)},
        torch.tensor([False, True, False, True]),
    )
    logits = torch.zeros(2, 4)
    model.eval()
    torch.testing.assert_close(model.add_new_item_offset(logits), logits)  # 0 by default
    expected = torch.tensor([[0.0, -1.5, 0.0, -1.5]] * 2)  # + b at the items without clicks
    torch.testing.assert_close(model.add_new_item_offset(logits, offset=-1.5), expected)
    model.config = replace(model.config, new_item_offset=-1.5)
    graph = session_graph_batch(Samples.from_lists([[0, 2], [1]], [0, 0]))
    with torch.no_grad():
        plain = model.scores(model.session_embedding(graph))
        torch.testing.assert_close(model(graph), plain + expected)  # forward adds it
    model.train()  # training never sees it
    torch.testing.assert_close(model.add_new_item_offset(logits), logits)
    id_only = SRGNN(SRGNNConfig(n_items=4, dim=4, new_item_offset=-1.5)).eval()
    torch.testing.assert_close(id_only.add_new_item_offset(logits), logits)  # no new items
    with pytest.raises(ConfigError, match="finite"):
        SRGNNConfig(n_items=4, new_item_offset=float("nan"))


def test_new_item_offset_in_the_exported_file(content_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from copy import deepcopy

    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender

    _, _, trained = content_model
    shifted = deepcopy(trained)
    shifted.model.config = replace(shifted.model.config, new_item_offset=-3.0)
    rec = SessionRecommender.load(export_onnx(shifted, tmp_path / "m.onnx"), threads=1)
    got = rec.next_items([100, 101], k=N + 2, exclude_seen=False)
    graph = session_graph_batch(Samples.from_lists([[0, 1]], [0]), "binary")
    with torch.no_grad():
        reference = shifted.model.eval()(graph)[0].numpy()
        plain = trained.model.eval()(graph)[0].numpy()
    np.testing.assert_allclose(reference[N:], plain[N:] - 3.0, atol=1e-5)  # the 2 new items
    np.testing.assert_allclose(reference[:N], plain[:N], atol=1e-6)
    index = shifted.vocab.index_of([r.item_id for r in got])
    np.testing.assert_allclose(reference[index], [r.score for r in got], atol=1e-4)


def test_new_item_offset_is_chosen_on_validation(content_model):
    from sessionrec.train import calibrate_new_item_offset

    _, _, trained = content_model
    model = trained.model
    assert model.cold_mask[N:].all() and not model.cold_mask[:N].any()
    rng = np.random.default_rng(0)
    prefixes = [rng.choice(N, size=3, replace=False).tolist() for _ in range(60)]
    grid = (-4.0, 0.0, 4.0)
    # validation asks for the new items (N, N + 1): a positive offset ranks them first
    new = Samples.from_lists(prefixes, [N + i % 2 for i in range(60)])
    chosen = calibrate_new_item_offset(model, new, grid)
    assert chosen["selected"] == 4.0 and chosen["new_targets"] == 60
    assert chosen["valid"]["4.0"]["new_hr@20"] == 100.0
    # too few new targets to tell: the model's value stays (None)
    few = new.select(np.arange(10))
    assert calibrate_new_item_offset(model, few, grid)["selected"] is None
    # no new target at all: the clicked items' ranks decide, never a blind choice
    old = Samples.from_lists(prefixes, [(p[0] + 1) % N for p in prefixes])
    assert calibrate_new_item_offset(model, old, grid)["selected"] is None
    assert model.config.new_item_offset == 0.0  # the caller decides what to keep
    id_only = SRGNN(SRGNNConfig(n_items=N, dim=8))
    with pytest.raises(ConfigError, match="content model"):
        calibrate_new_item_offset(id_only, new, grid)


def test_mismatched_catalog_and_config_are_clear_errors():
    dataset = _dataset()
    catalog = read_catalog(_catalog_frame()).align(dataset.vocab)
    model_config, train_config = config_preset("srgnn", dataset.n_items, epochs=1)
    with pytest.raises(ConfigError, match="id-only config"):
        Trainer(model_config, train_config, progress=False).fit(dataset, catalog=catalog)
    with pytest.raises(ConfigError, match="no catalog"):
        Trainer(with_catalog(model_config, catalog), train_config, progress=False).fit(dataset)
    with pytest.raises(ConfigError, match="align"):
        with_catalog(model_config, read_catalog(_catalog_frame()))
    other = read_catalog(_catalog_frame()).align(ItemVocab(np.arange(200, 200 + N)))
    with pytest.raises(ConfigError, match="another vocabulary"):
        Trainer(with_catalog(model_config, other), train_config, progress=False).fit(
            dataset, catalog=other
        )


def test_cli_train_with_catalog_then_evaluate(tmp_path, capsys):
    dataset = _dataset()
    dataset.save(tmp_path / "data")
    _catalog_frame().write_csv(tmp_path / "items.csv")
    args = ["train", str(tmp_path / "data"), "--catalog", str(tmp_path / "items.csv")]
    args += ["--out", str(tmp_path / "m"), "--epochs", "1", "--set", "dim=8", "--quiet"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test"]["n_samples"] == len(dataset.test)
    assert load_model(tmp_path / "m").model.config.n_items == N + 2
    code = main(["evaluate", "--model", str(tmp_path / "m"), str(tmp_path / "data"), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["hr@20"] == pytest.approx(out["test"]["hr@20"])
    # inferred roles: category (categorical), title (text), price (numeric)
    assert load_model(tmp_path / "m").model.config.content == {
        "cardinalities": [5],
        "text_buckets": [pytest.approx(1, abs=10**6)],
        "n_numeric": 1,
        "vector_dims": [],
    }
    # given roles override inference; the other columns are ignored
    args[args.index("--out") + 1] = str(tmp_path / "m2")
    assert main([*args, "--catalog-categorical", "category", "--catalog-numeric", "price"]) == 0
    content = load_model(tmp_path / "m2").model.config.content
    assert content["cardinalities"] == [5] and content["text_buckets"] == []
    assert content["n_numeric"] == 1


def test_cli_cold_start_study(tmp_path, capsys):
    dataset = _dataset()
    dataset.save(tmp_path / "data")
    _catalog_frame().write_csv(tmp_path / "items.csv")
    args = ["evaluate", str(tmp_path / "data"), "--catalog", str(tmp_path / "items.csv")]
    args += ["--cold-items", "0.2", "--cold-seed", "1", "--epochs", "2", "--set", "dim=8"]
    assert main([*args, "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["held_out_items"] == round(0.2 * N)
    for method in ("content", "id_only", "category_popularity"):
        r = out[method]
        assert r["cold_n_samples"] + r["warm_n_samples"] == r["n_samples"] == len(dataset.test)
        assert r["cold_n_samples"] > 0 and r["longtail_n_samples"] > 0
        for key in ("cold_hr@20", "warm_hr@20", "longtail_hr@20", "cold_mrr@20"):
            assert 0.0 <= r[key] <= 100.0
    assert out["id_only"]["cold_hr@20"] < out["content"]["cold_hr@20"]
    # validation sessions click the held-out items: the offset is chosen on them
    assert out["recent_sessions_with_held_out_clicks"] > 0
    assert out["content"]["validation_new_targets"] > 0
    assert "new_item_offset" in out["content"] and "new_item_offset" not in out["id_only"]
    assert main(["evaluate", str(tmp_path / "data"), "--cold-items", "0.2", "--quiet"]) == 1
    assert "--catalog" in capsys.readouterr().err


def test_raw_diginetica_sample_with_its_categories(tmp_path, capsys):
    """Issue 4's functional test: raw ids from the Diginetica sample and its catalog."""
    root = shared_dataset("diginetica-sample")
    prepared = tmp_path / "digi"
    assert (
        main(
            [
                "prepare",
                "--clicks",
                str(root / "sample_train-item-views.csv"),
                "--protocol",
                "srgnn",
                "--out",
                str(prepared),
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = ["train", str(prepared), "--catalog", str(root / "product-categories.csv")]
    args += ["--out", str(tmp_path / "m"), "--epochs", "1", "--set", "dim=16", "--quiet"]
    assert main([*args, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test"]["n_samples"] == 99
    trained = load_model(tmp_path / "m")
    # the whole catalog (184,047 products) is recommendable; the sample clicked 309
    assert trained.model.config.n_items == 184_047
    assert trained.item_counts[:309].min() > 0 and trained.item_counts[309:].max() == 0


def test_warm_start_of_a_content_model_keeps_id_parts_and_rebuilds_content():
    """A content model warm-started from yesterday's: the id parts are carried over,
    the content encoder (codes and buckets recomputed from today's catalog) is not."""
    from sessionrec.train.warm import warm_start

    data = _dataset()
    catalog = read_catalog(_catalog_frame(extra=0)).align(data.vocab)
    old = _fit(data, catalog, epochs=1)
    config = old.model.config
    model = SRGNN(config)
    content_before = {k: v.clone() for k, v in model.content_encoder.state_dict().items()}
    report = warm_start(model, data.vocab, old)
    assert report["items_kept"] == N and report["items_added"] == 0
    torch.testing.assert_close(
        model.item_repr.id_embedding.weight, old.model.item_repr.id_embedding.weight
    )
    for name, value in model.content_encoder.state_dict().items():
        torch.testing.assert_close(value, content_before[name])  # untouched: its own
    train_config = config_preset("default", N, epochs=1, batch_size=32)[1]
    trained = Trainer(config, train_config, progress=False).fit(
        data, catalog=catalog, warm_start=old
    )
    assert trained.metrics["warm_start"]["items_kept"] == N
