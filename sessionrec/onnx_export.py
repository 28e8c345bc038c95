"""A trained SR-GNN -> one ONNX graph: raw item ids in, top-k raw item ids out.

The graph holds the whole inference path, so a service needs the file and onnxruntime,
nothing else (the contract, with examples, is ``export/README.md``):

1. raw ids -> item indices with an ``ai.onnx.ml`` ``LabelEncoder``; ids that are not in
   the vocabulary (and the padding id: ``-1`` for int64 ids, ``""`` for string ids) map
   to ``-1`` and are dropped;
2. every row is compacted and **right-aligned**: its known clicks keep their order and the
   last ``max_session_length`` of them fill the last columns of a ``[B, W]`` index matrix,
   ``W = min(L, max_session_length)`` (longer sessions lose their oldest clicks);
3. the SR-GNN graph of every row, as dense per-session matrices over the ``W`` click
   positions (``W`` is small, so ``[B, W, W]`` tensors are cheaper than sparse ops).
   With ``P[i, j] = 1`` when positions ``i`` and ``j`` hold the same item, the number of
   transitions from the item at ``i`` to the item at ``j`` is

   .. math::

       C = P_{:-1}^\\top P_{1:} \\qquad (C[i, j] = \\textstyle\\sum_c P[c, i] P[c+1, j])

   ``A = min(C, 1)`` (binary edges) or ``A = C`` (counts). A node (a distinct item) is
   represented by its first position ``f_j`` (``f_j = 1`` for the first occurrence), so
   sums over nodes are sums over positions weighted by ``f``:

   .. math::

       A^{in}_{ij} = \\frac{f_j A_{ji}}{\\sum_u f_u A_{ui}} \\qquad
       A^{out}_{ij} = \\frac{f_j A_{ij}}{\\sum_v f_v A_{iv}}

   Every position of an item gets its node's row, so repeated clicks carry identical
   states, exactly as :func:`sessionrec.graph.graph_arrays` and the readout over click
   positions (repeats included) of :class:`sessionrec.nn.srgnn.SRGNN`;
4. gated propagation, attention readout, scores against the whole item table;
5. a content model's items without training clicks get its ``new_item_offset`` added;
   the session's own items get the model's ``repeat_bonus`` added (once each), then,
   optionally (input ``exclude_seen``), score ``-inf``;
6. ``TopK`` with ``k`` clamped to ``[0, n_items]`` (ties: lower item index first);
7. sessions without any known item get the popularity fallback, ``fallback = true``: the
   first ``k`` items of the training popularity ranking, scored with their share of the
   training clicks (chosen on the ``[B, k]`` top-k, so it costs nothing per call);
8. indices back to raw ids: a ``Gather`` from the id table (the inverse of the
   LabelEncoder, exact for both id kinds, with no hash lookup).

The file is built op by op with :mod:`onnx.helper` (no tracing: every op is chosen for
the latency of one session per call) and checked with :func:`onnx.checker.check_model`.
Optimisation, in two places:

- at export, onnxruntime's offline optimiser at the *basic* level (the level whose output
  holds standard ONNX ops only, so the file stays portable to any onnxruntime: Python,
  Node.js, Java, C++, any execution provider). Constant folding is left off so that the
  reduced item tables stay reduced in the file; the graph is built with its constants
  already folded, so the pass is a guard rather than a rewrite;
- at load, onnxruntime's full optimisation (``ORT_ENABLE_ALL``: fusions and layouts for
  the CPU at hand; the default of every onnxruntime binding, set explicitly by
  :class:`sessionrec.recommender.SessionRecommender` and the clients in ``export/``).

Item tables:

- ``fp32``: the reference;
- ``fp16``: half the file size; converted to fp32 once when the session loads (onnxruntime
  folds the ``Cast``), so the speed is that of ``fp32``;
- ``int8``: a quarter of the file size and of the memory read per call; each item row is
  quantised symmetrically with its own scale (``e_j ~ s_j q_j``), the session vector per
  call with one scale per session, and scores are computed with ``MatMulInteger``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sessionrec import __version__
from sessionrec.artifacts import commit_files
from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.train import DEFAULT_MAX_SESSION_LENGTH, inference_max_length

__all__ = [
    "CONTRACT",
    "DEFAULT_MAX_SESSION_LENGTH",
    "DEFAULT_OPSET",
    "ItemTableDtype",
    "build_onnx_model",
    "export_onnx",
    "onnx_metadata",
]

CONTRACT = "sessionrec.onnx/1"
DEFAULT_OPSET = 18  # ScatterElements with reduction="min"/"max" needs 18
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder with int64 and string keys
IR_VERSION = 8  # the IR of opset 18: loadable by onnxruntime >= 1.14
INPUT_IDS, INPUT_K, INPUT_EXCLUDE = "item_ids", "k", "exclude_seen"
OUTPUT_IDS, OUTPUT_SCORES, OUTPUT_FALLBACK = "top_ids", "top_scores", "fallback"
PAD_INT, PAD_STR = -1, ""

ItemTableDtype = Literal["fp32", "fp16", "int8"]
_INT64_MAX = np.iinfo(np.int64).max


class _Graph:
    """Tiny builder: ``op()`` appends a node and returns its output name(s)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def const(self, value: Any, name: str | None = None, dtype: Any = None) -> str:
        """An initializer; small unnamed constants are shared."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        if name is None:
            key = (array.dtype.str, array.tobytes(), array.shape)
            if array.dtype != object and key in self._consts:
                return self._consts[key]
            name = self._fresh("const")
            if array.dtype != object:
                self._consts[key] = name
        else:
            name = self._fresh(name)
        if array.dtype == object:  # strings
            tensor = helper.make_tensor(
                name, TensorProto.STRING, array.shape, [s.encode() for s in array.ravel()]
            )
        else:
            tensor = numpy_helper.from_array(array, name)
        self.initializers.append(tensor)
        return name

    def op(
        self,
        op_type: str,
        *inputs: str,
        outputs: int = 1,
        name: str | None = None,
        domain: str = "",
        out_name: str | None = None,
        **attrs: Any,
    ) -> Any:
        base = name or op_type.lower()
        if out_name is not None:  # a graph output: its name is part of the contract
            self._names.add(out_name)
            outs = [out_name]
        else:
            outs = [self._fresh(base if outputs == 1 else f"{base}_{i}") for i in range(outputs)]
        node_name = self._fresh(f"{base}_node")
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=node_name, domain=domain, **attrs)
        )
        return outs[0] if outputs == 1 else outs


def _weights(model: Any) -> dict[str, np.ndarray]:
    """Every parameter the graph needs, as float32 numpy arrays."""
    import torch

    def np32(t: Any) -> np.ndarray:
        return t.detach().to(torch.float32).cpu().numpy()

    was_training = model.training
    model.eval()  # no dropout, and content models keep every item's id part
    with torch.no_grad():
        conv = model.conv
        w = {
            "table": np32(model.item_table()),  # [N, d], unit rows under NISER
            "lin_in_w": np32(conv.lin_in.weight),
            "lin_in_b": np32(conv.lin_in.bias),
            "lin_out_w": np32(conv.lin_out.weight),
            "lin_out_b": np32(conv.lin_out.bias),
            "bias_in": np32(conv.bias_in),
            "bias_out": np32(conv.bias_out),
            "w_ih": np32(conv.gru.weight_ih),
            "b_ih": np32(conv.gru.bias_ih),
            "w_hh": np32(conv.gru.weight_hh),
            "b_hh": np32(conv.gru.bias_hh),
            "w_last": np32(model.lin_last.weight),
            "b_last": np32(model.lin_last.bias),
            "w_node": np32(model.lin_node.weight),
            "b_node": np32(model.lin_node.bias),
            "q": np32(model.attn.weight),
            "w_out": np32(model.lin_out.weight),
            "b_out": np32(model.lin_out.bias),
        }
        if model.position is not None:
            w["position"] = np32(model.position.weight)
    model.train(was_training)
    return w


def _quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: ``table[j] ~ scale[j] * q[j]``, ``|q| <= 127``."""
    peak = np.abs(table).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def build_onnx_model(
    trained: Any,
    *,
    opset: int = DEFAULT_OPSET,
    item_table_dtype: ItemTableDtype = "fp32",
    max_session_length: int | None = None,
) -> onnx.ModelProto:
    """The inference graph of ``trained`` (a :class:`sessionrec.train.TrainedModel`),
    before onnxruntime's optimisation. See the module docstring for the computation."""
    if opset < DEFAULT_OPSET:
        raise ConfigError(
            f"opset must be >= {DEFAULT_OPSET} (ScatterElements reductions), got {opset}"
        )
    if item_table_dtype not in ("fp32", "fp16", "int8"):
        raise ConfigError(
            f"item_table_dtype must be 'fp32', 'fp16' or 'int8', got {item_table_dtype!r}"
        )
    max_len = _max_session_length(trained, max_session_length)
    model = trained.model
    cfg = model.config
    vocab = trained.vocab
    n, d = cfg.n_items, cfg.dim
    if len(vocab) != n:
        raise ArtifactError(f"vocabulary has {len(vocab)} items, the model {n}")
    kind = vocab.kind
    pad = PAD_INT if kind == "int" else PAD_STR
    if pad in vocab:
        raise ConfigError(
            f"item id {pad!r} is in the vocabulary, but the ONNX contract reserves it as "
            "the padding id; map it to another id before training"
        )
    w = _weights(model)
    counts = np.asarray(trained.item_counts, dtype=np.float64)
    if counts.shape != (n,):
        raise ArtifactError(f"item_counts has shape {counts.shape}, expected ({n},)")
    total = counts.sum()
    popularity = (counts / total if total > 0 else counts).astype(np.float32)

    g = _Graph()
    c = g.const
    i64 = np.int64
    one, zero = c([1], dtype=i64), c([0], dtype=i64)
    axis1 = c([1], dtype=i64)

    # -- 1. raw ids -> indices, unknown and padding -> -1 ------------------------------
    if kind == "int":
        encoder_keys = {"keys_int64s": vocab.ids.tolist()}
        id_type = TensorProto.INT64
    else:
        encoder_keys = {"keys_strings": [s.encode() for s in vocab.ids.tolist()]}
        id_type = TensorProto.STRING
    raw_index = g.op(
        "LabelEncoder",
        INPUT_IDS,
        name="item_index",
        domain="ai.onnx.ml",
        values_int64s=list(range(n)),
        default_int64=-1,
        **encoder_keys,
    )  # [B, L]

    # -- 2. compact and right-align the known clicks, keep the last W ------------------
    length = g.op("Shape", raw_index, start=1, end=2)  # [1] = L
    width = g.op("Max", g.op("Min", length, c([max_len], dtype=i64)), one)  # [1] = W
    known = g.op("GreaterOrEqual", raw_index, c(0, dtype=i64))  # [B, L]
    known_i = g.op("Cast", known, to=TensorProto.INT64)
    rank = g.op("CumSum", known_i, c(1, dtype=i64))  # [B, L] 1-based rank of a known click
    n_known = g.op("ReduceSum", known_i, axis1, keepdims=1)  # [B, 1]
    from_end = g.op("Sub", n_known, rank)  # [B, L] 0 for the last known click
    keep = g.op("And", known, g.op("Less", from_end, width))
    column = g.op("Sub", g.op("Sub", width, one), from_end)
    target = g.op("Where", keep, column, width)  # dropped clicks go to a spare column W
    batch = g.op("Shape", raw_index, start=0, end=1)  # [1] = B
    grid_shape = g.op("Concat", batch, g.op("Add", width, one), axis=0)
    empty = g.op("Expand", c(-1, dtype=i64), grid_shape)  # [B, W + 1]
    grid = g.op("ScatterElements", empty, target, raw_index, axis=1, reduction="max")
    x = g.op("Slice", grid, zero, width, axis1, name="x")  # [B, W] item index or -1
    mask = g.op("GreaterOrEqual", x, c(0, dtype=i64))  # [B, W]
    mask_f = g.op("Cast", mask, to=TensorProto.FLOAT)
    fallback = g.op(
        "Equal", g.op("Squeeze", n_known, axis1), c(0, dtype=i64), out_name=OUTPUT_FALLBACK
    )  # [B]
    x_safe = g.op("Max", x, c(0, dtype=i64))  # pads read item 0; masked out below

    # -- item table -------------------------------------------------------------------
    table = w["table"]  # [N, d]
    if item_table_dtype == "int8":
        q_table, row_scale = _quantize_rows(table)
        table_t = c(np.ascontiguousarray(q_table.T), "item_table_int8_t")  # [d, N]
        scale = c(row_scale, "item_scale")  # [N]
        rows = g.op("Cast", g.op("Gather", table_t, x_safe, axis=1), to=TensorProto.FLOAT)
        h = g.op(
            "Mul",
            g.op("Transpose", rows, perm=[1, 2, 0]),
            g.op("Unsqueeze", g.op("Gather", scale, x_safe), c([2], dtype=i64)),
        )
    else:
        if item_table_dtype == "fp16":
            table_t = g.op(
                "Cast",
                c(np.ascontiguousarray(table.T).astype(np.float16), "item_table_fp16_t"),
                to=TensorProto.FLOAT,
            )
        else:
            table_t = c(np.ascontiguousarray(table.T), "item_table_t")  # [d, N]
        h = g.op("Transpose", g.op("Gather", table_t, x_safe, axis=1), perm=[1, 2, 0])
    # h: [B, W, d] embeddings of the click positions

    # -- 3. the session graph: dense [B, W, W] connection matrices ---------------------
    same = g.op("Equal", g.op("Unsqueeze", x, c([2], dtype=i64)), g.op("Unsqueeze", x, axis1))
    same = g.op("And", same, g.op("Unsqueeze", mask, c([2], dtype=i64)))  # P, pads excluded
    same_f = g.op("Cast", same, to=TensorProto.FLOAT)  # [B, W, W]
    before = g.op("Slice", same_f, zero, c([-1], dtype=i64), axis1)  # P[:-1]
    after = g.op("Slice", same_f, one, c([_INT64_MAX], dtype=i64), axis1)  # P[1:]
    transitions = g.op("MatMul", g.op("Transpose", before, perm=[0, 2, 1]), after)  # C
    adjacency = (
        g.op("Min", transitions, c(1.0, dtype=np.float32))
        if cfg.edge_weights == "binary"
        else transitions
    )
    positions = g.op("Range", c(0, dtype=i64), g.op("Squeeze", width), c(1, dtype=i64))  # [W]
    first_of_item = g.op("ArgMax", same_f, axis=1, keepdims=0)  # [B, W]
    is_first = g.op("And", g.op("Equal", first_of_item, positions), mask)
    first_row = g.op("Unsqueeze", g.op("Cast", is_first, to=TensorProto.FLOAT), axis1)  # [B,1,W]

    def row_normalised(m: str, name: str) -> str:
        m = g.op("Mul", m, first_row)
        degree = g.op("ReduceSum", m, c([2], dtype=i64), keepdims=1)  # [B, W, 1]
        return g.op("Div", m, g.op("Max", degree, c(1.0, dtype=np.float32)), name=name)

    a_out = row_normalised(adjacency, "a_out")  # [B, W, W]
    a_in = row_normalised(g.op("Transpose", adjacency, perm=[0, 2, 1]), "a_in")

    # -- 4. gated propagation (GRUCell, gates r, z, n as in torch) ---------------------
    # one product of h with [W_in^T | W_out^T | W_hh^T]: [d, 5d]
    w_h = np.concatenate([w["lin_in_w"].T, w["lin_out_w"].T, w["w_hh"].T], axis=1)
    b_h = np.concatenate([w["lin_in_b"], w["lin_out_b"], w["b_hh"]])
    w_h_name, b_h_name = c(w_h, "gnn_w_h"), c(b_h, "gnn_b_h")
    w_ih, b_ih = c(np.ascontiguousarray(w["w_ih"].T), "gru_w_ih"), c(w["b_ih"], "gru_b_ih")
    b_agg = c(np.concatenate([w["bias_in"], w["bias_out"]]), "gnn_bias_agg")
    split_d = c([d, d, 3 * d], dtype=i64)
    split_gates = c([2 * d, d], dtype=i64)
    for _ in range(cfg.steps):
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

    # -- readout: alpha_i = q^T sigmoid(W_1 v_n + c + W_2 v_i + b_2 [+ p_i]) -----------
    w_att = c(np.concatenate([w["w_node"].T, w["w_last"].T], axis=1), "readout_w")  # [d, 2d]
    keys_last = g.op("MatMul", h, w_att)  # [B, W, 2d]
    keys, last_proj = g.op("Split", keys_last, axis=2, outputs=2, num_outputs=2)
    last_proj = g.op("Slice", last_proj, c([-1], dtype=i64), c([_INT64_MAX], dtype=i64), axis1)
    key_bias = w["b_node"] + w["b_last"]  # [d]
    if "position" in w:
        # right-aligned rows: column W-1-t is t clicks before the last one; the constant
        # holds the reversed position rows of a full-width row, sliced to the last W
        max_pos = w["position"].shape[0]
        reverse = np.minimum(np.arange(max_len - 1, -1, -1), max_pos - 1)
        by_column = c(w["position"][reverse] + key_bias, "readout_position_bias")  # [L_max, d]
        key_bias_name = g.op(
            "Slice",
            by_column,
            g.op("Sub", c([max_len], dtype=i64), width),
            c([max_len], dtype=i64),
            zero,
        )  # [W, d]
    else:
        key_bias_name = c(key_bias, "readout_bias")
    attention = g.op("Sigmoid", g.op("Add", g.op("Add", keys, last_proj), key_bias_name))
    alpha = g.op("MatMul", attention, c(np.ascontiguousarray(w["q"].T), "readout_q"))  # [B,W,1]
    alpha = g.op("Mul", alpha, g.op("Unsqueeze", mask_f, c([2], dtype=i64)))
    s_g = g.op("MatMul", g.op("Transpose", alpha, perm=[0, 2, 1]), h)  # [B, 1, d]
    last = g.op("Slice", h, c([-1], dtype=i64), c([_INT64_MAX], dtype=i64), axis1)  # [B, 1, d]
    s_h = g.op(
        "Add",
        g.op(
            "MatMul",
            g.op("Concat", s_g, last, axis=2),
            c(np.ascontiguousarray(w["w_out"].T), "readout_w_out"),
        ),
        c(w["b_out"], "readout_b_out"),
    )
    s_h = g.op("Squeeze", s_h, axis1, name="session_embedding")  # [B, d]
    if cfg.normalize:
        norm = g.op("ReduceL2", s_h, axis1, keepdims=1)  # [B, 1]
        factor = g.op(
            "Div",
            c(float(cfg.temperature), dtype=np.float32),
            g.op("Max", norm, c(1e-12, dtype=np.float32)),
        )
        s_h = g.op("Mul", s_h, factor)  # sigma * s_h / ||s_h||

    # -- scores over the whole catalog [B, N] ----------------------------------------
    if item_table_dtype == "int8":
        peak = g.op("ReduceMax", g.op("Abs", s_h), axis1, keepdims=1)  # [B, 1]
        s_scale = g.op(
            "Div", g.op("Max", peak, c(1e-30, dtype=np.float32)), c(127.0, dtype=np.float32)
        )
        # uint8 with zero point 128: onnxruntime's fast kernels are u8 x s8
        q_s = g.op(
            "Cast",
            g.op("Add", g.op("Round", g.op("Div", s_h, s_scale)), c(128.0, dtype=np.float32)),
            to=TensorProto.UINT8,
        )
        dots = g.op("MatMulInteger", q_s, table_t, c(np.uint8(128)))
        dots = g.op("Cast", dots, to=TensorProto.FLOAT)
        scores = g.op("Mul", g.op("Mul", dots, scale), s_scale)
    else:
        scores = g.op("MatMul", s_h, table_t)

    # -- 5a. new-item offset: + b at the items without training clicks ----------------
    if cfg.new_item_offset != 0.0 and cfg.content is not None:
        offset = (model.cold_mask.cpu().numpy() * cfg.new_item_offset).astype(np.float32)
        scores = g.op("Add", scores, c(offset, "new_item_offset"))  # [B, N] + [N]

    # -- 5b. repeat bonus: + beta at the session's items, once each (max of the same
    # value for an item clicked twice; pads give -inf, which max ignores) ------------
    if cfg.repeat_bonus != 0.0:
        boosted = g.op(
            "Add",
            g.op("GatherElements", scores, x_safe, axis=1),
            c(float(cfg.repeat_bonus), dtype=np.float32),
        )  # [B, W]
        boosted = g.op("Where", mask, boosted, c(-np.inf, dtype=np.float32))
        scores = g.op("ScatterElements", scores, x_safe, boosted, axis=1, reduction="max")

    # -- 5. exclude the session's items: min(score, -inf) at their indices ------------
    hide = g.op("And", mask, INPUT_EXCLUDE)  # [B, W]
    updates = g.op("Where", hide, c(-np.inf, dtype=np.float32), c(np.inf, dtype=np.float32))
    scores = g.op("ScatterElements", scores, x_safe, updates, axis=1, reduction="min")

    # -- 6. top k (ties: lower index first), clamped to [0, N] ------------------------
    k = g.op("Min", g.op("Max", INPUT_K, zero), c([n], dtype=i64))  # [1]
    model_scores, model_index = g.op(
        "TopK", scores, k, axis=1, largest=1, sorted=1, outputs=2, name="top"
    )  # [B, K]

    # -- 7. popularity fallback for sessions without a known item: the first K of the
    # static popularity ranking (selected on [B, K], never on the [B, N] scores) --------
    pop_order = np.lexsort((np.arange(n), -popularity))  # most clicked first, ties by index
    fallback_col = g.op("Unsqueeze", fallback, axis1)  # [B, 1]
    pop_index = g.op("Unsqueeze", g.op("Slice", c(pop_order, "popularity_order"), zero, k), zero)
    pop_scores = g.op(
        "Unsqueeze", g.op("Slice", c(popularity[pop_order], "popularity_sorted"), zero, k), zero
    )  # [1, K]
    top_index = g.op("Where", fallback_col, pop_index, model_index)
    g.op("Where", fallback_col, pop_scores, model_scores, out_name=OUTPUT_SCORES)

    # -- 8. indices -> raw ids (a Gather from the id table: the inverse LabelEncoder) ---
    ids_table = c(vocab.ids if kind == "str" else vocab.ids.astype(np.int64), "item_ids_table")
    g.op("Gather", ids_table, top_index, axis=0, out_name=OUTPUT_IDS)

    inputs = [
        helper.make_tensor_value_info(INPUT_IDS, id_type, ["batch", "length"]),
        helper.make_tensor_value_info(INPUT_K, TensorProto.INT64, [1]),
        helper.make_tensor_value_info(INPUT_EXCLUDE, TensorProto.BOOL, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info(OUTPUT_IDS, id_type, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_SCORES, TensorProto.FLOAT, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_FALLBACK, TensorProto.BOOL, ["batch"]),
    ]
    graph = helper.make_graph(
        g.nodes,
        "sessionrec_srgnn",
        inputs,
        outputs,
        g.initializers,
        doc_string=f"sessionrec SR-GNN next-item model; contract {CONTRACT} (export/README.md)",
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="sessionrec",
        producer_version=__version__,
        ir_version=IR_VERSION,
    )
    _set_metadata(onnx_model, _metadata(trained, opset, item_table_dtype, max_len))
    return onnx_model


def _max_session_length(trained: Any, value: int | None) -> int:
    if value is None:
        value = inference_max_length(trained.train_config)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"max_session_length must be an integer >= 1, got {value!r}")
    return int(value)


