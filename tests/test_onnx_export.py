"""ONNX export: the graph built in ONNX ops equals the PyTorch model, ids in, ids out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from _onnx_helpers import (
    N_ITEMS,
    assert_top_k_matches,
    ort_session,
    pad_batch,
    random_model,
    raw_ids,
    run_onnx,
    torch_scores,
    train_tiny,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError
from sessionrec.graph import session_graph
from sessionrec.onnx_export import CONTRACT, build_onnx_model, export_onnx, onnx_metadata

os.environ.setdefault("OMP_NUM_THREADS", "1")

# (preset, id kind): the paper's model and ours (NISER + position readout), both id kinds
TRAINED = [("srgnn", "int"), ("default", "str"), ("default", "int")]


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory):
    """Tiny trained models and their exported files, shared by the module's tests."""
    out = {}
    for preset, kind in TRAINED:
        trained = train_tiny(kind, preset)
        path = export_onnx(trained, tmp_path_factory.mktemp(f"{preset}-{kind}") / "model.onnx")
        out[preset, kind] = (trained, path, ort_session(path))
    return out


def _sessions(kind: str, index_lists: list[list[int]]) -> list[list]:
    ids = raw_ids(kind)
    return [[ids[i].item() if kind == "int" else ids[i] for i in s] for s in index_lists]


SESSIONS = [[1, 2, 3, 2, 4], [9], [4, 4, 1], [2, 3, 19], [5, 6, 7, 8, 9, 10, 11, 12, 5, 6, 29, 0]]


# -- the session graph, built with ONNX ops ---------------------------------------------
def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    model.graph.output.extend([onnx.ValueInfoProto(name=n) for n in names])
    return model


@pytest.fixture(scope="module")
def graph_probe():
    """An ONNX session that also outputs the right-aligned index matrix ``x`` and the
    position-level connection matrices ``a_in``, ``a_out``."""
    import onnxruntime as ort

    model = _with_outputs(build_onnx_model(random_model("int")), ["x", "a_in", "a_out"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options)


def _probe(graph_probe, raw_sessions: list[list[int]]):
    names = ["x", "a_in", "a_out"]
    feeds = {
        "item_ids": pad_batch(raw_sessions, "int"),
        "k": np.array([1]),
        "exclude_seen": np.array([False]),
    }
    return dict(zip(names, graph_probe.run(names, feeds)))


def test_paper_example_matrices(graph_probe):
    # session [1, 2, 3, 2, 4]: edges 1->2, 2->3, 3->2, 2->4; the second click of item 2
    # (position 3) repeats the rows of the first (position 1) and is never a source column
    out = _probe(graph_probe, [(np.array([1, 2, 3, 2, 4]) + 1000).tolist()])
    np.testing.assert_array_equal(out["x"], [[1, 2, 3, 2, 4]])
    a_in = [
        [0, 0, 0, 0, 0],  # item 1: nothing comes in
        [0.5, 0, 0.5, 0, 0],  # item 2: from 1 and 3, in-degree 2
        [0, 1, 0, 0, 0],  # item 3: from 2
        [0.5, 0, 0.5, 0, 0],  # item 2 again
        [0, 1, 0, 0, 0],  # item 4: from 2
    ]
    a_out = [
        [0, 1, 0, 0, 0],  # 1 -> 2
        [0, 0, 0.5, 0, 0.5],  # 2 -> 3 and 2 -> 4, out-degree 2
        [0, 1, 0, 0, 0],  # 3 -> 2
        [0, 0, 0.5, 0, 0.5],  # item 2 again
        [0, 0, 0, 0, 0],  # 4: last click, nothing goes out
    ]
    np.testing.assert_allclose(out["a_in"][0], a_in)
    np.testing.assert_allclose(out["a_out"][0], a_out)


def test_unknown_ids_are_dropped_and_rows_right_aligned(graph_probe):
    # 7 and 5 are not item ids (ids are 1000..1029); -1 is the padding id
    out = _probe(graph_probe, [[7, 1003, 5, 1001], [1002], []])
    np.testing.assert_array_equal(out["x"], [[-1, -1, 3, 1], [-1, -1, -1, 2], [-1, -1, -1, -1]])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(st.one_of(st.integers(1000, 1007), st.sampled_from([-1, 3, 99999])), max_size=14),
        min_size=1,
        max_size=4,
    )
)
def test_matrices_equal_the_dense_session_graph(graph_probe, raw_sessions):
    """For any batch (unknown ids and padding anywhere) the position-level matrices are
    those of sessionrec.graph, read through each click's node: A(pos i, pos j) =
    A(node of i, node of j) when j is the first click of its node, else 0."""
    out = _probe(graph_probe, raw_sessions)
    width = out["x"].shape[1]
    for b, raw in enumerate(raw_sessions):
        known = [r - 1000 for r in raw if 1000 <= r < 1000 + N_ITEMS][-50:]
        pad = width - len(known)
        np.testing.assert_array_equal(out["x"][b, pad:], known)
        assert (out["x"][b, :pad] == -1).all()
        if not known:
            assert not out["a_in"][b].any() and not out["a_out"][b].any()
            continue
        g = session_graph(known)
        alias = g.alias.numpy()
        first = np.array([alias[j] not in alias[:j] for j in range(len(alias))])
        for name, dense in (("a_in", g.A_in.numpy()), ("a_out", g.A_out.numpy())):
            expected = dense[np.ix_(alias, alias)] * first[None, :]
            np.testing.assert_allclose(out[name][b, pad:, pad:], expected, atol=1e-7)
            assert not out[name][b, :pad].any() and not out[name][b, :, :pad].any()


