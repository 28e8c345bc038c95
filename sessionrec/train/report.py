"""The training report of a model directory: ``report.json`` and ``training.png``.

``report.json`` holds, per epoch, the training loss, the learning rate, samples/s and the
validation metrics (``history``), the selected epoch with its validation and test
metrics, the data report (rows read, skipped, dropped by the protocol) and the time each
step took, and how the model was selected (``metrics["selected"]``: the criterion, the
epoch, the repeat bonus). ``training.png`` draws the loss and the validation HR@20 / MRR@20
per epoch on whole-epoch ticks (a refit's epochs and a recent refit's passes, trained
without validation, are drawn as the loss only; the recent passes as one triangle after
the selection epochs), the learning-rate decays, the selected epoch with the criterion, and the
validation metrics of the model as shipped (repeat bonus included).
"""

from __future__ import annotations

import io
import json
from typing import Any

__all__ = ["REPORT_FORMAT", "history_figure", "lr_decays", "plot_history", "report_json"]

REPORT_FORMAT = "sessionrec.report/1"


def report_json(
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
    **extra: Any,
) -> str:
    """``report.json``'s text: ``{"history": [...], "metrics": {...}, **extra}``."""
    return json.dumps({"history": history, "metrics": metrics, **extra}, indent=2, default=str)


def plot_history(
    history: list[dict[str, Any]],
    title: str = "",
    best_epoch: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> bytes:
    """PNG bytes of :func:`history_figure`."""
    import matplotlib.pyplot as plt

    fig = history_figure(history, title, best_epoch, metrics)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def lr_decays(history: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """``(phase, epoch)`` of every epoch of ``history`` that trained with a lower
    learning rate than the epoch before it in its phase (``selection`` or ``refit``)."""
    decays = []
    for phase in ("selection", "refit"):
        rows = [h for h in history if h.get("phase", "selection") == phase and "lr" in h]
        decays += [(phase, b["epoch"]) for a, b in zip(rows, rows[1:]) if b["lr"] < a["lr"]]
    return decays


def history_figure(
    history: list[dict[str, Any]],
    title: str = "",
    best_epoch: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> Any:
    """The matplotlib figure of the loss (left) and the validation HR@20 / MRR@20 (right)
    per epoch, on whole-epoch ticks: ``best_epoch`` (1-based) marked with the selection
    criterion (``metrics["selected"]``, :func:`~sessionrec.train.evaluation.record_selection`),
    learning-rate decays as dashed vertical lines before the epoch they start, and the
    validation metrics of the model as shipped (``metrics["valid"]``, the calibrated
    repeat bonus included) as stars at the selected epoch."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    metrics = metrics or {}
    selected = metrics.get("selected") or {}
    fig, (ax_loss, ax_valid) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for phase, style in (("selection", "o-"), ("refit", "s--"), ("recent", "^")):
        rows = [h for h in history if h.get("phase", "selection") == phase]
        if rows:
            ax_loss.plot([h["epoch"] for h in rows], [h["loss"] for h in rows], style, label=phase)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    valid = [h for h in history if h.get("valid")]
    if valid:
        epochs = [h["epoch"] for h in valid]
        for key in ("hr@20", "mrr@20"):
            if key in valid[0]["valid"]:
                ax_valid.plot(epochs, [h["valid"][key] for h in valid], "o-", label=key.upper())
        if best_epoch is not None:
            criterion = " + ".join(m.upper() for m in selected.get("select_metric", ()))
            ax_valid.axvline(
                best_epoch,
                color="grey",
                ls=":",
                label=f"selected: epoch {best_epoch}"
                + (f" (best {criterion})" if criterion else ""),
            )
            shipped = metrics.get("valid") if "valid_before_calibration" in metrics else None
            if shipped:
                bonus = selected.get("repeat_bonus")
                ax_valid.plot(
                    [best_epoch, best_epoch],
                    [shipped["hr@20"], shipped["mrr@20"]],
                    "k*",
                    ms=10,
                    label="as shipped" + (f" (repeat bonus {bonus:g})" if bonus else ""),
                )
    else:
        ax_valid.text(0.5, 0.5, "no validation split", ha="center", va="center")
    ax_valid.set_xlabel("epoch")
    ax_valid.set_ylabel("validation metric (%)")
    decays = lr_decays(history)
    last = max((h["epoch"] for h in history), default=1)
    for ax in (ax_loss, ax_valid):
        labelled = set()
        for phase, epoch in decays:
            refit = phase == "refit"
            ax.axvline(  # a refit's decays beside the selection run's, not hidden by them
                epoch - (0.45 if refit else 0.5),
                color="tab:purple" if refit else "tab:red",
                ls="--",
                lw=0.8,
                label=None if phase in labelled else f"learning-rate decay ({phase})",
            )
            labelled.add(phase)
        ax.set_xlim(0.5, last + 0.5)
        if last <= 20:
            ax.set_xticks(range(1, last + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax is ax_valid and not valid:
            continue
        if ax is ax_valid or decays or any(h.get("phase") == "refit" for h in history):
            ax.legend(fontsize="small")
    heading = [title] if title else []
    if selected.get("criterion"):
        heading.append(f"selection: {selected['criterion']}")
    if heading:
        fig.suptitle("\n".join(heading))
    fig.tight_layout()
    return fig
