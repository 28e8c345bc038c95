"""SessionRecommender: the torch-free runtime over an exported file."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
from _onnx_helpers import (
    N_ITEMS,
    as_pre_0_2_file,
    ort_session,
    pad_batch,
    raw_ids,
    run_onnx,
    train_tiny,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec import SessionRecommender
from sessionrec.bench.load import concurrent_calls, service_sessions
from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.onnx_export import export_onnx
from sessionrec.recommender import NextItems, Recommendation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Exported tiny trained models: ``{"int": path, "str": path}``."""
    out = {}
    for kind, preset in (("int", "srgnn"), ("str", "default")):
        out[kind] = export_onnx(
            train_tiny(kind, preset), tmp_path_factory.mktemp(kind) / "model.onnx"
        )
    return out


@pytest.fixture(scope="module")
def rec_int(model_files):
    return SessionRecommender.load(model_files["int"], threads=1)


@pytest.fixture(scope="module")
def rec_str(model_files):
    return SessionRecommender.load(model_files["str"], threads=1)


IDS = raw_ids("int").tolist()
SKUS = raw_ids("str").tolist()


# -- the API ----------------------------------------------------------------------------
def test_next_items_returns_ids_and_scores_best_first(rec_int):
    result = rec_int.next_items([IDS[1], IDS[2]], k=5)
    assert isinstance(result, NextItems) and len(result) == 5 and not result.fallback
    assert all(isinstance(r, Recommendation) for r in result)
    for item_id, score in result:  # unpacks as (item_id, score)
        assert type(item_id) is int and type(score) is float
    assert result.scores == sorted(result.scores, reverse=True)
    assert {IDS[1], IDS[2]}.isdisjoint(result.ids)
    assert result.to_dict()["items"][0] == {"item_id": result[0].item_id, "score": result[0].score}
    assert rec_int.n_items == N_ITEMS and rec_int.id_kind == "int"
    assert rec_int.max_session_length == 50 and rec_int.metadata["contract"] == "sessionrec.onnx/2"


def test_unknown_clicks_are_counted(rec_int, rec_str):
    # ids are 1000..1029 and "sku-000".."sku-029"; -1 and "" are the padding ids
    result = rec_int.next_items([IDS[4], 7, IDS[5], 10**15, 7], k=3)
    assert result.unknown_clicks == 3 and not result.fallback
    assert result.ids == rec_int.next_items([IDS[4], IDS[5]], k=3).ids
    assert result.to_dict()["unknown_clicks"] == 3
    assert rec_int.next_items([IDS[4]], k=3).unknown_clicks == 0
    assert rec_int.next_items([], k=3).unknown_clicks == 0
    all_unknown = rec_int.next_items([5, 6], k=3)
    assert all_unknown.unknown_clicks == 2 and all_unknown.fallback
    assert rec_str.next_items([SKUS[4], "NOPE"], k=3).unknown_clicks == 1
    assert rec_str.next_items(["", SKUS[4]], k=3).unknown_clicks == 0  # padding
    batch = rec_int.next_items_batch([[5], [], [IDS[1], 6, 6], list(range(40))], k=2)
    assert [r.unknown_clicks for r in batch] == [1, 0, 2, 40]
    assert rec_int.counts_unknown_clicks and rec_str.counts_unknown_clicks


def test_a_file_exported_before_0_2_reports_unknown_clicks_as_none(model_files, tmp_path):
    old = SessionRecommender.load(as_pre_0_2_file(model_files["int"], tmp_path), threads=1)
    new = SessionRecommender.load(model_files["int"], threads=1)
    assert not old.counts_unknown_clicks
    for session in ([IDS[4], 7], [], [5]):
        a, b = old.next_items(session, k=4), new.next_items(session, k=4)
        assert a.unknown_clicks is None and a.to_dict()["unknown_clicks"] is None
        assert (a.ids, a.scores, a.fallback) == (b.ids, b.scores, b.fallback)
    assert [r.unknown_clicks for r in old.next_items_batch([[1], [2]])] == [None, None]


