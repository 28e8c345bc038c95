"""Sessions, samples, vocabulary, saved datasets and the SR-GNN pickle loader."""

import json
import os
import pickle

import numpy as np
import pytest
from conftest import shared_dataset

from sessionrec.data.benchmarks import (
    load_benchmark,
    load_srgnn_pickle,
    load_yoochoose_categories,
    restricted_load,
    yoochoose_categories_catalog,
)
from sessionrec.data.dataset import SessionDataset, validation_split
from sessionrec.data.sessions import Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError, EmptyDataError, UnsafePickleError


# -- sessions and samples ---------------------------------------------------------------
def test_prefix_augmentation_by_hand():
    sessions = Sessions.from_lists([[1, 2, 3, 4], [7, 8], [9]])
    samples = sessions.to_samples()
    assert sessions.n_samples == len(samples) == 4  # 3 + 1 + none for one click
    prefixes = [samples.prefix(i).tolist() for i in range(len(samples))]
    assert prefixes == [[1], [1, 2], [1, 2, 3], [7]]
    assert samples.targets.tolist() == [2, 3, 4, 8]
    assert samples.session_index.tolist() == [0, 0, 0, 1]


def test_recency_order_by_time_then_position():
    times = np.array([5.0, 1.0, 5.0, 3.0])
    sessions = Sessions.from_lists([[1, 2]] * 4)
    assert sessions.recency_order().tolist() == [0, 1, 2, 3]  # no times: position
    timed = Sessions(sessions.items, sessions.offsets, times)
    assert timed.recency_order().tolist() == [1, 3, 0, 2]  # the tie at 5.0 by position


def test_prefix_augmentation_keeps_the_last_clicks():
    samples = Sessions.from_lists([[1, 2, 3, 4, 5]]).to_samples(max_length=2)
    assert [samples.prefix(i).tolist() for i in range(4)] == [[1], [1, 2], [2, 3], [3, 4]]
    assert samples.targets.tolist() == [2, 3, 4, 5]


def test_last_clicks_cuts_every_prefix_from_its_start():
    samples = Sessions.from_lists([[1, 2, 3, 4, 5], [7, 8]]).to_samples()
    cut = samples.last_clicks(2)
    assert [cut.prefix(i).tolist() for i in range(len(cut))] == [[1], [1, 2], [2, 3], [3, 4], [7]]
    assert cut.targets.tolist() == [2, 3, 4, 5, 8]
    assert cut.session_index.tolist() == [0, 0, 0, 0, 1]
    assert samples.last_clicks(4) is samples  # nothing to cut: the same object
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ConfigError, match="max_length"):
            samples.last_clicks(bad)


def test_select_and_padding():
    sessions = Sessions.from_lists([[1, 2], [3], [4, 5, 6]], times=[10.0, 30.0, 20.0])
    picked = sessions.select(np.array([2, 0]))
    assert picked.to_lists() == [[4, 5, 6], [1, 2]]
    assert picked.times.tolist() == [20.0, 10.0]
    samples = Samples.from_lists([[1, 2], [3]], [4, 5])
    assert samples.padded().tolist() == [[1, 2], [3, -1]]
    assert [b.targets.tolist() for b in samples.batches(1)] == [[4], [5]]


def test_container_errors():
    with pytest.raises(ConfigError):
        Sessions(np.array([1, 2]), np.array([0, 3]))
    with pytest.raises(ConfigError):
        Samples.from_lists([[1], []], [1, 2])
    with pytest.raises(ConfigError):
        Samples.from_lists([[1]], [1, 2])


