"""Manifests: tampered or incompatible artifacts are refused; interrupted writes keep the
previous model."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _onnx_helpers import random_model

from sessionrec import SessionRecommender
from sessionrec.artifacts import MANIFEST, commit_files, read_manifest, verified_path
from sessionrec.errors import ArtifactError
from sessionrec.onnx_export import export_onnx
from sessionrec.train import MODEL_FORMAT, load_model

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILES = [
    "config.json",
    "history.json",
    "item_counts.npy",
    "metrics.json",
    "model.pt",
    "vocab.json",
]


def writer(data: bytes):
    return lambda path: path.write_bytes(data)


def weights(trained) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in trained.model.state_dict().items()}


def same_weights(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


# -- the manifest -----------------------------------------------------------------------
def test_manifest_lists_hash_size_and_format(tmp_path):
    manifest = commit_files(tmp_path, {"a.bin": writer(b"abc"), "b.txt": writer(b"")}, "fmt/1")
    assert manifest == json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["manifest_version"] == 1
    assert manifest["files"] == {
        "a.bin": {
            "format": "fmt/1",
            # sha256("abc"), the FIPS 180-2 test vector
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "bytes": 3,
        },
        "b.txt": {"format": "fmt/1", "sha256": hashlib.sha256(b"").hexdigest(), "bytes": 0},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", MANIFEST]
    assert verified_path(tmp_path, "a.bin", "fmt/1") == tmp_path / "a.bin"


def test_adding_keeps_the_other_entries_and_replacing_drops_them(tmp_path):
    commit_files(tmp_path, {"a": writer(b"1"), "b": writer(b"2")}, "f")
    (tmp_path / "notes.txt").write_text("mine")  # not listed: never touched
    commit_files(tmp_path, {"b": writer(b"3")}, "f")
    assert sorted(read_manifest(tmp_path)["files"]) == ["a", "b"]
    assert (tmp_path / "b").read_bytes() == b"3"
    commit_files(tmp_path, {"c": writer(b"4")}, "f", replace_listed=True)
    assert sorted(read_manifest(tmp_path)["files"]) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", MANIFEST, "notes.txt"]


@pytest.mark.parametrize("name", [MANIFEST, "../x", ".hidden", "a/b"])
def test_bad_artifact_names(tmp_path, name):
    with pytest.raises(ArtifactError, match="cannot be an artifact file name"):
        commit_files(tmp_path, {name: writer(b"")}, "f")


def test_verification_errors(tmp_path):
    with pytest.raises(ArtifactError, match="no manifest.json"):
        verified_path(tmp_path, "a", "f")
    commit_files(tmp_path, {"a": writer(b"hello")}, "f/1")
    with pytest.raises(ArtifactError, match="does not list 'b'"):
        verified_path(tmp_path, "b", "f/1")
    with pytest.raises(ArtifactError, match="format 'f/1', this sessionrec reads 'f/2'"):
        verified_path(tmp_path, "a", "f/2")
    (tmp_path / "a").write_bytes(b"hellp")
    with pytest.raises(ArtifactError, match="SHA-256 differs"):
        verified_path(tmp_path, "a", "f/1")
    (tmp_path / "a").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verified_path(tmp_path, "a", "f/1")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "manifest_version": 99}))
    with pytest.raises(ArtifactError, match="manifest version 99"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"manifest_version": 1, "files": {"a": {}}}))
    with pytest.raises(ArtifactError, match="lacks 'sha256' or 'format'"):
        read_manifest(tmp_path)


# -- model directories ------------------------------------------------------------------
def test_model_directory_has_a_manifest_of_every_file(tmp_path):
    random_model("int").save(tmp_path)
    manifest = read_manifest(tmp_path)
    assert sorted(manifest["files"]) == MODEL_FILES
    for name, entry in manifest["files"].items():
        assert entry["format"] == MODEL_FORMAT
        assert entry["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", MODEL_FILES)
def test_a_tampered_model_file_is_refused(tmp_path, name):
    random_model("int").save(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one bit
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{name}: SHA-256 differs"):
        load_model(tmp_path)


def test_a_model_of_another_format_is_refused(tmp_path):
    random_model("int").save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["files"]["model.pt"]["format"] = "sessionrec.model/999"
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="model.pt: format 'sessionrec.model/999'"):
        load_model(tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_model(tmp_path)


def test_a_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    old = random_model("int", seed=0)
    old.save(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"training state")
    new = random_model("int", seed=1)

    def broken_save(obj, path):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path)
    monkeypatch.undo()
    assert same_weights(load_model(tmp_path), old)
    new.save(tmp_path)  # the next save cleans up after the failed one
    assert same_weights(load_model(tmp_path), new)
    assert not list(tmp_path.glob(".*"))
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"training state"


def test_retraining_removes_the_old_export_from_the_directory(tmp_path):
    random_model("int", seed=0).save(tmp_path)
    export_onnx(tmp_path, tmp_path / "model.onnx")
    assert "model.onnx" in read_manifest(tmp_path)["files"]
    assert SessionRecommender.load(tmp_path).n_items == len(load_model(tmp_path).vocab)
    random_model("int", seed=1).save(tmp_path)  # a new model: the old export is stale
    assert not (tmp_path / "model.onnx").exists()
    assert sorted(read_manifest(tmp_path)["files"]) == MODEL_FILES


# -- exported files ---------------------------------------------------------------------
@pytest.fixture
def exported(tmp_path) -> Path:
    return export_onnx(random_model("int"), tmp_path / "model.onnx")


def test_a_tampered_onnx_file_is_refused(exported):
    data = bytearray(exported.read_bytes())
    data[-100] ^= 0xFF  # inside the weights: onnxruntime alone would run it
    exported.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256 differs"):
        SessionRecommender.load(exported)


def test_an_onnx_file_of_another_contract_is_refused(exported):
    manifest = json.loads((exported.parent / MANIFEST).read_text())
    manifest["files"]["model.onnx"]["format"] = "sessionrec.onnx/3"
    (exported.parent / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format 'sessionrec.onnx/3'"):
        SessionRecommender.load(exported)


def test_a_file_without_manifest_loads_unless_one_is_required(exported):
    (exported.parent / MANIFEST).unlink()
    assert SessionRecommender.load(exported).n_items > 0
    with pytest.raises(ArtifactError, match="require_manifest"):
        SessionRecommender.load(exported, require_manifest=True)


# -- killed processes -------------------------------------------------------------------
KILLED_SAVE = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from _onnx_helpers import random_model
from sessionrec.onnx_export import export_onnx

real_replace = os.replace
committed = []

def replace_then_die(src, dst):
    commit = str(dst).endswith("manifest.json")
    if commit and {when!r} == "before-commit":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if commit and {when!r} == "after-commit":
        os.kill(os.getpid(), signal.SIGKILL)
    if committed and {when!r} == "mid-rename":
        os.kill(os.getpid(), signal.SIGKILL)
    committed.append(commit) if commit else None

os.replace = replace_then_die
if {what!r} == "save":
    random_model("int", seed=1).save({directory!r})
else:
    export_onnx(random_model("int", seed=1), {directory!r} + "/model.onnx")
"""


