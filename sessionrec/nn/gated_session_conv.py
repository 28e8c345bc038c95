"""The gated session-graph propagation of SR-GNN, as a PyG ``MessagePassing`` operator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

__all__ = ["GatedConvWeights", "GatedSessionGraphConv"]


@dataclass(frozen=True, eq=False)
class GatedConvWeights:
    r"""The weights of a :class:`GatedSessionGraphConv`, as float32 numpy arrays (copies,
    detached from the module): what an exporter needs to recompute the propagation.

    In the terms of :class:`GatedSessionGraphConv`'s equations, with ``d`` the node state
    size; matrices are ``[out, in]`` (:class:`torch.nn.Linear`'s ``weight``), so a
    message is ``h @ w_in.T + b_in``. The GRU's stacks hold its three gates in
    :class:`torch.nn.GRUCell`'s order: reset :math:`\mathbf{r}`, update
    :math:`\mathbf{z}`, candidate :math:`\tilde{\mathbf{h}}`.

    Attributes:
        w_in: :math:`\mathbf{W}_{in}` ``[d, d]``, the message along incoming edges.
        b_in: :math:`\mathbf{b}_{in}` ``[d]``, its bias (inside the weighted sum).
        w_out: :math:`\mathbf{W}_{out}` ``[d, d]``, the message along outgoing edges.
        b_out: :math:`\mathbf{b}_{out}` ``[d]``, its bias (inside the weighted sum).
        bias_in: :math:`\mathbf{b}^{\prime}_{in}` ``[d]``, added to the incoming sum.
        bias_out: :math:`\mathbf{b}^{\prime}_{out}` ``[d]``, added to the outgoing sum.
        w_ih: :math:`[\mathbf{W}_r; \mathbf{W}_z; \mathbf{W}_o]` ``[3d, 2d]``, the gates'
            maps of :math:`\mathbf{a}_i`.
        b_ih: ``[3d]``, the GRU's biases added to ``a @ w_ih.T``.
        w_hh: :math:`[\mathbf{U}_r; \mathbf{U}_z; \mathbf{U}_o]` ``[3d, d]``, the gates'
            maps of :math:`\mathbf{h}_i`.
        b_hh: ``[3d]``, the GRU's biases added to ``h @ w_hh.T`` (the candidate's third
            is inside :math:`\mathbf{r}_i \odot (\cdot)`).
    """

    w_in: np.ndarray
    b_in: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    bias_in: np.ndarray
    bias_out: np.ndarray
    w_ih: np.ndarray
    b_ih: np.ndarray
    w_hh: np.ndarray
    b_hh: np.ndarray


class GatedSessionGraphConv(MessagePassing):
    r"""Gated graph propagation of SR-GNN (Wu et al., "Session-based Recommendation with
    Graph Neural Networks", AAAI 2019, Eq. 1-5).

    Each step aggregates along incoming and outgoing edges with the normalised weights
    :math:`A^{in}, A^{out}` (see :mod:`sessionrec.graph`) and updates node states with a
    GRU cell:

    .. math::

        \mathbf{a}_i &= \Big[\sum_j A^{in}_{ij}\,(\mathbf{W}_{in}\mathbf{h}_j + \mathbf{b}_{in})
                       + \mathbf{b}^{\prime}_{in} \;;\;
                       \sum_j A^{out}_{ij}\,(\mathbf{W}_{out}\mathbf{h}_j + \mathbf{b}_{out})
                       + \mathbf{b}^{\prime}_{out}\Big] \\
        \mathbf{z}_i &= \sigma(\mathbf{W}_z \mathbf{a}_i + \mathbf{U}_z \mathbf{h}_i) \qquad
        \mathbf{r}_i = \sigma(\mathbf{W}_r \mathbf{a}_i + \mathbf{U}_r \mathbf{h}_i) \\
        \tilde{\mathbf{h}}_i &= \tanh(\mathbf{W}_o \mathbf{a}_i
                               + \mathbf{r}_i \odot \mathbf{U}_o \mathbf{h}_i) \\
        \mathbf{h}_i &\leftarrow (1 - \mathbf{z}_i) \odot \tilde{\mathbf{h}}_i
                        + \mathbf{z}_i \odot \mathbf{h}_i

    repeated ``steps`` times (GRU biases omitted above; :class:`torch.nn.GRUCell` computes
    exactly these gates). The extra biases :math:`\mathbf{b}^{\prime}` follow the
    authors' reference code (``b_iah``, ``b_oah``).

    Args:
        channels: node state size ``d``.
        steps: propagation steps (the paper uses 1).

    Shapes:
        - input: node states ``[N, d]``, ``edge_index [2, E]`` (source -> target),
          ``edge_weight_in [E]`` (:math:`A^{in}_{target, source}`),
          ``edge_weight_out [E]`` (:math:`A^{out}_{source, target}`)
        - output: node states ``[N, d]``
    """

    def __init__(self, channels: int, steps: int = 1) -> None:
        super().__init__(aggr="add")
        self.channels = channels
        self.steps = steps
        self.lin_in = nn.Linear(channels, channels)
        self.lin_out = nn.Linear(channels, channels)
        self.bias_in = nn.Parameter(torch.empty(channels))
        self.bias_out = nn.Parameter(torch.empty(channels))
        self.gru = nn.GRUCell(2 * channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the reference code draws every parameter from U(-1/sqrt(d), 1/sqrt(d))
        bound = 1.0 / math.sqrt(self.channels)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_weight_in: Tensor, edge_weight_out: Tensor
    ) -> Tensor:
        reverse = edge_index.flip(0)  # target -> source: carries the outgoing direction
        for _ in range(self.steps):
            # a_in[i] = sum over edges j->i of A_in(i, j) (W_in h_j + b_in)
            a_in = self.propagate(edge_index, x=self.lin_in(h), edge_weight=edge_weight_in)
            # a_out[i] = sum over edges i->j of A_out(i, j) (W_out h_j + b_out)
            a_out = self.propagate(reverse, x=self.lin_out(h), edge_weight=edge_weight_out)
            a = torch.cat([a_in + self.bias_in, a_out + self.bias_out], dim=-1)  # [N, 2d]
            h = self.gru(a, h)
        return h

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.unsqueeze(-1) * x_j

    def inference_weights(self) -> GatedConvWeights:
        """The weights of the equations above, as float32 numpy arrays (copies)."""
        with torch.no_grad():
            return GatedConvWeights(
                w_in=_float32_array(self.lin_in.weight),
                b_in=_float32_array(self.lin_in.bias),
                w_out=_float32_array(self.lin_out.weight),
                b_out=_float32_array(self.lin_out.bias),
                bias_in=_float32_array(self.bias_in),
                bias_out=_float32_array(self.bias_out),
                w_ih=_float32_array(self.gru.weight_ih),
                b_ih=_float32_array(self.gru.bias_ih),
                w_hh=_float32_array(self.gru.weight_hh),
                b_hh=_float32_array(self.gru.bias_hh),
            )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, steps={self.steps})"


def _float32_array(t: Tensor) -> np.ndarray:
    """A float32 numpy copy of ``t``, on the CPU, detached from the module."""
    return t.detach().to(device="cpu", dtype=torch.float32, copy=True).numpy()
