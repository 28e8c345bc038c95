r"""The calibration phase of a training run: the repeat bonus, then a content model's
new-item offset, chosen on validation with the selected state
(:func:`~sessionrec.train.evaluation.calibrate_repeat_bonus`,
:func:`~sessionrec.train.evaluation.calibrate_new_item_offset`), on grids that extend
themselves when the best value sits on an edge (:func:`extend_grid`).

Grid extension: when the best value of a grid :math:`v_1 < \dots < v_n` is an edge, say
:math:`v_n`, the values :math:`v_n + d` and :math:`v_n + 2d` (:math:`d = v_n - v_{n-1}`,
the edge's own spacing) join the grid and it is tried again (symmetrically below
:math:`v_1`); at most :data:`MAX_GRID_EXTENSIONS` times, each one more pass over the
validation samples; the repeat bonus never goes below 0 (a bonus: a session's own items
are never pushed down). The bound keeps a calibration that would run away (a value that
keeps improving, e.g. a repeat bonus on data of repeated clicks) to
:math:`2 \cdot` :data:`MAX_GRID_EXTENSIONS` :math:`\cdot d` past the configured edge; the
report then says the bound was reached. Under a time budget an extension runs only when
another pass (timed as the grid's last one), and the grids still to come, end before the
calibration's deadline (the budget's end less its planned refit, test, saving and margin,
:mod:`sessionrec.train.budget`); the budget plan reserves one pass per grid, so a grid
that would extend past it stops there (``"stopped_by_budget"`` in the report).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sessionrec.data.sessions import ChunkedSamples, Samples
from sessionrec.nn.srgnn import SRGNN
from sessionrec.train.best_state import BestState
from sessionrec.train.config import TrainConfig
from sessionrec.train.distributed import from_rank_zero
from sessionrec.train.evaluation import calibrate_new_item_offset, calibrate_repeat_bonus

__all__ = ["MAX_GRID_EXTENSIONS", "extend_grid", "calibrate"]

#: The most times a calibration grid extends itself past an edge.
MAX_GRID_EXTENSIONS = 3


def extend_grid(
    choose: Callable[[tuple[float, ...]], dict[str, Any]],
    grid: tuple[float, ...],
    max_extensions: int = MAX_GRID_EXTENSIONS,
    floor: float = -math.inf,
    may_extend: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """``choose(grid)`` (a calibration: ``{"selected": value or None, ...}``), repeated on
    a grid extended past the edge the best value sits on (module docstring).

    Args:
        may_extend: asked before each extension with the seconds the last ``choose``
            took (the cost of one more); ``False`` stops the extensions (a time budget).
        clock: what times ``choose`` (seconds).

    Returns:
        the last ``choose`` result, with ``"extended"``: the values added, in order,
        ``"bound_reached"``: whether the best value is still an edge after
        ``max_extensions`` extensions (or the lower edge at ``floor``, below which no
        value is added), and ``"stopped_by_budget"``: whether ``may_extend`` refused one
        (the best value may then be an edge with the bound not reached).
    """
    values = tuple(sorted(set(float(v) for v in grid)))
    started = clock()
    result = choose(values)
    pass_s = clock() - started
    added: list[float] = []
    stopped = False
    for _ in range(max_extensions):
        best = result["selected"]
        if best is None or len(values) < 2 or values[0] < best < values[-1]:
            break
        if best == values[-1]:
            step = values[-1] - values[-2]
            new = (best + step, best + 2 * step)
        else:
            step = values[1] - values[0]
            new = tuple(v for v in (best - step, best - 2 * step) if v >= floor)
        if not new:
            break
        if may_extend is not None and not may_extend(pass_s):
            stopped = True
            break
        added += new
        values = tuple(sorted(values + new))
        started = clock()
        result = choose(values)
        pass_s = clock() - started
    best = result["selected"]
    result["extended"] = added
    result["stopped_by_budget"] = stopped
    on_edge = best is not None and len(values) > 1 and best in (values[0], values[-1])
    result["bound_reached"] = bool(on_edge and not stopped and (added or best <= floor))
    return result


def calibrate(
    model: SRGNN,
    state: BestState,
    valid: Samples | ChunkedSamples | None,
    cfg: TrainConfig,
    content: bool,
    max_length: int | None,
    log: Callable[[str], None],
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The repeat bonus, then a content model's new-item offset, chosen on ``valid`` with
    ``state`` loaded; each chosen value goes into ``model.config``.

    Args:
        deadline: with a time budget, the ``clock`` time by which calibration must end:
            a grid extends only while one more pass, and a pass of each grid still to
            come, end before it (rank 0's clock decides on every process).

    Returns:
        ``{"repeat_bonus": ..., "new_item_offset": ...}``, the calibrations that ran
        (:func:`~sessionrec.train.evaluation.calibrate_repeat_bonus`,
        :func:`~sessionrec.train.evaluation.calibrate_new_item_offset`, with
        :func:`extend_grid`'s keys).
    """
    chosen: dict[str, Any] = {}
    if valid is None:
        return chosen
    offset_grid = bool(cfg.new_item_offset_grid and content)

    def within(later_grids: int) -> Callable[[float], bool] | None:
        if deadline is None:
            return None
        return lambda pass_s: (
            from_rank_zero(float(clock() + pass_s * (1 + later_grids) <= deadline)) > 0.5
        )

    if cfg.repeat_bonus_grid:
        state.load_into(model)
        bonus = extend_grid(
            lambda grid: calibrate_repeat_bonus(
                model, valid, grid, cfg.select_metric, cfg.eval_batch_size, max_length
            ),
            cfg.repeat_bonus_grid,
            floor=0.0,  # a bonus: the items of the session are never pushed down
            may_extend=within(int(offset_grid)),
            clock=clock,
        )
        chosen["repeat_bonus"] = bonus
        model.config = replace(model.config, repeat_bonus=bonus["selected"])
        log(f"repeat bonus: {bonus['selected']} (chosen on validation{_extension(bonus)})")
    if offset_grid:
        state.load_into(model)
        offset = extend_grid(
            lambda grid: calibrate_new_item_offset(
                model, valid, grid, cfg.select_metric, cfg.eval_batch_size, max_length
            ),
            cfg.new_item_offset_grid,
            may_extend=within(0),
            clock=clock,
        )
        chosen["new_item_offset"] = offset
        if offset["selected"] is not None:
            model.config = replace(model.config, new_item_offset=offset["selected"])
            log(f"new-item offset: {offset['selected']} (chosen on validation{_extension(offset)})")
        else:
            log(
                f"new-item offset: kept at {model.config.new_item_offset} (only "
                f"{offset['new_targets']} validation targets are new items)"
            )
    return chosen


def _extension(result: dict[str, Any]) -> str:
    budget = "; its edge was not extended: the time budget" if result["stopped_by_budget"] else ""
    if not result["extended"]:
        return budget
    added = ", ".join(f"{v:g}" for v in result["extended"])
    bound = "; still on the edge at the bound" if result["bound_reached"] else ""
    stop = "; extended no further: the time budget" if result["stopped_by_budget"] else ""
    return f"; the grid extended past its edge by {added}{bound}{stop}"
