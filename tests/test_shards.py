"""Sharded datasets: a dump split by session into buckets, prepared and trained one shard
at a time, gives the sessions, samples, vocabulary and (with one shard) the very training
run of the in-memory path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.cli import main
from sessionrec.data.dataset import SessionDataset
from sessionrec.data.ingest import read_click_buckets, read_clicks
from sessionrec.data.presets import ColumnMap
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.data.shards import ShardedDataset, load_dataset, prepare_sharded
from sessionrec.errors import ArtifactError, BadRowsError, ConfigError, EmptyDataError
from sessionrec.train import Trainer, config_preset, evaluate_model

ROOT = Path(__file__).resolve().parents[1]
CLICKS = ROOT / "data" / "synthetic" / "clicks.csv"


@pytest.fixture(scope="module")
def full() -> SessionDataset:
    return prepare(CLICKS)


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> ShardedDataset:
    return prepare_sharded(CLICKS, tmp_path_factory.mktemp("shards") / "data", n_shards=3)


def test_buckets_partition_the_dump_by_session(tmp_path):
    buckets = read_click_buckets(CLICKS, tmp_path / "b", n_buckets=4)
    frames = [buckets.read(b).frame for b in range(4)]
    whole = read_clicks(CLICKS).frame
    assert sum(f.height for f in frames) == whole.height == buckets.report.rows
    owners = [set(f.get_column("session_id").to_list()) for f in frames]
    assert sum(len(o) for o in owners) == len(set().union(*owners))  # no session in two
    merged = pl.concat(frames).sort("row_nr")
    assert merged.equals(whole.sort("row_nr").select(merged.columns))


def test_bucket_count_follows_the_bucket_size(tmp_path):
    buckets = read_click_buckets(CLICKS, tmp_path / "b", clicks_per_bucket=4000)
    assert buckets.n_buckets == 4  # 15,788 rows / 4,000, rounded up


def test_bad_rows_are_checked_over_the_whole_dump(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "session_id,item_id,timestamp\n1,10,100\n1,11,101\nx,12,102\n2,10,103\n2,oops,104\n"
    )
    ints = ColumnMap(id_type="int")
    with pytest.raises(BadRowsError, match="2 bad row.*data row 3"):
        read_click_buckets(bad, tmp_path / "b", n_buckets=2, columns=ints)
    skipped = read_click_buckets(bad, tmp_path / "c", n_buckets=2, columns=ints, on_bad_rows="skip")
    assert skipped.report.rows_skipped == 2
    assert sum(skipped.read(b).frame.height for b in range(2)) == 3


def _sessions(parts) -> list[tuple[int, ...]]:
    return sorted(tuple(s) for part in parts for s in part.to_lists())


def _samples(parts) -> list[tuple[tuple[int, ...], int]]:
    return sorted(
        (tuple(p.prefix(j).tolist()), int(p.targets[j])) for p in parts for j in range(len(p))
    )


def test_one_shard_is_the_in_memory_dataset(full, tmp_path):
    one = prepare_sharded(CLICKS, tmp_path / "one", n_shards=1)
    assert one.n_shards == 1
    assert one.vocab.ids.tolist() == full.vocab.ids.tolist()
    train, test = one.train_shard(0), one.test_shard(0)
    np.testing.assert_array_equal(train.items, full.train.items)
    np.testing.assert_array_equal(train.offsets, full.train.offsets)
    np.testing.assert_array_equal(train.times, full.train.times)
    np.testing.assert_array_equal(test.items, full.test.items)
    np.testing.assert_array_equal(test.targets, full.test.targets)
    np.testing.assert_array_equal(test.session_index, full.test.session_index)
    assert one.stats() == full.stats()


def test_shards_hold_the_same_sessions_samples_and_counts(full, three):
    assert three.n_shards == 3
    assert three.vocab.ids.tolist() == full.vocab.ids.tolist()
    parts = [three.train_shard(i) for i in range(3)]
    assert _sessions(parts) == _sessions([full.train])
    assert _samples(three.test.chunks()) == _samples([full.test])
    assert len(three.test) == len(full.test)
    assert three.stats() == full.stats()
    ours, theirs = three.meta["report"]["protocol"], full.meta["report"]["protocol"]
    assert {k: v for k, v in ours.items() if k != "shards"} == theirs
    for part in parts:  # time order within a shard
        assert np.all(np.diff(part.times) >= 0)


def test_max_session_length_and_session_gaps_match_too(tmp_path):
    frame = read_clicks(CLICKS).frame.select("session_id", "item_id", "timestamp")
    by_user = frame.rename({"session_id": "user_id"})  # sessions cut at 10-minute gaps
    config = ProtocolConfig(max_session_length=3)
    options = {"columns": ColumnMap(user="user_id"), "session_gap_s": 600.0}
    whole = prepare(by_user, config, **options)
    sharded = prepare_sharded(by_user, tmp_path / "d", config, n_shards=2, **options)
    parts = [sharded.train_shard(i) for i in range(sharded.n_shards)]
    assert _sessions(parts) == _sessions([whole.train])
    assert _samples(sharded.test.chunks()) == _samples([whole.test])
    assert max(int(c.lengths.max()) for c in sharded.test.chunks() if len(c)) <= 3


def test_srgnn_protocol_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="default protocol only"):
        prepare_sharded(CLICKS, tmp_path / "d", ProtocolConfig.srgnn(), n_shards=2)


def test_a_modified_shard_is_refused(three, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(three.directory, copy)
    data = load_dataset(copy)
    path = copy / data.shards[1]["file"]
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    data.train_shard(0)  # the others still read
    with pytest.raises(ArtifactError, match="SHA-256"):
        data.train_shard(1)


def test_a_failed_prepare_keeps_the_previous_dataset(three, tmp_path):
    import shutil

    out = tmp_path / "data"
    shutil.copytree(three.directory, out)
    empty = tmp_path / "header_only.csv"
    empty.write_text("session_id,item_id,timestamp\n")
    with pytest.raises(EmptyDataError):
        prepare_sharded(empty, out, n_shards=2)
    assert load_dataset(out).fingerprint() == three.fingerprint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "header_only.csv"]


def _train(dataset, epochs: int = 2):
    torch.set_num_threads(1)
    model_config, train_config = config_preset(
        "default", dataset.n_items, epochs=epochs, batch_size=64, lr=0.003
    )
    return Trainer(model_config, train_config, progress=False).fit(dataset)


def test_one_shard_trains_exactly_as_in_memory(full, tmp_path):
    one = prepare_sharded(CLICKS, tmp_path / "one", n_shards=1)
    a, b = _train(full), _train(one)
    assert a.metrics["valid"] == b.metrics["valid"]
    assert a.metrics["test"] == b.metrics["test"]
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(value, b.model.state_dict()[key], rtol=0, atol=0)


def test_training_on_shards_learns_and_tests_every_sample(full, three):
    trained = _train(three, epochs=3)
    test = trained.metrics["test"]
    assert test["n_samples"] == len(full.test)
    # the same model scored on the in-memory test samples: identical metrics
    again = evaluate_model(trained.model, full.test, item_counts=trained.item_counts)
    assert again == pytest.approx(test, rel=1e-12)  # the same hits; sums in another order
    np.testing.assert_array_equal(
        trained.item_counts, np.bincount(full.train.items, minlength=full.n_items)
    )
    # each shard's latest 10 % of sessions validate
    n_valid_sessions = sum(round(s["train_sessions"] * 0.1) for s in three.shards)
    assert abs(n_valid_sessions - round(len(full.train) * 0.1)) <= 3
    assert test["hr@20"] > 40.0  # far above popularity (about 5 on this data)


def test_cli_prepare_train_evaluate_on_shards(tmp_path, capsys):
    data, model = tmp_path / "data", tmp_path / "model"
    assert main(["prepare", "--clicks", str(CLICKS), "--out", str(data), "--shard-clicks",
                 "6000", "--json"]) == 0  # fmt: skip
    prepared = json.loads(capsys.readouterr().out)
    assert prepared["report"]["protocol"]["shards"] == 3
    assert main(["stats", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_samples"] == prepared["test_samples"]
    common = ["--threads", "1", "--quiet", "--json"]
    assert main(["train", str(data), "--out", str(model), "--epochs", "1", *common]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", str(model), str(data), *common]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["hr@20"] == trained["test"]["hr@20"]
    assert main(["baseline", "--method", "pop", str(data)]) == 1
    assert "must be in memory" in capsys.readouterr().err


def test_fit_on_shards_publishes_the_model_and_removes_the_shards(tmp_path, capsys):
    out = tmp_path / "model"
    command = ["fit", "--clicks", str(CLICKS), "--shard-clicks", "6000", "--out", str(out)]
    assert main([*command, "--epochs", "1", "--threads", "1", "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"]["test_samples"] == 2805
    assert (out / "model.onnx").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # a run failing after the shards were written removes them too
    missing = ["--catalog", str(tmp_path / "missing.csv"), "--threads", "1", "--quiet"]
    assert main([*command, *missing]) == 1
    assert "missing.csv" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