# -- validation split ---------------------------------------------------------------------
def test_validation_split_takes_the_latest_sessions():
    sessions = Sessions.from_lists(
        [[1, 2], [3, 4], [5, 6], [7, 8, 9], [1, 3]], times=[5.0, 1.0, 4.0, 2.0, 3.0]
    )
    fit, valid = validation_split(sessions, 0.4)
    # latest two by time: [1, 2] (t=5) and [5, 6] (t=4)
    assert fit.to_lists() == [[3, 4], [7, 8, 9], [1, 3]]
    assert sorted(valid.targets.tolist()) == [2, 6]
    with pytest.raises(ConfigError):
        validation_split(sessions, 1.5)
    with pytest.raises(EmptyDataError):
        validation_split(Sessions.from_lists([[1, 2]]), 0.1)


# -- vocabulary ---------------------------------------------------------------------------
def test_vocab_round_trip_int_and_str(tmp_path):
    for ids in ([30, 10, 20], ["b", "a", "007"]):
        vocab = ItemVocab(ids)
        vocab.save(tmp_path / "v.json")
        again = ItemVocab.load(tmp_path / "v.json")
        assert again == vocab and again.kind == vocab.kind
        assert again.index_of([ids[1], "missing"]).tolist() == [1, -1]
        assert again.id_of([2]).tolist() == [ids[2]]


def test_vocab_errors(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        ItemVocab([1, 1])
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ArtifactError):
        ItemVocab.load(tmp_path / "bad.json")
    with pytest.raises(ArtifactError, match="not found"):
        ItemVocab.load(tmp_path / "missing.json")


# -- saved datasets -----------------------------------------------------------------------
def test_dataset_round_trip_and_tamper_detection(tiny_dataset, tmp_path):
    path = tiny_dataset.save(tmp_path / "ds")
    again = SessionDataset.load(path)
    assert again.vocab == tiny_dataset.vocab
    np.testing.assert_array_equal(again.train.items, tiny_dataset.train.items)
    np.testing.assert_array_equal(again.test.targets, tiny_dataset.test.targets)
    assert again.fingerprint() == tiny_dataset.fingerprint()
    # saving again replaces the folder atomically
    tiny_dataset.save(path)
    assert SessionDataset.load(path).stats() == tiny_dataset.stats()
    # a modified array no longer matches the fingerprint
    with np.load(path / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["test_targets"] = arrays["test_targets"][::-1].copy()
    np.savez(path / "arrays.npz", **arrays)
    with pytest.raises(ArtifactError, match="fingerprint"):
        SessionDataset.load(path)
    with pytest.raises(ArtifactError, match="not a prepared dataset"):
        SessionDataset.load(tmp_path / "nothing")


# -- SR-GNN pickles -----------------------------------------------------------------------
class _Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_without_executing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "all_train_seq.txt").write_bytes(pickle.dumps([[1, 2], _Boom()], protocol=2))
    (folder / "test.txt").write_bytes(pickle.dumps(([[1]], [2]), protocol=2))
    with pytest.raises(UnsafePickleError, match="nothing was executed"):
        load_srgnn_pickle(folder)
    assert not (tmp_path / "pwned").exists()


def test_restricted_load_admits_plain_data_only(tmp_path):
    (tmp_path / "ok").write_bytes(pickle.dumps(([[1, 2], [3]], [4, 5]), protocol=2))
    assert restricted_load(tmp_path / "ok") == ([[1, 2], [3]], [4, 5])
    (tmp_path / "floats").write_bytes(pickle.dumps([[1.5]], protocol=2))
    with pytest.raises(UnsafePickleError, match="float"):
        restricted_load(tmp_path / "floats")
    (tmp_path / "junk").write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match="not a readable pickle"):
        restricted_load(tmp_path / "junk")


def test_small_srgnn_pickle_folder(tmp_path):
    (tmp_path / "all_train_seq.txt").write_bytes(pickle.dumps([[5, 7, 9], [7, 5]], protocol=2))
    (tmp_path / "test.txt").write_bytes(pickle.dumps(([[5, 7], [9]], [9, 5]), protocol=2))
    ds = load_benchmark("srgnn-pickle", tmp_path)
    assert ds.vocab.ids.tolist() == [5, 7, 9]
    assert ds.train.to_lists() == [[0, 1, 2], [1, 0]]
    assert ds.test.targets.tolist() == [2, 0]
    assert ds.stats()["train_samples"] == 3
    with pytest.raises(ArtifactError, match="unknown benchmark"):
        load_benchmark("nope", tmp_path)


