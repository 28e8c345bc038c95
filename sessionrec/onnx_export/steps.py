"""The steps of the inference graph, one function each, numbered as in
:mod:`sessionrec.onnx_export.graph` (which has the equations and composes them into the
exact graph); :mod:`sessionrec.onnx_export.stages` composes the same steps into the two
graphs of two-stage serving. Each step appends its nodes to a
:class:`~sessionrec.onnx_export.builder.GraphBuilder` and returns the names of the
tensors it made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from onnx import TensorProto

from sessionrec.onnx_export.builder import GraphBuilder
from sessionrec.onnx_export.contract import (
    INPUT_EXCLUDE,
    INPUT_IDS,
    INPUT_K,
    OUTPUT_FALLBACK,
    OUTPUT_IDS,
    OUTPUT_SCORES,
    OUTPUT_UNKNOWN,
    PAD_INT,
    PAD_STR,
    ItemTableDtype,
)

if TYPE_CHECKING:
    from sessionrec.data.vocab import ItemVocab
    from sessionrec.nn.gated_session_conv import GatedConvWeights
    from sessionrec.nn.srgnn import SRGNNConfig, SRGNNWeights

__all__ = [
    "Clicks",
    "ItemTable",
    "catalog_scores",
    "exclude_seen",
    "gated_propagation",
    "ids_back",
    "item_indices",
    "item_rows",
    "new_item_offset_and_repeat_bonus",
    "popularity_ranking",
    "quantize_rows",
    "readout",
    "right_aligned_clicks",
    "session_graph",
    "top_k_or_popular",
]

_INT64_MAX = np.iinfo(np.int64).max
_I64 = np.int64
_F32 = np.float32
_QUANTIZE_ROWS = 1 << 18  # rows quantised at a time: bounded temporaries


@dataclass(frozen=True)
class Clicks:
    """The right-aligned clicks (step 2), as names of the graph's tensors."""

    x: str  # [B, W] int64 item index, -1 at empty columns
    x_safe: str  # [B, W] x with -1 -> 0: empty columns read item 0 and are masked out
    mask: str  # [B, W] bool, True at a click
    mask_f: str  # [B, W] float, 1.0 at a click
    width: str  # [1] int64, W
    fallback: str  # [B] bool, the output: no known click


@dataclass(frozen=True)
class ItemTable:
    """The item table in the graph (step 3), as the scores (step 7) read it."""

    dtype: ItemTableDtype
    table: str  # fp32, fp16: [N, d] float (fp16 cast once at load); int8: [d, N] int8
    row_scale: str | None  # int8: [N] float, e_j ~ row_scale[j] * table[:, j]


def item_indices(g: GraphBuilder, vocab: ItemVocab) -> str:
    """Step 1: raw ids -> item indices ``[B, L]``: unknown ids -> -1, the padding id ->
    -2 (export refuses a vocabulary holding it). Writes the output ``unknown_clicks
    [B]`` (int64): the number of -1 in each row."""
    n = len(vocab)
    if vocab.kind == "int":
        encoder_keys = {"keys_int64s": [*vocab.ids.tolist(), PAD_INT]}
    else:
        encoder_keys = {"keys_strings": [s.encode() for s in [*vocab.ids.tolist(), PAD_STR]]}
    raw_index = g.op(
        "LabelEncoder",
        INPUT_IDS,
        name="item_index",
        domain="ai.onnx.ml",
        values_int64s=[*range(n), -2],
        default_int64=-1,
        **encoder_keys,
    )  # [B, L]
    unknown = g.op("Cast", g.op("Equal", raw_index, g.const(-1, dtype=_I64)), to=TensorProto.INT64)
    g.op("ReduceSum", unknown, g.const([1], dtype=_I64), keepdims=0, out_name=OUTPUT_UNKNOWN)
    return raw_index


