"""The best epoch's weights kept during training (``sessionrec/train/best_state.py``): in
memory when small, in a file when large, with the same results either way."""

from __future__ import annotations

import torch

from sessionrec.errors import ArtifactError
from sessionrec.train import Trainer, config_preset, load_model
from sessionrec.train.best_state import BestState


class _Net(torch.nn.Module):
    """Parameters and buffers of several dtypes and ranks, a 0-d one included."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(70, 5))
        self.scale = torch.nn.Parameter(torch.tensor(2.5))
        self.register_buffer("mask", torch.tensor([True, False, True]))
        self.register_buffer("low", torch.randn(4, 3).to(torch.bfloat16))


def _states_equal(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.state_dict().items())


def _scramble(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.copy_(torch.zeros_like(tensor))


def test_a_spilled_state_comes_back_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setattr("sessionrec.train.best_state._BLOCK_BYTES", 96)  # several blocks
    net = _Net()
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    best = BestState(tmp_path, spill_bytes=0)
    best.keep(net, epoch=2)
    assert best.path == tmp_path / "best-epoch-3.bin"
    # the tensors' bytes one after the other: 70*5*4 + 4 + 3 + 4*3*2
    assert best.path.stat().st_size == 1400 + 4 + 3 + 24
    assert best.layout[1] == ["scale", "float32", []]
    _scramble(net)
    best.load_into(net)
    assert _states_equal(net, kept)


def test_a_small_state_stays_in_memory(tmp_path):
    net = _Net()
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    best = BestState(tmp_path)  # 1.4 kB, far below SPILL_BYTES
    best.keep(net, epoch=0)
    assert best.path is None and list(tmp_path.iterdir()) == []
    _scramble(net)  # the kept copy is not the model's memory
    best.load_into(net)
    assert _states_equal(net, kept)
    assert set(best.checkpoint_entries()) == {"best_model"}


def test_earlier_files_go_once_a_checkpoint_refers_to_the_new_one(tmp_path):
    net, best = _Net(), BestState(tmp_path, spill_bytes=0)
    best.keep(net, 0)
    best.committed()  # a checkpoint refers to best-epoch-1.bin
    best.keep(net, 1)  # not yet committed: a kill now resumes from epoch 1's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-epoch-1.bin", "best-epoch-2.bin"]
    assert best.checkpoint_entries()["best_model_file"] == "best-epoch-2.bin"
    best.committed()
    assert [p.name for p in tmp_path.iterdir()] == ["best-epoch-2.bin"]


def test_a_checkpoint_entry_restores_the_file(tmp_path):
    net = _Net()
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    first = BestState(tmp_path, spill_bytes=0)
    first.keep(net, 4)
    entries = first.checkpoint_entries()
    again = BestState(tmp_path, spill_bytes=0)
    again.restore(entries, tmp_path, 4)
    _scramble(net)
    again.load_into(net)
    assert _states_equal(net, kept) and again.epoch == 4


def test_a_short_or_foreign_file_is_a_clear_error(tmp_path):
    net, best = _Net(), BestState(tmp_path, spill_bytes=0)
    best.keep(net, 0)
    data = best.path.read_bytes()
    best.path.write_bytes(data[:-10])
    try:
        best.load_into(net)
        raise AssertionError("a short file loaded")
    except ArtifactError as exc:
        assert "shorter than the weights" in str(exc)
    other = torch.nn.Linear(3, 2)
    try:
        best.load_into(other)
        raise AssertionError("another model's file loaded")
    except ArtifactError as exc:
        assert "not those of this model" in str(exc)
    best.path.unlink()
    try:
        best.load_into(net)
        raise AssertionError("a missing file loaded")
    except ArtifactError as exc:
        assert "missing" in str(exc)


def test_without_a_folder_the_file_is_private_and_removed(tmp_path):
    best = BestState(None, spill_bytes=0)
    best.keep(_Net(), 0)
    assert best.path is not None and best.path.is_file()
    folder = best.path.parent
    best.close()
    assert not folder.exists()


def _train(dataset, out, monkeypatch, spill: bool, **overrides):
    if spill:
        monkeypatch.setattr("sessionrec.train.best_state.SPILL_BYTES", 0)
    else:
        monkeypatch.undo()
    train = {"epochs": 4, "batch_size": 32, "lr": 0.05, "patience": 10, **overrides}
    model_config, train_config = config_preset("srgnn", dataset.n_items, **train)
    return Trainer(model_config, train_config, out, progress=False).fit(dataset)


def test_training_with_a_spilled_best_state_selects_and_ships_the_same_model(
    tiny_dataset, tmp_path, monkeypatch
):
    in_memory = _train(tiny_dataset, tmp_path / "memory", monkeypatch, spill=False)
    spilled = _train(tiny_dataset, tmp_path / "file", monkeypatch, spill=True)
    assert in_memory.metrics["best_epoch"] == spilled.metrics["best_epoch"]
    assert in_memory.metrics["test"] == spilled.metrics["test"]
    assert _states_equal(spilled.model, in_memory.model.state_dict())
    # the checkpoint refers to the file of the best epoch, which stays for --resume
    ck = torch.load(tmp_path / "file" / "checkpoint.pt", weights_only=True)
    assert "best_model" not in ck
    assert ck["best_model_file"] == f"best-epoch-{spilled.metrics['best_epoch']}.bin"
    assert [p.name for p in (tmp_path / "file").glob("best-epoch-*")] == [ck["best_model_file"]]
    assert _states_equal(load_model(tmp_path / "file").model, in_memory.model.state_dict())


def test_a_resumed_run_reads_the_spilled_best_state(tiny_dataset, tmp_path, monkeypatch):
    whole = _train(tiny_dataset, tmp_path / "whole", monkeypatch, spill=True)
    # epoch 3 is the best (epoch 4 only ties it): the resumed run ships the restored file
    _train(tiny_dataset, tmp_path / "part", monkeypatch, spill=True, epochs=3)
    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=4, batch_size=32, lr=0.05, patience=10
    )
    resumed = Trainer(model_config, train_config, tmp_path / "part", progress=False).fit(
        tiny_dataset, resume=True
    )
    assert resumed.metrics["best_epoch"] == whole.metrics["best_epoch"] == 3
    assert resumed.metrics["test"] == whole.metrics["test"]
    assert _states_equal(resumed.model, whole.model.state_dict())


def test_the_run_folder_keeps_only_the_file_its_checkpoint_refers_to(
    tiny_dataset, tmp_path, monkeypatch
):
    """The recent refit's result is kept as a file too; once the run ends it is in
    model.pt, and only the checkpoint's file stays (for resuming)."""
    _train(tiny_dataset, tmp_path, monkeypatch, spill=True, epochs=2, refit="recent")
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert [p.name for p in tmp_path.glob("best-epoch-*")] == [ck["best_model_file"]]


def test_the_recent_refit_keeps_its_result_as_the_best_state(tiny_dataset, tmp_path, monkeypatch):
    in_memory = _train(tiny_dataset, None, monkeypatch, spill=False, epochs=2, refit="recent")
    spilled = _train(tiny_dataset, None, monkeypatch, spill=True, epochs=2, refit="recent")
    assert in_memory.metrics["test"] == spilled.metrics["test"]
    assert _states_equal(spilled.model, in_memory.model.state_dict())