def test_diginetica_benchmark_counts():
    ds = load_srgnn_pickle(shared_dataset("diginetica"))
    stats = ds.stats()
    assert stats["train_sessions"] == 186_670
    assert stats["train_samples"] == 719_470
    assert stats["test_samples"] == 60_858
    assert stats["items"] == 43_097


# -- yoochoose-categories -----------------------------------------------------------------
def write_yoochoose_folder(folder, test_rows=None):
    header = "sessionId\tcategorys\titems\n"
    (folder / "sessions_train.tsv").write_text(header + "3\t2,2\t5,7\n9\t1,1,1\t7,9,5\n")
    (folder / "sessions_valid.tsv").write_text(header + "4\t1,1\t9,9\n")
    if test_rows is None:
        # session 3 copies a training session; item 11 never occurs in training
        test_rows = "3\t2,2\t5,7\n10\t1,3,1\t9,11,5\n11\t3,1\t11,7\n"
    (folder / "sessions_test.tsv").write_text(header + test_rows)
    (folder / "item_categories.tsv").write_text("itemId\tcategory\n5\t2\n7\t1\n9\t1\n7\t3\n12\t3\n")


def test_small_yoochoose_categories_folder(tmp_path):
    write_yoochoose_folder(tmp_path)
    ds = load_benchmark("yoochoose-categories", tmp_path)
    # vocabulary: the sorted ids of the training clicks (train and valid files)
    assert ds.vocab.ids.tolist() == [5, 7, 9]
    # the train file, then the valid file; no times: position is time
    assert ds.train.to_lists() == [[0, 1], [1, 2, 0], [2, 2]]
    assert ds.train.times is None and ds.train.session_ids.tolist() == [3, 9, 4]
    fit, valid = validation_split(ds.train, 1 / 3)
    assert fit.to_lists() == [[0, 1], [1, 2, 0]] and valid.targets.tolist() == [2]
    # test: item 11 dropped -> [5, 7], [9, 5], [7] (no sample): ([5], 7), ([9], 5)
    assert [ds.test.prefix(i).tolist() for i in range(len(ds.test))] == [[0], [2]]
    assert ds.test.targets.tolist() == [1, 0]
    assert ds.test.session_index.tolist() == [0, 1]
    assert ds.meta["test_clicks_dropped_unknown_item"] == 2
    assert ds.meta["test_sessions_without_samples"] == 1
    assert ds.meta["test_sessions_also_in_train"] == 1
    stats = ds.stats()
    assert (stats["train_sessions"], stats["train_samples"], stats["test_samples"]) == (3, 4, 2)

    catalog = yoochoose_categories_catalog(tmp_path)
    assert catalog.ids.tolist() == [5, 7, 9, 12]  # item 7's second row dropped
    assert catalog.report["duplicate_id_rows_dropped"] == 1
    aligned = catalog.align(ds.vocab)
    assert aligned.n_without_clicks == 1 and aligned.ids.tolist() == [5, 7, 9, 12]
    # codes by falling frequency, ties by value: "1" (2 items) -> 1, "2" -> 2, "3" -> 3
    assert aligned.categorical["category"].codes.tolist() == [2, 1, 1, 3]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("3\t2,2\t5\n", "line 2: 2 categories for 1 items"),
        ("3\t2\tfive\n", "line 2: expected sessionId"),
        ("3\t2\n", "line 2: expected sessionId"),
    ],
)
def test_yoochoose_categories_bad_rows_name_file_and_line(tmp_path, rows, match):
    write_yoochoose_folder(tmp_path, test_rows=rows)
    with pytest.raises(ArtifactError, match=match):
        load_yoochoose_categories(tmp_path)


