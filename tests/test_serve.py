"""`sessionrec serve`: the HTTP API, its errors and metrics, micro-batching, hot reload,
and the command (torch-free) on a real socket."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _onnx_helpers import N_ITEMS, random_model, raw_ids

pytest.importorskip("fastapi", reason="sessionrec serve needs pip install 'sessionrec[serve]'")
pytest.importorskip("httpx2", reason="the in-process client needs httpx2 (the dev extra)")

from fastapi.testclient import TestClient  # noqa: E402

from sessionrec import SessionRecommender  # noqa: E402
from sessionrec.artifacts import commit_files, publish_directory  # noqa: E402
from sessionrec.onnx_export import export_onnx  # noqa: E402
from sessionrec.service.app import ServeConfig, create_app  # noqa: E402
from sessionrec.service.batching import MicroBatcher  # noqa: E402
from sessionrec.service.reload import ModelWatcher, load_served_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IDS = raw_ids("int").tolist()
SKUS = raw_ids("str").tolist()


def _export(kind: str, folder: Path, seed: int = 0) -> Path:
    return export_onnx(random_model(kind, seed=seed), f"{folder}/")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Exported tiny models (random weights), each in a directory with its manifest."""
    return {kind: _export(kind, tmp_path_factory.mktemp(kind)).parent for kind in ("int", "str")}


@pytest.fixture(scope="module")
def client(model_dirs):
    app = create_app(
        load_served_model(model_dirs["int"], threads=1), ServeConfig(max_body_bytes=4096)
    )
    with TestClient(app) as c:  # runs the lifespan: batcher and watcher started
        yield c


@pytest.fixture(scope="module")
def rec_int(model_dirs):
    return SessionRecommender.load(model_dirs["int"], threads=1)


# -- the API ----------------------------------------------------------------------------
def test_next_items_answers_as_the_recommender(client, rec_int):
    r = client.post("/next_items", json={"clicks": [IDS[1], IDS[2]], "k": 4})
    assert r.status_code == 200
    body = r.json()
    version = body.pop("model_version")
    assert body == rec_int.next_items([IDS[1], IDS[2]], k=4).to_dict()
    assert len(version) == 12 and int(version, 16) >= 0
    r = client.post("/next_items", json={"clicks": [IDS[1]], "k": 3, "exclude_seen": False})
    assert [i["item_id"] for i in r.json()["items"]] == rec_int.next_items(
        [IDS[1]], k=3, exclude_seen=False
    ).ids


def test_next_items_batch_in_order_and_exact_big_ints(client, rec_int):
    sessions = [[IDS[3]], [], [IDS[1], 7, 2**63 - 1]]
    r = client.post("/next_items_batch", json={"sessions": sessions, "k": 2})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results == [x.to_dict() for x in rec_int.next_items_batch(sessions, k=2)]
    assert [x["fallback"] for x in results] == [False, True, False]
    assert results[2]["unknown_clicks"] == 2  # 7 and 2**63 - 1 are not in the catalog


