"""SR-GNN: item table, gated propagation, attention readout, scores over every item."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from sessionrec.errors import ConfigError
from sessionrec.nn.content import CatalogFeatures, ContentEncoder, ItemRepresentation
from sessionrec.nn.gated_session_conv import GatedConvWeights, GatedSessionGraphConv

__all__ = ["SRGNNConfig", "SRGNN", "SRGNNWeights", "l2_normalize"]

_CONTENT_KEYS = ("cardinalities", "text_buckets", "n_numeric", "vector_dims")


class _L2Normalize(torch.autograd.Function):
    """Row-wise ``y = x / ||x||`` with a fused backward.

    ``dx = (dy - y * <dy, y>) / ||x||``: three passes over the ``[n_items, d]`` table
    instead of the dozen that autograd makes of ``F.normalize``, which dominated NISER
    training steps.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        inv_norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min_(1e-12).reciprocal_()
        y = x * inv_norm
        ctx.save_for_backward(y, inv_norm)
        return y

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> Tensor:
        y, inv_norm = ctx.saved_tensors
        dot = (dy * y).sum(dim=-1, keepdim=True)  # [n, 1]
        return torch.addcmul(dy, y, dot, value=-1.0).mul_(inv_norm)


def l2_normalize(x: Tensor) -> Tensor:
    """Row-wise L2 normalisation (``F.normalize(x, dim=-1)``), with a cheaper backward."""
    return _L2Normalize.apply(x)


