"""Retraining people can leave unattended (issue 17): the publication guard of `fit`,
the warm-start refusals, the first night of a nightly retraining, no silent overwrite,
no model with non-finite weights saved or published."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.artifacts import read_manifest
from sessionrec.cli import main
from sessionrec.cli.guards import (
    EXIT_NOT_PUBLISHED,
    guard_passes,
    publication_decision,
    rejected_directory,
)
from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError, NonFiniteError
from sessionrec.nn.srgnn import SRGNN
from sessionrec.train import Trainer, config_preset, evaluate_model, load_model
from sessionrec.train.warm import (
    check_warm_start,
    comparable_samples,
    config_differences,
    preset_names,
    warm_start,
)

ROOT = Path(__file__).resolve().parents[1]
CLICKS = ROOT / "data" / "synthetic" / "clicks.csv"
COMMON = ["--quiet", "--threads", "1", "--batch-size", "64"]
FIT = ["fit", "--clicks", str(CLICKS), *COMMON]


def _fit(dataset, config="srgnn", out=None, **overrides):
    train = {"epochs": 1, "batch_size": 32, "lr": 0.01, **overrides}
    model_config, train_config = config_preset(config, dataset.n_items, **train)
    return Trainer(model_config, train_config, out, progress=False).fit(dataset)


def _with_ids(dataset, ids):
    return SessionDataset(dataset.train, dataset.test, ItemVocab(ids))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A `default` model published by `fit` (3 epochs): yesterday's model."""
    out = tmp_path_factory.mktemp("published") / "current"
    assert main([*FIT, "--out", str(out), "--epochs", "3"]) == 0
    return out


@pytest.fixture(scope="module")
def sku_clicks(tmp_path_factory) -> Path:
    """The synthetic dump with its item ids turned into strings: `453007` -> `sku-453007`."""
    lines = CLICKS.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        session, item, rest = line.split(",", 2)
        out.append(f"{session},sku-{item},{rest}")
    path = tmp_path_factory.mktemp("sku") / "clicks.csv"
    path.write_text("\n".join(out) + "\n")
    return path


def _copy(model_dir: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(model_dir, to)
    return to


# -- 1. the publication guard -----------------------------------------------------------
def test_the_rule_and_its_tolerance():
    # 112.26 published, 44.59 new (the srgnn-over-default case): far beyond 1 point
    assert not guard_passes(44.59, 112.26, 1.0)
    assert guard_passes(100.0, 101.0, 1.0)  # exactly the tolerance: published
    assert not guard_passes(100.0, 101.01, 1.0)
    assert guard_passes(120.0, 100.0, 0.0)  # better: published
    assert not guard_passes(99.99, 100.0, 0.0)


def test_comparable_samples_keeps_what_the_previous_model_reads():
    """New items 0..4 are ids 10, 11, 12, 13, 14; the previous model knows 11 (its
    index 1), 12 (0) and 14 (2). It reads the last 2 clicks of a prefix."""
    new_vocab = ItemVocab([10, 11, 12, 13, 14])
    old_vocab = ItemVocab([12, 11, 14])
    to_previous = old_vocab.index_of(new_vocab.ids.tolist())
    assert to_previous.tolist() == [-1, 1, 0, -1, 2]
    samples = Samples.from_lists(
        [[1, 2], [0, 1, 2], [1, 3], [4], [2], [1, 2, 4]],
        [4, 1, 2, 2, 0, 1],
    )
    kept, for_previous = comparable_samples(samples, to_previous, max_length=2)
    # 0: kept; 1: item 0 is beyond the last 2 clicks, kept; 2: click 3 unknown; 3: kept;
    # 4: target 0 unknown; 5: kept (last two clicks 2, 4)
    assert kept.padded().tolist() == [[1, 2, -1], [0, 1, 2], [4, -1, -1], [1, 2, 4]]
    assert kept.targets.tolist() == [4, 1, 2, 1]
    assert for_previous.padded().tolist() == [[1, 0], [1, 0], [2, -1], [0, 2]]
    assert for_previous.targets.tolist() == [2, 1, 0, 1]
    empty = Samples.from_lists([], [])
    assert len(comparable_samples(empty, to_previous, 2)[0]) == 0


@settings(max_examples=60, deadline=None)
@given(
    n_new=st.integers(1, 12),
    known=st.lists(st.booleans(), min_size=12, max_size=12),
    prefixes=st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=6), max_size=15),
    max_length=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