def top_scores(path: Path) -> list[float]:
    return SessionRecommender.load(path).next_items([1001, 1002], k=5).scores


@pytest.mark.parametrize("what", ["save", "export"])
@pytest.mark.parametrize("when", ["before-commit", "after-commit", "mid-rename"])
def test_sigkill_during_a_write_leaves_a_loadable_model(tmp_path, what, when):
    """A process killed at each step of a save or an export (SIGKILL: no clean-up runs):
    the directory then loads the previous model (killed before the manifest was
    replaced) or the new one (after), never a mix."""
    old = random_model("int", seed=0)
    new = random_model("int", seed=1)
    old.save(tmp_path)
    export_onnx(old, tmp_path / "model.onnx")
    old_scores = top_scores(tmp_path)
    new_scores = top_scores(export_onnx(new, tmp_path / "probe" / "model.onnx"))
    assert new_scores != old_scores
    script = KILLED_SAVE.format(
        tests=str(ROOT / "tests"), when=when, what=what, directory=str(tmp_path)
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr.decode()
    committed = when != "before-commit"
    if what == "save":
        assert same_weights(load_model(tmp_path), new if committed else old)
        if committed:  # the retrained model's directory no longer lists the stale export
            with pytest.raises(ArtifactError, match="does not list 'model.onnx'"):
                SessionRecommender.load(tmp_path)
        else:
            assert top_scores(tmp_path) == old_scores
    else:
        assert same_weights(load_model(tmp_path), old)
        assert top_scores(tmp_path) == (new_scores if committed else old_scores)
    # the next write finishes or drops what the killed one left
    old.save(tmp_path)
    assert same_weights(load_model(tmp_path), old)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
