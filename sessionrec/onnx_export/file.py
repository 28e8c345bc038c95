"""Writing the exported graph to one ``.onnx`` file: checked, optimised, committed.

Optimisation, in two places:

- at export (:func:`_optimize`), onnxruntime's offline optimiser at the *basic* level
  (the level whose output holds standard ONNX ops only, so the file stays portable to any
  onnxruntime: Python, Node.js, Java, C++, any execution provider). Constant folding is
  left off so that the reduced item tables stay reduced in the file; the graph is built
  with its constants already folded, so the pass is a guard rather than a rewrite;
- at load, onnxruntime's full optimisation (``ORT_ENABLE_ALL``: fusions and layouts for
  the CPU at hand; the default of every onnxruntime binding, set explicitly by
  :class:`sessionrec.recommender.SessionRecommender` and the clients in ``export/``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from sessionrec.artifacts import commit_files
from sessionrec.errors import ConfigError
from sessionrec.onnx_export.contract import CONTRACT, DEFAULT_OPSET, ItemTableDtype, set_metadata
from sessionrec.onnx_export.graph import build_onnx_model
from sessionrec.version import __version__

if TYPE_CHECKING:
    from sessionrec.train import TrainedModel

__all__ = ["export_onnx"]


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
    set_metadata(optimized, {p.key: p.value for p in model.metadata_props})
    optimized.producer_name, optimized.producer_version = "sessionrec", __version__
    return optimized


def export_onnx(
    model: str | os.PathLike[str] | TrainedModel,
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
        item_table_dtype: ``"fp32"`` (reference), ``"fp16"`` or ``"int8"`` (see
            :mod:`sessionrec.onnx_export.graph` for what each trades).
        max_session_length: sessions are cut to their last this-many known clicks
            (default: the training ``max_session_length``, else 50).
        optimize: pass the graph through onnxruntime's basic offline optimisation.

    Returns:
        The path written.

    Raises:
        ConfigError: ``out_path`` is a directory, or an argument is out of range.
    """
    if isinstance(model, (str, os.PathLike)):
        from sessionrec.train import load_model

        model = load_model(model)
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ConfigError(
            f"out_path {str(out_path)!r} is a directory; give the path of a file, such as "
            f"{str(out_path / 'model.onnx')!r}",
            options=("export_onnx.out_path",),
        )
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
