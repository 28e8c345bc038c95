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
    unknown_clicks,
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


@pytest.mark.parametrize("sessions", [[[], [7]], [[7]], [[7], [3]], [[], [3, 3]], [[]]])
def test_no_tensor_of_the_graph_is_empty_for_short_sessions(sessions):
    """Every intermediate tensor of the graph has a non-empty shape for any non-empty
    batch, however short its sessions: a product over an empty axis (``P[:-1]`` of a
    one-click session, ``[B, 0, W]``) is left uninitialised by onnxruntime 1.30's
    FusedMatMul (the Node.js client's), which gave NaN scores to one-click sessions
    batched beside an empty one (``[[], [2**53 + 1]]``, found by the Node.js property
    test)."""
    import onnxruntime as ort

    model = build_onnx_model(random_model("int"))
    names = [o for node in model.graph.node for o in node.output if o]
    session = ort.InferenceSession(_with_outputs(model, names).SerializeToString())
    feeds = {
        "item_ids": pad_batch(_sessions("int", sessions), "int"),
        "k": np.array([3]),
        "exclude_seen": np.array([False]),
    }
    empty = [(n, v.shape) for n, v in zip(names, session.run(names, feeds)) if v.size == 0]
    assert empty == []


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


@pytest.mark.parametrize("kind", ["int", "str"])
def test_unknown_clicks_counts_ids_that_are_neither_known_nor_padding(trained_models, kind):
    preset = "srgnn" if kind == "int" else "default"
    _, _, session = trained_models[preset, kind]
    known = _sessions(kind, [[1, 2]])[0]
    unknown, pad = (7, -1) if kind == "int" else ("NOPE", "")
    sessions = [
        [known[0], unknown, pad, known[1], unknown, unknown],  # 3 unknown, padding inside
        [pad, pad],  # padding only: 0
        [unknown],  # 1, and the popularity fallback
        [],  # 0
        known,  # 0
    ]
    ids = pad_batch(sessions, kind, width=8)
    np.testing.assert_array_equal(unknown_clicks(session, ids), [3, 0, 1, 0, 0])
    assert unknown_clicks(session, ids).dtype == np.int64
    np.testing.assert_array_equal(run_onnx(session, ids, 3)[2], [False, True, True, True, False])
    # no column, no row
    empty = np.zeros((3, 0), dtype=np.int64 if kind == "int" else object)
    np.testing.assert_array_equal(unknown_clicks(session, empty), [0, 0, 0])
    assert unknown_clicks(session, pad_batch([], kind)[:0]).shape == (0,)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.integers(0, N_ITEMS - 1).map(lambda i: ("known", i)),
                st.integers(-(2**63), 2**63 - 1).map(lambda v: ("raw", v)),
                st.just(("pad", -1)),
            ),
            max_size=60,
        ),
        min_size=1,
        max_size=5,
    ),
    k=st.integers(0, N_ITEMS + 2),
    exclude=st.booleans(),
)
def test_unknown_ids_are_counted_and_otherwise_exactly_padding(trained_models, rows, k, exclude):
    """For any batch: ``unknown_clicks`` is the number of ids neither in the vocabulary
    nor the padding id, and the other outputs are bit for bit those of the same batch
    with every unknown id replaced by the padding id."""
    _, _, session = trained_models["default", "int"]
    vocab = set(raw_ids("int").tolist())
    sessions = [[1000 + v if tag == "known" else v for tag, v in row] for row in rows]
    expected = [sum(1 for v in s if v not in vocab and v != -1) for s in sessions]
    padded = [[v if v in vocab else -1 for v in s] for s in sessions]
    width = max(1, max(len(s) for s in sessions))
    noisy = run_onnx(session, pad_batch(sessions, "int", width), k, exclude, OUTPUTS_ALL)
    clean = run_onnx(session, pad_batch(padded, "int", width), k, exclude, OUTPUTS_ALL)
    assert noisy[3].tolist() == expected and clean[3].tolist() == [0] * len(sessions)
    for a, b in zip(noisy[:3], clean[:3]):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