# -- parity with PyTorch ----------------------------------------------------------------
@pytest.mark.parametrize("preset, kind", TRAINED)
def test_top_k_equals_pytorch(trained_models, preset, kind):
    trained, _, session = trained_models[preset, kind]
    sessions = _sessions(kind, SESSIONS)
    reference = torch_scores(trained, sessions)
    for k in (1, 5, N_ITEMS):
        top_ids, top_scores, fallback = run_onnx(session, pad_batch(sessions, kind), k)
        assert top_ids.shape == top_scores.shape == (len(sessions), k)
        assert not fallback.any()
        top_index = trained.vocab.index_of(top_ids.ravel().tolist()).reshape(top_ids.shape)
        assert_top_k_matches(reference, top_index, top_scores)


@pytest.mark.parametrize(
    "config",
    [
        {"steps": 2, "edge_weights": "count"},
        {"normalize": True, "max_positions": 3, "position_readout": True, "dim": 8},
    ],
)
def test_top_k_equals_pytorch_other_architectures(tmp_path, config):
    trained = random_model("int", **config)
    session = ort_session(export_onnx(trained, tmp_path / "m.onnx"))
    sessions = _sessions("int", SESSIONS)
    top_ids, top_scores, _ = run_onnx(session, pad_batch(sessions, "int"), N_ITEMS)
    top_index = trained.vocab.index_of(top_ids.ravel().tolist()).reshape(top_ids.shape)
    assert_top_k_matches(torch_scores(trained, sessions), top_index, top_scores)


def test_unknown_ids_and_padding_do_not_change_results(trained_models):
    _, _, session = trained_models["default", "str"]
    clean = _sessions("str", [[3, 4, 5]])[0]
    noisy = ["unknown", clean[0], "", clean[1], "also-unknown", clean[2]]
    a = run_onnx(session, pad_batch([clean], "str"), 10)
    b = run_onnx(session, pad_batch([noisy], "str", width=9), 10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)


def test_fallback_is_popularity_with_a_flag(trained_models):
    trained, _, session = trained_models["srgnn", "int"]
    sessions = [[], [5, 6], [1003]]  # empty, all unknown, known
    top_ids, top_scores, fallback = run_onnx(session, pad_batch(sessions, "int"), 4, True)
    np.testing.assert_array_equal(fallback, [True, True, False])
    counts = trained.item_counts
    order = np.lexsort((np.arange(N_ITEMS), -counts))[:4]  # most clicked, ties: lower index
    for row in (0, 1):
        np.testing.assert_array_equal(top_ids[row], trained.vocab.id_of(order))
        np.testing.assert_allclose(top_scores[row], counts[order] / counts.sum(), rtol=1e-6)


def test_empty_length_input_is_all_fallback(trained_models):
    _, _, session = trained_models["srgnn", "int"]
    top_ids, _, fallback = run_onnx(session, np.zeros((3, 0), dtype=np.int64), 5)
    assert fallback.all() and top_ids.shape == (3, 5)


def test_empty_batch(trained_models):
    _, _, session = trained_models["default", "str"]
    top_ids, top_scores, fallback = run_onnx(session, np.zeros((0, 4), dtype=object), 5)
    assert top_ids.shape == top_scores.shape == (0, 5) and fallback.shape == (0,)