def right_aligned_clicks(g: GraphBuilder, raw_index: str, max_len: int) -> Clicks:
    """Step 2: compact and right-align the known clicks of ``raw_index [B, L]``, keep the
    last ``W = max(min(L, max_len), 1)`` of them: ``x [B, W]``, -1 where a row has fewer.

    A known click of rank ``r`` (1-based) among a row's ``n`` known clicks goes to column
    ``W - 1 - (n - r)``; the others to a spare column ``W``, sliced off.
    """
    c = g.const
    # the graph's first constants, shared by every later step: [1] (also axis 1), [0]
    one, zero = c([1], dtype=_I64), c([0], dtype=_I64)
    axis1 = one
    length = g.op("Shape", raw_index, start=1, end=2)  # [1] = L
    width = g.op("Max", g.op("Min", length, c([max_len], dtype=_I64)), one)  # [1] = W
    known = g.op("GreaterOrEqual", raw_index, c(0, dtype=_I64))  # [B, L]
    known_i = g.op("Cast", known, to=TensorProto.INT64)
    rank = g.op("CumSum", known_i, c(1, dtype=_I64))  # [B, L] 1-based rank of a known click
    n_known = g.op("ReduceSum", known_i, axis1, keepdims=1)  # [B, 1]
    from_end = g.op("Sub", n_known, rank)  # [B, L] 0 for the last known click
    keep = g.op("And", known, g.op("Less", from_end, width))
    column = g.op("Sub", g.op("Sub", width, one), from_end)
    target = g.op("Where", keep, column, width)  # dropped clicks go to a spare column W
    batch = g.op("Shape", raw_index, start=0, end=1)  # [1] = B
    grid_shape = g.op("Concat", batch, g.op("Add", width, one), axis=0)
    empty = g.op("Expand", c(-1, dtype=_I64), grid_shape)  # [B, W + 1]
    grid = g.op("ScatterElements", empty, target, raw_index, axis=1, reduction="max")
    x = g.op("Slice", grid, zero, width, axis1, name="x")  # [B, W] item index or -1
    mask = g.op("GreaterOrEqual", x, c(0, dtype=_I64))  # [B, W]
    mask_f = g.op("Cast", mask, to=TensorProto.FLOAT)
    fallback = g.op(
        "Equal", g.op("Squeeze", n_known, axis1), c(0, dtype=_I64), out_name=OUTPUT_FALLBACK
    )  # [B]
    x_safe = g.op("Max", x, c(0, dtype=_I64))  # pads read item 0; masked out below
    return Clicks(x, x_safe, mask, mask_f, width, fallback)


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``table[j] ~ scale[j] * q[j]``, ``|q| <= 127`` (computed
    in blocks of rows, so the temporaries stay small at any catalog size)."""
    q = np.empty(table.shape, dtype=np.int8)
    scale = np.empty(table.shape[0], dtype=np.float32)
    for start in range(0, table.shape[0], _QUANTIZE_ROWS):
        rows = table[start : start + _QUANTIZE_ROWS]
        peak = np.abs(rows).max(axis=1)
        block_scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q[start : start + len(rows)] = np.clip(np.rint(rows / block_scale[:, None]), -127, 127)
        scale[start : start + len(rows)] = block_scale
    return q, scale


def item_rows(
    g: GraphBuilder, table: np.ndarray, x_safe: str, dtype: ItemTableDtype
) -> tuple[str, ItemTable]:
    """Step 3: the item table ``[N, d]`` as a ``dtype`` constant, and ``h [B, W, d]``,
    the embeddings of the click positions: ``h[b, i] = e_{x[b, i]}`` (``s_j q_j`` under
    int8).

    fp32 and fp16 tables are stored as they are, ``[N, d]`` (row ``j`` is item ``j``:
    a gather reads one contiguous row per click, and the two-stage graphs share the
    rows); the int8 table is stored transposed, ``[d, N]``, as ``MatMulInteger`` reads it.
    """
    c = g.const
    if dtype == "int8":
        q_table, row_scale = quantize_rows(table)
        table_t = c(q_table.T, "item_table_int8_t")  # [d, N] (a view: not copied)
        scale = c(row_scale, "item_scale")  # [N]
        rows = g.op("Cast", g.op("Gather", table_t, x_safe, axis=1), to=TensorProto.FLOAT)
        h = g.op(
            "Mul",
            g.op("Transpose", rows, perm=[1, 2, 0]),
            g.op("Unsqueeze", g.op("Gather", scale, x_safe), c([2], dtype=_I64)),
        )
        return h, ItemTable(dtype, table_t, scale)
    if dtype == "fp16":
        stored = g.op("Cast", c(table.astype(np.float16), "item_table_fp16"), to=TensorProto.FLOAT)
    else:
        stored = c(table, "item_table")  # [N, d]
    h = g.op("Gather", stored, x_safe, axis=0)  # [B, W, d]
    return h, ItemTable(dtype, stored, None)


def session_graph(g: GraphBuilder, clicks: Clicks, edge_weights: str) -> tuple[str, str]:
    r"""Step 4: the session graph as dense ``[B, W, W]`` connection matrices
    ``(a_in, a_out)`` over click positions (module docstring, step 4):

    .. math::

        C = P_{:-1}^\top P_{1:} = P^\top \begin{bmatrix} P_{1:} \\ 0 \end{bmatrix} \qquad
        A^{in}_{ij} = \frac{f_j A_{ji}}{\sum_u f_u A_{ui}} \qquad
        A^{out}_{ij} = \frac{f_j A_{ij}}{\sum_v f_v A_{iv}}

    with ``A = min(C, 1)`` for ``edge_weights="binary"``, ``A = C`` for ``"count"``.
    """
    c = g.const
    x, mask, width = clicks.x, clicks.mask, clicks.width
    one = axis1 = c([1], dtype=_I64)
    same = g.op("Equal", g.op("Unsqueeze", x, c([2], dtype=_I64)), g.op("Unsqueeze", x, axis1))
    same = g.op("And", same, g.op("Unsqueeze", mask, c([2], dtype=_I64)))  # P, pads excluded
    same_f = g.op("Cast", same, to=TensorProto.FLOAT)  # [B, W, W]
    # C = P^T P' with P' = P[1:] and a zero last row, which equals P[:-1]^T P[1:] with
    # no empty tensor: with one column (W = 1) P[:-1] would be [B, 0, W], and
    # onnxruntime 1.30's FusedMatMul (the Node.js client's) leaves a product over an
    # empty axis uninitialised instead of zero (NaN scores for one-click sessions)
    padded = g.op("Pad", same_f, c([0, 0, 0, 0, 1, 0], dtype=_I64))  # [B, W + 1, W]
    after = g.op("Slice", padded, one, c([_INT64_MAX], dtype=_I64), axis1)  # P', [B, W, W]
    transitions = g.op("MatMul", g.op("Transpose", same_f, perm=[0, 2, 1]), after)  # C
    adjacency = (
        g.op("Min", transitions, c(1.0, dtype=_F32)) if edge_weights == "binary" else transitions
    )
    positions = g.op("Range", c(0, dtype=_I64), g.op("Squeeze", width), c(1, dtype=_I64))  # [W]
    first_of_item = g.op("ArgMax", same_f, axis=1, keepdims=0)  # [B, W]
    is_first = g.op("And", g.op("Equal", first_of_item, positions), mask)
    first_row = g.op("Unsqueeze", g.op("Cast", is_first, to=TensorProto.FLOAT), axis1)  # [B,1,W]
    a_out = _row_normalised(g, adjacency, first_row, "a_out")  # [B, W, W]
    a_in = _row_normalised(g, g.op("Transpose", adjacency, perm=[0, 2, 1]), first_row, "a_in")
    return a_in, a_out


def _row_normalised(g: GraphBuilder, m: str, first_row: str, name: str) -> str:
    """``m [B, W, W]`` with its columns weighted by ``f`` (``first_row [B, 1, W]``) and
    its rows divided by their sums (rows summing to 0 are left at 0)."""
    m = g.op("Mul", m, first_row)
    degree = g.op("ReduceSum", m, g.const([2], dtype=_I64), keepdims=1)  # [B, W, 1]
    return g.op("Div", m, g.op("Max", degree, g.const(1.0, dtype=_F32)), name=name)


def gated_propagation(
    g: GraphBuilder, h: str, a_in: str, a_out: str, w: GatedConvWeights, steps: int
) -> str:
    r"""Step 5: ``steps`` rounds of gated propagation (GRUCell, gates r, z, n as in
    torch) of ``h [B, W, d]``, in the equations of
    :class:`~sessionrec.nn.gated_session_conv.GatedSessionGraphConv`:

    .. math::

        \mathbf{a} = [A^{in} (\mathbf{h} W_{in}^\top + b_{in}) + b'_{in} ;
                      A^{out} (\mathbf{h} W_{out}^\top + b_{out}) + b'_{out}]
        \qquad \mathbf{h} \leftarrow \mathrm{GRUCell}(\mathbf{a}, \mathbf{h})

    Returns the node states of the click positions, ``[B, W, d]``.
    """
    c = g.const
    d = w.w_in.shape[0]
    # one product of h with [W_in^T | W_out^T | W_hh^T]: [d, 5d]
    w_h = np.concatenate([w.w_in.T, w.w_out.T, w.w_hh.T], axis=1)
    b_h = np.concatenate([w.b_in, w.b_out, w.b_hh])
    w_h_name, b_h_name = c(w_h, "gnn_w_h"), c(b_h, "gnn_b_h")
    w_ih, b_ih = c(np.ascontiguousarray(w.w_ih.T), "gru_w_ih"), c(w.b_ih, "gru_b_ih")
    b_agg = c(np.concatenate([w.bias_in, w.bias_out]), "gnn_bias_agg")
    split_d = c([d, d, 3 * d], dtype=_I64)
    split_gates = c([2 * d, d], dtype=_I64)
    for _ in range(steps):
        h_lin = g.op("Add", g.op("MatMul", h, w_h_name), b_h_name)  # [B, W, 5d]
        h_in, h_out, gate_h = g.op("Split", h_lin, split_d, axis=2, outputs=3)
        agg = g.op("Concat", g.op("MatMul", a_in, h_in), g.op("MatMul", a_out, h_out), axis=2)
        gate_i = g.op("Add", g.op("MatMul", g.op("Add", agg, b_agg), w_ih), b_ih)  # [B, W, 3d]
        i_rz, i_n = g.op("Split", gate_i, split_gates, axis=2, outputs=2)
        h_rz, h_n = g.op("Split", gate_h, split_gates, axis=2, outputs=2)
        r, z = g.op(
            "Split", g.op("Sigmoid", g.op("Add", i_rz, h_rz)), axis=2, outputs=2, num_outputs=2
        )
        cand = g.op("Tanh", g.op("Add", i_n, g.op("Mul", r, h_n)))
        h = g.op("Add", cand, g.op("Mul", z, g.op("Sub", h, cand)))  # (1 - z) n + z h
    return h


def readout(
    g: GraphBuilder, h: str, clicks: Clicks, w: SRGNNWeights, cfg: SRGNNConfig, max_len: int
) -> str:
    r"""Step 6: the attention readout of the node states ``h [B, W, d]``, the session
    embedding ``s_h [B, d]`` (of :class:`~sessionrec.nn.srgnn.SRGNN`):

    .. math::

        \alpha_i = \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{v}_n + \mathbf{c}
                   + \mathbf{W}_2 \mathbf{v}_i + \mathbf{b}_2 [+ \mathbf{p}_i]) \qquad
        \mathbf{s}_g = \sum_i \alpha_i \mathbf{v}_i \qquad
        \mathbf{s}_h = \mathbf{W}_3 [\mathbf{s}_g ; \mathbf{v}_n] + \mathbf{b}_3

    (:math:`\alpha_i = 0` at empty columns), then under NISER
    :math:`\sigma \mathbf{s}_h / \lVert \mathbf{s}_h \rVert` (``temperature`` scales
    the session vector rather than the ``[B, N]`` scores).
    """
    c = g.const
    one, zero = c([1], dtype=_I64), c([0], dtype=_I64)
    axis1 = one
    # -- alpha_i = q^T sigmoid(W_1 v_n + c + W_2 v_i + b_2 [+ p_i]) ----------------------
    w_att = c(np.concatenate([w.w_2.T, w.w_1.T], axis=1), "readout_w")  # [d, 2d]
    keys_last = g.op("MatMul", h, w_att)  # [B, W, 2d]
    keys, last_proj = g.op("Split", keys_last, axis=2, outputs=2, num_outputs=2)
    last_proj = g.op("Slice", last_proj, c([-1], dtype=_I64), c([_INT64_MAX], dtype=_I64), axis1)
    key_bias = w.b_2 + w.c  # [d]
    if w.position is not None:
        # right-aligned rows: column W-1-t is t clicks before the last one; the constant
        # holds the reversed position rows of a full-width row, sliced to the last W
        max_pos = w.position.shape[0]
        reverse = np.minimum(np.arange(max_len - 1, -1, -1), max_pos - 1)
        by_column = c(w.position[reverse] + key_bias, "readout_position_bias")  # [L_max, d]
        key_bias_name = g.op(
            "Slice",
            by_column,
            g.op("Sub", c([max_len], dtype=_I64), clicks.width),
            c([max_len], dtype=_I64),
            zero,
        )  # [W, d]
    else:
        key_bias_name = c(key_bias, "readout_bias")
    attention = g.op("Sigmoid", g.op("Add", g.op("Add", keys, last_proj), key_bias_name))
    alpha = g.op("MatMul", attention, c(np.ascontiguousarray(w.q[:, None]), "readout_q"))
    alpha = g.op("Mul", alpha, g.op("Unsqueeze", clicks.mask_f, c([2], dtype=_I64)))  # [B,W,1]
    s_g = g.op("MatMul", g.op("Transpose", alpha, perm=[0, 2, 1]), h)  # [B, 1, d]
    last = g.op("Slice", h, c([-1], dtype=_I64), c([_INT64_MAX], dtype=_I64), axis1)  # [B,1,d]
    s_h = g.op(
        "Add",
        g.op(
            "MatMul",
            g.op("Concat", s_g, last, axis=2),
            c(np.ascontiguousarray(w.w_3.T), "readout_w_out"),
        ),
        c(w.b_3, "readout_b_out"),
    )
    s_h = g.op("Squeeze", s_h, axis1, name="session_embedding")  # [B, d]
    if cfg.normalize:
        norm = g.op("ReduceL2", s_h, axis1, keepdims=1)  # [B, 1]
        factor = g.op(
            "Div",
            c(float(cfg.temperature), dtype=_F32),
            g.op("Max", norm, c(1e-12, dtype=_F32)),
        )
        s_h = g.op("Mul", s_h, factor)  # sigma * s_h / ||s_h||
    return s_h


def catalog_scores(g: GraphBuilder, s_h: str, table: ItemTable) -> str:
    """Step 7: scores over the whole catalog, ``s_h e^T`` (``Gemm`` with the ``[N, d]``
    table transposed: onnxruntime packs it once at load): ``[B, N]``.

    int8: the session vector is quantised per call with one scale per session,
    ``s_h ~ s_b (u - 128)`` with ``u`` uint8, so ``score_bj ~ s_b s_j (u_b . q_j)``
    (``MatMulInteger``).
    """
    c = g.const
    if table.row_scale is None:
        return g.op("Gemm", s_h, table.table, transB=1)
    axis1 = c([1], dtype=_I64)
    peak = g.op("ReduceMax", g.op("Abs", s_h), axis1, keepdims=1)  # [B, 1]
    s_scale = g.op("Div", g.op("Max", peak, c(1e-30, dtype=_F32)), c(127.0, dtype=_F32))
    # uint8 with zero point 128: onnxruntime's fast kernels are u8 x s8
    q_s = g.op(
        "Cast",
        g.op("Add", g.op("Round", g.op("Div", s_h, s_scale)), c(128.0, dtype=_F32)),
        to=TensorProto.UINT8,
    )
    dots = g.op("MatMulInteger", q_s, table.table, c(np.uint8(128)))
    dots = g.op("Cast", dots, to=TensorProto.FLOAT)
    return g.op("Mul", g.op("Mul", dots, table.row_scale), s_scale)  # [B, N]


def new_item_offset_and_repeat_bonus(
    g: GraphBuilder,
    scores: str,
    clicks: Clicks,
    cold_mask: np.ndarray | None,
    cfg: SRGNNConfig,
) -> str:
    r"""Step 8: the evaluation-time terms of
    :meth:`~sessionrec.nn.srgnn.SRGNN.adjust` on ``scores [B, N]``:
    :math:`z_{bj} + b\,[j \text{ new}] + \beta\,[j \in S_b]` (``new_item_offset`` ``b``
    at a content model's items without training clicks, then ``repeat_bonus``
    :math:`\beta` at the session's items, once each)."""
    c = g.const
    # -- new-item offset: + b at the items without training clicks ---------------------
    if cfg.new_item_offset != 0.0 and cold_mask is not None:
        offset = (cold_mask * cfg.new_item_offset).astype(np.float32)
        scores = g.op("Add", scores, c(offset, "new_item_offset"))  # [B, N] + [N]

    # -- repeat bonus: + beta at the session's items, once each (max of the same
    # value for an item clicked twice; pads give -inf, which max ignores) -------------
    if cfg.repeat_bonus != 0.0:
        boosted = g.op(
            "Add",
            g.op("GatherElements", scores, clicks.x_safe, axis=1),
            c(float(cfg.repeat_bonus), dtype=_F32),
        )  # [B, W]
        boosted = g.op("Where", clicks.mask, boosted, c(-np.inf, dtype=_F32))
        scores = g.op("ScatterElements", scores, clicks.x_safe, boosted, axis=1, reduction="max")
    return scores


def exclude_seen(g: GraphBuilder, scores: str, clicks: Clicks) -> str:
    """Step 9: where the input ``exclude_seen`` is true, the session's items score
    ``-inf``: ``min(score, -inf)`` at their indices (``min(score, +inf)`` otherwise).
    ``[B, N]``."""
    c = g.const
    hide = g.op("And", clicks.mask, INPUT_EXCLUDE)  # [B, W]
    updates = g.op("Where", hide, c(-np.inf, dtype=_F32), c(np.inf, dtype=_F32))
    return g.op("ScatterElements", scores, clicks.x_safe, updates, axis=1, reduction="min")


def popularity_ranking(popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The items most clicked first (ties: lower index first), ``[N]`` int64, and their
    ``popularity`` (share of the training clicks), ``[N]`` float32."""
    order = np.lexsort((np.arange(len(popularity)), -popularity)).astype(np.int64)
    return order, popularity[order]


def top_k_or_popular(
    g: GraphBuilder,
    scores: str,
    fallback: str,
    popularity: np.ndarray,
    candidates: str | None = None,
) -> str:
    """Step 10: the top ``K`` of ``scores [B, N]`` (ties: lower index first), ``K`` the
    input ``k`` clamped to ``[0, N]``; rows with ``fallback`` get the first ``K`` of the
    static popularity ranking instead, scored with ``popularity`` (their share of the
    training clicks), selected on ``[B, K]``, never on the ``[B, N]`` scores.

    With ``candidates`` (``[B, C]`` item indices in increasing order, the two-stage
    re-scoring), ``scores`` are those of the candidates, ``K`` is clamped to ``[0, C]``
    and the positions the top-k picks are mapped back to item indices (ties: lower
    position, so lower index, first).

    Writes the output ``top_scores [B, K]``; returns the item indices ``[B, K]``.
    """
    c = g.const
    n = len(popularity)
    zero, axis1 = c([0], dtype=_I64), c([1], dtype=_I64)
    # -- top k (ties: lower index first), clamped to [0, N] (or [0, C]) ----------------
    width = c([n], dtype=_I64) if candidates is None else g.op("Shape", candidates, start=1)
    k = g.op("Min", g.op("Max", INPUT_K, zero), width)  # [1]
    model_scores, model_index = g.op(
        "TopK", scores, k, axis=1, largest=1, sorted=1, outputs=2, name="top"
    )  # [B, K]
    if candidates is not None:
        model_index = g.op("GatherElements", candidates, model_index, axis=1)

    # -- popularity fallback for sessions without a known item --------------------------
    pop_order, pop_sorted = popularity_ranking(popularity)
    fallback_col = g.op("Unsqueeze", fallback, axis1)  # [B, 1]
    pop_index = g.op("Unsqueeze", g.op("Slice", c(pop_order, "popularity_order"), zero, k), zero)
    pop_scores = g.op(
        "Unsqueeze", g.op("Slice", c(pop_sorted, "popularity_sorted"), zero, k), zero
    )  # [1, K]
    top_index = g.op("Where", fallback_col, pop_index, model_index)
    g.op("Where", fallback_col, pop_scores, model_scores, out_name=OUTPUT_SCORES)
    return top_index


def ids_back(g: GraphBuilder, top_index: str, vocab: ItemVocab) -> str:
    """Step 11: item indices ``[B, K]`` -> raw ids, the output ``top_ids [B, K]`` (a
    ``Gather`` from the id table: the inverse of the LabelEncoder)."""
    ids = vocab.ids if vocab.kind == "str" else vocab.ids.astype(np.int64)
    ids_table = g.const(ids, "item_ids_table")
    return g.op("Gather", ids_table, top_index, axis=0, out_name=OUTPUT_IDS)
