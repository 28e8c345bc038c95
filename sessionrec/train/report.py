"""The training report of a model directory: ``report.json`` and ``training.png``.

``report.json`` holds, per epoch, the training loss, the learning rate, samples/s and the
validation metrics (``history``), the selected epoch with its validation and test
metrics, the data report (rows read, skipped, dropped by the protocol) and the time each
step took. ``training.png`` draws the loss and the validation HR@20 / MRR@20 per epoch
(a refit's epochs, trained without validation, are drawn as the loss only).
"""

from __future__ import annotations

import io
import json
from typing import Any

__all__ = ["REPORT_FORMAT", "plot_history", "report_json"]

REPORT_FORMAT = "sessionrec.report/1"


def report_json(
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
    **extra: Any,
) -> str:
    """``report.json``'s text: ``{"history": [...], "metrics": {...}, **extra}``."""
    return json.dumps({"history": history, "metrics": metrics, **extra}, indent=2, default=str)


def plot_history(
    history: list[dict[str, Any]], title: str = "", best_epoch: int | None = None
) -> bytes:
    """PNG bytes of the loss (left) and validation HR@20 / MRR@20 (right) per epoch;
    ``best_epoch`` (1-based) is marked on the validation panel."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_valid) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for phase, style in (("selection", "o-"), ("refit", "s--")):
        rows = [h for h in history if h.get("phase", "selection") == phase]
        if rows:
            ax_loss.plot([h["epoch"] for h in rows], [h["loss"] for h in rows], style, label=phase)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.grid(alpha=0.3)
    if any(h.get("phase") == "refit" for h in history):
        ax_loss.legend()
    valid = [h for h in history if h.get("valid")]
    if valid:
        epochs = [h["epoch"] for h in valid]
        for key in ("hr@20", "mrr@20"):
            if key in valid[0]["valid"]:
                ax_valid.plot(epochs, [h["valid"][key] for h in valid], "o-", label=key.upper())
        if best_epoch is not None:
            ax_valid.axvline(
                best_epoch, color="grey", ls=":", label=f"selected: epoch {best_epoch}"
            )
        ax_valid.legend()
    else:
        ax_valid.text(0.5, 0.5, "no validation split", ha="center", va="center")
    ax_valid.set_xlabel("epoch")
    ax_valid.set_ylabel("validation metric (%)")
    ax_valid.grid(alpha=0.3)
    for ax in (ax_loss, ax_valid):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