def test_comparable_samples_property(n_new, known, prefixes, max_length, seed):
    """Whatever the vocabularies: a sample is kept iff its target and its last
    ``max_length`` clicks are known; the kept samples name the same raw ids in both
    vocabularies, in the same order."""
    rng = np.random.default_rng(seed)
    new_ids = np.arange(100, 100 + n_new)
    old_ids = rng.permutation(new_ids[np.asarray(known[:n_new])])
    old_ids = np.concatenate([old_ids, [999]])  # and an item the new data lacks
    to_previous = ItemVocab(old_ids).index_of(new_ids.tolist())
    prefixes = [[i % n_new for i in p] for p in prefixes]
    targets = rng.integers(0, n_new, len(prefixes)).tolist()
    samples = Samples.from_lists(prefixes, targets)
    kept, for_previous = comparable_samples(samples, to_previous, max_length)
    expected = [
        i
        for i, (p, t) in enumerate(zip(prefixes, targets, strict=True))
        if all(to_previous[c] >= 0 for c in p[-max_length:]) and to_previous[t] >= 0
    ]
    assert len(kept) == len(for_previous) == len(expected)
    for j, i in enumerate(expected):
        assert kept.prefix(j).tolist() == prefixes[i]
        assert (
            old_ids[for_previous.prefix(j)].tolist() == new_ids[prefixes[i][-max_length:]].tolist()
        )
        assert old_ids[for_previous.targets[j]] == new_ids[targets[i]]