def _with_contract(path: Path, out_dir: Path, contract: str, manifest: bool = True) -> Path:
    """``path`` rewritten with the metadata ``contract`` (and, with ``manifest``, listed
    in a manifest under that format) in ``out_dir``."""
    from sessionrec.artifacts import commit_files

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "contract":
            prop.value = contract
    out_dir.mkdir(parents=True, exist_ok=True)
    if not manifest:
        onnx.save(model, str(out_dir / "model.onnx"))
    else:
        commit_files(out_dir, {"model.onnx": lambda p: onnx.save(model, str(p))}, contract)
    return out_dir / "model.onnx"


def test_contract_versions_1_and_2_are_read_and_others_refused(model_files, tmp_path):
    """This version writes sessionrec.onnx/2 (metadata and manifest) and reads /1 (files
    of 0.1.0, and of 0.2.0 development versions with unknown_clicks) and /2."""
    from sessionrec.artifacts import read_manifest
    from sessionrec.serving.files import CONTRACT, CONTRACTS

    assert CONTRACT == "sessionrec.onnx/2" and CONTRACTS == ("sessionrec.onnx/1", CONTRACT)
    path = model_files["int"]
    assert read_manifest(path.parent)["files"]["model.onnx"]["format"] == CONTRACT
    new = SessionRecommender.load(path, threads=1)
    v1 = _with_contract(as_pre_0_2_file(path, tmp_path / "pre"), tmp_path / "v1", CONTRACTS[0])
    v1_dev = _with_contract(path, tmp_path / "v1-dev", CONTRACTS[0])  # /1 with unknown_clicks
    for old_path in (v1, v1_dev):
        old = SessionRecommender.load(old_path, threads=1, require_manifest=True)
        assert old.metadata["contract"] == "sessionrec.onnx/1"
        assert old.next_items([IDS[3]], k=5).ids == new.next_items([IDS[3]], k=5).ids
    assert SessionRecommender.load(v1_dev).next_items([IDS[3], 5]).unknown_clicks == 1
    for manifest in (True, False):  # a later contract: refused by its manifest or metadata
        v3 = _with_contract(path, tmp_path / f"v3-{manifest}", "sessionrec.onnx/3", manifest)
        with pytest.raises(ArtifactError, match="sessionrec.onnx/3"):
            SessionRecommender.load(v3)


def test_a_reader_of_contract_1_refuses_a_version_2_file_by_its_manifest(model_files):
    """What sessionrec 0.1.0 does with a file of this version (it reads format /1 only,
    and before this version crashed unpacking the fourth output): a clear refusal."""
    from sessionrec.artifacts import verified_path

    path = model_files["int"]
    with pytest.raises(ArtifactError) as info:
        verified_path(path.parent, path.name, "sessionrec.onnx/1")
    assert "format 'sessionrec.onnx/2', this sessionrec reads 'sessionrec.onnx/1'" in str(
        info.value
    )
    assert "use the sessionrec version that wrote it" in str(info.value)


