"""Export a trained SR-GNN to an ONNX file: raw item ids in, top-k raw item ids out
(the contract, with examples, is ``export/README.md``).

- :mod:`~sessionrec.onnx_export.contract`: the file's input and output names, padding
  ids, opsets and metadata;
- :mod:`~sessionrec.onnx_export.builder`: :class:`GraphBuilder`, the op builder;
- :mod:`~sessionrec.onnx_export.external`: large constants in a data file beside the
  ``.onnx`` (ONNX external data), for tables of any size;
- :mod:`~sessionrec.onnx_export.steps`: the steps of the inference graph, one function
  each;
- :mod:`~sessionrec.onnx_export.graph`: :func:`build_onnx_model`, the exact inference
  graph from the model's public weights
  (:meth:`sessionrec.nn.srgnn.SRGNN.inference_weights`);
- :mod:`~sessionrec.onnx_export.stages`: the session and re-scoring graphs of two-stage
  serving;
- :mod:`~sessionrec.onnx_export.ann_index`: the faiss index of two-stage serving;
- :mod:`~sessionrec.onnx_export.file`: :func:`export_onnx`, the checked, optimised and
  committed files.
"""

# ruff: noqa: F401  (a face: the op builder and the contract's names are importable from
# here, as before the split, outside the public ``__all__``)

from __future__ import annotations

from sessionrec.onnx_export.builder import GraphBuilder
from sessionrec.onnx_export.contract import (
    CONTRACT,
    DEFAULT_MAX_SESSION_LENGTH,
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
    onnx_metadata,
)
from sessionrec.onnx_export.external import EXTERNAL_DATA_MIN_BYTES
from sessionrec.onnx_export.file import ANN_MIN_ITEMS, export_onnx
from sessionrec.onnx_export.graph import FP16_MAX_TABLE_BYTES, build_onnx_model

__all__ = [
    "ANN_MIN_ITEMS",
    "CONTRACT",
    "DEFAULT_MAX_SESSION_LENGTH",
    "DEFAULT_OPSET",
    "EXTERNAL_DATA_MIN_BYTES",
    "FP16_MAX_TABLE_BYTES",
    "ItemTableDtype",
    "build_onnx_model",
    "export_onnx",
    "onnx_metadata",
]
