"""The Node.js client (export/node, onnxruntime-node) returns what the Python runtime does.

Needs ``node`` on PATH and the client's packages: ``cd export/node && npm ci --ignore-scripts``
(see export/README.md); the tests are skipped, with that reason, when either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _onnx_helpers import N_ITEMS, raw_ids, train_tiny

from sessionrec import SessionRecommender
from sessionrec.onnx_export import export_onnx

NODE_DIR = Path(__file__).resolve().parents[1] / "export" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node (Node.js >= 18) is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir(),
        reason="onnxruntime-node is not installed: run `npm ci --ignore-scripts` in export/node",
    ),
]


def _node_recommend(model: Path, request: dict, *extra: str) -> dict:
    out = subprocess.run(
        [NODE, str(NODE_DIR / "recommend.js"), str(model), *extra],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind, preset", [("int", "srgnn"), ("str", "default")])
def test_node_and_python_give_identical_top_k(tmp_path, kind, preset):
    model = export_onnx(train_tiny(kind, preset), tmp_path / "model.onnx")
    ids = raw_ids(kind).tolist()
    rng = np.random.default_rng(1)
    sessions = [rng.choice(ids, size=int(rng.integers(1, 15))).tolist() for _ in range(40)]
    unknown = -7 if kind == "int" else "no-such-item"
    sessions += [[], [unknown], [ids[3], unknown, ids[4]], ids * 3]
    rec = SessionRecommender.load(model, threads=1)
    for k, exclude in ((20, True), (N_ITEMS + 5, False)):
        got = _node_recommend(model, {"sessions": sessions, "k": k, "exclude_seen": exclude})
        want = rec.next_items_batch(sessions, k=k, exclude_seen=exclude)
        assert len(got["results"]) == len(want)
        for g, w in zip(got["results"], want):
            assert [i["item_id"] for i in g["items"]] == w.ids
            np.testing.assert_allclose([i["score"] for i in g["items"]], w.scores, rtol=1e-6)
            assert g["fallback"] == w.fallback


def test_node_cli_options_and_errors(tmp_path):
    model = export_onnx(train_tiny("int", "srgnn"), tmp_path / "model.onnx")
    ids = raw_ids("int").tolist()
    got = _node_recommend(model, [[ids[1], ids[2]]], "--k", "3", "--include-seen")
    want = SessionRecommender.load(model).next_items([ids[1], ids[2]], k=3, exclude_seen=False)
    assert [i["item_id"] for i in got["results"][0]["items"]] == want.ids
    bad = subprocess.run(
        [NODE, str(NODE_DIR / "recommend.js"), str(model)],
        input=json.dumps({"sessions": [["not-an-int"]]}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "integers" in bad.stderr


def test_node_client_refuses_a_tampered_file(tmp_path):
    model = export_onnx(train_tiny("int", "srgnn"), tmp_path / "model.onnx")
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    bad = subprocess.run(
        [NODE, str(NODE_DIR / "recommend.js"), str(model)],
        input=json.dumps({"sessions": [[]]}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "SHA-256 differs" in bad.stderr