def test_unicode_string_ids_round_trip(tmp_path):
    trained = random_model("str")
    ids = ["café", "日本", "a,b", " ", "x" * 300] + [f"sku-{i}" for i in range(N_ITEMS - 5)]
    trained.vocab = ItemVocab(np.array(ids, dtype=object))
    session = ort_session(export_onnx(trained, tmp_path / "m.onnx"))
    top_ids, _, _ = run_onnx(session, pad_batch([["café", "日本"]], "str"), N_ITEMS)
    assert sorted(top_ids[0].tolist()) == sorted(ids)
    a = run_onnx(session, pad_batch([["café", "日本"]], "str"), 5)
    b = run_onnx(session, pad_batch([["日本"]], "str"), 5)
    assert a[0].tolist() != b[0].tolist() or not np.allclose(a[1], b[1])  # "café" counted


def test_exclude_seen(trained_models):
    trained, _, session = trained_models["srgnn", "int"]
    sessions = _sessions("int", [[1, 2, 3, 2], [7]])
    reference = torch_scores(trained, sessions)
    top_ids, top_scores, _ = run_onnx(session, pad_batch(sessions, "int"), N_ITEMS, True)
    for b, raw in enumerate(sessions):
        seen = set(raw)
        n_unseen = N_ITEMS - len(seen)
        assert not seen & set(top_ids[b, :n_unseen].tolist())
        assert np.isfinite(top_scores[b, :n_unseen]).all()
        assert np.isneginf(top_scores[b, n_unseen:]).all()  # the seen ones, last
        reference[b, trained.vocab.index_of(raw)] = -np.inf
    top_index = trained.vocab.index_of(top_ids.ravel().tolist()).reshape(top_ids.shape)
    finite = np.isfinite(top_scores)
    np.testing.assert_allclose(
        np.take_along_axis(reference, top_index, 1)[finite], top_scores[finite], atol=1e-4
    )


def test_k_is_clamped_to_the_catalog(trained_models):
    _, _, session = trained_models["srgnn", "int"]
    ids = pad_batch([[1001, 1002]], "int")
    assert run_onnx(session, ids, 10**12)[0].shape == (1, N_ITEMS)
    assert run_onnx(session, ids, 0)[0].shape == (1, 0)
    assert run_onnx(session, ids, -5)[0].shape == (1, 0)


def test_dynamic_batch_and_length(trained_models):
    _, _, session = trained_models["default", "int"]
    sessions = _sessions("int", SESSIONS)
    together = run_onnx(session, pad_batch(sessions, "int", width=20), 7)
    for b, s in enumerate(sessions):
        alone = run_onnx(session, pad_batch([s], "int"), 7)
        np.testing.assert_array_equal(alone[0][0], together[0][b])
        np.testing.assert_allclose(alone[1][0], together[1][b], atol=1e-5)


def test_long_sessions_keep_their_last_known_clicks(tmp_path):
    trained = random_model("int", position_readout=True, max_positions=6)
    with pytest.warns(UserWarning, match="max_session_length=4 overrides the model's 50"):
        session = ort_session(export_onnx(trained, tmp_path / "m.onnx", max_session_length=4))
    assert onnx_metadata(tmp_path / "m.onnx")["max_session_length"] == "4"
    assert onnx_metadata(tmp_path / "m.onnx")["trained_max_session_length"] == "50"
    ids = raw_ids("int")
    long = [int(ids[i % N_ITEMS]) for i in range(3, 40)] + [5, int(ids[2]), 6]
    last_four = [int(ids[i]) for i in (7, 8, 9, 2)]  # the last 4 known clicks
    a = run_onnx(session, pad_batch([long], "int"), N_ITEMS)
    b = run_onnx(session, pad_batch([last_four], "int"), N_ITEMS)
    np.testing.assert_array_equal(a[0], b[0])
    top_index = trained.vocab.index_of(a[0].ravel().tolist()).reshape(a[0].shape)
    assert_top_k_matches(torch_scores(trained, [long], max_length=4), top_index, a[1])
    # 10,000 clicks: same answer, no blow-up
    huge = long * 250
    np.testing.assert_array_equal(run_onnx(session, pad_batch([huge], "int"), 5)[0], a[0][:, :5])


