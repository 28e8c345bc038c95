"""The training report's figure (``training.png``): whole-epoch ticks, learning-rate
decays, the selection criterion and the model as shipped, on hand-made histories."""

from __future__ import annotations

import matplotlib.pyplot as plt

from sessionrec.train.report import history_figure, lr_decays, plot_history

SELECTED = {
    "criterion": "HR@20 + MRR@20 on the validation split",
    "select_metric": ["hr@20", "mrr@20"],
    "repeat_bonus": 2.0,
}


def _epochs(n: int, decay_at: int | None = None, phase: str | None = None) -> list[dict]:
    """``n`` epochs at lr 1e-3, 1e-4 from epoch ``decay_at`` on (validation unless a refit)."""
    rows = []
    for e in range(1, n + 1):
        lr = 1e-4 if decay_at is not None and e >= decay_at else 1e-3
        valid = None if phase == "refit" else {"hr@20": 40.0 + e, "mrr@20": 15.0 + e}
        rows.append({"epoch": e, "loss": 5.0 - 0.1 * e, "lr": lr, "valid": valid})
        if phase:
            rows[-1]["phase"] = phase
    return rows


def test_learning_rate_decays_are_found_per_phase():
    history = _epochs(5, decay_at=3) + _epochs(4, decay_at=3, phase="refit")
    assert lr_decays(history) == [("selection", 3), ("refit", 3)]
    assert lr_decays(_epochs(3)) == []


def test_one_epoch_has_one_whole_tick_and_the_criterion_is_named():
    metrics = {
        "selected": SELECTED,
        "valid": {"hr@20": 45.0, "mrr@20": 18.0},
        "valid_before_calibration": {"hr@20": 41.0, "mrr@20": 16.0},
    }
    fig = history_figure(_epochs(1), "fit", 1, metrics)
    try:
        ax_loss, ax_valid = fig.axes
        for ax in (ax_loss, ax_valid):
            assert list(ax.get_xticks()) == [1]  # not 0.945 .. 1.050
            assert ax.get_xlim() == (0.5, 1.5)
        legend = [t.get_text() for t in ax_valid.get_legend().get_texts()]
        assert "selected: epoch 1 (best HR@20 + MRR@20)" in legend
        assert "as shipped (repeat bonus 2)" in legend
        assert fig._suptitle.get_text() == "fit\nselection: HR@20 + MRR@20 on the validation split"
    finally:
        plt.close(fig)


def test_decays_are_drawn_before_the_epoch_they_start():
    fig = history_figure(_epochs(5, decay_at=3), "", 4, {"selected": SELECTED})
    try:
        ax_loss, ax_valid = fig.axes
        assert list(ax_loss.get_xticks()) == [1, 2, 3, 4, 5]
        decay_lines = [
            line for line in ax_loss.get_lines() if line.get_label().startswith("learning-rate")
        ]
        assert [line.get_xdata()[0] for line in decay_lines] == [2.5]
        legend = [t.get_text() for t in ax_valid.get_legend().get_texts()]
        assert "learning-rate decay (selection)" in legend
        assert "as shipped (repeat bonus 2)" not in legend  # nothing calibrated
    finally:
        plt.close(fig)
    assert plot_history(_epochs(2), "x").startswith(b"\x89PNG")
