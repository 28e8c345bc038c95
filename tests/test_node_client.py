"""The Node.js client (export/node, onnxruntime-node) prints, byte for byte, the JSON the
standalone Python client (export/python/sessionrec_client.py) prints for the same input,
int64 ids of any size included, and returns what the Python runtime does.

Needs ``node`` on PATH and the client's packages: ``(cd export/node && npm ci
--ignore-scripts --no-audit --no-fund --loglevel=error)``, which the README's test line runs
where npm is installed (see export/README.md); those tests are skipped, with the command
to run, when either is missing.
The packaging test (pinned dependencies, lockfile) needs neither.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _onnx_helpers import N_ITEMS, as_pre_0_2_file, random_model, raw_ids, train_tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec import SessionRecommender
from sessionrec.data.vocab import ItemVocab
from sessionrec.onnx_export import export_onnx

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "export" / "node"
PY_CLIENT = ROOT / "export" / "python" / "sessionrec_client.py"
NODE = shutil.which("node")
#: how the client's packages are installed (README's test line, .ci/run)
NPM_CI = "(cd export/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)"


def _missing() -> str | None:
    """Why the Node.js tests cannot run here, or None."""
    if NODE is None:
        return "node (Node.js >= 18) is not on PATH"
    for package in ("onnxruntime-node", "lossless-json"):
        if not (NODE_DIR / "node_modules" / package).is_dir():
            return f"{package} is not installed: run `{NPM_CI}` first (the README's test line does)"
    return None


MISSING = _missing()
needs_node = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(command: list[str], text: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, input=text, capture_output=True, text=True, timeout=120, env=ENV)


def _both(model: Path, text: str, *extra: str) -> tuple[str, str]:
    """stdout of the Node.js and of the Python client for the same request text."""
    node = _run([NODE, str(NODE_DIR / "recommend.js"), str(model), *extra], text)
    python = _run([sys.executable, str(PY_CLIENT), str(model), *extra], text)
    assert node.returncode == 0, node.stderr
    assert python.returncode == 0, python.stderr
    return node.stdout, python.stdout


def _node_error(model: Path, text: str) -> str:
    out = _run([NODE, str(NODE_DIR / "recommend.js"), str(model)], text)
    assert out.returncode == 1 and out.stdout == "", out
    return out.stderr


@needs_node
@pytest.mark.parametrize("kind, preset", [("int", "srgnn"), ("str", "default")])
def test_node_and_python_print_identical_json(tmp_path, kind, preset):
    model = export_onnx(train_tiny(kind, preset), tmp_path / "model.onnx")
    ids = raw_ids(kind).tolist()
    rng = np.random.default_rng(1)
    sessions = [rng.choice(ids, size=int(rng.integers(1, 15))).tolist() for _ in range(40)]
    unknown = -7 if kind == "int" else "no-such-item"
    sessions += [[], [unknown], [ids[3], unknown, ids[4]], ids * 3]
    rec = SessionRecommender.load(model, threads=1)
    for k, exclude in ((20, True), (N_ITEMS + 5, False)):
        request = json.dumps({"sessions": sessions, "k": k, "exclude_seen": exclude})
        node, python = _both(model, request)
        assert node == python  # byte for byte
        want = rec.next_items_batch(sessions, k=k, exclude_seen=exclude)
        assert json.loads(node) == {"results": [w.to_dict() for w in want]}
    got = json.loads(_both(model, json.dumps([[ids[3], unknown, unknown]]))[0])
    assert got["results"][0]["unknown_clicks"] == 2


# -- int64 ids ----------------------------------------------------------------------------
BIG_IDS = [
    2**53 + 1,  # the first integer a double cannot hold
    2**53,
    2**53 - 1,
    -(2**53) - 1,
    2**63 - 1,
    2**63 - 2,
    -(2**63),
    -(2**63) + 1,
    0,
    10**18 + 3,
]


@pytest.fixture(scope="module")
def big_id_model(tmp_path_factory):
    """A model whose 30 item ids are int64s of every size: 2^53 + 1, 2^63 - 1, ..."""
    rng = np.random.default_rng(17)
    ids = list(BIG_IDS)
    while len(ids) < N_ITEMS:
        value = int(rng.integers(-(2**63), 2**63 - 1, dtype=np.int64)) >> int(rng.integers(0, 63))
        if value not in ids and value != -1:
            ids.append(value)
    trained = random_model("int")
    trained.vocab = ItemVocab(np.array(ids, dtype=np.int64))
    return export_onnx(trained, tmp_path_factory.mktemp("big") / "model.onnx"), ids


@needs_node
def test_node_reads_and_prints_ids_above_2_53_exactly(big_id_model):
    model, ids = big_id_model
    # 2^53 + 1 as a JSON number: known (not rounded to 2^53, which is known too)
    request = f'{{"sessions": [[{2**53 + 1}], [{2**53}], []], "k": {N_ITEMS}}}'
    node, python = _both(model, request)
    assert node == python
    results = json.loads(node)["results"]
    assert [r["unknown_clicks"] for r in results] == [0, 0, 0]
    assert 2**53 + 1 not in [i["item_id"] for i in results[0]["items"]]  # seen: excluded
    assert 2**53 in [i["item_id"] for i in results[0]["items"]]
    assert 2**53 not in [i["item_id"] for i in results[1]["items"]]
    # every id comes back as a JSON number, exactly
    assert sorted(i["item_id"] for i in results[2]["items"]) == sorted(ids)
    assert f'"item_id": {2**63 - 1},' in node and f'"item_id": {-(2**63)},' in node
    # an id sent as a JSON string is refused, shown exactly; so is one beyond int64
    assert '"9007199254740993"' in _node_error(model, '[["9007199254740993"]]')
    assert "9223372036854775808 does not fit in int64" in _node_error(
        model, "[[9223372036854775808]]"
    )
    assert "got 1.0" in _node_error(model, "[[1.0]]")


@needs_node
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_int64_ids_give_identical_output_from_both_clients(big_id_model, data):
    """Property: sessions of random int64 ids (the model's, above 2^53 and near +-2^63
    among them, and unknown ones of any size), any k, either exclude_seen: the Node.js
    and the Python client print the same bytes, which are SessionRecommender's answer."""
    model, ids = big_id_model
    any_id = st.one_of(
        st.sampled_from(ids),
        st.integers(-(2**63), 2**63 - 1),
        st.integers(2**53 - 3, 2**53 + 3),
        st.integers(2**63 - 4, 2**63 - 1),
    )
    sessions = data.draw(st.lists(st.lists(any_id, max_size=12), min_size=1, max_size=8))
    k = data.draw(st.integers(1, N_ITEMS + 3))
    exclude = data.draw(st.booleans())
    request = json.dumps({"sessions": sessions, "k": k, "exclude_seen": exclude})
    node, python = _both(model, request)
    assert node == python
    want = SessionRecommender.load(model, threads=1).next_items_batch(
        sessions, k=k, exclude_seen=exclude
    )
    assert json.loads(node) == {"results": [w.to_dict() for w in want]}
    known = set(ids)
    assert [r["unknown_clicks"] for r in json.loads(node)["results"]] == [
        sum(1 for v in s if v not in known and v != -1) for s in sessions
    ]


