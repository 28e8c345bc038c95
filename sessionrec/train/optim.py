r"""Optimisation of the item tables row by row: :class:`LazyAdam`.

With a sampled softmax (:mod:`sessionrec.train.objective`) a training step uses a few
thousand rows of the item table, whatever the catalog's size; the gradient of the table
is then sparse (``SRGNN.set_sparse_gradients``), and a dense optimiser would still read
and write every row (two moments and the values: several table-sized passes per step).
:class:`LazyAdam` touches only the rows of the gradient, as TensorFlow's ``LazyAdam`` and
``torch.optim.SparseAdam`` do, and adds the L2 penalty of the rows it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["LazyAdam", "Optimizers"]


class LazyAdam(torch.optim.Optimizer):
    r"""Adam (Kingma & Ba, ICLR 2015) for parameters with sparse gradients, updating only
    the rows a step's gradient touches.

    For a row :math:`r` touched at step :math:`t` (the optimiser's step count) with
    gradient :math:`g_r`, and the L2 penalty coupled as Adam's ``weight_decay`` is,

    .. math::

        g_r &\leftarrow g_r + \lambda\,\theta_r \\
        m_r &\leftarrow \beta_1 m_r + (1 - \beta_1)\, g_r \qquad
        v_r \leftarrow \beta_2 v_r + (1 - \beta_2)\, g_r^2 \\
        \theta_r &\leftarrow \theta_r - \eta\,
            \frac{m_r / (1 - \beta_1^t)}{\sqrt{v_r / (1 - \beta_2^t)} + \epsilon}

    Rows a step does not touch keep their values and moments ("lazy": a dense Adam would
    decay their moments and keep moving them), and the L2 penalty of a row applies at the
    steps that use it: :math:`\frac{\lambda}{2}\lVert\theta_r\rVert^2` per use, as the
    gradient of a penalty on the rows of the batch. Dense gradients are accepted too
    (every row touched: then this is Adam with coupled L2).

    With ``rowwise`` the second moment is one number per row, the mean of the squared
    gradient over the row, :math:`v_r \leftarrow \beta_2 v_r + (1 - \beta_2)\,
    \overline{g_r^2}` ("partial row-wise Adam", FBGEMM's ``PARTIAL_ROWWISE_ADAM`` for
    embedding tables): the elements of an item's vector share one step size, and the
    optimiser's memory is one table instead of two (at 5 million items of 100 floats: 2 GB
    less).

    Memory: the moments, allocated once; a step allocates only tensors of the touched
    rows.

    Args:
        params: the parameters (their ``.grad`` sparse or dense).
        lr: the learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`.
        weight_decay: :math:`\lambda`.
        rowwise: one second moment per row (for 2-D parameters).
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        rowwise: bool = False,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "rowwise": rowwise,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    rowwise = group["rowwise"] and p.dim() == 2
                    state["exp_avg_sq"] = (
                        p.new_zeros((len(p), 1)) if rowwise else torch.zeros_like(p)
                    )
                state["step"] += 1
                rows, grad = _rows_and_values(p.grad)
                self._update(p, rows, grad, state, group, beta1, beta2)
        return loss

    @staticmethod
    def _update(
        p: torch.Tensor,
        rows: torch.Tensor | None,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
        beta1: float,
        beta2: float,
    ) -> None:
        """One Adam update of the ``rows`` of ``p`` (``None``: every row)."""
        t = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        values = p if rows is None else p.index_select(0, rows)
        if group["weight_decay"]:
            grad = grad.add(values, alpha=group["weight_decay"])
        m = exp_avg if rows is None else exp_avg.index_select(0, rows)
        v = exp_avg_sq if rows is None else exp_avg_sq.index_select(0, rows)
        m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
        if v.shape == grad.shape:
            v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        else:  # one second moment per row: the mean square of the row's gradient
            v.mul_(beta2).add_(grad.square().mean(dim=1, keepdim=True), alpha=1.0 - beta2)
        step_size = group["lr"] / (1.0 - beta1**t)
        denom = (v / (1.0 - beta2**t)).sqrt_().add_(group["eps"])
        delta = (m / denom).mul_(-step_size)
        if rows is None:
            p.add_(delta)
            return
        exp_avg.index_copy_(0, rows, m)
        exp_avg_sq.index_copy_(0, rows, v)
        p.index_add_(0, rows, delta)


def _rows_and_values(grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(row indices, their gradient rows)`` of a sparse gradient (duplicates summed),
    or ``(None, grad)`` for a dense one."""
    if not grad.is_sparse:
        return None, grad
    grad = grad.coalesce()
    return grad.indices()[0], grad.values()


class Optimizers:
    """The optimisers of a training run and their learning-rate schedules, stepped
    together.

    Dense item tables (the full softmax): one Adam over every parameter (fused; its
    ``weight_decay`` is the L2 penalty). Sparse item tables (the sampled softmax,
    ``SRGNN.set_sparse_gradients``): Adam over the dense parameters and a row-wise
    :class:`LazyAdam` (one second moment per row) over the tables, both with the same
    rate, schedule and L2.

    Args:
        model: the network (its parameters, and ``item_table_parameters()``).
        lr: the initial learning rate.
        weight_decay: the L2 penalty.
        factor: the learning-rate multiplier of each 0-based epoch.
        sparse_tables: give the item tables to :class:`LazyAdam`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        lr: float,
        weight_decay: float,
        factor: Callable[[int], float],
        sparse_tables: bool,
    ) -> None:
        tables = list(model.item_table_parameters()) if sparse_tables else []  # type: ignore[operator]
        table_ids = {id(p) for p in tables}
        dense = [p for p in model.parameters() if id(p) not in table_ids]
        self.optimizers: list[torch.optim.Optimizer] = [
            torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay, fused=True)
        ]
        if tables:
            self.optimizers.append(LazyAdam(tables, lr=lr, weight_decay=weight_decay, rowwise=True))
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in self.optimizers]

    @property
    def lr(self) -> float:
        """The current learning rate."""
        return float(self.optimizers[0].param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        """Train with ``lr`` until the schedule next steps (the recent refit's pass)."""
        for o in self.optimizers:
            for group in o.param_groups:
                group["lr"] = lr

    def zero_grad(self) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def end_epoch(self) -> None:
        """Advance the learning-rate schedules by one epoch."""
        for s in self.schedulers:
            s.step()

    def state_dict(self) -> dict[str, Any]:
        """``optimizer`` and ``scheduler`` (the dense ones), plus ``table_optimizer`` and
        ``table_scheduler`` with sparse tables."""
        state = {
            "optimizer": self.optimizers[0].state_dict(),
            "scheduler": self.schedulers[0].state_dict(),
        }
        if len(self.optimizers) > 1:
            state["table_optimizer"] = self.optimizers[1].state_dict()
            state["table_scheduler"] = self.schedulers[1].state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizers[0].load_state_dict(state["optimizer"])
        self.schedulers[0].load_state_dict(state["scheduler"])
        if len(self.optimizers) > 1:
            self.optimizers[1].load_state_dict(state["table_optimizer"])
            self.schedulers[1].load_state_dict(state["table_scheduler"])