def test_a_worse_model_is_not_published(published, tmp_path, capsys):
    """The `srgnn` preset trained cold for one epoch over yesterday's `default` model:
    kept back in OUT.rejected, exit 3, the published model untouched."""
    out = _copy(published, tmp_path / "current")
    before = read_manifest(out)
    code = main([*FIT, "--out", str(out), "--config", "srgnn", "--epochs", "1", "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_NOT_PUBLISHED
    assert "NOT published" in captured.err and "current.rejected" in captured.err
    assert read_manifest(out) == before  # untouched
    rejected = rejected_directory(out)
    assert rejected == tmp_path / "current.rejected"
    assert load_model(rejected).model.config.normalize is False  # the srgnn model is there
    assert not (rejected / "checkpoint.pt").exists()
    report = json.loads((rejected / "report.json").read_text())["publication"]
    assert report["decision"] == "rejected" and report["passed"] is False
    comparison = report["comparison"]
    # same data, same items: every test sample is compared; the published model's
    # metrics there are its own test metrics
    assert comparison["n_samples"] == comparison["test_samples"] == 2805
    test = load_model(out).metrics["test"]
    assert comparison["published"]["hr@20"] == pytest.approx(test["hr@20"])
    assert comparison["published"]["mrr@20"] == pytest.approx(test["mrr@20"])
    assert comparison["new_score"] < comparison["published_score"] - 2.0
    assert json.loads(captured.out)["publication"]["decision"] == "rejected"

    # --publish always overrides, and still reports the comparison
    args = [*FIT, "--out", str(out), "--config", "srgnn", "--epochs", "1"]
    assert main([*args, "--publish", "always"]) == 0
    err = capsys.readouterr().err
    assert "published because of --publish always (the rule would have kept it back)" in err
    report = json.loads((out / "report.json").read_text())["publication"]
    assert report["decision"] == "published" and report["passed"] is False
    assert report["mode"] == "always"
    assert load_model(out).model.config.normalize is False


def test_a_better_model_is_published_with_the_comparison(published, tmp_path):
    out = _copy(published, tmp_path / "current")
    args = [*FIT, "--out", str(out), "--warm-start", str(out), "--epochs", "2"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())["publication"]
    assert report["decision"] == "published" and report["passed"] is True
    assert report["tolerance"] == 2.0 and "HR@20 + MRR@20" in report["rule"]
    assert report["comparison"]["difference"] >= -2.0
    assert not rejected_directory(out).exists()


def test_the_guard_compares_on_the_samples_the_old_model_knows(tiny_dataset, tmp_path):
    """Yesterday's model knows ids 1000..1029; today 5 are gone and 5 are new (ids
    1005..1034). Both models are measured on the test samples whose prefix and target
    are among 1005..1029, the previous one in its own indices."""
    old = _fit(tiny_dataset, out=tmp_path / "current")
    today = _with_ids(tiny_dataset, tiny_dataset.vocab.ids + 5)
    new = _fit(today, epochs=2)
    decision = publication_decision(tmp_path / "current", new, today, "guarded", 1.0)
    old_known = set(range(1005, 1030))
    raw = today.vocab.ids
    expected = [
        i
        for i in range(len(today.test))
        if {*raw[today.test.prefix(i)].tolist(), raw[today.test.targets[i]]} <= old_known
    ]
    comparison = decision["comparison"]
    assert 0 < comparison["n_samples"] == len(expected) < len(today.test)
    kept = today.test.select(np.asarray(expected))
    metrics = evaluate_model(new.model, kept, max_length=new.data_contract.inference_max_length)
    assert comparison["new"]["hr@20"] == pytest.approx(metrics["hr@20"])
    # the previous model in its own indices: item id x is its row x - 1000
    for_old = Samples(raw[kept.items] - 1000, kept.offsets, raw[kept.targets] - 1000)
    metrics = evaluate_model(old.model, for_old, max_length=old.data_contract.inference_max_length)
    assert comparison["published"]["hr@20"] == pytest.approx(metrics["hr@20"])
    assert decision["passed"] == guard_passes(
        comparison["new_score"], comparison["published_score"], 1.0
    )


def test_no_common_sample_or_another_id_kind_is_not_published(tiny_dataset, tmp_path):
    _fit(tiny_dataset, out=tmp_path / "current")
    other = _with_ids(tiny_dataset, tiny_dataset.vocab.ids + 100)  # no item in common
    decision = publication_decision(tmp_path / "current", _fit(other), other, "guarded", 1.0)
    assert decision["decision"] == "rejected" and decision["comparison"]["n_samples"] == 0
    assert "nothing to compare on" in decision["reason"]
    strings = _with_ids(tiny_dataset, [f"sku-{i}" for i in tiny_dataset.vocab.ids])
    decision = publication_decision(tmp_path / "current", _fit(strings), strings, "guarded", 1.0)
    assert decision["decision"] == "rejected"
    assert "reads int item ids, the new one str ids" in decision["reason"]
    forced = publication_decision(tmp_path / "current", _fit(strings), strings, "always", 1.0)
    assert forced["decision"] == "published" and forced["passed"] is False
    fresh = publication_decision(tmp_path / "nothing", _fit(strings), strings, "guarded", 1.0)
    assert fresh["decision"] == "published" and fresh["passed"] is None


def test_the_guard_reads_a_sharded_dump_one_shard_at_a_time(published, tmp_path):
    out = _copy(published, tmp_path / "current")
    args = [*FIT, "--out", str(out), "--shard-clicks", "6000", "--epochs", "1"]
    assert main([*args, "--publish", "always"]) == 0
    report = json.loads((out / "report.json").read_text())
    comparison = report["publication"]["comparison"]
    assert report["data"]["report"]["protocol"]["shards"] > 1
    assert comparison["n_samples"] == comparison["test_samples"] == 2805
    assert comparison["published"]["hr@20"] == pytest.approx(
        json.loads((published / "metrics.json").read_text())["test"]["hr@20"]
    )


def test_a_cold_fit_with_string_ids_does_not_replace_an_integer_model(
    published, sku_clicks, tmp_path, capsys
):
    """Day 2's ids became strings; a cold fit would switch the published model.onnx's
    id type under every service: kept back."""
    out = _copy(published, tmp_path / "current")
    before = read_manifest(out)
    assert main([*FIT, "--clicks", str(sku_clicks), "--out", str(out), "--epochs", "1"]) == 3
    assert "reads int item ids, the new one str ids" in capsys.readouterr().err
    assert read_manifest(out) == before
    assert load_model(rejected_directory(out)).vocab.kind == "str"


# -- 2. warm-start refusals --------------------------------------------------------------
def test_config_differences_ignore_the_data_dependent_fields():
    default, _ = config_preset("default", 10)
    assert config_differences(default, replace(default, n_items=99, repeat_bonus=8.0)) == {}
    assert config_differences(default, replace(default, new_item_offset=-2.0)) == {}
    srgnn, _ = config_preset("srgnn", 10)
    assert config_differences(default, srgnn) == {
        "normalize": (True, False),
        "temperature": (12.0, 16.0),
        "dropout": (0.1, 0.0),
        "position_readout": (True, False),
    }
    assert config_differences(srgnn, replace(srgnn, content={"n_numeric": 1})) == {
        "content model": (False, True)
    }
    assert preset_names(default) == ["default"] and preset_names(srgnn) == ["srgnn"]
    assert preset_names(replace(srgnn, dim=32)) == []


def test_warm_start_refuses_another_config_before_training(tiny_dataset, tmp_path):
    """`srgnn`'s weights are a subset of `default`'s: the shapes alone let it through."""
    old = _fit(tiny_dataset, "default")
    model_config, train_config = config_preset("srgnn", tiny_dataset.n_items, epochs=1)
    trainer = Trainer(model_config, train_config, tmp_path / "new", progress=False)
    with pytest.raises(ConfigError, match="preset 'default'.*normalize: True there") as err:
        trainer.fit(tiny_dataset, warm_start=old)
    assert {"config_preset.name", "SRGNNConfig", "Trainer.fit.warm_start"} <= set(err.value.options)
    assert not (tmp_path / "new" / "checkpoint.pt").exists()  # refused before training
    # the same preset with another catalogue size and repeat bonus is fine
    bigger = replace(old.model.config, n_items=40, repeat_bonus=0.0)
    check_warm_start(old, bigger)


def test_warm_start_refuses_another_id_kind_and_no_common_item(tiny_dataset):
    old = _fit(tiny_dataset)
    model = SRGNN(old.model.config)
    strings = ItemVocab([f"sku-{i}" for i in tiny_dataset.vocab.ids])
    with pytest.raises(ConfigError, match="integers .*1000.* strings .*'sku-1000'") as err:
        warm_start(model, strings, old)
    assert "ColumnMap.id_type" in err.value.options
    others = ItemVocab(tiny_dataset.vocab.ids + 100)
    with pytest.raises(ConfigError, match="none of this data's 30 items .* is known"):
        warm_start(model, others, old)
    one_in_common = ItemVocab(tiny_dataset.vocab.ids + 29)  # 1029 only
    assert warm_start(model, one_in_common, old)["items_kept"] == 1


def test_warm_start_refuses_another_max_session_length(tiny_dataset, tmp_path):
    """A model that reads the last 50 clicks (no cut recorded) warm-starting on data cut to
    3 clicks, and back: each changes what the published model reads."""
    old = _fit(tiny_dataset)
    assert old.data_contract.inference_max_length == 50
    check_warm_start(old, old.model.config, tiny_dataset.vocab, max_session_length=50)
    with pytest.raises(ConfigError, match="reads the last 50 clicks .* keeps the last 3") as err:
        check_warm_start(old, old.model.config, max_session_length=3)
    assert "ProtocolConfig.max_session_length" in err.value.options
    cut = replace(tiny_dataset, meta={"protocol": {"max_session_length": 3}})
    model_config, train_config = config_preset("srgnn", cut.n_items, epochs=1)
    trainer = Trainer(model_config, train_config, tmp_path / "new", progress=False)
    with pytest.raises(ConfigError, match="max_session_length=50"):
        trainer.fit(cut, warm_start=old)
    assert not (tmp_path / "new" / "checkpoint.pt").exists()  # refused before training
    three = _fit(cut)
    with pytest.raises(ConfigError, match="reads the last 3 clicks .* keeps the last 50"):
        check_warm_start(three, three.model.config, max_session_length=50)


def test_a_nightly_fit_keeps_the_models_max_session_length(tmp_path, capsys):
    """Night 1 cuts sessions to 3 clicks; night 2's line, without the flag, keeps the cut
    (before: its model read 50 clicks, silently); another cut given explicitly is refused
    before any work."""
    out = tmp_path / "current"
    nightly = [*FIT, "--out", str(out), "--warm-start", str(out), "--warm-start-missing", "cold"]
    nightly += ["--epochs", "1", "--publish", "always"]
    assert main([*nightly, "--max-session-length", "3"]) == 0
    assert main(nightly) == 0
    assert "keeps the model's --max-session-length 3" in capsys.readouterr().err
    assert load_model(out).data_contract.max_session_length == 3
    assert main([*nightly, "--max-session-length", "5"]) == 1
    err = capsys.readouterr().err
    assert f"--max-session-length 5: the --warm-start model {out} reads the last 3 clicks" in err
    assert "Leave --max-session-length out (the model's 3 is kept) or give 3" in err
    assert "[1/5] preparing" not in err


def test_cli_warm_start_refusals_come_before_the_work(published, sku_clicks, tmp_path, capsys):
    out = tmp_path / "new"
    args = [*FIT, "--out", str(out), "--warm-start", str(published), "--epochs", "1"]
    assert main([*args, "--config", "srgnn"]) == 1
    err = capsys.readouterr().err
    assert "ConfigError: warm start: the previous model was trained with another" in err
    assert "--config NAME" in err and "[1/5] preparing" not in err  # before preparing
    assert main([*args, "--clicks", str(sku_clicks)]) == 1
    err = capsys.readouterr().err
    assert "item ids are integers" in err and "[2/5] training" not in err  # before training
    assert not out.exists()


# -- 3. the first night ----------------------------------------------------------------
def test_a_missing_warm_start_stops_before_preparing(tmp_path, capsys):
    models = tmp_path / "models"
    args = [*FIT, "--out", str(models / "current"), "--warm-start", str(models / "current")]
    assert main([*args, "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "no model there (no such directory)" in err and "--warm-start-missing cold" in err
    assert "[1/5] preparing" not in err
    assert not models.exists()
    (models / "current").mkdir(parents=True)  # an empty directory counts as missing
    assert main([*args, "--epochs", "1"]) == 1
    assert "an empty directory" in capsys.readouterr().err


def test_the_readme_nightly_line_works_on_the_first_night_and_the_next(tmp_path, capsys):
    """README, "Use it": the same line every night."""
    line = "fit --clicks {clicks} --out models/current --warm-start models/current"
    line += " --warm-start-missing cold"
    readme = (ROOT / "README.md").read_text()
    assert "sessionrec " + line.format(clicks="clicks.csv.gz") in readme
    models = tmp_path / "models" / "current"
    args = line.format(clicks=CLICKS).replace("models/current", str(models)).split()
    for night in (1, 2):
        assert main([*args, *COMMON, "--epochs", "1", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert ("warm_start" in result) == (night == 2)
        assert result["publication"]["decision"] == "published"
    assert result["warm_start"]["items_kept"] == result["dataset"]["items"]


def test_train_with_a_missing_warm_start(tiny_dataset, tmp_path, capsys):
    data = tiny_dataset.save(tmp_path / "data")
    args = ["train", str(data), "--config", "srgnn", "--epochs", "1", "--quiet"]
    args += ["--warm-start", str(tmp_path / "none"), "--out", str(tmp_path / "m")]
    assert main(args) == 1
    assert "no model there" in capsys.readouterr().err
    assert main([*args, "--warm-start-missing", "cold"]) == 0
    assert "training from scratch" in capsys.readouterr().err


# -- 4. no silent overwrite --------------------------------------------------------------
def test_train_does_not_overwrite_without_force(published, tiny_dataset, tmp_path, capsys):
    data = tiny_dataset.save(tmp_path / "data")
    out = _copy(published, tmp_path / "my")
    before = read_manifest(out)
    args = ["train", str(data), "--config", "srgnn", "--epochs", "1", "--quiet", "--threads", "1"]
    assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "holds a model; train would replace it" in err and "--force" in err
    assert read_manifest(out) == before and (out / "model.onnx").is_file()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    assert main([*args, "--out", str(notes)]) == 1
    assert "not a sessionrec model directory (it holds todo.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]
    (tmp_path / "empty").mkdir()
    assert main([*args, "--out", str(tmp_path / "empty")]) == 0  # an empty directory is fine
    assert main([*args, "--out", str(out), "--force"]) == 0
    assert load_model(out).model.config.normalize is False
    assert not (out / "model.onnx").exists()  # replaced, as asked
    # --resume continues its own run in place, without --force
    assert main([*args, "--out", str(out), "--epochs", "2", "--resume"]) == 0
    assert len(load_model(out).history) == 2


def test_fit_writes_into_a_foreign_directory_only_with_force(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    args = [*FIT, "--out", str(notes), "--epochs", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "not a sessionrec model directory" in err and "[1/5]" not in err
    assert main([*args, "--force"]) == 0
    assert (notes / "todo.txt").read_text() == "mine" and (notes / "model.onnx").is_file()


# -- 5. non-finite weights ---------------------------------------------------------------
def test_save_refuses_non_finite_weights_and_keeps_the_previous_model(tiny_dataset, tmp_path):
    out = tmp_path / "m"
    good = _fit(tiny_dataset, out=out)
    before = read_manifest(out)
    bad = _fit(tiny_dataset)
    with torch.no_grad():
        bad.model.embedding.weight[3, 0] = float("nan")
        bad.model.lin_out.bias[0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"'embedding.weight' \(1 of 3,000 values\)") as err:
        bad.save(out)
    assert "'lin_out.bias' (1 of 100 values)" in str(err.value)
    assert "TrainConfig.lr" in err.value.options
    assert read_manifest(out) == before
    torch.testing.assert_close(load_model(out).model.embedding.weight, good.model.embedding.weight)


def test_the_finite_check_reads_weights_in_blocks(monkeypatch):
    """non_finite_weights counts block by block (no table-sized mask: 3.7 GB at 5M
    items): NaN and infinities in several blocks of 7 values and a 0-d buffer, counted
    exactly."""
    import sessionrec.train.model_dir as model_dir

    monkeypatch.setattr(model_dir, "FINITE_CHECK_BLOCK", 7)
    module = torch.nn.Module()
    module.table = torch.nn.Parameter(torch.zeros(6, 5))
    module.register_buffer("scale", torch.tensor(float("-inf")))
    module.register_buffer("steps", torch.tensor([1, 2, 3]))  # not floating point
    with torch.no_grad():
        module.table[0, 0] = float("nan")  # block 0
        module.table[1, 3] = float("inf")  # value 8: block 1
        module.table[5, 4] = float("nan")  # value 29: the last, short block
    assert model_dir.non_finite_weights(module) == {"table": 3, "scale": 1}
    module.table.data.zero_()
    assert model_dir.non_finite_weights(module) == {"scale": 1}


def test_fit_never_publishes_non_finite_weights(published, tmp_path, capsys, monkeypatch):
    """Whatever the trainer hands back, `fit` checks the weights before exporting."""
    out = _copy(published, tmp_path / "current")
    before = read_manifest(out)
    real_fit = Trainer.fit

    def diverged(self, *args, **kwargs):
        trained = real_fit(self, *args, **kwargs)
        with torch.no_grad():
            next(trained.model.parameters()).fill_(float("nan"))
        return trained

    monkeypatch.setattr(Trainer, "fit", diverged)
    assert main([*FIT, "--out", str(out), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "NonFiniteError" in err and "nothing is published" in err
    assert read_manifest(out) == before
