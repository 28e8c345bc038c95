r"""The two graphs of two-stage serving (:mod:`sessionrec.serving.two_stage`), built from
the steps of the exact graph (:mod:`sessionrec.onnx_export.steps`) over the same item
table, which all three graphs read from one data file
(:mod:`sessionrec.onnx_export.external`):

- the **session graph** (steps 1 to 6): ``item_ids [B, L]`` -> ``session_vector [B, d]``
  (:math:`\mathbf{s}_h`, with NISER's temperature: the exact score of item ``j`` is
  ``session_vector . e_j``), ``session_items [B, W]`` (the item indices of the clicks
  read, right-aligned, ``-1`` where a row has fewer), ``fallback [B]`` and
  ``unknown_clicks [B]``;
- the **re-scoring graph** (steps 7 to 11 on ``C`` candidates instead of the ``N``
  items): ``session_vector``, ``session_items``, ``candidates [B, C]`` (item indices in
  increasing order, ``-1`` after the last), ``k``, ``exclude_seen`` -> ``top_ids``,
  ``top_scores``, ``fallback``, exactly as the exact graph computes them: the candidates'
  rows of the table, the new-item offset, :math:`\max(z, z + \beta)` at the session's
  items (the exact graph's scatter-max), ``-inf`` for excluded and padding candidates,
  the top ``k`` (ties: lower position, so lower index), the popularity fallback and the
  raw ids.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from sessionrec.onnx_export import steps
from sessionrec.onnx_export.builder import GraphBuilder
from sessionrec.onnx_export.contract import (
    INPUT_CANDIDATES,
    INPUT_EXCLUDE,
    INPUT_IDS,
    INPUT_K,
    INPUT_SESSION_ITEMS,
    INPUT_SESSION_VECTOR,
    OUTPUT_FALLBACK,
    OUTPUT_IDS,
    OUTPUT_SCORES,
    OUTPUT_UNKNOWN,
)
from sessionrec.onnx_export.external import ExternalData
from sessionrec.onnx_export.graph import ExportInputs, model_proto

__all__ = ["build_rescore_model", "build_session_model"]

_I64 = np.int64
_F32 = np.float32


def build_session_model(x: ExportInputs, external: ExternalData) -> onnx.ModelProto:
    """The session graph (module docstring) of an fp32 export; its item table is the
    exact graph's, in ``external``. Metadata: the exported model's."""
    w, cfg = x.weights, x.cfg
    g = GraphBuilder(external)
    raw_index = steps.item_indices(g, x.vocab)  # 1: writes unknown_clicks
    clicks = steps.right_aligned_clicks(g, raw_index, x.max_len)  # 2: writes fallback
    h, _ = steps.item_rows(g, w.item_table, clicks.x_safe, "fp32")  # 3
    a_in, a_out = steps.session_graph(g, clicks, cfg.edge_weights)  # 4
    h = steps.gated_propagation(g, h, a_in, a_out, w.conv, cfg.steps)  # 5
    s_h = steps.readout(g, h, clicks, w, cfg, x.max_len)  # 6
    g.op("Identity", s_h, out_name=INPUT_SESSION_VECTOR)
    g.op("Identity", clicks.x, out_name=INPUT_SESSION_ITEMS)
    id_type = TensorProto.INT64 if x.vocab.kind == "int" else TensorProto.STRING
    inputs = [helper.make_tensor_value_info(INPUT_IDS, id_type, ["batch", "length"])]
    outputs = [
        helper.make_tensor_value_info(INPUT_SESSION_VECTOR, TensorProto.FLOAT, ["batch", cfg.dim]),
        helper.make_tensor_value_info(INPUT_SESSION_ITEMS, TensorProto.INT64, ["batch", "width"]),
        helper.make_tensor_value_info(OUTPUT_FALLBACK, TensorProto.BOOL, ["batch"]),
        helper.make_tensor_value_info(OUTPUT_UNKNOWN, TensorProto.INT64, ["batch"]),
    ]
    model = model_proto(g, inputs, outputs, x.opset, "sessionrec_session", "session graph")
    return model


def build_rescore_model(x: ExportInputs, external: ExternalData) -> onnx.ModelProto:
    """The re-scoring graph (module docstring) of an fp32 export; its item table, id
    table and popularity ranking are the exact graph's, in ``external``."""
    w, cfg = x.weights, x.cfg
    g = GraphBuilder(external)
    c = g.const
    axis1, axis2 = c([1], dtype=_I64), c([2], dtype=_I64)
    minus_inf = c(-np.inf, dtype=_F32)
    cand, items = INPUT_CANDIDATES, INPUT_SESSION_ITEMS
    cand_safe = g.op("Max", cand, c(0, dtype=_I64))  # [B, C] padding reads item 0
    table = c(w.item_table, "item_table")  # [N, d], the exact graph's
    rows = g.op("Gather", table, cand_safe, axis=0)  # [B, C, d]
    scores = g.op(
        "MatMul",
        g.op("Unsqueeze", INPUT_SESSION_VECTOR, axis1),  # [B, 1, d]
        g.op("Transpose", rows, perm=[0, 2, 1]),  # [B, d, C]
    )
    scores = g.op("Squeeze", scores, axis1)  # [B, C]
    if cfg.new_item_offset != 0.0 and w.cold_mask is not None:
        offset = c((w.cold_mask * cfg.new_item_offset).astype(_F32), "new_item_offset")
        scores = g.op("Add", scores, g.op("Gather", offset, cand_safe, axis=0))
    item_known = g.op("GreaterOrEqual", items, c(0, dtype=_I64))  # [B, W]
    same = g.op(
        "And",
        g.op("Equal", g.op("Unsqueeze", cand, axis2), g.op("Unsqueeze", items, axis1)),
        g.op("Unsqueeze", item_known, axis1),
    )  # [B, C, W]
    in_session = g.op(
        "Cast",
        g.op("ReduceMax", g.op("Cast", same, to=TensorProto.INT32), axis2, keepdims=0),
        to=TensorProto.BOOL,
    )  # [B, C]
    if cfg.repeat_bonus != 0.0:  # the exact graph's scatter-max: max(z, z + beta)
        bonus = g.op("Add", scores, c(float(cfg.repeat_bonus), dtype=_F32))
        scores = g.op("Where", in_session, g.op("Max", scores, bonus), scores)
    hide = g.op("Or", g.op("And", in_session, INPUT_EXCLUDE), g.op("Less", cand, c(0, dtype=_I64)))
    scores = g.op("Where", hide, minus_inf, scores)
    n_known = g.op("ReduceSum", g.op("Cast", item_known, to=TensorProto.INT64), axis1, keepdims=0)
    fallback = g.op("Equal", n_known, c(0, dtype=_I64), out_name=OUTPUT_FALLBACK)  # [B]
    top_index = steps.top_k_or_popular(g, scores, fallback, x.popularity, candidates=cand)
    steps.ids_back(g, top_index, x.vocab)

    id_type = TensorProto.INT64 if x.vocab.kind == "int" else TensorProto.STRING
    inputs = [
        helper.make_tensor_value_info(INPUT_SESSION_VECTOR, TensorProto.FLOAT, ["batch", cfg.dim]),
        helper.make_tensor_value_info(INPUT_SESSION_ITEMS, TensorProto.INT64, ["batch", "width"]),
        helper.make_tensor_value_info(INPUT_CANDIDATES, TensorProto.INT64, ["batch", "candidates"]),
        helper.make_tensor_value_info(INPUT_K, TensorProto.INT64, [1]),
        helper.make_tensor_value_info(INPUT_EXCLUDE, TensorProto.BOOL, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info(OUTPUT_IDS, id_type, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_SCORES, TensorProto.FLOAT, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_FALLBACK, TensorProto.BOOL, ["batch"]),
    ]
    return model_proto(g, inputs, outputs, x.opset, "sessionrec_rescore", "re-scoring graph")
