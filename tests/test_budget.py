"""The time budget (``Trainer(max_minutes=...)``, ``--max-minutes``): the plan against
hand-computed costs, the re-check after each epoch, the recent refit, grid extension, and
whole runs on tiny data with a clock that advances per reading (no timing assertions).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError
from sessionrec.train import Trainer, config_preset
from sessionrec.train.budget import (
    MIN_MARGIN_S,
    SAVE_S,
    Costs,
    measure_costs,
    natural_epochs,
    plan_budget,
    rate_levels,
    save_seconds,
    time_for_another_epoch,
)
from sessionrec.train.calibration import MAX_GRID_EXTENSIONS, extend_grid
from sessionrec.train.config import TrainConfig

# an epoch 80 s, its validation 10 s, all training samples 88 s, the validation samples
# as training 8 s, the test 10 s, one calibration pass 10 s
COSTS = Costs(
    epoch_s=80.0, valid_s=10.0, all_epoch_s=88.0, recent_s=8.0, test_s=10.0, calibrate_s=10.0
)


def test_costs_from_rates():
    c = measure_costs(
        train_rate=100.0, eval_rate=1000.0, n_fit=8000, n_valid=800, n_test=2000, n_grids=2
    )
    assert c == Costs(
        epoch_s=80.0, valid_s=0.8, all_epoch_s=88.0, recent_s=8.0, test_s=2.0, calibrate_s=1.6
    )
    assert c.selection_epoch_s == pytest.approx(80.8)


def test_the_natural_length_of_a_schedule():
    assert natural_epochs(None, 3) == 9  # default: decays after 3 and 6, then 3 epochs at 1 %
    assert natural_epochs(2, 3) == 8  # the authors' code's schedule


def test_the_rates_of_a_schedule():
    assert rate_levels(3, 3, 9) == 3  # 1e-3 x3, 1e-4 x3, 1e-5 x3
    assert rate_levels(3, 3, 3) == 1 and rate_levels(3, 3, 4) == 2
    assert rate_levels(1, 1, 2) == 2 and rate_levels(2, 2, 5) == 3


def test_a_short_budget_plans_a_compressed_schedule_and_the_recent_refit():
    # reserve = test 10 + calibration 10 + saving + margin max(5, 0.03 * 600 = 18)
    plan = plan_budget(600.0, 590.0, COSTS, None, 3, max_epochs=30)
    assert plan.reserve_s == pytest.approx(10 + 10 + SAVE_S + 18)
    # recent: floor((542 - 3 passes x 8) / 90) = 5 epochs, short of the natural 9
    assert (plan.refit, plan.epochs) == ("recent", 5)
    # compressed in proportion: first round(5 * 3 / 9) = 2, every round(5 * 3 / 9) = 2
    assert (plan.lr_decay_first, plan.lr_decay_every) == (2, 2)
    # rates 1e-3 x2, 1e-4 x2, 1e-5: three recent passes
    assert plan.estimated_s["selection"] == 5 * 90 and plan.estimated_s["refit"] == 3 * 8
    assert "instead of a full refit" in plan.reason and "decays after epoch 2" in plan.reason
    assert sum(plan.estimated_s.values()) <= plan.left_s  # the plan fits
    # calibration ends before the refit's 24 s, the test's 10, saving and the margin 18
    assert plan.calibration_deadline(2000.0) == pytest.approx(2000 - 24 - 10 - SAVE_S - 18)
    # the steps stop before the cut epoch's validation (10 s), the refit and the reserve
    assert plan.steps_deadline(2000.0, True) == pytest.approx(2000 - 10 - 24 - plan.reserve_s)
    assert plan.steps_deadline(2000.0, False) == pytest.approx(2000 - 24 - plan.reserve_s)


def test_a_long_budget_plans_the_full_refit_where_it_fits():
    plan = plan_budget(3600.0, 3590.0, COSTS, None, 3, max_epochs=30)
    # reserve 10 + 10 + SAVE_S + 108; floor((3590 - reserve) / (90 + 88)) = 19 >= 9
    assert plan.refit == "full" and plan.epochs == 19  # early stopping ends it sooner
    assert (plan.lr_decay_first, plan.lr_decay_every) == (3, 3)  # as configured
    assert "then refit a fresh model on all training sessions" in plan.reason
    assert plan.estimated_s["refit"] == 19 * 88
    assert plan_budget(3600.0, 3590.0, COSTS, None, 3, max_epochs=4).epochs == 4
    # just short of 9 + 9 epochs: the recent refit after the natural 9
    # reserve 10 + 10 + SAVE_S + 48: floor(1522 / 178) = 8 epochs of each
    short = plan_budget(1600.0, 1600.0, COSTS, None, 3, max_epochs=30)
    assert short.refit == "recent" and short.epochs == 9  # floor((1522 - 24) / 90) = 16
    assert "A full refit would leave 8 selection epoch(s)" in short.reason


def test_a_tiny_budget_still_trains_one_epoch_and_a_configured_full_refit_is_kept():
    plan = plan_budget(60.0, 50.0, COSTS, None, 3, max_epochs=30)
    assert plan.epochs == 1 and plan.refit == "recent"
    assert (plan.lr_decay_first, plan.lr_decay_every) == (1, 1)
    full = plan_budget(600.0, 590.0, COSTS, None, 3, max_epochs=30, refit="full")
    assert full.refit == "full" and full.epochs == 3  # floor(542 / (90 + 88))
    assert "as configured" in full.reason
    long = plan_budget(3600.0, 3590.0, COSTS, None, 3, max_epochs=30, refit="full")
    assert long.epochs == 19  # floor((3590 - 138) / 178): early stopping ends it sooner
    none = plan_budget(600.0, 590.0, COSTS, None, 3, max_epochs=30, validation=False)
    assert none.refit == "none" and none.epochs == 6  # floor(542 / 80), at most 9
    kept = plan_budget(600.0, 590.0, COSTS, None, 3, max_epochs=30, refit="none")
    assert kept.refit == "none" and kept.epochs == 6  # floor(542 / 90), nothing after
    assert "refit='none' as configured" in kept.reason


def test_the_margin_and_the_saving_have_floors_that_shrink_with_a_small_budget():
    # 300 s: saving SAVE_S, margin max(MIN_MARGIN_S, 0.03 * 300 = 9)
    assert plan_budget(300.0, 300.0, COSTS, None, 3, 30).reserve_s == pytest.approx(20 + SAVE_S + 9)
    # 120 s: saving 5 % (6 s), margin MIN_MARGIN_S (3.6 is less)
    assert save_seconds(120.0) == 6.0
    assert plan_budget(120.0, 120.0, COSTS, None, 3, 30).reserve_s == pytest.approx(
        20 + 6 + MIN_MARGIN_S
    )
    # 60 s: saving and margin 5 % of the budget each (3 s), not 10 + 5 s of 60
    assert save_seconds(60.0) == 3.0
    assert plan_budget(60.0, 60.0, COSTS, None, 3, 30).reserve_s == pytest.approx(20 + 3 + 3)


def test_the_reason_names_a_configured_refit_and_never_a_negative_count():
    recent = plan_budget(3600.0, 3590.0, COSTS, None, 3, max_epochs=30, refit="recent")
    assert recent.refit == "recent" and "refit='recent' as configured" in recent.reason
    assert "fewer than" not in recent.reason  # 19 full epochs would fit: not the reason
    tiny = plan_budget(12.0, 8.0, COSTS, None, 3, max_epochs=30)
    assert "-" not in tiny.reason.split("left")[1].split("s each")[0]
    assert "would leave 0 selection epoch(s)" in tiny.reason


def test_after_each_epoch_the_plan_is_checked_with_the_measured_times():
    plan = plan_budget(600.0, 590.0, COSTS, None, 3, max_epochs=30)  # reserve 48, (2, 2)
    last = {"seconds": 80.0, "valid_seconds": 10.0}
    # best so far epoch 1; after epoch 2 (rate 1e-3): one recent pass of 8 s
    assert time_for_another_epoch(48 + 8 + 90.0, plan, last, "recent", 1)
    assert not time_for_another_epoch(48 + 8 + 89.0, plan, last, "recent", 1)
    # best so far epoch 2: after epoch 3 (1e-4) two passes
    assert not time_for_another_epoch(48 + 8 + 90.0, plan, last, "recent", 2)
    assert time_for_another_epoch(48 + 16 + 90.0, plan, last, "recent", 2)
    # an epoch twice as slow as the probe said: every pass is rescaled
    slow = {"seconds": 160.0, "valid_seconds": 10.0}
    assert not time_for_another_epoch(48 + 8 + 90.0, plan, slow, "recent", 1)
    assert time_for_another_epoch(48 + 16 + 170.0, plan, slow, "recent", 1)
    # full: the refit of the best epochs so far, plus one more if the next is best
    full = replace(plan, refit="full")
    assert time_for_another_epoch(48 + 3 * 88 + 90.0, full, last, "full", 2)
    assert not time_for_another_epoch(48 + 3 * 88 + 89.0, full, last, "full", 2)


def test_a_grid_extends_past_the_edge_the_best_value_sits_on():
    calls = []

    def peak_at(target):
        def choose(grid):
            calls.append(grid)
            best = max(grid, key=lambda v: (-abs(v - target), -v))
            return {"selected": best, "valid": {str(v): {} for v in grid}}

        return choose

    r = extend_grid(peak_at(20.0), (0.0, 1.0, 2.0, 4.0, 8.0, 12.0))
    # 12 is the edge: 16, 20 added (spacing 4); 20 is the edge: 24, 28; 20 inside: stop
    assert r["selected"] == 20.0 and r["extended"] == [16.0, 20.0, 24.0, 28.0]
    assert not r["bound_reached"] and len(calls) == 3
    r = extend_grid(peak_at(1000.0), (0.0, 4.0))
    assert r["extended"] == [8.0, 12.0, 16.0, 20.0, 24.0, 28.0][: 2 * MAX_GRID_EXTENSIONS]
    assert r["selected"] == 4.0 * (1 + 2 * MAX_GRID_EXTENSIONS) and r["bound_reached"]
    r = extend_grid(peak_at(-3.0), (-1.0, 0.0, 1.0))  # the lower edge, spacing 1
    assert r["selected"] == -3.0 and r["extended"] == [-2.0, -3.0, -4.0, -5.0]
    r = extend_grid(peak_at(-3.0), (0.0, 1.0), floor=0.0)  # never below the floor
    assert r["selected"] == 0.0 and r["extended"] == [] and r["bound_reached"]
    r = extend_grid(peak_at(0.9), (0.0, 1.0, 2.0))  # inside: one call
    assert r["selected"] == 1.0 and r["extended"] == [] and not r["bound_reached"]


def test_a_grid_extends_only_while_another_pass_fits_the_deadline():
    """Each pass over validation "takes" 10 s; the deadline leaves room for the first
    pass and one extension: the second is refused, the report says the budget stopped
    it (not the bound), and may_extend saw the last pass's cost."""
    now = [0.0]
    seen = []

    def choose(grid):
        now[0] += 10.0
        return {"selected": max(grid), "valid": {}}

    def may_extend(pass_s):
        seen.append(pass_s)
        return now[0] + pass_s <= 25.0

    r = extend_grid(choose, (0.0, 4.0), may_extend=may_extend, clock=lambda: now[0])
    assert r["extended"] == [8.0, 12.0] and r["selected"] == 12.0
    assert r["stopped_by_budget"] and not r["bound_reached"]
    assert seen == [10.0, 10.0] and now[0] == 20.0
    r = extend_grid(choose, (0.0, 4.0), may_extend=lambda s: False, clock=lambda: now[0])
    assert r["extended"] == [] and r["stopped_by_budget"] and r["selected"] == 4.0
    r = extend_grid(choose, (0.0, 4.0), max_extensions=1, clock=lambda: now[0])
    assert r["extended"] == [8.0, 12.0] and not r["stopped_by_budget"] and r["bound_reached"]