@needs_node
@pytest.mark.parametrize("exclude", [False, True])
def test_one_click_sessions_beside_an_empty_one(big_id_model, exclude):
    """The property test's find: ``[[], [2**53 + 1]]`` with ``k=1`` gave the Node.js
    client the seen item scored Infinity (a NaN row from a product over an empty axis in
    onnxruntime 1.30; see test_onnx_export's no-empty-tensor test). Both clients now
    print SessionRecommender's answer, finite scores, for one-click sessions in a batch."""
    model, ids = big_id_model
    sessions = [[], [2**53 + 1], [ids[5]], [], [ids[5]]]
    for k in (1, 3):
        request = json.dumps({"sessions": sessions, "k": k, "exclude_seen": exclude})
        node, python = _both(model, request)
        assert node == python
        want = SessionRecommender.load(model, threads=1).next_items_batch(
            sessions, k=k, exclude_seen=exclude
        )
        results = json.loads(node)["results"]
        assert results == [w.to_dict() for w in want]
        assert all(math.isfinite(i["score"]) for r in results for i in r["items"])
        assert len(results[1]["items"]) == k


# -- the JSON both print ------------------------------------------------------------------
def _node_eval(script: str, text: str) -> str:
    out = _run([NODE, "-e", script], text)
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_node
def test_scores_are_written_as_python_repr(tmp_path):
    """json_io.pythonFloat(x) == repr(x) for float32 scores of every magnitude, the
    boundaries of repr's notations and random doubles."""
    rng = np.random.default_rng(3)
    float32 = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    doubles = rng.integers(0, 2**63, 5_000, dtype=np.int64).view(np.float64)
    edges = [0.0, -0.0, 1.0, -2.5, 1e16, 9999999999999998.0, 1e-4, 1e-5, 0.00012, 1e21, 5e-324]
    edges += [1.7976931348623157e308, 0.1, 100.0, 123456789.0, 2.0**-126, 3.4028234663852886e38]
    finite = np.concatenate([float32[np.isfinite(float32)], doubles[np.isfinite(doubles)]])
    values = finite.tolist() + edges
    values += [math.inf, -math.inf, math.nan]
    bits = "\n".join(struct.pack(">d", v).hex() for v in values)
    script = (
        f"const {{ pythonFloat }} = require({str(NODE_DIR / 'json_io.js')!r});"
        "const lines = require('fs').readFileSync(0, 'utf8').split('\\n');"
        "process.stdout.write(lines.map((h) => pythonFloat(Buffer.from(h, 'hex')"
        ".readDoubleBE(0))).join('\\n'));"
    )
    got = _node_eval(script, bits).split("\n")
    want = [json.dumps(v) for v in values]  # repr, and NaN / Infinity as json writes them
    mismatches = [(v, g, w) for v, g, w in zip(values, got, want) if g != w]
    assert not mismatches and len(got) == len(values), mismatches[:5]