OUTPUTS_ALL = ("top_ids", "top_scores", "fallback", "unknown_clicks")


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
    assert [o.name for o in model.graph.output] == [
        "top_ids",
        "top_scores",
        "fallback",
        "unknown_clicks",
    ]
    assert model.graph.output[3].type.tensor_type.elem_type == onnx.TensorProto.INT64
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
    assert main(["recommend", "--model", str(tmp_path / "m.onnx"), "--session", "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fallback"] is True
    assert main(["recommend", "--model", str(tmp_path / "m.onnx"), "--session", "12,abc"]) == 1
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


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("spelling", ["trailing separator", "existing directory"])
def test_out_path_that_names_a_folder_writes_model_onnx_inside(tmp_path, spelling):
    trained = random_model("int")
    if spelling == "trailing separator":  # created, with its parents
        out = f"{tmp_path}/models/exp_dir/"
    else:
        (tmp_path / "models" / "exp_dir").mkdir(parents=True)
        out = tmp_path / "models" / "exp_dir"
    path = export_onnx(trained, out)
    assert path == tmp_path / "models" / "exp_dir" / "model.onnx"
    assert _files(tmp_path) == ["models/exp_dir/manifest.json", "models/exp_dir/model.onnx"]
    manifest = json.loads((tmp_path / "models" / "exp_dir" / "manifest.json").read_text())
    assert list(manifest["files"]) == ["model.onnx"]
    assert ort_session(path).get_outputs()[0].name == "top_ids"
    # a file path is still a file path
    assert export_onnx(trained, tmp_path / "models" / "m.onnx") == tmp_path / "models" / "m.onnx"


@pytest.mark.parametrize("spelling", ["trailing separator", "existing directory"])
def test_cli_export_out_folder(tmp_path, capsys, spelling):
    from sessionrec.cli import main

    random_model("str").save(tmp_path / "model")
    if spelling == "existing directory":
        (tmp_path / "exp_dir").mkdir()
    out = f"{tmp_path}/exp_dir" + ("/" if spelling == "trailing separator" else "")
    assert main(["export", "--model", str(tmp_path / "model"), "--out", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(tmp_path / "exp_dir" / "model.onnx")
    assert _files(tmp_path / "exp_dir") == ["manifest.json", "model.onnx"]
    assert not (tmp_path / "manifest.json").exists()
    # into the model directory itself: beside its files, in its manifest
    assert (
        main(["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "model")]) == 0
    )
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert "model.onnx" in manifest["files"] and "config.json" in manifest["files"]


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


# -- files of any size: the data file beside the .onnx ----------------------------------
@pytest.fixture
def every_constant_external(monkeypatch):
    """Small catalogs get a real data file: every named constant goes to it."""
    import sessionrec.onnx_export.external as external

    monkeypatch.setattr(external, "EXTERNAL_TENSOR_MIN_BYTES", 0)


def _run_all(path, sessions, kind):
    session = ort_session(path)
    outputs = ("top_ids", "top_scores", "fallback", "unknown_clicks")
    return [
        run_onnx(session, pad_batch(sessions, kind), k, exclude, outputs)
        for k in (1, 7, 400)
        for exclude in (False, True)
    ]


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "int8"])
def test_an_external_data_export_equals_the_one_file_export_bit_for_bit(
    tmp_path, every_constant_external, kind, dtype
):
    from sessionrec.artifacts import file_sha256
    from sessionrec.recommender import SessionRecommender

    trained = random_model(kind, 300, normalize=True, repeat_bonus=1.5)
    one = export_onnx(trained, tmp_path / "one" / "model.onnx", item_table_dtype=dtype)
    two = export_onnx(
        trained, tmp_path / "two" / "model.onnx", item_table_dtype=dtype, external_data=True
    )
    assert sorted(p.name for p in two.parent.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "model.onnx.data",
    ]
    data = two.parent / "model.onnx.data"
    entry = json.loads((two.parent / "manifest.json").read_text())["files"]["model.onnx.data"]
    assert entry == {
        "format": "sessionrec.onnx-data/1",
        "sha256": file_sha256(data),
        "bytes": data.stat().st_size,
    }
    graph = onnx.load(str(two), load_external_data=False)
    table = next(t for t in graph.graph.initializer if t.name.startswith("item_table"))
    refs = {e.key: e.value for e in table.external_data}
    assert table.data_location == onnx.TensorProto.EXTERNAL
    assert refs["location"] == "model.onnx.data" and int(refs["offset"]) % 65536 == 0
    onnx.checker.check_model(str(two), full_check=True)
    ids = raw_ids(kind, 300).tolist()
    sessions = [ids[:3], [], ids[5:6] * 3 + ["?" if kind == "str" else 7], ids[100:160]]
    for a, b in zip(_run_all(one, sessions, kind), _run_all(two, sessions, kind)):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    got = SessionRecommender.load(two, threads=1).next_items_batch(sessions, k=9)
    assert got == SessionRecommender.load(one, threads=1).next_items_batch(sessions, k=9)


def test_the_data_file_is_written_from_a_table_size(tmp_path, monkeypatch):
    import sessionrec.onnx_export.file as export_file

    trained = random_model("int", 300, dim=16)  # a table of 300 x 16 x 4 = 19,200 bytes
    monkeypatch.setattr(export_file, "EXTERNAL_DATA_MIN_BYTES", 19_200)
    assert (export_onnx(trained, tmp_path / "a" / "m.onnx").parent / "m.onnx.data").is_file()
    monkeypatch.setattr(export_file, "EXTERNAL_DATA_MIN_BYTES", 19_201)
    assert not (export_onnx(trained, tmp_path / "b" / "m.onnx").parent / "m.onnx.data").exists()
    # int8: a quarter of the bytes
    path = export_onnx(trained, tmp_path / "c" / "m.onnx", item_table_dtype="int8")
    assert not (path.parent / "m.onnx.data").exists()


def test_a_tampered_or_missing_data_file_is_refused(tmp_path, every_constant_external):
    from sessionrec.errors import ArtifactError
    from sessionrec.recommender import SessionRecommender

    path = export_onnx(random_model("int", 300), tmp_path / "model.onnx", external_data=True)
    data = tmp_path / "model.onnx.data"
    original = data.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 1
    data.write_bytes(bytes(tampered))
    with pytest.raises(ArtifactError, match=r"model.onnx.data: SHA-256 differs"):
        SessionRecommender.load(path)
    data.unlink()
    with pytest.raises(ArtifactError, match=r"model.onnx.data: missing"):
        SessionRecommender.load(path)
    # an export interrupted after its commit point: the new data file is still pending,
    # the old one in place (the graph would read it): refused, never mixed
    (tmp_path / ".model.onnx.data.pending").write_bytes(original)
    data.write_bytes(bytes(tampered))
    with pytest.raises(ArtifactError, match="interrupted after its commit point"):
        SessionRecommender.load(path)
    export_onnx(random_model("int", 300), tmp_path / "model.onnx", external_data=True)
    assert SessionRecommender.load(path).n_items == 300  # the next export completes it


def test_fp16_is_refused_where_onnxruntime_would_convert_it_per_call(tmp_path, monkeypatch):
    import sessionrec.onnx_export.graph as graph_module

    assert graph_module.FP16_MAX_TABLE_BYTES == 2**30  # onnxruntime's folding limit
    # at d = 100: fp16 up to 2,684,354 items
    assert 2_684_354 * 100 * 4 <= 2**30 < 2_684_355 * 100 * 4
    trained = random_model("int", 300, dim=16)
    monkeypatch.setattr(graph_module, "FP16_MAX_TABLE_BYTES", 300 * 16 * 4 - 1)
    with pytest.raises(ConfigError) as info:
        export_onnx(trained, tmp_path / "m.onnx", item_table_dtype="fp16")
    message = str(info.value)
    assert "item_table_dtype='fp16' with 300 items of dimension 16" in message
    assert "on every call" in message and "'fp32'" in message and "'int8'" in message
    assert info.value.options == ("export_onnx.item_table_dtype",)
    assert not tmp_path.joinpath("m.onnx").exists()
    export_onnx(trained, tmp_path / "m.onnx", item_table_dtype="int8")  # int8 still goes


def test_a_graph_over_the_protobuf_limit_is_an_artifact_error(tmp_path, monkeypatch):
    """Never a raw protobuf error: a graph too large for one file says what to do."""
    import sessionrec.onnx_export.file as export_file
    from sessionrec.errors import ArtifactError

    trained = random_model("int", 300)
    monkeypatch.setattr(export_file, "_PROTOBUF_MAX", 20_000)
    with pytest.raises(ArtifactError, match="above the 2 GiB one ONNX") as info:
        export_onnx(trained, tmp_path / "m.onnx", external_data=False)
    assert "in a data file" in str(info.value) and "item_table" in str(info.value)
    assert info.value.options == ("export_onnx.external_data",)
    assert not list(tmp_path.iterdir())


def test_a_failing_writer_is_an_artifact_error_and_keeps_the_previous_export(tmp_path, monkeypatch):
    from google.protobuf.message import EncodeError

    import sessionrec.onnx_export.file as export_file
    from sessionrec.errors import ArtifactError

    trained = random_model("int", 300)
    path = export_onnx(trained, tmp_path / "m.onnx")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise EncodeError("Failed to serialize proto")

    monkeypatch.setattr(export_file, "commit_files", fail)
    with pytest.raises(ArtifactError, match="writing the export failed") as info:
        export_onnx(trained, path)
    assert "EncodeError" in str(info.value) and "nothing was replaced" in str(info.value)
    assert path.read_bytes() == before


def test_weights_that_are_not_finite_are_never_exported(tmp_path):
    import torch

    from sessionrec.errors import NonFiniteError

    trained = random_model("int")
    with torch.no_grad():
        trained.model.conv.gru.weight_hh[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"conv.w_hh holds 1 NaN or infinite value"):
        export_onnx(trained, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
