"""Export a trained SR-GNN to one ONNX file: raw item ids in, top-k raw item ids out
(the contract, with examples, is ``export/README.md``).

- :mod:`~sessionrec.onnx_export.contract`: the file's input and output names, padding
  ids, opsets and metadata;
- :mod:`~sessionrec.onnx_export.builder`: :class:`GraphBuilder`, the op builder;
- :mod:`~sessionrec.onnx_export.graph`: :func:`build_onnx_model`, the inference graph,
  step by step from the model's public weights
  (:meth:`sessionrec.nn.srgnn.SRGNN.inference_weights`);
- :mod:`~sessionrec.onnx_export.file`: :func:`export_onnx`, the checked, optimised and
  committed file.
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
    PAD_INT,
    PAD_STR,
    ItemTableDtype,
    onnx_metadata,
)
from sessionrec.onnx_export.file import export_onnx
from sessionrec.onnx_export.graph import build_onnx_model

__all__ = [
    "CONTRACT",
    "DEFAULT_MAX_SESSION_LENGTH",
    "DEFAULT_OPSET",
    "ItemTableDtype",
    "build_onnx_model",
    "export_onnx",
    "onnx_metadata",
]
