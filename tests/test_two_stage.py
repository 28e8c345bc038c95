"""Two-stage serving (sessionrec.serving.two_stage, export_onnx(ann=...)): candidates from
a faiss index, exact re-scoring. The answer must be the exact graph's whenever the exact
top-k are among the candidates: checked against the exact file on small catalogs,
with the repeat bonus, the exclusion of seen items, the new-item offset, unknown ids and
the popularity fallback."""

from __future__ import annotations

import builtins
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from _onnx_helpers import random_model, raw_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.onnx_export import export_onnx, onnx_metadata
from sessionrec.recommender import SessionRecommender
from sessionrec.serving.files import TWO_STAGE_FORMAT, two_stage_names

faiss = pytest.importorskip(
    "faiss", reason="two-stage serving needs faiss: pip install -e '.[ann]'"
)

N = 2000  # items: the index has 50 lists (ivf_parameters: N / 40)


def _export(trained, directory: Path, **kwargs) -> Path:
    return export_onnx(trained, directory / "model.onnx", ann=True, **kwargs)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One model (NISER, temperature 12, repeat bonus 30: above any cosine gap) exported with two-stage files, loaded three ways:
    two stages searching every list, two stages searching one list, exact."""
    import sessionrec.onnx_export.external as external

    root = tmp_path_factory.mktemp("two-stage")
    trained = random_model("int", N, seed=3, normalize=True, temperature=12.0, repeat_bonus=30.0)
    with pytest.MonkeyPatch.context() as patch:  # every named constant in the data file
        patch.setattr(external, "EXTERNAL_TENSOR_MIN_BYTES", 0)
        path = _export(trained, root)
    return {
        "path": path,
        "all_lists": SessionRecommender.load(path, threads=1, nprobe=10_000),
        "one_list": SessionRecommender.load(path, threads=1, nprobe=1),
        "exact": SessionRecommender.load(path, threads=1, exact=True),
    }


def _assert_same(got, expected, atol=1e-5):
    """Same items in the same order, scores equal to float rounding: two items trade
    places only when their scores tie to rounding."""
    assert got.fallback == expected.fallback and got.unknown_clicks == expected.unknown_clicks
    assert len(got) == len(expected)
    np.testing.assert_allclose(got.scores, expected.scores, atol=atol, rtol=0)
    scores = np.array(expected.scores)
    for i, (a, b) in enumerate(zip(got.ids, expected.ids)):
        if a != b:
            ties = np.abs(scores - scores[i]) <= atol
            assert ties.sum() > 1 or i == len(scores) - 1, (i, got, expected)


def test_the_export_writes_the_two_stage_files_with_the_manifest(exports):
    path = exports["path"]
    files = json.loads((path.parent / "manifest.json").read_text())["files"]
    session, rescore, index = two_stage_names("model.onnx")
    assert (session, rescore, index) == (
        "model.session.onnx",
        "model.rescore.onnx",
        "model.ann.faiss",
    )
    assert {n: files[n]["format"] for n in (session, rescore, index)} == dict.fromkeys(
        (session, rescore, index), TWO_STAGE_FORMAT
    )
    assert files["model.onnx.data"]["format"] == "sessionrec.onnx-data/1"
    rec = exports["all_lists"]
    assert rec.mode == "two_stage" and exports["exact"].mode == "exact"
    assert (rec.nprobe, exports["one_list"].nprobe, exports["exact"].nprobe) == (50, 1, None)
    assert rec.metadata["ann_index"] == "IVF50,Flat" and rec.metadata["ann_nlist"] == "50"
    assert rec.metadata["model_sha256"] == files["model.onnx"]["sha256"]
    assert rec.n_items == N and rec.counts_unknown_clicks


def test_repeat_bonus_exclusion_and_fallback_equal_the_exact_graph(exports):
    two, exact = exports["all_lists"], exports["exact"]
    ids = raw_ids("int", N)
    sessions = [
        [ids[5], ids[9], ids[5]],  # a repeat: the bonus applies once
        [ids[1]],
        [],  # the popularity fallback
        [424242, -7],  # unknown ids only: the fallback, 2 unknown clicks
        [ids[3], 424242, ids[3], ids[3], ids[8]],
    ]
    for clicks in sessions:
        for exclude in (False, True):
            for k in (1, 5, 20):
                _assert_same(
                    two.next_items(clicks, k=k, exclude_seen=exclude),
                    exact.next_items(clicks, k=k, exclude_seen=exclude),
                )
    # the repeat bonus decides: the session's own items lead without exclusion
    got = two.next_items([ids[5], ids[9]], k=3, exclude_seen=False)
    assert set(got.ids[:2]) == {ids[5], ids[9]}
    assert not {ids[5], ids[9]} & set(two.next_items([ids[5], ids[9]], k=50).ids)
    fallback = two.next_items([424242], k=4)
    assert fallback.fallback and fallback.unknown_clicks == 1
    assert fallback.ids == exact.next_items([], k=4).ids


def test_batches_mix_fallback_and_sessions(exports):
    two, exact = exports["all_lists"], exports["exact"]
    ids = raw_ids("int", N)
    batch = [[ids[1], ids[2]], [], [ids[7]] * 4, [424242]]
    for got, expected in zip(
        two.next_items_batch(batch, k=10), exact.next_items_batch(batch, k=10)
    ):
        _assert_same(got, expected)


def test_k_beyond_the_candidates_scores_the_whole_catalog(exports):
    two, exact = exports["one_list"], exports["exact"]
    ids = raw_ids("int", N)
    for k in (N - 1, N, N + 5):
        for exclude in (True, False):
            _assert_same(
                two.next_items([ids[0], ids[1]], k=k, exclude_seen=exclude),
                exact.next_items([ids[0], ids[1]], k=k, exclude_seen=exclude),
            )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clicks=st.lists(st.integers(990, 1000 + N + 10), max_size=12),
    k=st.integers(1, 40),
    exclude=st.booleans(),
)
def test_any_session_equals_the_exact_graph_when_every_list_is_searched(
    exports, clicks, k, exclude
):
    _assert_same(
        exports["all_lists"].next_items(clicks, k=k, exclude_seen=exclude),
        exports["exact"].next_items(clicks, k=k, exclude_seen=exclude),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clicks=st.lists(st.integers(1000, 1000 + N - 1), min_size=1, max_size=8),
    k=st.integers(1, 30),
    exclude=st.booleans(),
)
def test_one_list_gives_exact_scores_and_the_exact_answer_when_it_holds_the_top_k(
    exports, clicks, k, exclude
):
    """Searching one list of 50 finds few of the exact top-k; every item returned still
    carries its exact score (offset, bonus and exclusion included), best first, and the
    answer is the exact one whenever the exact top-k are among the candidates."""
    two, exact = exports["one_list"], exports["exact"]
    got = two.next_items(clicks, k=k, exclude_seen=exclude)
    everything = exact.next_items(clicks, k=N, exclude_seen=exclude)
    exact_score = dict(zip(everything.ids, everything.scores))
    assert len(got) == len(exact.next_items(clicks, k=k, exclude_seen=exclude))
    np.testing.assert_allclose(got.scores, [exact_score[i] for i in got.ids], atol=1e-5)
    assert (np.diff(got.scores) <= 0).all()
    top = exact.next_items(clicks, k=k, exclude_seen=exclude)
    candidates = _candidates(two, clicks, k, exclude)
    if set(top.ids) <= candidates:
        _assert_same(got, top)


def _candidates(rec, clicks, k, exclude):
    """The raw ids of the candidates the two-stage search re-scores for ``clicks``."""
    two = rec._two_stage
    ids = np.array([clicks], dtype=np.int64)
    vectors, items, fallback, _ = two._session.run(None, {"item_ids": ids})
    candidates = two._candidates(vectors, items, fallback, k, exclude)[0]
    return set(raw_ids("int", N)[candidates[candidates >= 0]].tolist())


def test_string_ids_and_a_paper_model(tmp_path):
    trained = random_model("str", 600, seed=1)  # no NISER: scores are raw inner products
    rec = SessionRecommender.load(_export(trained, tmp_path), threads=1, nprobe=10_000)
    exact = SessionRecommender.load(tmp_path / "model.onnx", threads=1, exact=True)
    assert rec.mode == "two_stage"
    for clicks in (["sku-001", "sku-400"], ["sku-599", "nope"], []):
        _assert_same(rec.next_items(clicks, k=15), exact.next_items(clicks, k=15), atol=1e-4)


def _content_model(n: int, dim: int):
    """A content model of ``n`` items (categories of 5, every third item without clicks)
    with new_item_offset -0.7."""
    import torch

    from sessionrec.data.vocab import ItemVocab
    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.train import TrainConfig, TrainedModel

    torch.manual_seed(0)
    config = SRGNNConfig(n_items=n, dim=dim, content={"cardinalities": [5]}, new_item_offset=-0.7)
    model = SRGNN(config)
    cold = torch.zeros(n, dtype=torch.bool)
    cold[::3] = True
    model.set_catalog(
        {"categorical": torch.arange(n)[:, None] % 5, "numeric": torch.zeros(n, 0)}, cold
    )
    counts = np.random.default_rng(0).integers(0, 9, n)
    return TrainedModel(model.eval(), ItemVocab(raw_ids("int", n)), TrainConfig(), counts)


def test_new_item_offset_is_a_column_of_the_index(tmp_path):
    """A content model's items without clicks get new_item_offset b: the index holds
    [e_j, b_j] and is queried with [q, 1], the re-scoring adds b_j as the exact graph."""
    trained = _content_model(400, 8)
    rec = SessionRecommender.load(_export(trained, tmp_path), threads=1, nprobe=10_000)
    exact = SessionRecommender.load(tmp_path / "model.onnx", threads=1, exact=True)
    assert rec._two_stage._index.d == 9
    for clicks in ([1000, 1001], [1003], [1002, 1399, 1002]):
        for exclude in (True, False):
            _assert_same(
                rec.next_items(clicks, k=25, exclude_seen=exclude),
                exact.next_items(clicks, k=25, exclude_seen=exclude),
            )


def test_index_spec_chooses_4_bit_codes_from_a_catalog_size():
    """Hand check of index_spec: the vectors themselves below PQ_FROM_ITEMS, 4-bit
    product-quantised codes (2 dimensions each, a zero column for an odd dimension) and
    20x candidates from it, 1,024 lists searched (at most nlist)."""
    from sessionrec.onnx_export.ann_index import PQ_FROM_ITEMS, IndexSpec, index_spec

    assert PQ_FROM_ITEMS == 2_000_000
    flat = index_spec(1_999_999, 100)
    assert flat == IndexSpec(5657, 128, "flat", 0, 100, 1)
    assert flat.factory == "IVF5657,Flat"
    pq = index_spec(5_000_000, 101)  # d = 100 and the offset column
    assert pq == IndexSpec(8944, 1024, "pq4", 51, 102, 20)
    assert pq.factory == "IVF8944,PQ51x4fsr"
    assert index_spec(60, 16, codes="pq4") == IndexSpec(1, 1, "pq4", 8, 16, 20)
    assert index_spec(10**6, 16, codes="flat").codes == "flat"
    with pytest.raises(ValueError, match="codes must be 'auto', 'flat' or 'pq4'"):
        index_spec(10, 16, codes="ivf")


def test_4_bit_codes_serve_the_exact_answer_from_enough_candidates(tmp_path, monkeypatch):
    """An index of 4-bit codes (forced on a small catalog), with the offset column and a
    zero column (9 -> 10 dimensions): asked for every item, the two-stage answer is the
    exact graph's; the metadata names the index and its candidates factor."""
    import sessionrec.onnx_export.ann_index as ann_index

    monkeypatch.setattr(ann_index, "PQ_FROM_ITEMS", 0)
    monkeypatch.setattr(ann_index, "PQ_CANDIDATES_FACTOR", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # untrained vectors: low item recall
        path = _export(_content_model(400, 8), tmp_path)
    rec = SessionRecommender.load(path, threads=1, nprobe=10_000)
    exact = SessionRecommender.load(path, threads=1, exact=True)
    assert type(rec._two_stage._index).__name__ == "IndexIVFPQFastScan"
    assert rec._two_stage._index.d == 10
    assert rec.metadata["ann_index"] == "IVF10,PQ5x4fsr"
    assert rec.metadata["ann_candidates_factor"] == "1000"
    for clicks in ([1000, 1001], [1003], [1002, 1399, 1002], []):
        for exclude in (True, False):
            _assert_same(
                rec.next_items(clicks, k=25, exclude_seen=exclude),
                exact.next_items(clicks, k=25, exclude_seen=exclude),
            )


def test_4_bit_codes_find_the_exact_top_20_with_20x_candidates(tmp_path, monkeypatch):
    """With the default factor (20x candidates re-scored exactly) an index of 4-bit codes
    over a NISER model's 2,000 vectors finds most of the exact top-20 of random sessions
    when every list is searched, and every returned score is exact."""
    import sessionrec.onnx_export.ann_index as ann_index

    monkeypatch.setattr(ann_index, "PQ_FROM_ITEMS", 0)
    trained = random_model("int", N, seed=3, normalize=True, temperature=12.0, dim=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        path = _export(trained, tmp_path)
    rec = SessionRecommender.load(path, threads=1, nprobe=10_000)
    exact = SessionRecommender.load(path, threads=1, exact=True)
    rng = np.random.default_rng(0)
    sessions = [(1000 + rng.integers(0, N, rng.integers(1, 6))).tolist() for _ in range(100)]
    got = rec.next_items_batch(sessions, k=20)
    want = exact.next_items_batch(sessions, k=20)
    recall = np.mean([len(set(g.ids) & set(w.ids)) / 20 for g, w in zip(got, want)])
    assert recall >= 0.95, recall
    for clicks, g in zip(sessions, got):
        everything = exact.next_items(clicks, k=N)
        score = dict(zip(everything.ids, everything.scores))
        np.testing.assert_allclose(g.scores, [score[i] for i in g.ids], atol=1e-5)


def test_exact_is_chosen_when_asked_or_when_faiss_is_absent(exports, monkeypatch):
    assert SessionRecommender.load(exports["path"], exact=True).mode == "exact"
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.warns(UserWarning, match=r"faiss is not installed.*sessionrec\[ann\]"):
        rec = SessionRecommender.load(exports["path"], threads=1)
    assert rec.mode == "exact"
    with pytest.raises(ConfigError, match=r"pip install 'sessionrec\[ann\]'") as info:
        export_onnx(random_model("int", 50), exports["path"].parent / "x" / "m.onnx", ann=True)
    assert info.value.options == ("export_onnx.ann",)


def test_two_stage_files_of_an_earlier_export_are_not_served(tmp_path):
    trained = random_model("int", 300, seed=2)
    _export(trained, tmp_path)
    retrained = random_model("int", 300, seed=4)
    export_onnx(retrained, tmp_path / "model.onnx", ann=False)  # the old two-stage files stay
    with pytest.warns(UserWarning, match="written by another export"):
        rec = SessionRecommender.load(tmp_path / "model.onnx", threads=1)
    assert rec.mode == "exact"
    fresh = SessionRecommender.load(export_onnx(retrained, tmp_path / "b" / "model.onnx"))
    assert rec.next_items([1001, 1002]) == fresh.next_items([1001, 1002])


@pytest.mark.parametrize("name", ["model.ann.faiss", "model.rescore.onnx", "model.onnx.data"])
def test_a_tampered_two_stage_file_is_refused(exports, tmp_path, name):
    copy = tmp_path / "copy"
    shutil.copytree(exports["path"].parent, copy)
    with open(copy / name, "r+b") as fh:
        fh.seek(-3, 2)
        last = fh.read(1)
        fh.seek(-3, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArtifactError, match=f"{name}: SHA-256 differs"):
        SessionRecommender.load(copy / "model.onnx")


def test_only_some_two_stage_files_listed_is_refused(exports, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(exports["path"].parent, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["model.ann.faiss"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="missing: model.ann.faiss"):
        SessionRecommender.load(copy / "model.onnx")
    # without a manifest the files are read as they are
    (copy / "manifest.json").unlink()
    assert SessionRecommender.load(copy / "model.onnx").mode == "two_stage"


def test_ann_needs_fp32_and_its_data_file(tmp_path):
    trained = random_model("int", 100)
    for dtype in ("fp16", "int8"):
        with pytest.raises(ConfigError, match="fp32 item table") as info:
            export_onnx(trained, tmp_path / "m.onnx", ann=True, item_table_dtype=dtype)
        assert info.value.options == ("export_onnx.ann", "export_onnx.item_table_dtype")
    with pytest.raises(ConfigError, match="data file"):
        export_onnx(trained, tmp_path / "m.onnx", ann=True, external_data=False)
    assert not list(tmp_path.iterdir())


def test_ann_is_automatic_from_a_catalog_size(tmp_path, monkeypatch):
    import sessionrec.onnx_export.file as export_file

    trained = random_model("int", 120)
    monkeypatch.setattr(export_file, "ANN_MIN_ITEMS", 100)
    export_onnx(trained, tmp_path / "a" / "model.onnx")
    assert (tmp_path / "a" / "model.ann.faiss").is_file()
    export_onnx(trained, tmp_path / "b" / "model.onnx", item_table_dtype="int8")
    assert not (tmp_path / "b" / "model.ann.faiss").exists()  # int8: exact scoring
    monkeypatch.setattr(export_file, "ANN_MIN_ITEMS", 1000)
    export_onnx(trained, tmp_path / "c" / "model.onnx")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["manifest.json", "model.onnx"]


def test_an_index_that_finds_few_neighbours_is_named_at_export(tmp_path, monkeypatch):
    """Barely trained vectors have few neighbourhoods (a planted catalog of 5 million items
    after one epoch: 0.46 at export, recall@20 0.64 on sessions): the export says so."""
    import sessionrec.onnx_export.ann_index as ann_index

    trained = random_model("int", 120)
    monkeypatch.setattr(ann_index, "item_recall", lambda *args, **kwargs: 0.4625)
    with pytest.warns(UserWarning, match=r"finds 46% of the exact top-20 .* exact=True") as got:
        path = export_onnx(trained, tmp_path / "low" / "model.onnx", ann=True)
    assert got[0].filename == __file__  # points at the caller of export_onnx
    session_file = path.parent / two_stage_names(path.name)[0]
    assert onnx_metadata(session_file)["ann_item_recall_at_20"] == "0.4625"
    monkeypatch.setattr(ann_index, "item_recall", lambda *args, **kwargs: 0.97)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_onnx(trained, tmp_path / "fine" / "model.onnx", ann=True)


def test_item_recall_counts_ties_and_misses():
    """Hand check: 60 items of 2 distinct vectors, 30 copies each: a query's top-20 is any
    20 of its 30 tied copies, so an index that scans everything finds a top-20 as good
    as the exact one (counting the same copies only gave 0.8 here); one that finds
    nothing scores 0."""
    from sessionrec.onnx_export.ann_index import build_index, item_recall

    table = np.array([[1.0, 0.0], [0.0, 1.0]] * 30, dtype=np.float32)
    index = build_index(table, None, spherical=False)  # one list: exhaustive
    assert item_recall(index, table, None, n_queries=10) == 1.0

    class Empty:
        d = 2

        def search(self, queries, k):
            n = len(queries)
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)

    assert item_recall(Empty(), table, None, n_queries=10) == 0.0


def test_bad_nprobe_is_a_config_error(exports):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="nprobe must be an integer >= 1") as info:
            SessionRecommender.load(exports["path"], nprobe=bad)
        assert info.value.options == ("SessionRecommender.load.nprobe",)


def test_build_index_ranks_by_the_score_with_the_offset_column():
    """The index of [e_j, b_j] queried with [q, 1] ranks by q . e_j + b_j (hand check)."""
    from sessionrec.onnx_export.ann_index import build_index, ivf_parameters

    table = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]] * 20, dtype=np.float32)
    offset = np.zeros(60, dtype=np.float32)
    offset[1] = 5.0  # item 1 wins any query with the offset
    assert ivf_parameters(60) == (1, 1) and ivf_parameters(43_097) == (830, 128)
    assert ivf_parameters(5_000_000) == (8944, 128)
    index = build_index(table, offset, spherical=False)
    _, found = index.search(np.array([[1.0, 0.0, 1.0]], dtype=np.float32), 1)
    assert found[0, 0] == 1
    plain = build_index(table, None, spherical=False)
    _, found = plain.search(np.array([[1.0, 0.0]], dtype=np.float32), 1)
    assert table[found[0, 0]].tolist() == [1.0, 0.0]