def test_cli_recommend_reports_unknown_clicks(model_files, tmp_path, capsys):
    from sessionrec.cli import main

    model = str(model_files["str"])
    assert main(["recommend", "--model", model, "--session", f"{SKUS[4]},NOPE", "--k", "2"]) == 0
    out = capsys.readouterr()
    assert "unknown clicks: 1 of 2 (ids not in the model's vocabulary, ignored)" in out.err
    assert main(["recommend", "--model", model, "--session", SKUS[4], "--k", "2"]) == 0
    assert "unknown clicks: 0 of 1" in capsys.readouterr().err
    args = ["recommend", "--model", model, "--session", f"{SKUS[4]},NOPE", "--k", "2", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["unknown_clicks"] == 1 and result["fallback"] is False
    old = str(as_pre_0_2_file(model_files["str"], tmp_path))
    assert main(["recommend", "--model", old, "--session", f"{SKUS[4]},NOPE", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_clicks"] is None
    assert main(["recommend", "--model", old, "--session", f"{SKUS[4]},NOPE"]) == 0
    assert "unknown clicks: not counted by this file" in capsys.readouterr().err


def test_string_ids(rec_str):
    result = rec_str.next_items([SKUS[3], "not-an-item", SKUS[4]], k=3)
    assert all(type(i) is str and i in SKUS for i in result.ids)
    assert rec_str.id_kind == "str"


def test_same_as_the_raw_onnx_graph(rec_int, model_files):
    session = ort_session(model_files["int"])
    clicks = [IDS[5], IDS[6], IDS[5]]
    top_ids, top_scores, _ = run_onnx(session, pad_batch([clicks], "int"), 7, True)
    result = rec_int.next_items(clicks, k=7)
    assert result.ids == top_ids[0].tolist()
    assert result.scores == top_scores[0].tolist()


def test_learned_the_successor_pattern(rec_int):
    # the training data mostly continue i -> i + 1
    assert IDS[11] in rec_int.next_items([IDS[8], IDS[9], IDS[10]], k=3).ids


def test_batch_equals_one_by_one(rec_int):
    sessions = [[IDS[1], IDS[2]], [], [IDS[7]] * 3, [5, 6], list(IDS[:12]), np.array(IDS[3:6])]
    batch = rec_int.next_items_batch(sessions, k=6)
    assert len(batch) == len(sessions)
    for s, together in zip(sessions, batch):
        alone = rec_int.next_items(s, k=6)
        assert alone.ids == together.ids and alone.fallback == together.fallback
        np.testing.assert_allclose(alone.scores, together.scores, atol=1e-5)
    assert rec_int.next_items_batch([]) == []


def test_fallback_for_empty_and_unknown_sessions(rec_int, rec_str):
    for rec, session in ((rec_int, []), (rec_int, [-5, 10**15]), (rec_str, ["?", ""])):
        result = rec.next_items(session, k=3)
        assert result.fallback and len(result) == 3
    # the training data click item 2 most, then item 1 (see _onnx_helpers.tiny_dataset)
    assert rec_int.next_items([], k=2).ids == [IDS[2], IDS[1]]


def test_exclude_seen_and_k_beyond_the_catalog(rec_int):
    seen = [IDS[0], IDS[1], IDS[1], IDS[2]]
    excluded = rec_int.next_items(seen, k=1000)
    assert len(excluded) == N_ITEMS - 3 and not set(seen) & set(excluded.ids)
    included = rec_int.next_items(seen, k=1000, exclude_seen=False)
    assert len(included) == N_ITEMS and set(seen) <= set(included.ids)
    assert np.isfinite(included.scores).all()


def test_numpy_ids_are_accepted(rec_int):
    a = rec_int.next_items(np.array(IDS[3:6], dtype=np.int32), k=4)
    b = rec_int.next_items([np.int64(i) for i in IDS[3:6]], k=4)
    c = rec_int.next_items(IDS[3:6], k=np.int64(4))
    assert a.ids == b.ids == c.ids


def test_very_long_sessions(rec_int):
    clicks = [IDS[i % N_ITEMS] for i in range(10_000)]
    assert rec_int.next_items(clicks, k=5).ids == rec_int.next_items(clicks[-50:], k=5).ids


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "clicks, message",
    [
        ("1001,1002", "list of item ids"),
        (1001, "list of item ids"),
        ([1001, "1002"], r"clicks\[1\].*integers"),
        ([1001, 2.0], "integers"),
        ([True], "integers"),
        ([None], "integers"),
        ([2**70], "int64"),
        ([[1001]], "integers"),
        (np.zeros((2, 2), dtype=np.int64), "1-D"),
        (np.array([1.5]), "integers"),
    ],
)
def test_bad_sessions_are_config_errors(rec_int, clicks, message):
    with pytest.raises(ConfigError, match=message):
        rec_int.next_items(clicks)


def test_string_model_refuses_int_ids(rec_str):
    with pytest.raises(ConfigError, match="strings"):
        rec_str.next_items([1, 2])


@pytest.mark.parametrize("k", [0, -1, 2.5, "20", True, None])
def test_bad_k(rec_int, k):
    with pytest.raises(ConfigError, match="k must be"):
        rec_int.next_items([IDS[1]], k=k)


def test_bad_batch_arguments(rec_int):
    with pytest.raises(ConfigError, match="exclude_seen"):
        rec_int.next_items([IDS[1]], exclude_seen="yes")
    with pytest.raises(ConfigError, match="list of sessions"):
        rec_int.next_items_batch("abc")
    with pytest.raises(ConfigError, match=r"sessions\[1\]"):
        rec_int.next_items_batch([[IDS[1]], "x"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clicks=st.lists(
        st.one_of(
            st.integers(-(2**64), 2**64),
            st.sampled_from(IDS),
            st.floats(allow_nan=True),
            st.text(max_size=3),
            st.booleans(),
            st.none(),
        ),
        max_size=60,
    ),
    k=st.one_of(st.integers(-3, 100), st.floats(), st.none()),
)
def test_any_input_gives_a_result_or_a_config_error(rec_int, clicks, k):
    try:
        result = rec_int.next_items(clicks, k=k)
    except ConfigError:
        return
    known = [c for c in clicks if c in IDS]
    assert result.fallback == (not known)
    assert result.unknown_clicks == sum(1 for c in clicks if c not in IDS and c != -1)
    seen = set(known[-50:])  # only the last max_session_length known clicks count
    assert len(result) == min(k, N_ITEMS - len(seen))
    assert not seen & set(result.ids)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    array=st.one_of(
        st.builds(
            lambda dtype, shape, seed: (
                np.random.default_rng(seed).integers(-3, 1100, size=shape).astype(dtype)
            ),
            st.sampled_from(["int8", "int16", "int32", "int64", "uint64", "float64", "bool"]),
            st.one_of(
                st.integers(0, 12), st.just(10_000), st.tuples(st.integers(0, 3), st.just(2))
            ),
            st.integers(0, 2**32 - 1),
        ),
        st.just(np.array(["1001", "x"])),
        st.just(np.array([IDS[1], "x"], dtype=object)),
    ),
    k=st.one_of(st.integers(1, 60), st.just(10**30)),
    batch=st.booleans(),
)
def test_numpy_sessions_of_any_dtype_give_a_result_or_a_config_error(rec_int, array, k, batch):
    try:
        results = (
            rec_int.next_items_batch([array], k=k) if batch else [rec_int.next_items(array, k=k)]
        )
    except ConfigError:
        return
    assert array.ndim == 1 and (array.dtype.kind in "iuO" or array.size == 0)  # [] is a session
    known = [int(c) for c in array.tolist() if c in IDS][-50:]
    assert results[0].fallback == (not known)
    assert len(results[0]) == min(k, N_ITEMS - len(set(known)))


def test_load_errors(tmp_path, model_files):
    with pytest.raises(ArtifactError, match="no such model file"):
        SessionRecommender.load(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        SessionRecommender.load(garbage)
    # a valid ONNX file that is not ours
    foreign = onnx.load(str(model_files["int"]))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ArtifactError, match="contract"):
        SessionRecommender.load(tmp_path / "foreign.onnx")
    for threads in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="threads"):
            SessionRecommender.load(model_files["int"], threads=threads)


# -- concurrency ------------------------------------------------------------------------
def test_eight_threads_give_the_serial_answers(rec_int, rec_str):
    """8 threads share one recommender: every call equals the serial call, bit for bit,
    on real-looking, empty, unknown, repeated and 10,000-click sessions."""
    for rec, ids in ((rec_int, IDS), (rec_str, SKUS)):
        rng = np.random.default_rng(0)
        real = [rng.choice(ids, size=int(rng.integers(1, 12))) for _ in range(64)]
        sessions = service_sessions(real, np.asarray(ids))
        result = concurrent_calls(rec, sessions, threads=8, calls=300, k=10)
        assert result["errors"] == 0, result["first_errors"]
        assert result["mismatches"] == 0 and result["calls"] == 2400
        assert result["rss_mb_after"] > 0 and result["calls_per_s"] > 0


def test_concurrent_calls_counts_mismatches_and_errors():
    class Flaky:
        """Answers differ after the serial pass; one input raises in the threads."""

        def __init__(self):
            self.n = 0

        def next_items(self, clicks, k):
            self.n += 1
            if self.n > 2 and clicks == [2]:
                raise RuntimeError("boom")
            return ("answer", self.n > 2 and clicks == [1])

    result = concurrent_calls(Flaky(), [[1], [2]], threads=2, calls=50)
    assert result["mismatches"] > 0 and result["errors"] == 2
    assert "RuntimeError: boom" in result["first_errors"][0]


# -- torch-free -------------------------------------------------------------------------
BLOCK_TORCH = """
import importlib.abc, sys
BLOCKED = {"torch", "torch_geometric", "polars"}
attempts = []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
"""


def test_serving_never_imports_torch(model_files):
    """Import and use SessionRecommender (and `sessionrec recommend`) with torch,
    torch_geometric and polars made unimportable: none of them is even attempted."""
    script = (
        BLOCK_TORCH
        + f"""
from sessionrec import SessionRecommender
rec = SessionRecommender.load({str(model_files["int"])!r}, threads=1)
result = rec.next_items([{IDS[1]}, {IDS[2]}], k=3)
batch = rec.next_items_batch([[{IDS[3]}], []], k=2)
assert len(result) == 3 and batch[1].fallback
print("serving", sorted(m for m in sys.modules if m.startswith("sessionrec")))
from sessionrec.cli import main
assert main(["recommend", "--model", {str(model_files["int"])!r}, "--session", "{IDS[1]}"]) == 0
print("attempts", attempts, "loaded", [m for m in sys.modules if m.split(".")[0] in BLOCKED])
"""
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert (
        "serving ['sessionrec', 'sessionrec.artifacts', 'sessionrec.errors', "
        "'sessionrec.recommender', 'sessionrec.serving', 'sessionrec.serving.files', "
        "'sessionrec.serving.two_stage', 'sessionrec.version']" in out.stdout
    )
    assert "attempts [] loaded []" in out.stdout


def test_standalone_python_client_matches(model_files, rec_str):
    sys.path.insert(0, str(ROOT / "export" / "python"))
    try:
        from sessionrec_client import ClientError
        from sessionrec_client import SessionRecommender as Client
    finally:
        sys.path.pop(0)
    client = Client(str(model_files["str"]), threads=1)
    sessions = [[SKUS[1], SKUS[2]], [], ["?"], SKUS[:9]]
    for k, exclude in ((5, True), (N_ITEMS + 3, False)):
        got = client.next_items_batch(sessions, k=k, exclude_seen=exclude)
        want = rec_str.next_items_batch(sessions, k=k, exclude_seen=exclude)
        assert got == [w.to_dict() for w in want]
    with pytest.raises(ClientError):
        client.next_items([1, 2])
    assert client.next_items([SKUS[1], "?", "?"])["unknown_clicks"] == 2


def _client_module():
    sys.path.insert(0, str(ROOT / "export" / "python"))
    try:
        import sessionrec_client
    finally:
        sys.path.pop(0)
    return sessionrec_client


def test_standalone_python_client_old_files_and_bad_input(model_files, tmp_path):
    client_module = _client_module()
    old = client_module.SessionRecommender(
        str(as_pre_0_2_file(model_files["int"], tmp_path)), threads=1
    )
    assert not old.counts_unknown_clicks
    assert old.next_items([IDS[1], 5])["unknown_clicks"] is None
    client = client_module.SessionRecommender(str(model_files["int"]), threads=1)
    assert client.next_items([IDS[1], 5, -1])["unknown_clicks"] == 1  # -1: padding
    for clicks, message in (([2**63], "does not fit in int64"), ([-(2**63) - 1], "int64")):
        with pytest.raises(client_module.ClientError, match=message):
            client.next_items(clicks)
    with pytest.raises(client_module.ClientError, match="exclude_seen"):
        client.next_items([IDS[1]], exclude_seen=1)
    with pytest.raises(client_module.ClientError, match="list of sessions"):
        client.next_items_batch(5)
    # the command line: a bad request is an error line and exit status 1, not a traceback
    for text in ("{not json", '{"k": 3}', '{"sessions": [[1.5]]}', "[[9223372036854775808]]"):
        out = subprocess.run(
            [sys.executable, str(ROOT / "export" / "python" / "sessionrec_client.py")]
            + [str(model_files["int"])],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 1 and out.stderr.startswith("error: "), (text, out.stderr)


def test_standalone_python_client_checks_the_manifest(tmp_path):
    sys.path.insert(0, str(ROOT / "export" / "python"))
    try:
        from sessionrec_client import ClientError
        from sessionrec_client import SessionRecommender as Client
    finally:
        sys.path.pop(0)
    model = export_onnx(train_tiny("int", "srgnn"), tmp_path / "model.onnx")
    assert Client(str(model)).n_items == N_ITEMS
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ClientError, match="SHA-256 differs"):
        Client(str(model))


def test_standalone_python_client_reads_contracts_1_and_2_and_the_data_file(model_files, tmp_path):
    import shutil

    client_module = _client_module()
    path = model_files["int"]
    new = client_module.SessionRecommender(str(path), threads=1)
    v1 = _with_contract(path, tmp_path / "v1", "sessionrec.onnx/1")
    assert client_module.SessionRecommender(str(v1)).next_items([IDS[2]]) == new.next_items(
        [IDS[2]]
    )
    for manifest in (True, False):
        v3 = _with_contract(path, tmp_path / f"v3-{manifest}", "sessionrec.onnx/3", manifest)
        with pytest.raises(client_module.ClientError, match="sessionrec.onnx/3"):
            client_module.SessionRecommender(str(v3))
    # a data file beside the model: verified with it
    trained = train_tiny("int", "srgnn")
    external = export_onnx(trained, tmp_path / "ext" / "model.onnx", external_data=True)
    one_file = export_onnx(trained, tmp_path / "one" / "model.onnx")
    client = client_module.SessionRecommender(str(external), threads=1)
    sessions = [[IDS[2], IDS[5]], [], [7]]
    expected = client_module.SessionRecommender(str(one_file)).next_items_batch(sessions)
    assert client.next_items_batch(sessions) == expected
    tampered = tmp_path / "tampered"
    shutil.copytree(external.parent, tampered)
    data = tampered / "model.onnx.data"
    data.write_bytes(data.read_bytes() + b"\0")
    with pytest.raises(client_module.ClientError, match="model.onnx.data: SHA-256 differs"):
        client_module.SessionRecommender(str(tampered / "model.onnx"))


def test_standalone_client_imports_no_sessionrec_or_torch(model_files):
    script = (
        BLOCK_TORCH
        + f"""
sys.path.insert(0, {str(ROOT / "export" / "python")!r})
from sessionrec_client import SessionRecommender
print(SessionRecommender({str(model_files["str"])!r}).next_items([{SKUS[1]!r}], k=2))
print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED | {{"sessionrec"}}))
"""
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "loaded []" in out.stdout


# -- the example HTTP service -----------------------------------------------------------
def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_example_http_service(model_files, rec_int):
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BLOCK_TORCH + "import runpy; runpy.run_path("
            f"{str(ROOT / 'examples' / 'serve_http.py')!r}, run_name='__main__')",
            "--model",
            str(model_files["int"]),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + server.stderr.read()
        base = line.split()[-1]
        status, health = _http(f"{base}/health")
        assert status == 200 and health["status"] == "ok" and health["n_items"] == N_ITEMS
        status, body = _http(f"{base}/next_items", {"clicks": [IDS[1], IDS[2]], "k": 4})
        assert status == 200
        assert body == rec_int.next_items([IDS[1], IDS[2]], k=4).to_dict()
        status, body = _http(f"{base}/next_items_batch", {"sessions": [[IDS[3]], []], "k": 2})
        assert status == 200 and [r["fallback"] for r in body["results"]] == [False, True]
        status, body = _http(f"{base}/next_items", {"clicks": [IDS[1], 7, 2**63 - 1], "k": 2})
        assert status == 200 and body["unknown_clicks"] == 2
        status, body = _http(f"{base}/next_items_batch", {"sessions": [[5], [IDS[1]]], "k": 2})
        assert [r["unknown_clicks"] for r in body["results"]] == [1, 0]
        status, body = _http(f"{base}/next_items", {"clicks": [IDS[1]], "k": 0})
        assert status == 400 and "k must be >= 1" in body["error"]
        status, body = _http(f"{base}/next_items", {"k": 3})
        assert status == 400 and "clicks" in body["error"]
        status, body = _http(f"{base}/nope", {})
        assert status == 404
        request = urllib.request.Request(f"{base}/next_items", data=b"nope")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 400
        assert json.loads(err.value.read())["error"].startswith(
            "the request body is not valid JSON"
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(f"{base}/health", data=b"{}"), timeout=30)
        assert err.value.code == 405
        assert health["metadata"]["pad_id"] == -1 and isinstance(
            health["metadata"]["model_config"], dict
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()