def test_form_encoded_body_is_read_as_json(client):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded: still JSON here."""
    r = client.post(
        "/next_items",
        content=json.dumps({"clicks": [IDS[1]], "k": 1}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("post", "/next_items", b"nope", 400, "not valid JSON"),
        ("post", "/next_items", b"[1, 2]", 422, "must be a JSON object"),
        ("post", "/next_items", b'{"k": 3}', 422, "clicks: Field required"),
        ("post", "/next_items", b'{"clicks": [1], "k": 0}', 422, "k: Input should be greater"),
        ("post", "/next_items", b'{"clicks": [1], "x": 1}', 422, "x: Extra inputs"),
        ("post", "/next_items", b'{"clicks": [1, "a"]}', 422, "clicks[1]: item ids of this model are integers"),
        ("post", "/next_items", b'{"clicks": [1.5]}', 422, "clicks[0]: Input should be a valid"),
        ("post", "/next_items", b'{"clicks": [99999999999999999999]}', 422, "does not fit in int64"),
        ("post", "/next_items", b'{"clicks": [], "exclude_seen": 1}', 422, "exclude_seen: Input should be a valid boolean"),
        ("post", "/next_items_batch", b'{"sessions": [[1], ["a"]]}', 422, "sessions[1][0]: item ids"),
        ("post", "/health", b"{}", 405, "POST is not allowed on /health"),
        ("get", "/next_items", None, 405, "GET is not allowed on /next_items"),
        ("get", "/nope", None, 404, "no such endpoint: /nope"),
        ("post", "/next_items/", b'{"clicks": []}', 404, "no such endpoint: /next_items/"),
        ("post", "/next_items", b"", 400, "the request body is empty"),
        ("post", "/next_items", b" " * 5000, 413, "over the limit of 4096"),
    ],
)  # fmt: skip
def test_errors_are_json_with_the_right_status(client, method, path, body, status, fragment):
    r = client.request(method.upper(), path, content=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]


def test_schema_errors_list_every_problem_with_its_place(client):
    r = client.post("/next_items", content=b'{"clicks": [1.5, 2, true], "k": 0, "x": 1}')
    assert r.status_code == 422
    places = [e["place"] for e in r.json()["errors"]]
    assert places == ["clicks[0]", "clicks[2]", "k", "x"]


def test_health_has_typed_metadata(client, rec_int):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["n_items"] == N_ITEMS and body["id_kind"] == "int"
    meta = body["model"]["metadata"]
    assert meta["pad_id"] == -1  # a number, not the JSON text "-1"
    assert meta["n_items"] == N_ITEMS and meta["max_session_length"] == 50
    assert meta["model_config"]["dim"] == 16  # an object, not a JSON string
    assert body["model"]["mode"] == "exact"
    assert client.get("/ready").json() == {"ready": True, "model_version": body["model"]["version"]}
    assert client.head("/health").status_code == 200  # liveness probes that send HEAD


def test_metrics_count_requests_clicks_and_the_model(client):
    client.post("/next_items", json={"clicks": [IDS[1], 5, 6], "k": 2})
    client.post("/next_items", json={"clicks": [], "k": 2})
    text = client.get("/metrics").text
    version = client.get("/health").json()["model"]["version"]

    def value(name: str) -> float:
        return float(next(x.split()[-1] for x in text.splitlines() if x.startswith(name + " ")))

    assert value("sessionrec_unknown_clicks_total") >= 2
    assert value("sessionrec_fallback_sessions_total") >= 1
    assert (
        f'sessionrec_model_info{{id_kind="int",mode="exact",n_items="{N_ITEMS}",version="{version}"}} 1.0'
        in text
    )
    assert 'sessionrec_requests_total{endpoint="/next_items",status="200"}' in text
    assert 'sessionrec_request_duration_seconds_bucket{endpoint="/next_items"' in text
    assert "sessionrec_batch_sessions_count" in text


def test_openapi_schema_documents_the_endpoints(client):
    schema = client.get("/openapi.json").json()
    assert {"/next_items", "/next_items_batch", "/health", "/ready", "/metrics"} <= set(
        schema["paths"]
    )
    request = schema["components"]["schemas"]["NextItemsRequest"]
    assert set(request["properties"]) == {"clicks", "k", "exclude_seen"}
    assert request["required"] == ["clicks"]
    from sessionrec.version import __version__

    assert schema["info"]["version"] == __version__


def test_string_id_model(model_dirs):
    rec = SessionRecommender.load(model_dirs["str"], threads=1)
    with TestClient(create_app(load_served_model(model_dirs["str"], threads=1))) as c:
        r = c.post("/next_items", json={"clicks": [SKUS[2], "unknown"], "k": 3})
        assert r.status_code == 200
        assert r.json()["items"] == rec.next_items([SKUS[2], "unknown"], k=3).to_dict()["items"]
        r = c.post("/next_items", json={"clicks": [SKUS[2], 5]})
        assert (
            r.status_code == 422
            and "clicks[1]: item ids of this model are strings" in r.json()["error"]
        )
        assert c.get("/health").json()["model"]["metadata"]["pad_id"] == ""


# -- micro-batching ---------------------------------------------------------------------
def test_concurrent_sessions_share_calls_and_get_their_own_answers(rec_int):
    """64 sessions submitted at once, with two values of k and of exclude_seen: fewer
    onnxruntime calls than sessions, and every answer is the one of a call of its own."""
    rng = np.random.default_rng(0)
    requests = [
        (rng.choice(IDS, size=int(rng.integers(0, 6))).tolist(), int(k), bool(ex))
        for k, ex in zip(rng.choice([3, 5], 64), rng.integers(0, 2, 64))
    ]
    sizes: list[int] = []

    async def run() -> list:
        batcher = MicroBatcher(max_batch=256, max_wait_s=0.05, on_batch=sizes.append)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(rec_int, rec_int.validate_session(c), k, ex) for c, k, ex in requests)
        )
        await batcher.stop()
        return results

    results = asyncio.run(run())
    assert results == [rec_int.next_items(c, k=k, exclude_seen=ex) for c, k, ex in requests]
    assert sum(sizes) == 64
    assert len(sizes) <= 4  # one call per (k, exclude_seen) group of the first batch
    assert max(sizes) > 1


def test_batcher_answers_queued_sessions_at_stop(rec_int):
    async def run() -> int:
        batcher = MicroBatcher(max_batch=2, max_wait_s=0)
        batcher.start()
        pending = [
            asyncio.create_task(batcher.submit(rec_int, rec_int.validate_session([i]), 2, True))
            for i in IDS[:7]
        ]
        await asyncio.sleep(0)
        await batcher.stop()
        return sum([len(result) == 2 for result in await asyncio.gather(*pending)])

    assert asyncio.run(run()) == 7


# -- hot reload -------------------------------------------------------------------------
def test_published_model_is_served_without_a_failed_request(tmp_path):
    served = tmp_path / "served"
    shutil.copytree(_export("int", tmp_path / "first").parent, served)
    second = _export("int", tmp_path / "second", seed=1).parent
    expected = SessionRecommender.load(second).next_items([IDS[1]], k=3).to_dict()
    app = create_app(load_served_model(served), ServeConfig(reload_interval_s=0.05))
    with TestClient(app) as c:
        before = c.get("/health").json()["model"]["version"]
        publish_directory(second, served)  # what `sessionrec fit --out` does at its end
        deadline = time.monotonic() + 20
        answers = []
        while time.monotonic() < deadline:
            r = c.post("/next_items", json={"clicks": [IDS[1]], "k": 3})
            answers.append(r.status_code)
            if r.json()["model_version"] != before:
                break
            time.sleep(0.01)
        after = r.json()
        assert set(answers) == {200}
        assert after.pop("model_version") != before
        assert after == expected
        assert 'sessionrec_model_reloads_total{result="ok"} 1.0' in c.get("/metrics").text


def test_a_manifest_change_that_keeps_the_model_file_reloads_nothing(tmp_path):
    served = _export("int", tmp_path / "served").parent
    first = load_served_model(served)

    async def run() -> tuple[bool, list[str]]:
        outcomes: list[str] = []
        watcher = ModelWatcher(served, first, on_reload=lambda result, _: outcomes.append(result))
        # another file committed beside the model (a report, an export's extra files)
        commit_files(served, {"notes.txt": lambda p: p.write_text("hi")}, "text/1")
        swapped = await watcher.check_now()
        assert watcher.current.rec is first.rec  # the same loaded model
        assert watcher.current.signature != first.signature  # the change is remembered
        return swapped, outcomes

    assert asyncio.run(run()) == (False, [])


def test_a_tampered_publication_is_refused_and_the_old_model_kept(tmp_path):
    served = _export("int", tmp_path / "served").parent
    first = load_served_model(served)

    async def run() -> tuple[str, list[str]]:
        outcomes: list[str] = []
        watcher = ModelWatcher(served, first, on_reload=lambda result, _: outcomes.append(result))
        second = _export("int", tmp_path / "second", seed=1).parent
        publish_directory(second, served)
        with open(served / "model.onnx", "r+b") as fh:  # a byte flipped after the commit
            fh.seek(100)
            byte = fh.read(1)
            fh.seek(100)
            fh.write(bytes([byte[0] ^ 1]))
        with pytest.raises(Exception, match="SHA-256"):
            await watcher.check_now()
        return watcher.current.version, outcomes

    version, outcomes = asyncio.run(run())
    assert version == first.version and outcomes == ["failed"]


# -- the command ------------------------------------------------------------------------
BLOCK_TORCH = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torch_geometric", "polars"}:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
from sessionrec.cli import main
sys.exit(main())
"""


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_command_is_torch_free_and_stops_cleanly(model_dirs, rec_int):
    server = subprocess.Popen(
        [sys.executable, "-c", BLOCK_TORCH, "serve", str(model_dirs["int"]), "--port", "0",
         "--log-level", "warning", "--batch-wait-ms", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line + server.stderr.read()
        base = line.split()[-1]
        status, body = _post(f"{base}/next_items", {"clicks": [IDS[1]], "k": 2})
        assert status == 200
        assert body["items"] == rec_int.next_items([IDS[1]], k=2).to_dict()["items"]
        # 16 concurrent clients, 10 requests each, on loopback: all answered exactly, and
        # sessions of concurrent requests shared onnxruntime calls
        sessions = [[IDS[i % N_ITEMS], IDS[(3 * i) % N_ITEMS]] for i in range(160)]
        expected = [r.to_dict()["items"] for r in rec_int.next_items_batch(sessions, k=5)]

        def call(i: int) -> tuple[int, list]:
            status, body = _post(f"{base}/next_items", {"clicks": sessions[i], "k": 5})
            return status, body.get("items")

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(call, range(160)))
        assert answers == [(200, items) for items in expected]
        with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
            metrics = response.read().decode()
        calls = float(re.search(r"^sessionrec_batch_sessions_count (\S+)$", metrics, re.M)[1])
        answered = float(re.search(r"^sessionrec_sessions_total (\S+)$", metrics, re.M)[1])
        assert answered == 161 and calls < answered
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        err = server.stderr.read()
        server.stdout.close()
        server.stderr.close()
    # uvicorn shuts down gracefully, then re-raises SIGTERM: killed by it, by convention
    assert code in (0, -signal.SIGTERM), err
    assert "serving model" in err and "Traceback" not in err


def test_serve_command_errors_name_the_fix(tmp_path, capsys):
    from sessionrec.cli import main

    assert main(["serve", str(tmp_path / "missing.onnx")]) == 1
    assert "no such model file (export one with `sessionrec export`)" in capsys.readouterr().err
    torch_file = tmp_path / "model.pt"
    torch_file.write_bytes(b"not read")
    assert main(["serve", str(torch_file)]) == 1
    err = capsys.readouterr().err
    assert "not an exported model: serve reads the ONNX file" in err and "export it first" in err
