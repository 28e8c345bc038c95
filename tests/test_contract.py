"""One source of truth for a model's contract with its input (sessionrec/data/contract.py):
the settings ``prepare`` decides (the last clicks a model reads, the validation share,
the time unit, the id kind) reach training, the model directory and the ONNX file, and
PyTorch evaluation and the exported file read the same clicks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sessionrec.cli import main
from sessionrec.data.contract import DEFAULT_MAX_SESSION_LENGTH, DataContract
from sessionrec.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CLICKS = str(ROOT / "data" / "synthetic" / "clicks.csv")
SETTINGS = ["--max-session-length", "3", "--validation-fraction", "0.3", "--id-type", "str"]
CONTRACT = {"max_session_length": 3, "validation_fraction": 0.3, "time_unit": "s", "id_kind": "str"}


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """prepare with non-default settings, then train and export from the CLI."""
    tmp = tmp_path_factory.mktemp("contract")
    data, model = tmp / "p3", tmp / "m3"
    assert main(["prepare", "--clicks", CLICKS, *SETTINGS, "--out", str(data), "--json"]) == 0
    train = ["train", str(data), "--out", str(model), "--epochs", "2", "--threads", "1"]
    assert main([*train, "--quiet", "--json"]) == 0
    assert main(["export", "--model", str(model), "--out", str(model / "model.onnx")]) == 0
    return data, model


def test_every_setting_of_prepare_arrives_in_the_model_and_the_file(trained_dir):
    from sessionrec.data.dataset import validation_split
    from sessionrec.data.shards import load_dataset
    from sessionrec.onnx_export import onnx_metadata
    from sessionrec.train import load_model

    data, model = trained_dir
    dataset = load_dataset(data)
    assert dataset.meta["protocol"]["max_session_length"] == 3
    assert dataset.meta["protocol"]["validation_fraction"] == 0.3
    assert DataContract.of(dataset).to_dict() == CONTRACT  # the dataset records it
    assert json.loads((model / "config.json").read_text())["contract"] == CONTRACT
    trained = load_model(model)
    assert trained.data_contract.to_dict() == CONTRACT
    # training selected on the latest 30 % of the sessions, prefixes cut to 3 clicks
    _, valid = validation_split(dataset.train, 0.3, 3)
    assert trained.history[0]["valid"]["n_samples"] == len(valid)
    assert valid.lengths.max() == 3
    meta = onnx_metadata(model / "model.onnx")
    assert meta["max_session_length"] == "3" and meta["trained_max_session_length"] == "3"
    assert meta["id_kind"] == "str" and meta["time_unit"] == "s"
    assert meta["validation_fraction"] == "0.3"


def test_pytorch_and_the_onnx_file_read_the_same_last_clicks(trained_dir):
    """Sessions longer than the cut: the file's top-10 is its top-10 for the last 3 clicks,
    and PyTorch (the model on the cut prefix, as evaluate_model reads it) ranks alike."""
    import torch

    from sessionrec import SessionRecommender
    from sessionrec.data.sessions import Samples
    from sessionrec.graph import session_graph_batch
    from sessionrec.train import evaluate_model, load_model

    _, model = trained_dir
    trained = load_model(model)
    rec = SessionRecommender.load(model)
    assert rec.max_session_length == 3
    rng = np.random.default_rng(0)
    prefixes = [rng.integers(0, trained.model.config.n_items, n) for n in (4, 7, 10, 25, 300)]
    for index in prefixes:
        raw = trained.vocab.id_of(index).tolist()
        whole = rec.next_items(raw, k=10, exclude_seen=False)
        assert whole.ids == rec.next_items(raw[-3:], k=10, exclude_seen=False).ids
        graph = session_graph_batch(
            Samples.from_lists([index[-3:].tolist()], [0]), trained.model.config.edge_weights
        )
        with torch.no_grad():
            scores = trained.model.eval()(graph)[0].numpy()
        top = np.argsort(-scores, kind="stable")[:10]
        np.testing.assert_allclose(sorted(whole.scores), sorted(scores[top]), atol=1e-4)
    # evaluate_model cuts to the contract's length: the same hits as the file's top-10
    targets = rng.integers(0, trained.model.config.n_items, len(prefixes))
    samples = Samples.from_lists([p.tolist() for p in prefixes], targets.tolist())
    cut = trained.data_contract.inference_max_length
    metrics = evaluate_model(trained.model, samples, ks=(10,), max_length=cut)
    hits = [
        trained.vocab.ids[t]
        in rec.next_items(trained.vocab.id_of(p).tolist(), k=10, exclude_seen=False).ids
        for p, t in zip(prefixes, targets)
    ]
    assert metrics["hr@10"] == pytest.approx(100 * np.mean(hits))


def test_export_refuses_a_longer_cut_and_warns_of_a_shorter_one(trained_dir, tmp_path, capsys):
    from sessionrec.onnx_export import export_onnx, onnx_metadata

    _, model = trained_dir
    out = str(tmp_path / "x.onnx")
    longer = ["export", "--model", str(model), "--out", out, "--max-session-length", "5"]
    assert main(longer) == 1
    err = capsys.readouterr().err
    assert "longer than the 3 clicks this model was trained on" in err
    assert "--max-session-length L" in err  # the CLI names its flag
    with pytest.raises(ConfigError, match="never trained") as excinfo:
        export_onnx(model, out, max_session_length=5)
    assert excinfo.value.options == ("export_onnx.max_session_length",)
    with pytest.warns(UserWarning, match="overrides the model's 3"):
        export_onnx(model, out, max_session_length=2)
    assert onnx_metadata(out)["max_session_length"] == "2"


def test_fit_carries_the_settings_too(tmp_path):
    from sessionrec.onnx_export import onnx_metadata

    out = tmp_path / "current"
    fit = ["fit", "--clicks", CLICKS, *SETTINGS, "--out", str(out), "--epochs", "1"]
    assert main([*fit, "--threads", "1", "--quiet", "--json"]) == 0
    assert json.loads((out / "config.json").read_text())["contract"] == CONTRACT
    assert onnx_metadata(out / "model.onnx")["max_session_length"] == "3"


def test_train_overrides_the_validation_share_by_the_same_name(trained_dir, tmp_path):
    from sessionrec.train import load_model

    data, _ = trained_dir
    out = tmp_path / "m"
    train = ["train", str(data), "--out", str(out), "--epochs", "1", "--threads", "1"]
    assert main([*train, "--validation-fraction", "0.5", "--quiet", "--json"]) == 0
    assert load_model(out).data_contract.validation_fraction == 0.5


def test_a_benchmark_without_settings_gets_the_defaults():
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.sessions import Samples, Sessions
    from sessionrec.data.vocab import ItemVocab

    dataset = SessionDataset(
        Sessions(np.array([0, 1]), np.array([0, 2])),
        Samples.from_lists([[0]], [1]),
        ItemVocab(np.array([10, 11])),
        {"protocol": {"name": "srgnn-pickle"}},
    )
    contract = DataContract.of(dataset)
    assert contract == DataContract(None, 0.1, None, "int")
    assert contract.inference_max_length == DEFAULT_MAX_SESSION_LENGTH == 50


@pytest.mark.parametrize(
    "kwargs",
    [{"max_session_length": 0}, {"max_session_length": True}, {"validation_fraction": 1.0}]
    + [{"validation_fraction": float("nan")}, {"id_kind": "float"}],
)
def test_the_contract_refuses_bad_values(kwargs):
    with pytest.raises(ConfigError):
        DataContract(**kwargs)


def test_a_model_of_sessionrec_0_1_loads_with_its_settings(tmp_path):
    """A ``sessionrec.model/1`` directory (its data settings were training options)
    loads; its contract comes from them. A format this version does not know is refused
    naming the version that wrote it."""
    import torch

    from sessionrec.artifacts import commit_files
    from sessionrec.data.vocab import ItemVocab
    from sessionrec.errors import ArtifactError
    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.train import load_model

    model = SRGNN(SRGNNConfig(n_items=3, dim=4))
    old_train = {"epochs": 2, "valid_fraction": 0.2, "max_session_length": 7, "seed": 1}
    config = {"format": "sessionrec.model/1", "model": model.config.to_dict(), "train": old_train}

    def save_counts(path: Path) -> None:
        with open(path, "wb") as fh:  # np.save would append ".npy" to a pending name
            np.save(fh, np.array([1, 2, 3]))

    def write(directory: Path, fmt: str, cfg: dict) -> None:
        commit_files(
            directory,
            {
                "config.json": lambda p: p.write_text(json.dumps(cfg)),
                "model.pt": lambda p: torch.save(model.state_dict(), p),
                "vocab.json": ItemVocab(np.array([5, 6, 7])).save,
                "item_counts.npy": save_counts,
                "history.json": lambda p: p.write_text("[]"),
                "metrics.json": lambda p: p.write_text("{}"),
            },
            fmt,
        )

    write(tmp_path / "old", "sessionrec.model/1", config)
    loaded = load_model(tmp_path / "old")
    assert loaded.data_contract == DataContract(7, 0.2, None, "int")
    assert loaded.train_config.validation_fraction == 0.2 and loaded.train_config.epochs == 2
    write(tmp_path / "future", "sessionrec.model/9", {**config, "format": "sessionrec.model/9"})
    with pytest.raises(ArtifactError, match=r"sessionrec.model/9.*written by sessionrec"):
        load_model(tmp_path / "future")
