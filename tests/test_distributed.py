"""Data-parallel training with DistributedDataParallel, launched by torchrun (gloo, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sessionrec.cli import main
from sessionrec.train import load_model

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--epochs", "3", "--batch-size", "64", "--lr", "0.003", "--quiet", "--json"]
TRAIN += ["--threads", "1"]


@pytest.mark.parametrize("shard_clicks", [None, 6000], ids=["in-memory", "sharded"])
def test_two_processes_reach_the_accuracy_of_one(tmp_path, capsys, shard_clicks):
    """`torchrun --nproc_per_node 2 -m sessionrec train`: each process trains on half of
    every batch and DDP averages the gradients, so the run matches one process (the
    same batches and steps; only dropout masks and float summation order differ). On a
    sharded dataset every process reads the same shards in the same order."""
    data = tmp_path / "data"
    clicks = ROOT / "data" / "synthetic" / "clicks.csv"
    shards = [] if shard_clicks is None else ["--shard-clicks", str(shard_clicks)]
    prepare = ["prepare", "--clicks", str(clicks), "--out", str(data), "--json", *shards]
    assert main(prepare) == 0
    capsys.readouterr()
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
        + ["--standalone", "-m", "sessionrec", "train", str(data)]
        + ["--out", str(tmp_path / "two"), *TRAIN],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    two = json.loads(run.stdout)  # rank 0 alone reports
    assert main(["train", str(data), "--out", str(tmp_path / "one"), *TRAIN]) == 0
    one = json.loads(capsys.readouterr().out)
    for split in ("valid", "test"):
        assert two[split]["hr@20"] == pytest.approx(one[split]["hr@20"], abs=2.0)
        assert two[split]["mrr@20"] == pytest.approx(one[split]["mrr@20"], abs=2.0)
    model = load_model(tmp_path / "two")  # one consistent model directory
    assert [h["samples"] for h in model.history] == [
        h["samples"] for h in load_model(tmp_path / "one").history
    ]


ONCE_PER_NODE = """
import sys
from pathlib import Path

from sessionrec.errors import EmptyDataError, SessionrecError
from sessionrec.train import init_distributed, leave_distributed, once_per_node

out, fail = Path(sys.argv[1]), sys.argv[2] == "fail"
rank, _ = init_distributed()


def work():
    (out / f"work.{rank}").write_text("")
    if fail:
        raise EmptyDataError("no clicks left")
    (out / "data").write_text("prepared")
    return "prepared"


try:
    result = once_per_node(work, lambda: "read " + (out / "data").read_text())
except SessionrecError as e:
    result = f"{type(e).__name__}: {e}"
(out / f"result.{rank}").write_text(result)
leave_distributed()
"""


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "failing"])
def test_once_per_node_works_on_the_first_process_and_the_others_wait(tmp_path, fail):
    script = tmp_path / "once.py"
    script.write_text(ONCE_PER_NODE)
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
        + [str(script), str(tmp_path), "fail" if fail else "ok"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("work.*")) == ["work.0"]  # once
    results = [(tmp_path / f"result.{rank}").read_text() for rank in (0, 1)]
    if fail:
        assert results[0] == "EmptyDataError: no clicks left"
        assert results[1].startswith("SessionrecError: the first process of a machine failed")
    else:
        assert results == ["prepared", "read prepared"]  # read after it was written


def test_fit_with_shards_under_torchrun_prepares_them_once_and_removes_them(tmp_path):
    clicks = ROOT / "data" / "synthetic" / "clicks.csv"
    out = tmp_path / "model"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
        + ["-m", "sessionrec", "fit", "--clicks", str(clicks), "--shard-clicks", "6000"]
        + ["--out", str(out), "--epochs", "1", "--quiet", "--json", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["report"]["protocol"]["shards"] > 1
    assert load_model(out).metrics["test"]["hr@20"] == pytest.approx(result["test"]["hr@20"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no shards, no staging
