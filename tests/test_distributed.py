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