def test_refit_modes_and_the_configs_written_before_them():
    assert TrainConfig(refit=True).refit == "full"  # config.json of 0.2
    assert TrainConfig(refit=False).refit == "none"
    assert TrainConfig().refit == "auto"  # none, or recent under a budget
    assert TrainConfig.from_dict(TrainConfig(refit="recent").to_dict()).refit == "recent"
    with pytest.raises(ConfigError, match="refit must be one of"):
        TrainConfig(refit="sometimes")
    with pytest.raises(ConfigError, match="validation split"):
        TrainConfig(refit="recent", validation_fraction=0.0)


class TickClock:
    """A clock that advances ``tick`` seconds every time it is read: a training step
    reads it once, so each step "takes" ``tick`` seconds (evaluation reads it only
    around a pass)."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def _budgeted(tiny_dataset, tmp_path, minutes, **overrides):
    model_config, train_config = config_preset(
        "default", tiny_dataset.n_items, batch_size=16, lr=0.01, **overrides
    )
    trainer = Trainer(model_config, train_config, tmp_path, progress=False, max_minutes=minutes)
    trainer._clock = clock = TickClock(1.0)  # a step: one second
    return trainer, clock


def test_a_budgeted_run_plans_stops_in_time_and_reports_its_plan(tiny_dataset, tmp_path):
    # 6 minutes; an epoch is about 50 steps (50 s): a full refit after 9 epochs does not
    # fit, so the plan compresses the schedule and continues on the validation sessions
    trainer, clock = _budgeted(tiny_dataset, tmp_path, 6.0)
    start = clock.now
    trained = trainer.fit(tiny_dataset)
    plan = trained.metrics["budget"]
    assert plan["budget_s"] == 360.0 and plan["refit"] == "recent"
    assert "instead of a full refit" in plan["reason"]
    assert plan["epochs"] < plan["natural_epochs"] and plan["lr_decay_every"] < 3
    selection = [h for h in trained.history if "phase" not in h]
    assert 1 <= len(selection) <= plan["epochs"]
    assert all(h["complete"] for h in trained.history)  # stopped between epochs
    assert trained.history[-1]["phase"] == "recent"  # the pass over validation
    assert trained.metrics["recent"]["samples"] == trained.history[-1]["samples"] > 0
    # on time: the training (the clock moves with it) ended before the reserve
    assert clock.now <= start + plan["budget_s"] - plan["reserve_s"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["budget"]["epochs"] == plan["epochs"]
    assert "continued on the validation sessions" in trained.metrics["selected"]["why"]


def test_a_long_budget_keeps_the_configured_epochs_and_full_refit(tiny_dataset, tmp_path):
    trainer, clock = _budgeted(tiny_dataset, tmp_path, 600.0, epochs=2, refit="full")
    trained = trainer.fit(tiny_dataset)
    plan = trained.metrics["budget"]
    assert plan["refit"] == "full" and plan["epochs"] == 2  # the config's cap
    assert (plan["lr_decay_first"], plan["lr_decay_every"]) == (3, 3)  # as configured
    refit_epochs = [h for h in trained.history if h.get("phase") == "refit"]
    assert len(refit_epochs) == trained.metrics["refit_epochs"] == trained.metrics["best_epoch"]


def test_without_a_budget_nothing_is_planned(tiny_dataset, tmp_path):
    model_config, train_config = config_preset(
        "default", tiny_dataset.n_items, epochs=1, batch_size=32
    )
    trained = Trainer(model_config, train_config, tmp_path, progress=False).fit(tiny_dataset)
    assert "budget" not in trained.metrics and trained.train_config.refit == "auto"
    assert all("phase" not in h for h in trained.history)  # auto: no refit


def test_the_recent_refit_passes_over_validation_once_per_rate_of_the_selection(
    tiny_dataset, tmp_path
):
    torch.manual_seed(0)
    model_config, train_config = config_preset(
        "default",
        tiny_dataset.n_items,
        epochs=3,
        batch_size=16,
        lr=0.01,
        lr_decay_first=1,
        lr_decay_every=1,
        refit="recent",
        patience=5,
    )
    trained = Trainer(model_config, train_config, tmp_path, progress=False).fit(tiny_dataset)
    recent = trained.history[-1]
    best = trained.metrics["best_epoch"]
    rates = [h["lr"] for h in trained.history[:best]]  # 0.01, 0.001, 0.0001 up to the best
    assert recent["phase"] == "recent" and recent["rates"] == pytest.approx(rates)
    assert recent["samples"] == len(rates) * trained.metrics["valid"]["n_samples"]
    assert trained.metrics["recent"]["rates"] == recent["rates"]
    assert trained.metrics["epochs_trained"] == 3  # the passes are not epochs
    assert "continued on the validation sessions" in trained.metrics["selected"]["why"]


def test_the_recent_refit_with_the_sampled_softmax_and_validation_only_items(tmp_path):
    """A validation target that no training sample has: the sampled softmax's logQ
    correction would take log 0 (a NaN loss) without the validation counts."""
    sequences = [[i % 20, (i + 1) % 20, (i + 2) % 20] for i in range(200)]
    sequences += [[3, 4, 25], [5, 6, 26], [7, 8, 27]] * 6  # items 25-27: in validation only
    train = Sessions.from_lists(sequences, times=np.arange(float(len(sequences))))
    test = Sessions.from_lists([[1, 2, 3], [4, 5, 6]]).to_samples()
    dataset = SessionDataset(train, test, ItemVocab(np.arange(100, 128)))
    model_config, train_config = config_preset(
        "default", 28, epochs=1, batch_size=16, loss="sampled", num_negatives=8, refit="recent"
    )
    trained = Trainer(model_config, train_config, tmp_path, progress=False).fit(dataset)
    assert trained.history[-1]["phase"] == "recent"
    assert np.isfinite(trained.history[-1]["loss"])


def test_train_speed_times_the_trainers_own_step_at_its_objective(tmp_path):
    """Synthetic Diginetica-sized samples (43,097 items: the sampled softmax under
    ``loss="auto"``), a few steps: the keys and objectives, not the speed."""
    from sessionrec.bench.train_speed import train_speed

    result = train_speed(tmp_path, steps=2, warmup=1, configs=("default",))
    assert result["default_objective"] == "sampled"
    assert result["default_full_objective"] == "full"
    for key in ("default", "default_full"):
        for suffix in ("", "_bf16"):
            assert result[f"{key}_samples_per_s{suffix}"] > 0
            assert result[f"{key}_ratio{suffix}"] == pytest.approx(
                result[f"{key}_samples_per_s{suffix}"] / result["floor_samples_per_s"]
            )
