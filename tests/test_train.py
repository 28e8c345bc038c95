"""Training: learning, selection on validation, checkpoints, resume, CLI."""

import json

import numpy as np
import pytest
import torch
from _killing import run_killed_mid_epoch

from sessionrec.cli import main
from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.train import (
    TrainConfig,
    Trainer,
    config_preset,
    evaluate_model,
    load_model,
    lr_factor,
)


def _fit(dataset, out=None, **overrides):
    train = {"epochs": 4, "batch_size": 32, "lr": 0.01, **overrides}
    model_config, train_config = config_preset("srgnn", dataset.n_items, **train)
    return Trainer(model_config, train_config, out, progress=False).fit(dataset)


def test_learns_the_successor_pattern(tiny_dataset):
    trained = _fit(tiny_dataset)
    test = trained.metrics["test"]
    # 90 % of targets follow the +1 rule: far above popularity (~3 % HR@1 on 30 items)
    assert test["hr@10"] > 80.0
    assert test["mrr@20"] > 50.0
    assert test["n_samples"] == len(tiny_dataset.test)
    # the selected epoch is the best on validation
    best = trained.metrics["best_epoch"]
    scores = [h["valid"]["hr@20"] + h["valid"]["mrr@20"] for h in trained.history]
    assert scores[best - 1] == max(scores)


def test_same_seed_same_model(tiny_dataset):
    a = _fit(tiny_dataset, epochs=2)
    b = _fit(tiny_dataset, epochs=2)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb
        torch.testing.assert_close(va, vb)


def test_save_load_round_trip(tiny_dataset, tmp_path):
    trained = _fit(tiny_dataset, tmp_path / "m", epochs=2)
    loaded = load_model(tmp_path / "m")
    assert loaded.vocab == tiny_dataset.vocab
    assert loaded.model.config == trained.model.config
    again = evaluate_model(loaded.model, tiny_dataset.test, item_counts=loaded.item_counts)
    assert again["hr@20"] == pytest.approx(trained.metrics["test"]["hr@20"])
    np.testing.assert_array_equal(loaded.item_counts, trained.item_counts)


def test_resume_continues_to_the_same_result(tiny_dataset, tmp_path):
    full = _fit(tiny_dataset, tmp_path / "full", epochs=4, patience=10)
    _fit(tiny_dataset, tmp_path / "part", epochs=2, patience=10)
    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=4, batch_size=32, lr=0.01, patience=10
    )
    resumed = Trainer(model_config, train_config, tmp_path / "part", progress=False).fit(
        tiny_dataset, resume=True
    )
    assert len(resumed.history) == 4
    assert resumed.metrics["test"]["hr@20"] == pytest.approx(full.metrics["test"]["hr@20"])
    assert resumed.metrics["test"]["mrr@20"] == pytest.approx(full.metrics["test"]["mrr@20"])


def test_resume_without_checkpoint_is_a_clear_error(tiny_dataset, tmp_path):
    model_config, train_config = config_preset("srgnn", tiny_dataset.n_items, epochs=1)
    with pytest.raises(ArtifactError, match="checkpoint"):
        Trainer(model_config, train_config, tmp_path, progress=False).fit(tiny_dataset, resume=True)


def test_bf16_scoring_trains_too(tiny_dataset):
    trained = _fit(tiny_dataset, bf16_scoring=True)
    assert trained.metrics["test"]["hr@10"] > 80.0


def test_default_config_is_niser_with_positions(tiny_dataset):
    model_config, _ = config_preset("default", tiny_dataset.n_items)
    assert model_config.normalize and model_config.position_readout and model_config.dropout > 0
    with pytest.raises(ConfigError, match="unknown config"):
        config_preset("nope", 10)
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)


