"""The gated session-graph propagation of SR-GNN, as a PyG ``MessagePassing`` operator."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

__all__ = ["GatedSessionGraphConv"]


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

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, steps={self.steps})"