@needs_node
@settings(max_examples=5, deadline=None)
@given(strings=st.lists(st.text(max_size=12), min_size=50, max_size=200))
def test_string_ids_are_written_as_python_json(strings):
    """json_io.pythonString(s) == json.dumps(s) (ASCII-escaped) for any text: quotes,
    backslashes, control characters, DEL, accents, CJK, emoji (surrogate pairs)."""
    strings = strings + ['"\\\x00\x1f\x7f\x80', "café", "日本", "😀", "\u2028", "\ud800"]
    script = (
        f"const {{ pythonString }} = require({str(NODE_DIR / 'json_io.js')!r});"
        "const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(items.map(pythonString)));"
    )
    got = json.loads(_node_eval(script, json.dumps(strings)))
    assert got == [json.dumps(s) for s in strings]


@needs_node
def test_unicode_string_ids_give_identical_output(tmp_path):
    trained = random_model("str")
    ids = ["café", "日本", "😀", 'q"uote', "back\\slash", "tab\tnew\nline", "\x7f"]
    ids += [f"sku-{i}" for i in range(N_ITEMS - len(ids))]
    trained.vocab = ItemVocab(np.array(ids, dtype=object))
    model = export_onnx(trained, tmp_path / "model.onnx")
    node, python = _both(model, json.dumps([ids[:3], [], ["?", "😀"]]), "--k", str(N_ITEMS))
    assert node == python
    assert sorted(i["item_id"] for i in json.loads(node)["results"][1]["items"]) == sorted(ids)


# -- files, options, errors ---------------------------------------------------------------
@needs_node
def test_a_file_exported_before_0_2_gives_null_unknown_clicks(tmp_path):
    model = export_onnx(random_model("int"), tmp_path / "new" / "model.onnx")
    old = as_pre_0_2_file(model, tmp_path / "old")
    ids = raw_ids("int").tolist()
    node, python = _both(old, json.dumps([[ids[1], 5], []]), "--k", "3")
    assert node == python
    assert [r["unknown_clicks"] for r in json.loads(node)["results"]] == [None, None]
    new = json.loads(_both(model, json.dumps([[ids[1], 5], []]), "--k", "3")[0])
    assert [r["unknown_clicks"] for r in new["results"]] == [1, 0]
    for r_old, r_new in zip(json.loads(node)["results"], new["results"]):
        assert r_old["items"] == r_new["items"] and r_old["fallback"] == r_new["fallback"]