def test_yoochoose_categories_missing_files_and_columns(tmp_path):
    with pytest.raises(ArtifactError, match="no such folder"):
        load_yoochoose_categories(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="sessions_train.tsv: file not found"):
        load_yoochoose_categories(tmp_path)
    write_yoochoose_folder(tmp_path)
    (tmp_path / "sessions_valid.tsv").write_text("session\titems\n1\t2\n")
    with pytest.raises(ArtifactError, match="expected the tab-separated columns"):
        load_yoochoose_categories(tmp_path)
    (tmp_path / "item_categories.tsv").unlink()
    with pytest.raises(ArtifactError, match="item_categories.tsv: file not found"):
        yoochoose_categories_catalog(tmp_path)


def test_yoochoose_categories_counts():
    folder = shared_dataset("yoochoose-categories")
    ds = load_yoochoose_categories(folder)
    stats = ds.stats()
    assert stats["train_sessions"] == 28_806 + 8_455
    assert stats["train_samples"] == 106_559
    assert stats["test_samples"] == 24_205
    assert stats["test_sessions_with_samples"] == 8_456
    assert stats["items"] == 5_397  # items 0..5,398 with a training click
    assert ds.meta["test_clicks_dropped_unknown_item"] == 0
    assert ds.meta["test_sessions_also_in_train"] == 5_000
    catalog = yoochoose_categories_catalog(folder)
    assert catalog.report["rows_read"] == 5_427 and len(catalog) == 5_399
    assert catalog.report["duplicate_id_rows_dropped"] == 28  # 27 items, one listed 3 times
    assert catalog.categorical["category"].cardinality == 13  # 12 values + unknown
    aligned = catalog.align(ds.vocab)
    assert (aligned.n_without_clicks, aligned.n_without_content) == (2, 0)


def test_keep_clicks_keeps_every_session_and_its_metadata():
    s = Sessions(
        np.array([1, 2, 3, 4, 5, 6]),
        np.array([0, 3, 4, 6]),
        times=np.array([10.0, 20.0, 30.0]),
        session_ids=np.array([7, 8, 9]),
    )
    kept = s.keep_clicks(np.array([True, False, True, False, True, True]))
    assert kept.to_lists() == [[1, 3], [], [5, 6]]
    assert kept.times.tolist() == [10.0, 20.0, 30.0]
    assert kept.session_ids.tolist() == [7, 8, 9]
    with pytest.raises(ConfigError, match="keep_clicks"):
        s.keep_clicks(np.array([True]))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_dataset_and_model_folders_get_the_same_umask_mode(tiny_dataset, tmp_path, umask, mode):
    """Folders are made with the process's umask: a prepared dataset (in memory or in
    shards) gets the mode a model folder gets (before, datasets were 0700 whatever the
    umask: built in a tempfile.mkdtemp folder, then renamed)."""
    import polars as pl

    from sessionrec.data.protocol import ProtocolConfig
    from sessionrec.data.shards import prepare_sharded
    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.train import TrainConfig, TrainedModel

    clicks = pl.DataFrame(
        {"session_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 2], "timestamp": [0.0, 1, 9e5, 9e5 + 1]}
    )
    n = len(tiny_dataset.vocab)
    model = SRGNN(SRGNNConfig(n_items=n, dim=8))
    old = os.umask(umask)
    try:
        tiny_dataset.save(tmp_path / "data")
        tiny_dataset.save(tmp_path / "data")  # replacing one keeps the mode
        config = ProtocolConfig(min_item_support=1, test_days=1)
        prepare_sharded(clicks, tmp_path / "shards", config, n_shards=1)
        TrainedModel(model, tiny_dataset.vocab, TrainConfig(), np.ones(n, dtype=np.int64)).save(
            tmp_path / "model"
        )
    finally:
        os.umask(old)
    for name in ("data", "shards", "model"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
