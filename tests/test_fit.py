"""`sessionrec fit`: dump -> deployable model directory; a killed or failed fit keeps the
previous model whole and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _killing import run_killed_mid_epoch

from sessionrec import SessionRecommender
from sessionrec.artifacts import read_manifest
from sessionrec.cli import main
from sessionrec.cli.fit_commands import staging_directory
from sessionrec.train import load_model

ROOT = Path(__file__).resolve().parents[1]
CLICKS = ROOT / "data" / "synthetic" / "clicks.csv"
FIT = ["fit", "--clicks", str(CLICKS), "--epochs", "3", "--patience", "10", "--quiet"]
FIT += ["--threads", "1", "--batch-size", "64", "--lr", "0.003"]
FILES = [
    "config.json",
    "history.json",
    "item_counts.npy",
    "metrics.json",
    "model.onnx",
    "model.pt",
    "report.json",
    "training.png",
    "vocab.json",
]


def top(out: Path) -> list:
    """Top 5 of a session of three known items, from the published ONNX file."""
    session = load_model(out).vocab.ids[[0, 5, 9]].tolist()
    result = SessionRecommender.load(out, require_manifest=True).next_items(session, k=5)
    assert not result.fallback
    return list(zip(result.ids, result.scores))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "model"
    assert main([*FIT, "--out", str(out)]) == 0
    return out


def test_fit_writes_a_deployable_directory(fitted, capsys):
    assert sorted(read_manifest(fitted)["files"]) == FILES
    assert not staging_directory(fitted).exists()  # published, staging removed
    report = json.loads((fitted / "report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3]
    assert all(h["valid"]["hr@20"] > 0 and h["loss"] > 0 for h in report["history"])
    assert report["metrics"]["test"] == load_model(fitted).metrics["test"]
    assert report["data"]["source"] == str(CLICKS) and report["data"]["items"] > 0
    assert set(report["timings"]) == {"prepare_s", "train_s", "export_s", "compare_s", "total_s"}
    assert report["publication"]["decision"] == "published"  # the first model: nothing to
    assert report["publication"]["passed"] is None  # compare with
    assert (fitted / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(top(fitted)) == 5
    # what was selected and why; valid is the model as shipped (repeat bonus included)
    metrics, selected = report["metrics"], report["metrics"]["selected"]
    assert selected["criterion"] == "HR@20 + MRR@20 on the validation split"
    assert selected["epoch"] == metrics["best_epoch"]
    assert selected["repeat_bonus"] == load_model(fitted).model.config.repeat_bonus
    assert selected["repeat_bonus_grid"] and "why" in selected
    bonus = metrics["repeat_bonus"]["valid"][str(selected["repeat_bonus"])]
    assert metrics["valid"]["hr@20"] == bonus["hr@20"]
    best = report["history"][metrics["best_epoch"] - 1]["valid"]
    assert metrics["valid_before_calibration"] == best
    # one name per count: the data's test_sessions is the protocol's test_sessions_in_split
    protocol = report["data"]["report"]["protocol"]
    assert report["data"]["test_sessions"] == protocol["test_sessions_in_split"]
    assert report["data"]["test_sessions_with_samples"] == protocol["test_sessions_with_samples"]


def test_a_killed_fit_keeps_the_previous_model_and_resumes(fitted, tmp_path):
    out = tmp_path / "model"
    assert main([*FIT, "--out", str(out), "--epochs", "1"]) == 0  # yesterday's model
    before = top(out)
    before_manifest = read_manifest(out)
    run_killed_mid_epoch([*FIT, "--out", str(out)], step=10)
    assert read_manifest(out) == before_manifest and top(out) == before  # untouched
    assert (staging_directory(out) / "checkpoint.pt").is_file()

    assert main([*FIT, "--out", str(out), "--resume"]) == 0
    assert not staging_directory(out).exists()
    resumed, whole = load_model(out), load_model(fitted)
    assert len(resumed.history) == 3
    for split in ("valid", "test"):
        assert resumed.metrics[split]["hr@20"] == pytest.approx(whole.metrics[split]["hr@20"])
        assert resumed.metrics[split]["mrr@20"] == pytest.approx(whole.metrics[split]["mrr@20"])
    assert top(out) == top(fitted) != before


def test_a_failed_fit_keeps_the_previous_model(fitted, tmp_path, capsys):
    out = tmp_path / "model"
    assert main([*FIT, "--out", str(out), "--epochs", "1"]) == 0
    before = top(out)
    bad = tmp_path / "bad.csv"
    bad.write_text("session_id,item_id,timestamp\n1,2,not-a-time\n")
    assert main([*FIT, "--out", str(out), "--clicks", str(bad)]) == 1
    assert "BadRowsError" in capsys.readouterr().err
    assert top(out) == before


def test_resume_without_an_interrupted_fit_is_a_clear_error(tmp_path, capsys):
    assert main([*FIT, "--out", str(tmp_path / "m"), "--resume"]) == 1
    assert "no interrupted fit" in capsys.readouterr().err


def test_fit_warm_start_reports_the_items(fitted, tmp_path):
    out = tmp_path / "model"
    assert main([*FIT, "--out", str(out), "--epochs", "1", "--warm-start", str(fitted)]) == 0
    report = json.loads((out / "report.json").read_text())
    n_items = report["data"]["items"]
    assert report["metrics"]["warm_start"]["items_kept"] == n_items
    assert report["metrics"]["warm_start"]["items_added"] == 0
    # one warm epoch is already as good as the three the previous model was trained for
    assert (
        report["history"][0]["valid"]["hr@20"]
        >= 0.95 * load_model(fitted).metrics["valid"]["hr@20"]
    )


def test_the_nightly_script_trains_then_warm_starts(tmp_path):
    """examples/nightly_retrain.sh: the first night from scratch, the next from the
    published model; each night's summary is kept."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = ROOT / "examples" / "nightly_retrain.sh"
    models = tmp_path / "models"
    options = ["--epochs", "1", "--threads", "1", "--batch-size", "64"]
    for night in (1, 2):
        for summary in models.glob("fit-*.json"):
            summary.unlink()
        done = subprocess.run(
            ["bash", str(script), str(CLICKS), str(models), *options],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        (summary,) = models.glob("fit-*.json")
        result = json.loads(summary.read_text())
        assert ("warm_start" in result) == (night == 2)
        assert result["publication"]["decision"] == "published"
        assert "published" in done.stderr.splitlines()[-1]
        assert SessionRecommender.load(models / "current", require_manifest=True)
    assert not (models / "current.rejected").exists()
    assert result["warm_start"]["items_kept"] == result["dataset"]["items"]
    bad = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