# -- the file ---------------------------------------------------------------------------
def test_file_passes_the_checker_and_carries_metadata(trained_models):
    trained, path, _ = trained_models["default", "str"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    meta = onnx_metadata(path)
    assert meta["contract"] == CONTRACT
    assert meta["id_kind"] == "str" and meta["pad_id"] == '""'
    assert meta["n_items"] == str(N_ITEMS) and meta["dim"] == "16"
    assert meta["opset"] == "18"
    assert (
        meta["data_fingerprint"] == trained.data_fingerprint and len(meta["data_fingerprint"]) == 64
    )
    assert meta["item_table_dtype"] == "fp32" and meta["max_session_length"] == "50"
    assert meta["created_at"].endswith("Z") and meta["sessionrec_version"]
    assert json.loads(meta["model_config"])["normalize"] is True
    assert [i.name for i in model.graph.input] == ["item_ids", "k", "exclude_seen"]
    assert [o.name for o in model.graph.output] == ["top_ids", "top_scores", "fallback"]
    # standard domains only: any onnxruntime (Python, Node.js, Java, C++) loads it
    assert {op.domain for op in model.opset_import} == {"", "ai.onnx.ml"}
    assert {n.domain for n in model.graph.node} == {"", "ai.onnx.ml"}


@pytest.mark.parametrize("dtype, min_overlap", [("fp16", 0.95), ("int8", 0.8)])
def test_reduced_item_tables(trained_models, tmp_path, dtype, min_overlap):
    trained, path32, session32 = trained_models["default", "int"]
    path = export_onnx(trained, tmp_path / f"{dtype}.onnx", item_table_dtype=dtype)
    assert onnx_metadata(path)["item_table_dtype"] == dtype
    onnx.checker.check_model(str(path))
    sessions = _sessions("int", SESSIONS)
    ref = run_onnx(session32, pad_batch(sessions, "int"), 10)
    got = run_onnx(ort_session(path), pad_batch(sessions, "int"), 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref[0], got[0])])
    assert overlap >= min_overlap
    np.testing.assert_allclose(got[1], ref[1], atol=0.1 * np.abs(ref[1]).max())


def test_reduced_tables_shrink_the_file(tmp_path):
    trained = random_model("int", n_items=3000, dim=32)
    sizes = {
        dtype: export_onnx(trained, tmp_path / f"{dtype}.onnx", item_table_dtype=dtype)
        .stat()
        .st_size
        for dtype in ("fp32", "fp16", "int8")
    }
    table_bytes = 3000 * 32 * 4
    assert sizes["fp32"] - sizes["fp16"] > 0.45 * table_bytes
    assert sizes["fp32"] - sizes["int8"] > 0.7 * table_bytes