def _metadata(trained: Any, opset: int, dtype: str, max_len: int) -> dict[str, str]:
    cfg = trained.model.config
    return {
        "contract": CONTRACT,
        "sessionrec_version": __version__,
        "opset": str(opset),
        "n_items": str(cfg.n_items),
        "dim": str(cfg.dim),
        "data_fingerprint": trained.data_fingerprint or "",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "id_kind": trained.vocab.kind,
        "pad_id": json.dumps(PAD_INT if trained.vocab.kind == "int" else PAD_STR),
        "max_session_length": str(max_len),
        "item_table_dtype": dtype,
        "fallback": "popularity",
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def _set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _optimize(model: onnx.ModelProto, out_path: Path) -> onnx.ModelProto:
    """onnxruntime's offline optimiser at the portable *basic* level.

    Constant folding stays off so that the fp16 and int8 tables stay reduced in the file
    (every other constant of the graph is already folded by construction).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(out_path)
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    ort.InferenceSession(
        model.SerializeToString(),
        so,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["ConstantFolding"],
    )
    optimized = onnx.load(str(out_path))
    # onnxruntime declares every domain it knows; keep those the graph uses
    used = {node.domain for node in optimized.graph.node} | {""}
    kept = [op for op in optimized.opset_import if op.domain in used]
    del optimized.opset_import[:]
    optimized.opset_import.extend(kept)
    _set_metadata(optimized, {p.key: p.value for p in model.metadata_props})
    optimized.producer_name, optimized.producer_version = "sessionrec", __version__
    return optimized


def export_onnx(
    model: Any,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    item_table_dtype: ItemTableDtype = "fp32",
    max_session_length: int | None = None,
    optimize: bool = True,
) -> Path:
    """Export a trained model to one ONNX file (contract: ``export/README.md``).

    Args:
        model: a model directory (``sessionrec train --out``) or a
            :class:`sessionrec.train.TrainedModel`.
        out_path: the ``.onnx`` file. Its SHA-256 goes into the ``manifest.json`` of its
            directory (added to a model directory's), crash-safely
            (:func:`sessionrec.artifacts.commit_files`): an interrupted export leaves a
            previous file and manifest intact.
        opset: ONNX opset of the default domain (>= 18).
        item_table_dtype: ``"fp32"`` (reference), ``"fp16"`` or ``"int8"`` (see the module
            docstring for what each trades).
        max_session_length: sessions are cut to their last this-many known clicks
            (default: the training ``max_session_length``, else 50).
        optimize: pass the graph through onnxruntime's basic offline optimisation.

    Returns:
        The path written.
    """
    if isinstance(model, (str, os.PathLike)):
        from sessionrec.train import load_model

        model = load_model(model)
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a directory; give a file name such as model.onnx")
    onnx_model = build_onnx_model(
        model,
        opset=opset,
        item_table_dtype=item_table_dtype,
        max_session_length=max_session_length,
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if optimize:
        tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
        try:
            onnx_model = _optimize(onnx_model, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        onnx.checker.check_model(onnx_model)
    commit_files(
        out_path.parent, {out_path.name: lambda path: onnx.save(onnx_model, str(path))}, CONTRACT
    )
    return out_path


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (without loading its weights)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
