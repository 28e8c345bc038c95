"""A trained SR-GNN -> one ONNX graph: raw item ids in, top-k raw item ids out.

The graph holds the whole inference path, so a service needs the file and onnxruntime,
nothing else (the contract, with examples, is ``export/README.md``). One function below
builds each step (``B`` sessions of ``L`` clicks; ``N`` items of dimension ``d``):

1. :func:`_item_indices`: raw ids -> item indices with an ``ai.onnx.ml``
   ``LabelEncoder``; ids that are not in the vocabulary map to ``-1``, the padding id
   (``-1`` for int64 ids, ``""`` for string ids) to ``-2``: both are dropped, and the
   output ``unknown_clicks [B]`` counts the ``-1`` of each row;
2. :func:`_right_aligned_clicks`: every row is compacted and **right-aligned**: its known
   clicks keep their order and the last ``max_session_length`` of them fill the last
   columns of a ``[B, W]`` index matrix, ``W = min(L, max_session_length)`` (longer
   sessions lose their oldest clicks);
3. :func:`_item_rows`: the item table's rows of the ``W`` click positions (the table is
   stored as one of the dtypes below);
4. :func:`_session_graph`: the SR-GNN graph of every row, as dense per-session matrices
   over the ``W`` click positions (``W`` is small, so ``[B, W, W]`` tensors are cheaper
   than sparse ops). With ``P[i, j] = 1`` when positions ``i`` and ``j`` hold the same
   item, the number of transitions from the item at ``i`` to the item at ``j`` is

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
5. :func:`_gated_propagation`: the gated propagation of
   :class:`sessionrec.nn.gated_session_conv.GatedSessionGraphConv`;
6. :func:`_readout`: the attention readout, the session embedding ``s_h``;
7. :func:`_scores`: scores against the whole item table;
8. :func:`_new_item_offset_and_repeat_bonus`: a content model's items without training
   clicks get its ``new_item_offset`` added; the session's own items get the model's
   ``repeat_bonus`` added (once each);
9. :func:`_exclude_seen`: then, optionally (input ``exclude_seen``), the session's own
   items score ``-inf``;
10. :func:`_top_k_or_popular`: ``TopK`` with ``k`` clamped to ``[0, n_items]`` (ties:
    lower item index first); sessions without any known item get the popularity
    fallback, ``fallback = true``: the first ``k`` items of the training popularity
    ranking, scored with their share of the training clicks (chosen on the ``[B, k]``
    top-k, so it costs nothing per call);
11. :func:`_ids_back`: indices back to raw ids: a ``Gather`` from the id table (the
    inverse of the LabelEncoder, exact for both id kinds, with no hash lookup).

The graph is built op by op with :mod:`onnx.helper`
(:class:`~sessionrec.onnx_export.builder.GraphBuilder`; no tracing: every op is chosen
for the latency of one session per call; one function per step in
:mod:`sessionrec.onnx_export.steps`) from the model's
:meth:`~sessionrec.nn.srgnn.SRGNN.inference_weights` and its config; the file is written
by :func:`sessionrec.onnx_export.file.export_onnx`, which checks and optimises it.

Item tables:

- ``fp32``: the reference; stored ``[N, d]`` and scored with ``Gemm`` (``transB``), whose
  packed table is the one ``MatMul`` of the ``[d, N]`` table made (same scores, bit for
  bit, and the same speed);
- ``fp16``: half the file size; converted to fp32 once when the session loads (onnxruntime
  folds the ``Cast``), so the speed is that of ``fp32``. onnxruntime folds constants of
  at most 1 GiB (``optimization.constant_folding_max_output_size_in_bytes``): a larger
  fp32 table would be converted on every call, so the export refuses fp16 there
  (:data:`FP16_MAX_TABLE_BYTES`);
- ``int8``: a quarter of the file size and of the memory read per call; each item row is
  quantised symmetrically with its own scale (``e_j ~ s_j q_j``), the session vector per
  call with one scale per session, and scores are computed with ``MatMulInteger``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from sessionrec.errors import ArtifactError, ConfigError, NonFiniteError
from sessionrec.onnx_export import steps
from sessionrec.onnx_export.builder import GraphBuilder
from sessionrec.onnx_export.contract import (
    CONTRACT,
    DEFAULT_OPSET,
    INPUT_EXCLUDE,
    INPUT_IDS,
    INPUT_K,
    IR_VERSION,
    ML_OPSET,
    OUTPUT_FALLBACK,
    OUTPUT_IDS,
    OUTPUT_SCORES,
    OUTPUT_UNKNOWN,
    PAD_INT,
    PAD_STR,
    ItemTableDtype,
    file_metadata,
    resolve_max_session_length,
    set_metadata,
)
from sessionrec.onnx_export.external import ExternalData
from sessionrec.version import __version__

if TYPE_CHECKING:
    from sessionrec.data.vocab import ItemVocab
    from sessionrec.nn.srgnn import SRGNNConfig, SRGNNWeights
    from sessionrec.train import TrainedModel

__all__ = [
    "FP16_MAX_TABLE_BYTES",
    "ExportInputs",
    "build_onnx_model",
    "export_inputs",
    "model_proto",
]

#: The largest item table (bytes in fp32) an fp16 export may have: onnxruntime folds the
#: ``Cast`` of a constant only when its output is at most 1 GiB
#: (``optimization.constant_folding_max_output_size_in_bytes``); a larger one would be
#: converted on every call.
FP16_MAX_TABLE_BYTES = 2**30


@dataclass(frozen=True)
class ExportInputs:
    """What the graphs of one export are built from, checked and read once (the item
    table is a 4 N d byte array: the exact graph and the two-stage graphs share it).

    It holds no reference to the model, whose weights (the id table included) can go
    once these are read.

    Attributes:
        file_metadata: the files' ``metadata_props``
            (:func:`~sessionrec.onnx_export.contract.file_metadata`).
        cfg: the model's :class:`~sessionrec.nn.srgnn.SRGNNConfig`.
        vocab: its item vocabulary.
        weights: ``model.inference_weights()``.
        popularity: ``[N]`` float32, each item's share of the training clicks.
        max_len: the last clicks of a session the graphs read.
        dtype: the item table's dtype in the file.
        opset: the ONNX opset of the default domain.
    """

    file_metadata: dict[str, str]
    cfg: SRGNNConfig
    vocab: ItemVocab
    weights: SRGNNWeights
    popularity: np.ndarray
    max_len: int
    dtype: ItemTableDtype
    opset: int

    def metadata(self) -> dict[str, str]:
        """A copy of the file's ``metadata_props``."""
        return dict(self.file_metadata)