@needs_node
def test_node_cli_options_and_errors(tmp_path):
    model = export_onnx(train_tiny("int", "srgnn"), tmp_path / "model.onnx")
    ids = raw_ids("int").tolist()
    node, python = _both(model, json.dumps([[ids[1], ids[2]]]), "--k", "3", "--include-seen")
    assert node == python
    want = SessionRecommender.load(model).next_items([ids[1], ids[2]], k=3, exclude_seen=False)
    assert [i["item_id"] for i in json.loads(node)["results"][0]["items"]] == want.ids
    assert "integers" in _node_error(model, json.dumps({"sessions": [["not-an-int"]]}))
    assert "exclude" in _node_error(model, json.dumps({"sessions": [[]], "exclude_seen": 1}))
    assert "sessions" in _node_error(model, json.dumps({"k": 3}))
    assert "k must be" in _node_error(model, json.dumps({"sessions": [[]], "k": 2.0}))


@needs_node
def test_node_client_refuses_a_tampered_file(tmp_path):
    model = export_onnx(train_tiny("int", "srgnn"), tmp_path / "model.onnx")
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    assert "SHA-256 differs" in _node_error(model, json.dumps({"sessions": [[]]}))


@needs_node
def test_node_reads_a_data_file_export_and_refuses_a_tampered_data_file(tmp_path, monkeypatch):
    """A model whose constants sit in model.onnx.data: both clients print what they
    print for the one-file export; a modified data file is refused before loading."""
    import sessionrec.onnx_export.external as external

    monkeypatch.setattr(external, "EXTERNAL_TENSOR_MIN_BYTES", 0)
    trained = random_model("int", 200, normalize=True)
    one = export_onnx(trained, tmp_path / "one" / "model.onnx")
    two = export_onnx(trained, tmp_path / "two" / "model.onnx", external_data=True)
    assert (two.parent / "model.onnx.data").stat().st_size > 200 * 16 * 4
    ids = raw_ids("int", 200).tolist()
    request = json.dumps({"sessions": [ids[:3], [], [ids[7], 5]], "k": 6})
    assert _both(two, request) == _both(one, request)
    data = two.parent / "model.onnx.data"
    tampered = bytearray(data.read_bytes())
    tampered[300] ^= 1
    data.write_bytes(bytes(tampered))
    assert "model.onnx.data: SHA-256 differs" in _node_error(two, request)


@needs_node
def test_node_reads_contracts_1_and_2_and_serves_a_two_stage_export_exactly(tmp_path):
    """The Node.js client reads manifests of format sessionrec.onnx/1 and /2, refuses
    others, and scores a two-stage export exactly (it reads model.onnx only)."""
    pytest.importorskip("faiss", reason="the two-stage export needs faiss (sessionrec[ann])")
    model = export_onnx(random_model("int", 300), tmp_path / "model.onnx", ann=True)
    ids = raw_ids("int", 300).tolist()
    request = json.dumps({"sessions": [ids[4:6], []], "k": 5})
    node, python = _both(model, request)
    assert node == python
    exact = SessionRecommender.load(model, exact=True).next_items_batch([ids[4:6], []], k=5)
    assert json.loads(node)["results"] == json.loads(json.dumps([r.to_dict() for r in exact]))
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for fmt, ok in (("sessionrec.onnx/1", True), ("sessionrec.onnx/3", False)):
        manifest["files"]["model.onnx"]["format"] = fmt
        manifest_path.write_text(json.dumps(manifest))
        if ok:
            assert _both(model, request)[0] == node
        else:
            assert "contract sessionrec.onnx/3" in _node_error(model, request)


# -- packaging ----------------------------------------------------------------------------
def test_node_dependencies_are_pinned_and_locked():
    """package.json pins every dependency to one version and the lockfile (what `npm ci`
    installs) holds the same, with an integrity hash."""
    package = json.loads((NODE_DIR / "package.json").read_text())
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    deps = package["dependencies"]
    assert deps == {"lossless-json": "4.3.3", "onnxruntime-node": "1.30.0"}
    assert lock["packages"][""]["dependencies"] == deps
    for name, version in deps.items():
        entry = lock["packages"][f"node_modules/{name}"]
        assert entry["version"] == version and entry["integrity"].startswith("sha512-")


def test_the_readme_test_line_installs_the_client_packages_and_ci_runs_it():
    """The README's second command line installs the Node.js client's packages (where npm
    is) before the tests, with the command the skip reason names, and CI runs that line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    block = readme.index("```bash")
    test_line = readme[block + 2]
    assert test_line == f"command -v npm >/dev/null && {NPM_CI}; python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_line in ci