def test_two_stage_serving_imports_no_torch(exports, tmp_path):
    """sessionrec.serving (faiss included) stays torch-free, like the recommender."""
    import subprocess
    import sys

    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('torch', 'torch_geometric', 'polars', 'onnx'):\n"
        "        raise ImportError('forbidden: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from sessionrec.recommender import SessionRecommender\n"
        f"rec = SessionRecommender.load({str(exports['path'])!r}, threads=1)\n"
        "assert rec.mode == 'two_stage', rec.mode\n"
        "print(rec.next_items([1001, 1002], k=3).ids)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)) == 3


def test_the_session_graph_carries_the_model_metadata(exports):
    """The recommender reads the id kind, size and session length from the session
    graph's metadata, which is the exported model's."""
    meta = exports["all_lists"].metadata
    assert json.loads(meta["model_config"])["n_items"] == N and meta["stage"] == "session"
    assert meta["contract"] == "sessionrec.onnx/2"
    assert meta["max_session_length"] == exports["exact"].metadata["max_session_length"]


def test_bad_ann_codes_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ann_codes must be 'auto', 'flat' or 'pq4'") as info:
        export_onnx(random_model("int", 50), tmp_path / "m.onnx", ann=True, ann_codes="hnsw")
    assert info.value.options == ("export_onnx.ann_codes",)
    assert not (tmp_path / "m.onnx").exists()
    # an index without the two-stage files would be ignored: refused, with the reason
    small = random_model("int", 50)
    for ann, why in (
        (False, r"\(ann=False\)"),
        (None, r"automatic from 1,000,000 items; this model has 50"),
    ):
        with pytest.raises(ConfigError, match=why) as info:
            export_onnx(small, tmp_path / "m.onnx", ann=ann, ann_codes="pq4")
        assert info.value.options == ("export_onnx.ann", "export_onnx.ann_codes")
    assert not (tmp_path / "m.onnx").exists()


def test_the_export_command_names_the_index_it_built(tmp_path, capsys):
    from _onnx_helpers import train_tiny

    from sessionrec.cli import main

    train_tiny("int", "srgnn", out_dir=tmp_path / "model")
    for codes, name in (("pq4", "IVF1,PQ8x4fsr"), ("flat", "IVF1,Flat")):  # d = 16
        out = tmp_path / codes / "m.onnx"
        args = ["export", "--model", str(tmp_path / "model"), "--out", str(out), "--ann"]
        assert main([*args, "--ann-codes", codes]) == 0
        printed = capsys.readouterr().out
        factor = "20x" if codes == "pq4" else "1x"
        assert f"two-stage index {name}: nprobe 1, {factor} candidates re-scored" in printed
        assert onnx_metadata(out.parent / "m.session.onnx")["ann_index"] == name