def export_inputs(
    trained: TrainedModel,
    *,
    opset: int = DEFAULT_OPSET,
    item_table_dtype: ItemTableDtype = "fp32",
    max_session_length: int | None = None,
) -> ExportInputs:
    """Check the export's arguments against ``trained`` and read its weights once.

    Raises:
        ConfigError: an argument out of range, the padding id in the vocabulary, or an
            fp16 table above :data:`FP16_MAX_TABLE_BYTES`.
        ArtifactError: the model's parts disagree (vocabulary, click counts).
    """
    if opset < DEFAULT_OPSET:
        raise ConfigError(
            f"opset must be >= {DEFAULT_OPSET} (ScatterElements reductions), got {opset}",
            options=("export_onnx.opset",),
        )
    if item_table_dtype not in ("fp32", "fp16", "int8"):
        raise ConfigError(
            f"item_table_dtype must be 'fp32', 'fp16' or 'int8', got {item_table_dtype!r}",
            options=("export_onnx.item_table_dtype",),
        )
    max_len = resolve_max_session_length(trained, max_session_length)
    cfg: SRGNNConfig = trained.model.config
    vocab = trained.vocab
    n = cfg.n_items
    if len(vocab) != n:
        raise ArtifactError(
            f"vocabulary has {len(vocab)} items, the model {n}", options=("export_onnx.model",)
        )
    _check_fp16_size(item_table_dtype, n, cfg.dim)
    pad = PAD_INT if vocab.kind == "int" else PAD_STR
    if pad in vocab:
        raise ConfigError(
            f"item id {pad!r} is in the vocabulary, but the ONNX contract reserves it as "
            "the padding id; map it to another id before training"
        )
    counts = np.asarray(trained.item_counts, dtype=np.float64)
    if counts.shape != (n,):
        raise ArtifactError(
            f"item_counts has shape {counts.shape}, expected ({n},)",
            options=("export_onnx.model",),
        )
    total = counts.sum()
    popularity = (counts / total if total > 0 else counts).astype(np.float32)
    weights = trained.model.inference_weights()
    _check_finite(weights)
    metadata = file_metadata(trained, opset, item_table_dtype, max_len)
    return ExportInputs(metadata, cfg, vocab, weights, popularity, max_len, item_table_dtype, opset)


def _check_finite(weights: Any, path: str = "") -> None:
    """Refuse weights that are not finite: a file of NaN scores would serve nonsense.

    Raises:
        NonFiniteError: naming the first array that holds NaN or infinity.
    """
    for f in dataclasses.fields(weights):
        value = getattr(weights, f.name)
        name = f"{path}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{name}.")
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            import torch

            from sessionrec.train.model_dir import count_non_finite

            bad = count_non_finite(torch.from_numpy(value))  # in blocks: no table-sized mask
            if bad:
                raise NonFiniteError(
                    f"the model's {name} holds {bad:,} NaN or infinite value(s) of "
                    f"{value.size:,}: a diverged training run; train it again (nothing was "
                    "exported)"
                )