def test_cli_train_then_evaluate(tiny_dataset, tmp_path, capsys):
    data = tiny_dataset.save(tmp_path / "data")
    out = tmp_path / "model"
    code = main(
        [
            "train",
            str(data),
            "--out",
            str(out),
            "--config",
            "srgnn",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--lr",
            "0.01",
            "--json",
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["config"] == "srgnn" and trained["epochs_trained"] == 2
    code = main(["evaluate", "--model", str(out), str(data), "--k", "20", "--json", "--quiet"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("hr@10", "hr@20", "mrr@10", "mrr@20", "ndcg@20", "coverage@20", "n_samples"):
        assert key in metrics
    assert metrics["hr@20"] == pytest.approx(trained["test"]["hr@20"])
    # a trained model keeps its own catalog: a --catalog here would be ignored, so it is refused
    args = ["evaluate", "--model", str(out), str(data), "--catalog", "items.csv", "--quiet"]
    assert main(args) == 1
    assert "--catalog is read by the studies (--cold-items, --new-items) only" in (
        capsys.readouterr().err
    )


def test_cli_reports_missing_data_clearly(tmp_path, capsys):
    code = main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m"), "--quiet"])
    assert code == 1
    assert "not a prepared dataset" in capsys.readouterr().err


def test_refit_retrains_on_everything_for_the_selected_epochs(tiny_dataset, tmp_path):
    refit = _fit(tiny_dataset, tmp_path / "m", epochs=3, patience=10, refit=True)
    best = refit.metrics["best_epoch"]
    assert refit.metrics["refit_epochs"] == best
    phases = [h.get("phase", "select") for h in refit.history]
    assert phases == ["select"] * 3 + ["refit"] * best
    assert refit.metrics["valid"]["hr@20"] > 0  # the selection's validation metrics
    assert refit.metrics["test"]["hr@10"] > 80.0
    assert load_model(tmp_path / "m").metrics["refit_epochs"] == best


def test_no_validation_trains_exactly_the_given_epochs(tiny_dataset):
    trained = _fit(tiny_dataset, epochs=2, validation_fraction=0.0)
    assert [h["valid"] for h in trained.history] == [None, None]
    assert trained.metrics["best_epoch"] == 2
    with pytest.raises(ConfigError, match="refit needs"):
        TrainConfig(validation_fraction=0.0, refit=True)


def test_lr_schedule_paper_and_authors_code():
    paper = TrainConfig()  # 0.1 after every 3 epochs
    assert [lr_factor(paper, e) for e in range(7)] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    # the authors' code steps its scheduler at the start of each epoch: first decay after 2
    code = TrainConfig(lr_decay_first=2)
    assert [lr_factor(code, e) for e in range(7)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]
    )
    with pytest.raises(ConfigError, match="lr_decay_first"):
        TrainConfig(lr_decay_first=0)
    # the srgnn preset follows the authors' code
    assert config_preset("srgnn", 10)[1].lr_decay_first == 2


def test_history_records_the_rate_each_epoch_trained_with(tiny_dataset):
    trained = _fit(tiny_dataset, epochs=4, patience=10, lr_decay_first=2, lr_decay_every=1)
    assert [h["lr"] for h in trained.history] == pytest.approx([0.01, 0.01, 1e-3, 1e-4])


def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(tiny_dataset, tmp_path):
    """`sessionrec train` killed with SIGKILL in the middle of epoch 2 resumes with
    --resume from epoch 1's checkpoint and ends with the uninterrupted run's metrics."""
    data = tiny_dataset.save(tmp_path / "data")
    args = ["train", str(data), "--config", "default", "--epochs", "3", "--patience", "10"]
    args += ["--batch-size", "32", "--lr", "0.01", "--quiet", "--threads", "1"]
    run_killed_mid_epoch([*args, "--out", str(tmp_path / "killed")], step=4)
    assert not (tmp_path / "killed" / "metrics.json").exists()  # it died before the end
    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert len(json.loads(state["history"])) == 1  # epoch 1 done, epoch 2 lost half-way

    assert main([*args, "--out", str(tmp_path / "killed"), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    resumed = load_model(tmp_path / "killed")
    whole = load_model(tmp_path / "whole")
    assert len(resumed.history) == 3
    for split in ("valid", "test"):
        for key in ("hr@20", "mrr@20"):
            assert resumed.metrics[split][key] == pytest.approx(whole.metrics[split][key])
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value)


def _shifted(dataset, shift):
    """The same sessions over items renamed ``id + shift``: ``shift`` items of the old
    vocabulary are gone and ``shift`` new ones appear."""
    from sessionrec.data.dataset import SessionDataset
    from sessionrec.data.vocab import ItemVocab

    return SessionDataset(dataset.train, dataset.test, ItemVocab(dataset.vocab.ids + shift))


def test_warm_start_copies_known_items_and_reports_the_rest(tiny_dataset):
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train.warm import warm_start

    old = _fit(tiny_dataset, epochs=1)
    new_data = _shifted(tiny_dataset, 5)  # ids 1005..1034; 1000..1004 gone, 1030..1034 new
    model_config, _ = config_preset("srgnn", new_data.n_items)
    fresh = SRGNN(model_config)
    before = fresh.embedding.weight.detach().clone()
    report = warm_start(fresh, new_data.vocab, old)
    assert report == {
        "shrink": 1.0,
        "items_kept": 25,
        "items_added": 5,
        "items_no_longer_seen": 5,
        "examples_added": [1030, 1031, 1032, 1033, 1034],
        "examples_no_longer_seen": [1000, 1001, 1002, 1003, 1004],
    }
    old_table = old.model.embedding.weight.detach()
    # new row i (id 1005 + i) is old row i + 5 for the 25 kept items
    torch.testing.assert_close(fresh.embedding.weight[:25].detach(), old_table[5:])
    torch.testing.assert_close(fresh.embedding.weight[25:].detach(), before[25:])  # new: fresh
    for name, value in old.model.state_dict().items():
        if name != "embedding.weight":
            torch.testing.assert_close(fresh.state_dict()[name], value)


def test_warm_start_shrinks_and_perturbs_every_carried_weight(tiny_dataset):
    """lambda = 0.25: a carried weight is 0.25 old + 0.75 fresh; a new item stays fresh."""
    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train.warm import warm_start

    old = _fit(tiny_dataset, epochs=1)
    new_data = _shifted(tiny_dataset, 5)
    model = SRGNN(config_preset("srgnn", new_data.n_items)[0])
    fresh = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert warm_start(model, new_data.vocab, old, shrink=0.25)["shrink"] == 0.25
    state, old_state = model.state_dict(), old.model.state_dict()
    table = state["embedding.weight"]
    expected = 0.25 * old_state["embedding.weight"][5:] + 0.75 * fresh["embedding.weight"][:25]
    torch.testing.assert_close(table[:25], expected)
    torch.testing.assert_close(table[25:], fresh["embedding.weight"][25:])
    for name, value in old_state.items():
        if name != "embedding.weight":
            torch.testing.assert_close(state[name], 0.25 * value + 0.75 * fresh[name])


def test_a_warm_run_decays_its_learning_rate_on_its_own_schedule(tiny_dataset):
    old = _fit(tiny_dataset, epochs=1)
    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=3, patience=3, lr=0.01, warm_lr_decay_first=1
    )
    cold = Trainer(model_config, train_config, progress=False).fit(tiny_dataset)
    warm = Trainer(model_config, train_config, progress=False).fit(tiny_dataset, warm_start=old)
    # the srgnn preset decays after 2 epochs; a warm run, here, after 1
    assert [h["lr"] for h in cold.history] == pytest.approx([0.01, 0.01, 0.001])
    assert [h["lr"] for h in warm.history] == pytest.approx([0.01, 0.001, 0.001])
    with pytest.raises(ConfigError, match="warm_shrink"):
        config_preset("srgnn", 3, warm_shrink=1.5)


def test_warm_start_needs_the_same_architecture(tiny_dataset):
    from dataclasses import replace

    from sessionrec.nn.srgnn import SRGNN
    from sessionrec.train.warm import warm_start

    old = _fit(tiny_dataset, epochs=1)
    model_config, _ = config_preset("srgnn", tiny_dataset.n_items)
    with pytest.raises(
        ConfigError, match="warm start.*another model config.*dim: 100 there, 32"
    ) as err:
        warm_start(SRGNN(replace(model_config, dim=32)), tiny_dataset.vocab, old)
    assert "Trainer.fit.warm_start" in err.value.options


def test_warm_started_training_starts_where_the_old_model_was(tiny_dataset):
    old = _fit(tiny_dataset, epochs=3)
    new_data = _shifted(tiny_dataset, 2)
    model_config, train_config = config_preset(
        "srgnn", new_data.n_items, epochs=1, batch_size=32, lr=0.01
    )
    cold = Trainer(model_config, train_config, progress=False).fit(new_data)
    warm = Trainer(model_config, train_config, progress=False).fit(new_data, warm_start=old)
    assert warm.metrics["warm_start"]["items_kept"] == 28
    assert "warm_start" not in cold.metrics
    assert warm.history[0]["loss"] < 0.8 * cold.history[0]["loss"]
    assert warm.metrics["valid"]["hr@20"] > 90


def test_cli_train_warm_start(tiny_dataset, tmp_path, capsys):
    data = tiny_dataset.save(tmp_path / "data")
    common = [str(data), "--config", "srgnn", "--epochs", "1", "--quiet", "--json"]
    assert main(["train", *common, "--out", str(tmp_path / "old")]) == 0
    capsys.readouterr()
    args = ["train", *common, "--out", str(tmp_path / "new")]
    assert main([*args, "--warm-start", str(tmp_path / "old")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["warm_start"]["items_kept"] == tiny_dataset.n_items
    assert main([*args, "--warm-start", str(tmp_path / "old")]) == 1  # "new" holds a model
    assert "holds a model" in capsys.readouterr().err
    assert main([*args, "--force", "--warm-start", str(tmp_path / "missing")]) == 1
    assert "no model there (no such directory)" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not a model")
    assert main([*args, "--force", "--warm-start", str(tmp_path / "junk")]) == 1
    assert "not a sessionrec model" in capsys.readouterr().err


def test_min_improvement_stops_a_creeping_run_and_keeps_its_best_epoch(tiny_dataset):
    creeping = _fit(tiny_dataset, epochs=8, patience=2, min_improvement=1000.0)
    assert len(creeping.history) == 3  # epoch 1 is progress; 2 and 3 are not: stop
    scores = [h["valid"]["hr@20"] + h["valid"]["mrr@20"] for h in creeping.history]
    assert creeping.metrics["best_epoch"] == 1 + int(np.argmax(scores))
    assert (
        len(_fit(tiny_dataset, epochs=3, validation_fraction=0.0, min_improvement=1000.0).history)
        == 3
    )
    with pytest.raises(ConfigError, match="min_improvement"):
        TrainConfig(min_improvement=-1.0)


def test_repeat_bonus_is_chosen_on_validation():
    from sessionrec.data.sessions import Samples
    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.train import calibrate_repeat_bonus

    torch.manual_seed(0)
    model = SRGNN(SRGNNConfig(n_items=40, dim=8))
    rng = np.random.default_rng(0)
    prefixes = [rng.choice(40, size=4, replace=False).tolist() for _ in range(200)]
    repeats = Samples.from_lists(prefixes, [p[0] for p in prefixes])  # next = a seen item
    fresh = Samples.from_lists(prefixes, [(p[0] + 1) % 40 for p in prefixes])
    fresh = fresh.select(np.array([t not in p for p, t in zip(prefixes, fresh.targets)]))
    grid = (0.0, 1.0, 100.0)
    chosen = calibrate_repeat_bonus(model, repeats, grid)
    assert chosen["selected"] > 0  # seen items first: every target in the top 20
    assert chosen["valid"][str(chosen["selected"])]["hr@20"] == 100.0
    assert chosen["valid"]["0.0"]["hr@20"] < 100.0
    assert calibrate_repeat_bonus(model, fresh, grid)["selected"] == 0.0  # never helps
    assert model.config.repeat_bonus == 0.0  # the caller decides what to keep


def test_default_config_selects_a_repeat_bonus_and_the_refit_keeps_it(tiny_dataset, tmp_path):
    model_config, train_config = config_preset(
        "default", tiny_dataset.n_items, epochs=2, batch_size=32, lr=0.01, refit=True
    )
    assert train_config.repeat_bonus_grid  # the default config tries some
    trained = Trainer(model_config, train_config, tmp_path, progress=False).fit(tiny_dataset)
    chosen = trained.metrics["repeat_bonus"]["selected"]
    extended = trained.metrics["repeat_bonus"]["extended"]  # past an edge the best sat on
    assert chosen in train_config.repeat_bonus_grid + tuple(extended)
    assert trained.model.config.repeat_bonus == chosen
    assert load_model(tmp_path).model.config.repeat_bonus == chosen
    assert config_preset("srgnn", 10)[1].repeat_bonus_grid == ()  # the paper's model: none
    # valid: the model as shipped (bonus included), as chosen by the calibration
    m = trained.metrics
    assert m["valid"]["hr@20"] == m["repeat_bonus"]["valid"][str(chosen)]["hr@20"]
    assert m["valid_before_calibration"]["hr@20"] == m["repeat_bonus"]["valid"]["0.0"]["hr@20"]
    assert set(m["valid"]) == set(m["valid_before_calibration"])  # the same metrics
    assert "selected_metrics" not in m["repeat_bonus"]
    assert m["selected"]["criterion"] == "HR@20 + MRR@20 on the validation split"
    assert m["selected"]["repeat_bonus"] == chosen and m["selected"]["epoch"] == m["best_epoch"]
    assert "the shipped model is a refit" in m["selected"]["why"]


def test_the_selection_record_says_what_was_chosen_and_why():
    """A hand-made selection: epoch 3 (HR@20 50 + MRR@20 20 = 70), bonus 2 of (0, 2)."""
    from sessionrec.train.evaluation import record_selection

    as_trained = {"hr@20": 50.0, "mrr@20": 20.0, "n_samples": 10}
    with_bonus = {"hr@20": 60.0, "mrr@20": 25.0, "n_samples": 10}
    selection = {
        "valid": as_trained,
        "best_epoch": 3,
        "repeat_bonus": {
            "selected": 2.0,
            "selected_metrics": with_bonus,
            "valid": {
                "0.0": {"hr@20": 50.0, "mrr@20": 20.0},
                "2.0": {"hr@20": 60.0, "mrr@20": 25.0},
            },
        },
    }
    record_selection(selection, ("hr@20", "mrr@20"), 2.0, 0.0)
    assert selection["valid"] == with_bonus
    assert selection["valid_before_calibration"] == as_trained
    assert selection["selected"] == {
        "criterion": "HR@20 + MRR@20 on the validation split",
        "select_metric": ["hr@20", "mrr@20"],
        "epoch": 3,
        "score": 70.0,
        "validation_samples": 10,
        "repeat_bonus": 2.0,
        "new_item_offset": 0.0,
        "repeat_bonus_grid": [0.0, 2.0],
        "why": "epoch 3 scored the highest HR@20 + MRR@20 on validation (70.00); then "
        "repeat bonus 2 scored best of [0.0, 2.0] on it",
    }
    # no calibration: valid stays, nothing before it
    plain = {"valid": dict(as_trained), "best_epoch": 1}
    record_selection(plain, ("mrr@20",), 0.0, 0.0)
    assert plain["valid"] == as_trained and "valid_before_calibration" not in plain
    assert plain["selected"]["criterion"] == "MRR@20 on the validation split"
    # no validation split: the last epoch
    last = {"valid": None, "best_epoch": 2}
    record_selection(last, ("hr@20", "mrr@20"), 0.0, 0.0)
    assert last["selected"]["why"] == "no validation split: the last epoch (2) is kept"


def test_set_parses_numbers_words_and_grids():
    from sessionrec.train import apply_overrides

    model_config, train_config = config_preset("default", 10)
    sets = ["dim=8", "id_impute=mean", "new_item_offset_grid=-1,0,1.5", "repeat_bonus_grid=()"]
    model_config, train_config = apply_overrides(
        [*sets, "validation_fraction=none"], model_config, train_config
    )
    assert model_config.dim == 8 and model_config.id_impute == "mean"
    assert train_config.new_item_offset_grid == (-1, 0, 1.5)
    assert train_config.repeat_bonus_grid == () and train_config.validation_fraction is None
    mapped, _ = apply_overrides({"dim": 4}, model_config, train_config)  # or a mapping
    assert mapped.dim == 4
    _, one = apply_overrides(["new_item_offset_grid=0"], model_config, train_config)
    assert one.new_item_offset_grid == (0,)  # one value of a grid: a one-value grid
    with pytest.raises(ConfigError, match="'num_negative' \\(did you mean 'num_negatives'\\?\\)"):
        apply_overrides(["num_negative=10"], model_config, train_config)
    with pytest.raises(ConfigError, match="unknown config field 'zzz'; model fields"):
        apply_overrides(["zzz=1"], model_config, train_config)  # nothing close: no guess


def test_device_choice_and_a_clear_error_without_cuda(tiny_dataset, tmp_path, capsys):
    """The CPU path is the one tested here (no GPU on this machine or in CI); asking for
    CUDA where there is none is a clear error, not a crash inside torch."""
    from sessionrec.train import resolve_device

    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="tpu")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error path does not apply")
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    tiny_dataset.save(tmp_path / "data")
    command = ["train", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--device"]
    assert main([*command, "cuda", "--epochs", "1", "--quiet"]) == 1
    assert "--device cpu" in capsys.readouterr().err
    assert main([*command, "auto", "--epochs", "1", "--quiet", "--json"]) == 0
    assert load_model(tmp_path / "m").train_config.device == "auto"


def test_init_distributed_picks_nccl_and_the_local_gpu_under_cuda(monkeypatch):
    """The GPU wiring without a GPU (none here or in CI): under torchrun with
    ``--device cuda``, process LOCAL_RANK 1 binds cuda:1 and joins over nccl; with
    ``cpu``, gloo. torch's own calls are recorded, not made."""
    import torch.distributed as dist

    from sessionrec.train import init_distributed

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(("init", kw)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert init_distributed("cuda") == (0, 1)  # (nothing was really joined)
    gpu = torch.device("cuda", 1)
    assert calls == [("set_device", gpu), ("init", {"backend": "nccl", "device_id": gpu})]
    calls.clear()
    init_distributed("cpu")
    assert calls == [("init", {"backend": "gloo"})]


def test_resume_refuses_the_checkpoint_of_another_run(tiny_dataset, tmp_path, capsys):
    """A resumed run must be the same run: another validation split (it would compare
    scores of different splits) or another architecture (a raw load_state_dict error)
    is refused, naming what differs; more epochs are fine."""
    out = tmp_path / "m"
    _fit(tiny_dataset, out, epochs=1, validation_fraction=0.3)
    for overrides, differs in (
        ({"validation_fraction": 0.1}, "validation_fraction 0.3 there, 0.1 here"),
        ({"validation_fraction": 0.3, "dim": 8}, "dim 100 there, 8 here"),
    ):
        model_config, train_config = config_preset(
            "srgnn", tiny_dataset.n_items, epochs=2, batch_size=32, lr=0.01,
            validation_fraction=overrides["validation_fraction"],
        )  # fmt: skip
        if "dim" in overrides:
            from dataclasses import replace

            model_config = replace(model_config, dim=overrides["dim"])
        trainer = Trainer(model_config, train_config, out, progress=False)
        with pytest.raises(ConfigError, match=f"checkpoint of another run.*{differs}") as err:
            trainer.fit(tiny_dataset, resume=True)
        assert err.value.options == ("Trainer.fit.resume",)
    resumed = _fit(tiny_dataset, out, epochs=2, validation_fraction=0.3)  # not resumed: a
    assert len(resumed.history) == 2  # fresh run in the same folder trains both epochs
    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=3, batch_size=32, lr=0.01, validation_fraction=0.3
    )
    again = Trainer(model_config, train_config, out, progress=False).fit(tiny_dataset, resume=True)
    assert len(again.history) == 3  # the same run, one more epoch