@dataclass(frozen=True)
class SRGNNConfig:
    r"""Architecture of an :class:`SRGNN`. The defaults are the paper's model.

    Attributes:
        n_items: catalogue size (rows of the item table).
        dim: embedding and hidden size ``d``.
        steps: gated propagation steps.
        edge_weights: ``"binary"`` (authors' code) or ``"count"``; see :mod:`sessionrec.graph`.
        normalize: NISER (Gupta et al., 2019): L2-normalise item embeddings and the
            session embedding and scale the cosine scores by ``temperature``. Helps
            long-tail items and calibrates the softmax.
        temperature: the NISER scale ``sigma`` (used only with ``normalize``).
        dropout: dropout on the item embeddings fed to the graph (training only).
        position_readout: add a learned reverse-position embedding (distance from the
            last click, as in GCE-GNN) to the attention keys of the readout.
        max_positions: positions beyond this share the last position embedding.
        content: ``None`` for an id-only item table; else the sizes of the
            :class:`~sessionrec.nn.content.ContentEncoder` (keys ``cardinalities``,
            ``text_buckets``, ``n_numeric``, ``vector_dims``; see
            :func:`sessionrec.train.with_catalog`): item vectors are then
            :class:`~sessionrec.nn.content.ItemRepresentation`'s
            :math:`\delta_i e_i + W c_i`.
        id_dropout: with ``content``, the probability of dropping an item's id part in
            a training step (DropoutNet), so that content-only vectors (items without
            clicks) score like trained ones. Default 0.03: a dropped step is one a rarely
            clicked item's id part does not learn from, and the long tail pays for it
            (README, cold-start study).
        id_init: with ``content``, the id table's start: ``"zeros"`` (default: items
            start from their content alone, and an id part holds only what the clicks
            added to it) or ``"uniform"`` (as SR-GNN's item table).
        content_scale: with ``content``, the content projection starts at this multiple
            of its default initialisation. Small values let the id parts dominate early
            training (ids fit clicked items better; content is the prior).
        cold_negatives: with ``content``, keep the items without training clicks in the
            training softmax. ``False`` (default) masks them out of it: as negatives of
            every step and positives of none, their content-only vectors would learn that
            new items are never clicked (measured on the synthetic data with 10 % items
            held out: cold HR@20 3 % with them, 40-75 % without).
        repeat_bonus: :math:`\beta`, added at evaluation to the logit of every item
            already in the session (once per item): repeat-aware scoring. Chosen on
            validation after training (``TrainConfig.repeat_bonus_grid``); training
            itself never uses it.
        new_item_offset: :math:`b`, with ``content``, added at evaluation to the logit of
            every item without training clicks (content-only vectors): how often new
            items are recommended, calibrated. Chosen on validation after training
            (``TrainConfig.new_item_offset_grid``) when the validation sessions click
            such items; negative values favour the clicked catalog (and its long tail),
            positive ones new items. Training never uses it.
        id_impute: with ``content``, what stands in for a missing id part (an item
            without clicks, or a dropped one in training): ``"zero"`` or ``"mean"`` (the
            mean id embedding of the items with clicks; see
            :class:`~sessionrec.nn.content.ItemRepresentation`).
    """

    n_items: int
    dim: int = 100
    steps: int = 1
    edge_weights: Literal["binary", "count"] = "binary"
    normalize: bool = False
    temperature: float = 16.0
    dropout: float = 0.0
    position_readout: bool = False
    max_positions: int = 50
    content: dict[str, Any] | None = None
    id_dropout: float = 0.03
    id_init: Literal["zeros", "uniform"] = "zeros"
    content_scale: float = 0.3
    cold_negatives: bool = False
    id_impute: Literal["zero", "mean"] = "zero"
    repeat_bonus: float = 0.0
    new_item_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ConfigError(f"n_items must be >= 1, got {self.n_items}")
        if self.dim < 1 or self.steps < 1:
            raise ConfigError(f"dim and steps must be >= 1, got {self.dim}, {self.steps}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"dropout must be in [0, 1), got {self.dropout}", options=("SRGNNConfig.dropout",)
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(
                f"temperature must be a finite number > 0, got {self.temperature}",
                options=("SRGNNConfig.temperature",),
            )
        if not (math.isfinite(self.content_scale) and self.content_scale >= 0):
            raise ConfigError(
                f"content_scale must be a finite number >= 0, got {self.content_scale}",
                options=("SRGNNConfig.content_scale",),
            )
        if self.max_positions < 1:
            raise ConfigError(
                f"max_positions must be >= 1, got {self.max_positions}",
                options=("SRGNNConfig.max_positions",),
            )
        if self.edge_weights not in ("binary", "count"):
            raise ConfigError(
                f"edge_weights must be 'binary' or 'count', got {self.edge_weights!r}"
            )
        for name in ("repeat_bonus", "new_item_offset"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)}")
        if not 0.0 <= self.id_dropout <= 1.0:
            raise ConfigError(f"id_dropout must be in [0, 1], got {self.id_dropout}")
        if self.id_impute not in ("zero", "mean"):
            raise ConfigError(f"id_impute must be 'zero' or 'mean', got {self.id_impute!r}")
        if self.content is not None:
            unknown = set(self.content) - set(_CONTENT_KEYS)
            if unknown:
                raise ConfigError(
                    f"unknown content keys {sorted(unknown)}; known: {list(_CONTENT_KEYS)}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SRGNNConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown SR-GNN config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True, eq=False)
class SRGNNWeights:
    r"""Everything an :class:`SRGNN` computes with at inference, as numpy arrays (float32
    copies, detached from the model; :meth:`SRGNN.inference_weights`), so that an
    exporter (:mod:`sessionrec.onnx_export`) reads no attribute of the model.

    In the terms of :class:`SRGNN`'s equations, with ``d = config.dim`` and
    ``n = config.n_items``; matrices are ``[out, in]`` (:class:`torch.nn.Linear`'s
    ``weight``), so :math:`\mathbf{W}_1 \mathbf{v}_n + \mathbf{c}` is ``v_n @ w_1.T + c``.

    Attributes:
        item_table: :math:`\mathbf{e}` ``[n, d]``, the item vectors as scored against
            (:meth:`SRGNN.item_table` in evaluation mode: unit rows under NISER, a
            content model's :math:`\delta_j \mathbf{e}^{id}_j + \mathbf{W}\mathbf{c}_j`
            with :math:`\delta_j = 0` exactly for the items of ``cold_mask``); the node
            states of a session graph start as its rows.
        conv: the gated propagation's weights (:class:`GatedConvWeights`).
        w_1: :math:`\mathbf{W}_1` ``[d, d]``, applied to the last click's state
            :math:`\mathbf{v}_n`.
        c: :math:`\mathbf{c}` ``[d]``, the bias of :math:`\mathbf{W}_1`.
        w_2: :math:`\mathbf{W}_2` ``[d, d]``, applied to every click's state
            :math:`\mathbf{v}_i`.
        b_2: ``[d]``, the bias of :math:`\mathbf{W}_2` (added next to :math:`\mathbf{c}`).
        q: :math:`\mathbf{q}` ``[d]``: :math:`\alpha_i = \mathbf{q}^\top \sigma(\cdot)`.
        w_3: :math:`\mathbf{W}_3` ``[d, 2d]``, applied to
            :math:`[\mathbf{s}_g ; \mathbf{s}_l]` (columns ``:d`` to :math:`\mathbf{s}_g`).
        b_3: ``[d]``, the bias of :math:`\mathbf{W}_3`.
        position: ``[max_positions, d]`` with ``position_readout``, else ``None``: row
            ``t`` is added to the attention key of the click ``t`` clicks before the last
            one (clicks further back share the last row).
        cold_mask: bool ``[n]``, ``True`` for the items without training clicks (the
            content-only vectors, which ``new_item_offset`` applies to); ``None`` for an
            id-only model.
    """

    item_table: np.ndarray
    conv: GatedConvWeights
    w_1: np.ndarray
    c: np.ndarray
    w_2: np.ndarray
    b_2: np.ndarray
    q: np.ndarray
    w_3: np.ndarray
    b_3: np.ndarray
    position: np.ndarray | None
    cold_mask: np.ndarray | None


class SRGNN(nn.Module):
    r"""Session-based Recommendation with Graph Neural Networks (Wu et al., AAAI 2019).

    For a session graph with node states :math:`\mathbf{v}` after
    :class:`GatedSessionGraphConv`, clicks :math:`1..n` and :math:`\mathbf{v}_n` the node
    of the last click:

    .. math::

        \mathbf{s}_l &= \mathbf{v}_n \qquad
        \alpha_i = \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{v}_n
                   + \mathbf{W}_2 \mathbf{v}_i + \mathbf{c}) \qquad
        \mathbf{s}_g = \sum_{i=1}^{n} \alpha_i \mathbf{v}_i \\
        \mathbf{s}_h &= \mathbf{W}_3 [\mathbf{s}_g ; \mathbf{s}_l] \qquad
        \hat{z}_j = \mathbf{s}_h^\top \mathbf{e}_j \quad \text{for every item } j

    (the sum runs over click positions, repeats included, as in the authors' code; the
    attention weights are not softmax-normalised, as in the paper). With ``normalize``
    (NISER) the scores are :math:`\sigma \cos(\mathbf{s}_h, \mathbf{e}_j)`.

    With ``config.content`` the item table is not a free embedding but
    :math:`\mathbf{e}_j = \delta_j \mathbf{e}^{id}_j + \mathbf{W}\mathbf{c}_j`
    (:class:`~sessionrec.nn.content.ItemRepresentation` over
    :class:`~sessionrec.nn.content.ContentEncoder`); the catalog's feature tensors and
    the mask of items without training clicks are buffers set by :meth:`set_catalog`
    and saved with the weights.

    Shapes:
        - :meth:`session_embedding`: a :class:`~torch_geometric.data.Batch` of ``B``
          session graphs (:func:`sessionrec.graph.session_graph_batch`) -> ``[B, d]``
        - :meth:`scores`: ``[B, d]`` -> ``[B, n_items]``
    """

    def __init__(self, config: SRGNNConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.embedding: nn.Embedding | None = None
        self.content_encoder: ContentEncoder | None = None
        self.item_repr: ItemRepresentation | None = None
        self.catalog: CatalogFeatures | None = None
        if config.content is None:
            self.embedding = nn.Embedding(config.n_items, d)
        else:
            self.content_encoder = ContentEncoder(d, **config.content)
            self.item_repr = ItemRepresentation(
                config.n_items,
                d,
                d,
                config.id_dropout,
                config.id_init,
                config.content_scale,
                config.id_impute,
            )
            self.catalog = CatalogFeatures()
            # items without training clicks: content-only vectors (delta = 0)
            self.register_buffer("cold_mask", torch.zeros(config.n_items, dtype=torch.bool))
        self.conv = GatedSessionGraphConv(d, config.steps)
        self.lin_last = nn.Linear(d, d)  # W_1, c
        self.lin_node = nn.Linear(d, d)  # W_2
        self.attn = nn.Linear(d, 1, bias=False)  # q
        self.lin_out = nn.Linear(2 * d, d)  # W_3
        self.position = nn.Embedding(config.max_positions, d) if config.position_readout else None
        self.sparse_gradients = False  # set_sparse_gradients
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.config.dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if self.content_encoder is not None and self.item_repr is not None:
            self.content_encoder.reset_parameters()
            self.item_repr.reset_parameters()  # id parts start at 0: content initialises

    def set_catalog(self, features: dict[str, Tensor], cold_mask: Tensor) -> None:
        """Give a content model its item features and its items without training clicks.

        Args:
            features: :func:`~sessionrec.nn.content.catalog_tensors` of the catalog
                aligned to the model's items (``n_items`` rows).
            cold_mask: bool ``[n_items]``, ``True`` for items without training clicks.
        """
        if self.catalog is None:
            raise ConfigError("set_catalog: this SR-GNN is id-only (config.content is None)")
        n = self.config.n_items
        rows = {k: v.shape[0] for k, v in features.items() if not k.startswith("text_")}
        if any(r != n for r in rows.values()) or cold_mask.shape != (n,):
            raise ConfigError(
                f"set_catalog: the model has {n} items, the features {rows}, the cold mask "
                f"{tuple(cold_mask.shape)}; align the catalog to the model's vocabulary"
            )
        self.catalog.set(features)
        self.cold_mask.copy_(cold_mask.to(torch.bool))

    def item_table(self) -> Tensor:
        """``[n_items, d]`` item embeddings as used for scoring (normalised under NISER)."""
        if self.embedding is not None:
            weight = self.embedding.weight
        else:
            assert self.content_encoder is not None and self.item_repr is not None
            assert self.catalog is not None
            content = self.content_encoder(self.catalog.features())  # [n_items, d]
            weight = self.item_repr(content, self.cold_mask)
        return l2_normalize(weight) if self.config.normalize else weight

    def item_rows(self, index: Tensor) -> Tensor:
        """``[len(index), d]``: the rows ``index`` of :meth:`item_table`, computed for those
        items alone, so that the cost does not grow with the catalog (sampled softmax).

        A content model encodes the content of those items only; its id dropout draws a
        mask for those rows, and ``id_impute="mean"`` takes the mean id part over those
        of the rows that have clicks (an estimate of :meth:`item_table`'s mean over all
        of them). With :meth:`set_sparse_gradients`, the gradients of the id table and
        of the content tables are sparse: they touch these rows only.
        """
        if self.embedding is not None:
            weight = F.embedding(index, self.embedding.weight, sparse=self.sparse_gradients)
        else:
            assert self.content_encoder is not None and self.item_repr is not None
            assert self.catalog is not None
            content = self.content_encoder(self.catalog.rows(index))  # [R, d]
            weight = self.item_repr.rows(
                content, index, self.cold_mask[index], sparse=self.sparse_gradients
            )
        return l2_normalize(weight) if self.config.normalize else weight

    def item_block(self, start: int, stop: int) -> Tensor:
        """``[stop - start, d]``: the rows ``start .. stop - 1`` of :meth:`item_table`,
        computed for those items alone (evaluation of a catalog too large to hold its
        normalised table: the rows are made block by block)."""
        if self.embedding is not None:
            weight = self.embedding.weight[start:stop]
            return l2_normalize(weight) if self.config.normalize else weight
        index = torch.arange(start, stop, device=self.cold_mask.device)
        return self.item_rows(index)

    def set_sparse_gradients(self, sparse: bool) -> None:
        """Make :meth:`item_rows` give sparse gradients to the item tables (the id table,
        a content model's category and text tables): an optimiser then updates only the
        rows a step used (:class:`~sessionrec.train.optim.LazyAdam`)."""
        self.sparse_gradients = sparse
        if self.content_encoder is not None:
            for table in (*self.content_encoder.categorical, *self.content_encoder.text):
                table.sparse = sparse

    def item_table_parameters(self) -> list[nn.Parameter]:
        """The parameters with one row per item, category or text bucket (the tables
        :meth:`set_sparse_gradients` makes sparse); the rest are dense."""
        if self.embedding is not None:
            return [self.embedding.weight]
        assert self.content_encoder is not None and self.item_repr is not None
        tables = (*self.content_encoder.categorical, *self.content_encoder.text)
        return [self.item_repr.id_embedding.weight, *(t.weight for t in tables)]

    def session_embedding(
        self,
        graph: Batch,
        item_table: Tensor | None = None,
        node_vectors: Tensor | None = None,
    ) -> Tensor:
        """``s_h [B, d]`` for a batch of session graphs (unit norm under NISER).

        The node vectors are ``item_table[graph.x]`` (``[N_nodes, d]``), or
        ``node_vectors`` when given (rows from :meth:`item_rows`).
        """
        cfg = self.config
        if node_vectors is None:
            table = self.item_table() if item_table is None else item_table
            h = table[graph.x]  # [N_nodes, d]
        else:
            h = node_vectors
        if cfg.dropout > 0:
            h = F.dropout(h, cfg.dropout, self.training)
        h = self.conv(h, graph.edge_index, graph.edge_weight_in, graph.edge_weight_out)
        v = h[graph.alias]  # [N_clicks, d] state of the node of every click
        click_batch = graph.click_batch
        last = h[graph.last_node]  # [B, d]
        key = self.lin_node(v)
        if self.position is not None:
            # distance from the session's last click: 0 for the last click
            ends = graph.click_ptr[1:] - 1
            reverse_pos = (ends[click_batch] - torch.arange(len(v), device=v.device)).clamp_(
                max=cfg.max_positions - 1
            )
            key = key + self.position(reverse_pos)
        alpha = self.attn(torch.sigmoid(self.lin_last(last)[click_batch] + key))  # [N_clicks, 1]
        s_g = torch.zeros_like(last).index_add_(0, click_batch, alpha * v)  # [B, d]
        s_h = self.lin_out(torch.cat([s_g, last], dim=-1))
        return l2_normalize(s_h) if cfg.normalize else s_h

    def scores(self, s_h: Tensor, item_table: Tensor | None = None) -> Tensor:
        """``[B, n_items]`` logits ``s_h e_j`` (``sigma cos`` under NISER).

        In training mode, a content model without ``cold_negatives`` gives the items
        without training clicks ``-inf``: they are left out of the softmax.
        """
        table = self.item_table() if item_table is None else item_table
        if self.config.normalize:
            s_h = s_h * self.config.temperature  # [B, d]: cheaper than scaling [B, n_items]
        logits = s_h @ table.T
        if self.training and self.catalog is not None and not self.config.cold_negatives:
            logits = logits.masked_fill(self.cold_mask, float("-inf"))
        return logits

    def candidate_logits(self, s_h: Tensor, rows: Tensor) -> Tensor:
        """``[B, C]`` logits of ``B`` sessions against ``C`` candidate item vectors ``rows``
        (from :meth:`item_rows`): :meth:`scores` restricted to those items, with no mask
        (a sampled softmax chooses its candidates itself)."""
        if self.config.normalize:
            s_h = s_h * self.config.temperature
        return s_h @ rows.T

    def add_repeat_bonus(
        self, logits: Tensor, graph: Batch, beta: float | None = None, start: int = 0
    ) -> Tensor:
        r"""``logits [B, n]`` plus :math:`\beta` (``config.repeat_bonus``, or ``beta``) at
        the items of each session, in evaluation mode: :math:`z_{bi} + \beta\,[i \in
        S_b]`. The graph's nodes are the session's distinct items, so each gets it once.

        ``logits`` may be a block of the items ``start .. start + n - 1`` (evaluation in
        item chunks); a block is changed in place, the whole catalog's scores are copied.
        """
        beta = self.config.repeat_bonus if beta is None else beta
        if beta == 0.0 or self.training:
            return logits
        bonus = torch.full(graph.x.shape, beta, dtype=logits.dtype, device=logits.device)
        if start == 0 and logits.shape[1] == self.config.n_items:
            return logits.index_put((graph.batch, graph.x), bonus, accumulate=True)
        inside = (graph.x >= start) & (graph.x < start + logits.shape[1])
        index = (graph.batch[inside], graph.x[inside] - start)
        return logits.index_put_(index, bonus[inside], accumulate=True)

    def add_new_item_offset(
        self, logits: Tensor, offset: float | None = None, start: int = 0
    ) -> Tensor:
        r"""``logits [B, n]`` plus :math:`b` (``config.new_item_offset``, or ``offset``)
        at every item without training clicks, in evaluation mode:
        :math:`z_{bi} + b\,[i \text{ new}]` (a content model's ``cold_mask``). A block of
        the items ``start .. start + n - 1`` is changed in place."""
        offset = self.config.new_item_offset if offset is None else offset
        if offset == 0.0 or self.training or self.catalog is None:
            return logits
        if start == 0 and logits.shape[1] == self.config.n_items:
            return logits + offset * self.cold_mask.to(logits.dtype)  # [B, n] + [n]
        new = self.cold_mask[start : start + logits.shape[1]].to(logits.dtype)
        return logits.add_(offset * new)

    def adjust(
        self,
        logits: Tensor,
        graph: Batch,
        beta: float | None = None,
        offset: float | None = None,
        start: int = 0,
    ) -> Tensor:
        """The evaluation-time terms on raw ``logits`` (all items, or a block of them
        from ``start``): the new-item offset, then the repeat bonus (the config's values
        unless given)."""
        logits = self.add_new_item_offset(logits, offset, start)
        return self.add_repeat_bonus(logits, graph, beta, start)

    def inference_weights(self) -> SRGNNWeights:
        """The weights of the equations above as numpy arrays (:class:`SRGNNWeights`),
        computed in evaluation mode (no dropout; a content model keeps every clicked
        item's id part); the training mode is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                table = self.item_table()  # a new tensor, but the bare id table itself
                is_parameter = self.embedding is not None and not self.config.normalize
                return SRGNNWeights(
                    item_table=_numpy32(table, copy=is_parameter),
                    conv=self.conv.inference_weights(),
                    w_1=_numpy32(self.lin_last.weight),
                    c=_numpy32(self.lin_last.bias),
                    w_2=_numpy32(self.lin_node.weight),
                    b_2=_numpy32(self.lin_node.bias),
                    q=_numpy32(self.attn.weight[0]),
                    w_3=_numpy32(self.lin_out.weight),
                    b_3=_numpy32(self.lin_out.bias),
                    position=(None if self.position is None else _numpy32(self.position.weight)),
                    cold_mask=(
                        None if self.catalog is None else self.cold_mask.cpu().numpy().copy()
                    ),
                )
        finally:
            self.train(was_training)

    def forward(self, graph: Batch) -> Tensor:
        """Logits over every item, ``[B, n_items]`` (in evaluation with the new-item
        offset and the repeat bonus)."""
        table = self.item_table()  # once per step: normalising it is not free
        logits = self.scores(self.session_embedding(graph, table), table)
        return self.adjust(logits, graph)


def _numpy32(t: Tensor, copy: bool = True) -> np.ndarray:
    """A float32 numpy copy of ``t``, on the CPU, detached from the module (``copy=False``:
    ``t``'s own memory when it is a float32 CPU tensor made for this call, such as a
    normalised item table: at millions of items a copy costs gigabytes)."""
    return t.detach().to(device="cpu", dtype=torch.float32, copy=copy).numpy()