def _check_fp16_size(dtype: str, n_items: int, dim: int) -> None:
    fp32_bytes = 4 * n_items * dim
    if dtype == "fp16" and fp32_bytes > FP16_MAX_TABLE_BYTES:
        raise ConfigError(
            f"item_table_dtype='fp16' with {n_items:,} items of dimension {dim}: the table "
            f"is {fp32_bytes / 2**30:.2f} GiB in fp32, and onnxruntime converts an fp16 "
            f"constant once at load only up to {FP16_MAX_TABLE_BYTES / 2**30:.0f} GiB: this "
            "file would convert the whole table on every call (several times slower than "
            "fp32). Export with item_table_dtype 'fp32' (the table goes to a data file "
            "beside the model) or 'int8' (a quarter of the size, the fastest exact scoring)",
            options=("export_onnx.item_table_dtype",),
        )


def build_onnx_model(
    trained: TrainedModel | ExportInputs,
    *,
    opset: int = DEFAULT_OPSET,
    item_table_dtype: ItemTableDtype = "fp32",
    max_session_length: int | None = None,
    external: ExternalData | None = None,
) -> onnx.ModelProto:
    """The inference graph of ``trained`` (a :class:`sessionrec.train.TrainedModel`, or
    its :func:`export_inputs`, which then decide the other arguments), before
    onnxruntime's optimisation. See the module docstring for the computation.

    The model is read through its public interface only: ``model.config``
    (:class:`~sessionrec.nn.srgnn.SRGNNConfig`) and ``model.inference_weights()``
    (:class:`~sessionrec.nn.srgnn.SRGNNWeights`).

    Args:
        external: the data file the large constants go to (``None``: all in the graph).
    """
    x = trained
    if not isinstance(x, ExportInputs):
        x = export_inputs(
            x,
            opset=opset,
            item_table_dtype=item_table_dtype,
            max_session_length=max_session_length,
        )
    w, cfg = x.weights, x.cfg
    g = GraphBuilder(external)
    raw_index = steps.item_indices(g, x.vocab)  # 1
    clicks = steps.right_aligned_clicks(g, raw_index, x.max_len)  # 2
    h, table = steps.item_rows(g, w.item_table, clicks.x_safe, x.dtype)  # 3
    a_in, a_out = steps.session_graph(g, clicks, cfg.edge_weights)  # 4
    h = steps.gated_propagation(g, h, a_in, a_out, w.conv, cfg.steps)  # 5
    s_h = steps.readout(g, h, clicks, w, cfg, x.max_len)  # 6
    scores = steps.catalog_scores(g, s_h, table)  # 7
    scores = steps.new_item_offset_and_repeat_bonus(g, scores, clicks, w.cold_mask, cfg)  # 8
    scores = steps.exclude_seen(g, scores, clicks)  # 9
    top_index = steps.top_k_or_popular(g, scores, clicks.fallback, x.popularity)  # 10
    steps.ids_back(g, top_index, x.vocab)  # 11

    id_type = TensorProto.INT64 if x.vocab.kind == "int" else TensorProto.STRING
    inputs = [
        helper.make_tensor_value_info(INPUT_IDS, id_type, ["batch", "length"]),
        helper.make_tensor_value_info(INPUT_K, TensorProto.INT64, [1]),
        helper.make_tensor_value_info(INPUT_EXCLUDE, TensorProto.BOOL, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info(OUTPUT_IDS, id_type, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_SCORES, TensorProto.FLOAT, ["batch", "top_k"]),
        helper.make_tensor_value_info(OUTPUT_FALLBACK, TensorProto.BOOL, ["batch"]),
        helper.make_tensor_value_info(OUTPUT_UNKNOWN, TensorProto.INT64, ["batch"]),
    ]
    onnx_model = model_proto(g, inputs, outputs, x.opset, "sessionrec_srgnn", "next-item model")
    set_metadata(onnx_model, x.metadata())
    return onnx_model


def model_proto(
    g: GraphBuilder,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    opset: int,
    name: str,
    what: str,
) -> onnx.ModelProto:
    """The nodes and constants of ``g`` as a model with ``inputs`` and ``outputs``
    (``what`` it is goes into the graph's doc string)."""
    graph = helper.make_graph(
        g.nodes,
        name,
        inputs,
        outputs,
        g.initializers,
        doc_string=f"sessionrec SR-GNN {what}; contract {CONTRACT} (export/README.md)",
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="sessionrec",
        producer_version=__version__,
        ir_version=IR_VERSION,
    )