def test_export_from_a_model_directory_and_the_cli(tmp_path, capsys):
    from sessionrec.cli import main

    train_tiny("int", "srgnn", out_dir=tmp_path / "model")
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "model"),
                "--out",
                str(tmp_path / "m.onnx"),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["metadata"]["n_items"] == str(N_ITEMS) and result["bytes"] > 0
    assert (
        main(
            [
                "recommend",
                "--model",
                str(tmp_path / "m.onnx"),
                "--clicks",
                "1001,1002",
                "--k",
                "3",
                "--json",
            ]
        )
        == 0
    )
    rec = json.loads(capsys.readouterr().out)
    assert len(rec["items"]) == 3 and rec["fallback"] is False
    assert {1001, 1002}.isdisjoint(i["item_id"] for i in rec["items"])
    assert main(["recommend", "--model", str(tmp_path / "m.onnx"), "--clicks", "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fallback"] is True
    assert main(["recommend", "--model", str(tmp_path / "m.onnx"), "--clicks", "12,abc"]) == 1
    assert "not an integer" in capsys.readouterr().err


# -- bad arguments ----------------------------------------------------------------------
def test_bad_arguments_are_config_errors(tmp_path):
    trained = random_model("int")
    for kwargs in (
        {"item_table_dtype": "bf16"},
        {"opset": 13},
        {"max_session_length": 0},
        {"max_session_length": 2.5},
    ):
        with pytest.raises(ConfigError):
            export_onnx(trained, tmp_path / "m.onnx", **kwargs)
    with pytest.raises(ConfigError, match="directory"):
        export_onnx(trained, tmp_path)


def test_padding_id_in_the_vocabulary_is_refused(tmp_path):
    trained = random_model("int")
    trained.vocab = ItemVocab(np.arange(-1, N_ITEMS - 1))
    with pytest.raises(ConfigError, match="padding"):
        export_onnx(trained, tmp_path / "m.onnx")


def test_a_failed_export_leaves_the_previous_file(tmp_path):
    trained = random_model("int")
    path = export_onnx(trained, tmp_path / "m.onnx")
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        export_onnx(trained, path, item_table_dtype="nope")
    assert path.read_bytes() == before
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["m.onnx", "manifest.json"]


# -- real data --------------------------------------------------------------------------
@pytest.mark.slow
def test_parity_on_1000_diginetica_test_sessions(tmp_path):
    """A Diginetica-size model (43,097 items, d = 100, our default architecture, random
    weights) on 1,000 real test prefixes: ONNX top-20 == PyTorch top-20 (ties aside),
    scores within 1e-4."""
    import torch
    from conftest import shared_dataset

    from sessionrec.data.benchmarks import load_srgnn_pickle
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train import TrainedModel, config_preset

    torch.set_num_threads(1)
    dataset = load_srgnn_pickle(shared_dataset("diginetica"))
    torch.manual_seed(0)
    model_config, train_config = config_preset("default", dataset.n_items)
    counts = np.bincount(dataset.train.items, minlength=dataset.n_items)
    trained = TrainedModel(
        SRGNN(model_config).eval(), dataset.vocab, train_config, counts, data_fingerprint="digi"
    )
    session = ort_session(export_onnx(trained, tmp_path / "digi.onnx"))
    pick = np.random.default_rng(0).choice(len(dataset.test), 1000, replace=False)
    sessions = [dataset.vocab.id_of(dataset.test.prefix(i)).tolist() for i in pick]
    for start in range(0, 1000, 250):
        chunk = sessions[start : start + 250]
        top_ids, top_scores, fallback = run_onnx(session, pad_batch(chunk, "int"), 20)
        assert not fallback.any()
        top_index = np.searchsorted(dataset.vocab.ids, top_ids)  # ids are sorted
        assert_top_k_matches(torch_scores(trained, chunk), top_index, top_scores, atol=1e-4)


@pytest.mark.slow
def test_bench_latency_reports_its_keys(capsys):
    from sessionrec.cli import main

    assert main(["bench", "latency", "--sessions", "60", "--torch-sessions", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "p50_ms",
        "p99_ms",
        "floor_p50_ms",
        "torch_p50_ms",
        "batch256_sessions_per_s_1t",
        "batch256_sessions_per_s_2t",
    ):
        assert result[key] > 0, key
    assert result["n_items"] == 43_097 and result["dim"] == 100


def test_pytorch_evaluation_and_onnx_read_the_same_last_clicks(tmp_path):
    """One maximum session length for both paths: evaluate_model's hits on sessions of
    up to 10,000 clicks are exactly the exported file's."""
    from sessionrec.data.contract import DEFAULT_MAX_SESSION_LENGTH
    from sessionrec.data.sessions import Samples
    from sessionrec.train import evaluate_model

    trained = random_model("int", position_readout=True)
    L = trained.data_contract.inference_max_length
    assert L == DEFAULT_MAX_SESSION_LENGTH == 50
    session = ort_session(export_onnx(trained, tmp_path / "m.onnx"))
    rng = np.random.default_rng(0)
    prefixes = [rng.integers(0, N_ITEMS, n).tolist() for n in (1, 49, 50, 51, 120, 10_000)]
    targets = rng.integers(0, N_ITEMS, len(prefixes)).tolist()
    samples = Samples.from_lists(prefixes, targets)
    raw = [trained.vocab.ids[p].tolist() for p in prefixes]
    top_ids, _, _ = run_onnx(session, pad_batch(raw, "int"), 10, exclude_seen=False)
    onnx_hits = [trained.vocab.ids[t] in row for t, row in zip(targets, top_ids)]
    metrics = evaluate_model(trained.model, samples, ks=(10,), max_length=L)
    assert metrics["hr@10"] == pytest.approx(100 * np.mean(onnx_hits))
    # the same as cutting the prefixes by hand
    cut = Samples.from_lists([p[-L:] for p in prefixes], targets)
    assert evaluate_model(trained.model, cut, ks=(10,), max_length=None) == metrics


def test_repeat_bonus_in_the_exported_file(tmp_path):
    trained = random_model("int", repeat_bonus=3.0)
    session = ort_session(export_onnx(trained, tmp_path / "m.onnx"))
    ids = raw_ids("int")
    sessions = [[int(ids[i]) for i in s] for s in ([1, 2, 1], [7], [3, 4, 5, 6, 3])]
    top_ids, top_scores, _ = run_onnx(session, pad_batch(sessions, "int"), N_ITEMS)
    top_index = trained.vocab.index_of(top_ids.ravel().tolist()).reshape(top_ids.shape)
    assert_top_k_matches(torch_scores(trained, sessions), top_index, top_scores)
    # the seen items carry the bonus once: their scores are the plain model's + 3
    plain = random_model("int", repeat_bonus=0.0)
    base = torch_scores(plain, sessions)
    boosted = torch_scores(trained, sessions)
    for b, s in enumerate(sessions):
        seen = sorted(set(trained.vocab.index_of(s).tolist()))
        np.testing.assert_allclose(boosted[b, seen], base[b, seen] + 3.0, atol=1e-5)
