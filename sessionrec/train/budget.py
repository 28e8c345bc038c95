r"""A time budget for a whole training run (``Trainer(max_minutes=M)``, ``--max-minutes M``):
the plan of the selection epochs, the learning-rate schedule, the refit and the
reserve for calibration, test and saving, from costs measured on this machine.

:func:`measure_costs` turns two short probes (the first training steps, one small
validation batch) into :class:`Costs`; :func:`plan_budget` turns the costs and the
seconds left into a :class:`BudgetPlan`; :func:`time_for_another_epoch` re-checks the
plan after every epoch with the measured times, so a wrong estimate costs epochs, not the
deadline.

The plan (README, "Time to accuracy", measured on Diginetica):

* The *natural length* of a schedule is :math:`E^* = f + 2e` epochs (``lr_decay_first``
  :math:`f`, ``lr_decay_every`` :math:`e`): the rate has then run :math:`e` epochs at 1 %
  of its start, and longer runs selected their best epoch there (Diginetica, `default`,
  sampled softmax: epoch 9 of 12; :math:`E^* = 9`).
* ``refit="full"`` (a fresh model on all training sessions for the selected epochs) is
  planned when :math:`E^*` selection epochs and :math:`E^*` refit epochs fit:
  :math:`E^* (c_{sel} + c_{all}) \le A`, with :math:`c_{sel}` an epoch plus its
  validation, :math:`c_{all}` an epoch on every training session and :math:`A` the
  seconds left after the reserve; the selection then runs up to ``TrainConfig.epochs``
  (early stopping ends it), as without a budget.
* Otherwise the recent refit (``refit="recent"``,
  :func:`~sessionrec.train.steps.recent_pass`: the selected state continues on the
  validation sessions, one pass per learning rate it trained with, :math:`c_{rec}` each)
  with :math:`E = \min(E^*, \lfloor (A - r\,c_{rec}) / c_{sel} \rfloor)` selection
  epochs, at least one (:math:`r`: the natural schedule's rates, 3). When the budget
  makes :math:`E < E^*`, the schedule is compressed in proportion, ``lr_decay_first``
  :math:`= \max(1, \mathrm{round}(E f / E^*))` and ``lr_decay_every`` :math:`= \max(1,
  \mathrm{round}(E e / E^*))`, so a short run still ends at a decayed rate. Measured
  (README, "Time to accuracy"): on Diginetica the recent refit tests within 0.4 points
  of a full refit (HR@20 above it, MRR@20 below) in 25 s instead of 9 epochs; on
  YooChoose 100k the full refit is ahead by 0.4 / 0.2, so it is kept where it fits.
* A configured ``refit`` (``"full"``, ``"recent"``, ``"none"``) is kept, and the epochs
  are planned around it.
* The reserve is the test, the calibration passes (one validation pass per grid), the
  saving (:func:`save_seconds`), and a margin of :data:`MARGIN_SHARE` of the budget (at
  least :data:`MIN_MARGIN_S` seconds, or :data:`SAVE_SHARE` of a budget under 100 s).
* Training steps stop in time for the validation of the epoch they cut short, the
  planned refit and the reserve (:meth:`BudgetPlan.steps_deadline`); a calibration grid
  extends only while it fits (:meth:`BudgetPlan.calibration_deadline`).
* After every epoch :func:`time_for_another_epoch` checks, with the measured times,
  that one more epoch and what follows it still fit; early stopping (``patience``)
  applies as without a budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = [
    "MARGIN_SHARE",
    "MIN_MARGIN_S",
    "SAVE_S",
    "SAVE_SHARE",
    "save_seconds",
    "PROBE_STEPS",
    "PROBE_WARMUP_STEPS",
    "Costs",
    "BudgetPlan",
    "natural_epochs",
    "rate_levels",
    "measure_costs",
    "plan_budget",
    "time_for_another_epoch",
]

#: The share of the budget kept back for what the estimates miss.
MARGIN_SHARE = 0.03
#: ... and at least this many seconds.
MIN_MARGIN_S = 5.0
#: Seconds reserved for writing the model directory (and, for ``fit``, the export) ...
SAVE_S = 10.0
#: ... or this share of the budget when that is less (a small model saves in a second).
SAVE_SHARE = 0.05

#: Training steps timed before the plan is made (after :data:`PROBE_WARMUP_STEPS`).
PROBE_STEPS = 30
#: Steps before the probe's clock starts (allocator and thread-pool warm-up).
PROBE_WARMUP_STEPS = 5


@dataclass(frozen=True)
class Costs:
    """Seconds of each phase of a run on this machine (estimated by :func:`measure_costs`,
    or measured after an epoch).

    Attributes:
        epoch_s: one epoch on the selection run's training samples.
        valid_s: one validation pass (0 without a validation split).
        all_epoch_s: one epoch on every training sample (a full refit's epoch).
        recent_s: one pass over the validation samples (the recent refit).
        test_s: the test evaluation.
        calibrate_s: the calibrations (one validation pass per grid).
    """

    epoch_s: float
    valid_s: float
    all_epoch_s: float
    recent_s: float
    test_s: float
    calibrate_s: float

    @property
    def selection_epoch_s(self) -> float:
        """An epoch and its validation."""
        return self.epoch_s + self.valid_s


@dataclass(frozen=True)
class BudgetPlan:
    """What a budgeted run will do, and why.

    Attributes:
        budget_s: the whole budget in seconds (from the start of the job).
        left_s: seconds left when the plan was made.
        reserve_s: seconds kept for calibration, test, saving and the margin.
        epochs: the most selection epochs.
        refit: ``"full"``, ``"recent"`` or ``"none"`` (configured, or no validation split).
        lr_decay_first: the schedule's first decay (after this many epochs) ...
        lr_decay_every: ... then every this many epochs.
        natural_epochs: :math:`E^*`, the schedule's natural length.
        estimated_s: the planned seconds of each phase.
        costs: the costs the plan was made from.
        reason: the plan in words.
    """

    budget_s: float
    left_s: float
    reserve_s: float
    epochs: int
    refit: str
    lr_decay_first: int
    lr_decay_every: int
    natural_epochs: int
    estimated_s: dict[str, float]
    costs: Costs
    reason: str

    def steps_deadline(self, deadline: float, validation: bool) -> float:
        """When the selection's training steps must stop for a run whose budget ends at
        ``deadline``: before the validation of the epoch they cut (an epoch cut short is
        still validated), the planned refit and the reserve."""
        valid_s = self.costs.valid_s if validation else 0.0
        return deadline - self.reserve_s - self.estimated_s["refit"] - valid_s

    def calibration_deadline(self, deadline: float) -> float:
        """When calibration must end for a run whose budget ends at ``deadline``: before
        what follows it, the planned refit, the test, saving and the margin (the reserve
        holds one validation pass per grid, which calibration spends)."""
        after = self.reserve_s - self.estimated_s["calibration"] + self.estimated_s["refit"]
        return deadline - after

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["costs"] = {k: round(v, 2) for k, v in d["costs"].items()}
        d["estimated_s"] = {k: round(v, 1) for k, v in d["estimated_s"].items()}
        for key in ("budget_s", "left_s", "reserve_s"):
            d[key] = round(d[key], 1)
        return d


def natural_epochs(lr_decay_first: int | None, lr_decay_every: int) -> int:
    """:math:`E^* = f + 2e`: the epochs after which the rate has run ``lr_decay_every``
    epochs at ``lr_decay**2`` of its start (``f``: ``lr_decay_first``, or
    ``lr_decay_every`` when ``None``)."""
    first = lr_decay_every if lr_decay_first is None else lr_decay_first
    return first + 2 * lr_decay_every


def measure_costs(
    train_rate: float,
    eval_rate: float,
    n_fit: int,
    n_valid: int,
    n_test: int,
    n_grids: int,
) -> Costs:
    """:class:`Costs` from the measured rates.

    Args:
        train_rate: training samples per second (the probe's steps).
        eval_rate: evaluated samples per second (a validation batch).
        n_fit: training samples of an epoch of the selection run.
        n_valid: validation samples (they are also the recent pass's samples).
        n_test: test samples.
        n_grids: calibration grids that will run (repeat bonus, new-item offset).
    """
    train_rate, eval_rate = max(train_rate, 1e-9), max(eval_rate, 1e-9)
    valid_s = n_valid / eval_rate
    return Costs(
        epoch_s=n_fit / train_rate,
        valid_s=valid_s,
        all_epoch_s=(n_fit + n_valid) / train_rate,
        recent_s=n_valid / train_rate,
        test_s=n_test / eval_rate,
        calibrate_s=n_grids * valid_s,
    )


def save_seconds(budget_s: float) -> float:
    """The saving's reserve: :data:`SAVE_S`, or :data:`SAVE_SHARE` of a small budget."""
    return min(SAVE_S, SAVE_SHARE * budget_s)


def _reserve(costs: Costs, budget_s: float) -> float:
    margin = max(min(MIN_MARGIN_S, SAVE_SHARE * budget_s), MARGIN_SHARE * budget_s)
    return costs.test_s + costs.calibrate_s + save_seconds(budget_s) + margin


def plan_budget(
    budget_s: float,
    left_s: float,
    costs: Costs,
    lr_decay_first: int | None,
    lr_decay_every: int,
    max_epochs: int,
    refit: str = "auto",
    validation: bool = True,
) -> BudgetPlan:
    """The plan of a run with ``left_s`` seconds left of ``budget_s`` (module docstring).

    Args:
        costs: this machine's costs (:func:`measure_costs`).
        lr_decay_first, lr_decay_every: the configured schedule.
        max_epochs: ``TrainConfig.epochs``: the plan never trains more.
        refit: the configured refit (``TrainConfig.refit``); ``"auto"``: the plan
            chooses (``"full"`` where it fits, else ``"recent"``).
        validation: whether the run has a validation split (without one it trains the
            epochs that fit, up to the natural length, and nothing follows them).
    """
    first = lr_decay_every if lr_decay_first is None else lr_decay_first
    target = natural_epochs(first, lr_decay_every)
    reserve = _reserve(costs, budget_s)
    avail = left_s - reserve
    per_full = costs.selection_epoch_s + costs.all_epoch_s
    full_fits = math.floor(avail / max(per_full, 1e-9))  # selection and refit epochs
    if not validation:
        mode, after, per_epoch = "none", 0.0, costs.epoch_s
    elif refit == "none":
        mode, after, per_epoch = "none", 0.0, costs.selection_epoch_s
    elif refit == "full" or (refit == "auto" and full_fits >= min(target, max_epochs)):
        mode, after, per_epoch = "full", 0.0, per_full
    else:  # the recent refit: one pass per rate, at most the natural schedule's levels
        mode, per_epoch = "recent", costs.selection_epoch_s
        after = rate_levels(first, lr_decay_every, target) * costs.recent_s
    epochs = math.floor((avail - after) / max(per_epoch, 1e-9))
    cap = min(max_epochs, target) if mode != "full" else max_epochs
    limited = epochs < min(max_epochs, target)  # by the budget, not by TrainConfig.epochs
    epochs = max(1, min(epochs, cap))
    if limited:  # compress the schedule: a short run still ends at a decayed rate
        first_p = max(1, round(epochs * first / target))
        every_p = max(1, round(epochs * lr_decay_every / target))
    else:
        first_p, every_p = first, lr_decay_every
    passes = rate_levels(first_p, every_p, epochs)
    estimated = {
        "selection": epochs * (costs.selection_epoch_s if validation else costs.epoch_s),
        "calibration": costs.calibrate_s if validation else 0.0,
        "refit": {"full": epochs * costs.all_epoch_s, "recent": passes * costs.recent_s}.get(
            mode, 0.0
        ),
        "test": costs.test_s,
        "save": save_seconds(budget_s),
    }
    text = (
        f"{left_s:.0f} of {budget_s:.0f} s left; {reserve:.0f} s kept for calibration, test, "
        f"saving and a margin; an epoch costs about {_seconds(costs.epoch_s)} and its "
        f"validation {_seconds(costs.valid_s)}. "
    )
    full_fits = max(full_fits, 0)
    if not validation:
        text += "No validation split: the last epoch is kept. "
    elif mode == "none":
        text += "refit='none' as configured: the selected epoch is shipped. "
    elif refit == "full":
        text += "refit='full' as configured: select on validation, then refit on everything. "
    elif refit == "recent":
        text += (
            "refit='recent' as configured: select on validation, then continue the selected "
            f"model on the validation sessions, one pass per learning rate (up to {passes}). "
        )
    elif mode == "full":
        text += (
            f"{full_fits} selection epochs and as many refit epochs fit, at least the "
            f"schedule's natural length ({target}): select on validation, then refit a fresh "
            "model on all training sessions (the best measured, where it fits). "
        )
    else:
        text += (
            f"A full refit would leave {full_fits} selection epoch(s), fewer than the "
            f"schedule's natural length ({target}): select on validation, then continue the "
            "selected model on the validation sessions, one pass per learning rate (up to "
            f"{passes}, {costs.recent_s:.0f} s each) instead of a full refit. "
        )
    text += f"Up to {epochs} epoch(s)"
    if (first_p, every_p) != (first, lr_decay_every):
        text += (
            f" (fewer than the schedule's natural {target}: the rate decays after epoch "
            f"{first_p}, then every {every_p})"
        )
    return BudgetPlan(
        budget_s,
        left_s,
        reserve,
        epochs,
        mode,
        first_p,
        every_p,
        target,
        estimated,
        costs,
        text + ".",
    )


def rate_levels(lr_decay_first: int, lr_decay_every: int, epochs: int) -> int:
    """The learning rates ``epochs`` epochs train with: one, and one more per decay
    (:func:`~sessionrec.train.config.lr_factor`)."""
    last = epochs - 1
    return 1 + (0 if last < lr_decay_first else 1 + (last - lr_decay_first) // lr_decay_every)


def time_for_another_epoch(
    left_s: float,
    plan: BudgetPlan,
    last: dict[str, Any],
    refit: str,
    best_epochs: int,
) -> bool:
    """Whether one more selection epoch still leaves the refit that would follow it and
    the reserve within the ``left_s`` seconds left, by the measured times of the ``last``
    epoch's record (``seconds``, ``valid_seconds``; every pass rescaled by the probe's
    error on the epoch); ``best_epochs``: the epochs up to the best one so far."""
    costs = replace(
        plan.costs,
        epoch_s=float(last["seconds"]),
        valid_s=float(last.get("valid_seconds", plan.costs.valid_s)),
    )
    scale = costs.epoch_s / max(plan.costs.epoch_s, 1e-9)  # the probe's error, on every pass
    costs = replace(
        costs, all_epoch_s=scale * plan.costs.all_epoch_s, recent_s=scale * plan.costs.recent_s
    )
    left = left_s - plan.reserve_s
    passes = rate_levels(plan.lr_decay_first, plan.lr_decay_every, best_epochs + 1)
    # after one more epoch: a full refit of one more epoch (if it is the best), or one
    # recent pass per rate up to it
    after = {"full": (best_epochs + 1) * costs.all_epoch_s, "recent": passes * costs.recent_s}
    return left - after.get(refit, 0.0) >= costs.selection_epoch_s


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
