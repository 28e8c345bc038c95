"""Writing an export: the ``.onnx`` file, checked and optimised, with its data file and
its two-stage files when it has them, committed with their manifest in one step.

Optimisation, in two places:

- at export (:func:`_optimize`), onnxruntime's offline optimiser at the *basic* level
  (the level whose output holds standard ONNX ops only, so the file stays portable to any
  onnxruntime: Python, Node.js, Java, C++, any execution provider). Constant folding is
  left off so that the reduced item tables stay reduced in the file; the graph is built
  with its constants already folded, so the pass is a guard rather than a rewrite (it
  changes no node of today's graphs). A file with a data file skips it: the pass would
  copy the table several times, and the next point does the same work;
- at load, onnxruntime's full optimisation (``ORT_ENABLE_ALL``: fusions and layouts for
  the CPU at hand; the default of every onnxruntime binding, set explicitly by
  :class:`sessionrec.recommender.SessionRecommender` and the clients in ``export/``).

Memory: the item table is never copied into a protobuf message when it goes to the data
file (:mod:`~sessionrec.onnx_export.external`), so an export holds the model, its
inference weights (one copy of the table) and, with two-stage serving, the index.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
from google.protobuf.message import EncodeError

from sessionrec.artifacts import commit_files
from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.onnx_export import ann_index, stages
from sessionrec.onnx_export import external as external_constants
from sessionrec.onnx_export.ann_index import AnnCodes
from sessionrec.onnx_export.contract import (
    CONTRACT,
    DATA_FORMAT,
    DEFAULT_OPSET,
    TWO_STAGE_FORMAT,
    ItemTableDtype,
    set_metadata,
)
from sessionrec.onnx_export.external import (
    EXTERNAL_DATA_MIN_BYTES,
    ExternalData,
)
from sessionrec.onnx_export.graph import ExportInputs, build_onnx_model, export_inputs
from sessionrec.serving.files import data_file_name, two_stage_names
from sessionrec.version import __version__

if TYPE_CHECKING:
    from sessionrec.train import TrainedModel

__all__ = ["ANN_MIN_ITEMS", "export_onnx"]

#: From this catalog size ``export_onnx(ann=None)`` builds the two-stage files (when
#: faiss is installed and the table is fp32): exact scoring there costs tens of
#: milliseconds per session.
ANN_MIN_ITEMS = 1_000_000
_PROTOBUF_MAX = 2**31 - 1


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


def _file_path(out_path: str | os.PathLike[str]) -> Path:
    """The file ``out_path`` names: ``out_path/model.onnx`` when it is an existing
    directory or ends with a path separator (a folder), else ``out_path`` itself."""
    text = os.fspath(out_path)
    separators = tuple(sep for sep in (os.sep, os.altsep) if sep)
    if text.endswith(separators) or Path(text).is_dir():
        return Path(text) / "model.onnx"
    return Path(text)


def export_onnx(
    model: str | os.PathLike[str] | TrainedModel,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    item_table_dtype: ItemTableDtype = "fp32",
    max_session_length: int | None = None,
    optimize: bool = True,
    external_data: bool | None = None,
    ann: bool | None = None,
    ann_codes: AnnCodes = "auto",
) -> Path:
    """Export a trained model to an ONNX file (contract: ``export/README.md``).

    Args:
        model: a model directory (``sessionrec train --out``) or a
            :class:`sessionrec.train.TrainedModel`.
        out_path: the ``.onnx`` file, or a folder: a path that is an existing directory
            or ends with a path separator (``"models/exp/"``) means
            ``out_path/model.onnx`` (the folder is created when missing). Its SHA-256
            (and those of the files below) goes into the ``manifest.json`` of its
            directory (added to a model directory's), crash-safely
            (:func:`sessionrec.artifacts.commit_files`): an interrupted export leaves a
            previous export and manifest intact.
        opset: ONNX opset of the default domain (>= 18).
        item_table_dtype: ``"fp32"`` (reference), ``"fp16"`` or ``"int8"`` (see
            :mod:`sessionrec.onnx_export.graph` for what each trades; fp16 is refused
            above an fp32 table of 1 GiB, where onnxruntime would convert it per call).
        max_session_length: sessions are cut to their last this-many known clicks
            (default: the training ``max_session_length``, else 50).
        optimize: pass the graph through onnxruntime's basic offline optimisation (a
            file with a data file never is).
        external_data: write the large constants (the item table) to
            ``out_path + ".data"`` beside the file (ONNX external data). ``None``: when
            the table is 256 MiB or more
            (:data:`~sessionrec.onnx_export.external.EXTERNAL_DATA_MIN_BYTES`), always
            with ``ann``; ``False`` keeps one file, which cannot hold 2 GiB.
        ann: also write the files of two-stage serving (``NAME.session.onnx``,
            ``NAME.rescore.onnx``, ``NAME.ann.faiss``; needs faiss,
            ``pip install 'sessionrec[ann]'``, and an fp32 table).
            ``None``: from :data:`ANN_MIN_ITEMS` items, when faiss is installed.
        ann_codes: what the index stores (:func:`~sessionrec.onnx_export.ann_index.index_spec`):
            ``"flat"`` the item vectors, ``"pq4"`` 4-bit product-quantised codes (25
            bytes per item at ``d = 100`` against 400, scanned with SIMD lookups; 20
            times the candidates are re-scored exactly), ``"auto"`` ``"pq4"`` from
            :data:`~sessionrec.onnx_export.ann_index.PQ_FROM_ITEMS` items.

    Returns:
        The path written (``out_path``, or ``out_path/model.onnx`` for a folder).

    Raises:
        ConfigError: an argument is out of range, or ``ann`` cannot be served as asked.
        ArtifactError: the files cannot be written (what was too large, or the disk).
    """
    if isinstance(model, (str, os.PathLike)):
        from sessionrec.train import load_model

        model = load_model(model)
    out_path = _file_path(out_path)
    x = export_inputs(
        model,
        opset=opset,
        item_table_dtype=item_table_dtype,
        max_session_length=max_session_length,
    )
    del model  # a model this call loaded goes now that its inference weights are read
    with_ann = _with_ann(ann, x)
    _check_ann_codes(ann_codes, ann, with_ann, x)
    table_bytes = x.weights.item_table.size * (
        4 if x.dtype == "fp32" else 2 if x.dtype == "fp16" else 1
    )
    if external_data is None:
        external_data = with_ann or table_bytes >= EXTERNAL_DATA_MIN_BYTES
    elif with_ann and not external_data:
        raise ConfigError(
            "two-stage serving (ann) reads the item table from the data file beside the "
            "model: leave external_data unset (or true) with ann",
            options=("export_onnx.ann", "export_onnx.external_data"),
        )
    # a data file always holds the item table, however small (the graphs share it)
    external = (
        ExternalData(
            data_file_name(out_path.name),
            min(external_constants.EXTERNAL_TENSOR_MIN_BYTES, table_bytes),
        )
        if external_data
        else None
    )
    onnx_model = build_onnx_model(x, external=external)
    _check(onnx_model, external, out_path.parent)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if optimize and external is None:
        tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
        try:
            onnx_model = _optimize(onnx_model, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        onnx.checker.check_model(onnx_model)
    writers, formats = _writers(out_path, onnx_model, external, x if with_ann else None, ann_codes)
    try:
        commit_files(out_path.parent, writers, formats)
    except (EncodeError, ValueError, OSError) as exc:
        raise ArtifactError(
            f"{out_path}: writing the export failed ({type(exc).__name__}: {exc}); nothing "
            "was replaced. Check the free space of the directory (the files need about "
            f"{_needed_gb(onnx_model, external):.1f} GB), or export with a data file "
            "(external_data) or item_table_dtype 'int8'",
            options=("export_onnx.out_path", "export_onnx.external_data"),
        ) from None
    return out_path


def _check_ann_codes(ann_codes: str, ann: bool | None, with_ann: bool, x: ExportInputs) -> None:
    """Refuse an unknown ``ann_codes``, and one set for an export without the two-stage
    files (it would be ignored), naming why they are not written.

    Raises:
        ConfigError: naming ``export_onnx.ann_codes`` (and ``export_onnx.ann``).
    """
    if ann_codes not in ("auto", "flat", "pq4"):
        raise ConfigError(
            f"ann_codes must be 'auto', 'flat' or 'pq4', got {ann_codes!r}",
            options=("export_onnx.ann_codes",),
        )
    if ann_codes != "auto" and not with_ann:
        if ann is False:
            why = "ann=False"
        elif x.dtype != "fp32":
            why = f"they need the fp32 item table, not {x.dtype}"
        elif x.cfg.n_items < ANN_MIN_ITEMS:
            why = f"ann is automatic from {ANN_MIN_ITEMS:,} items; this model has {x.cfg.n_items:,}"
        else:
            why = "faiss is not installed: pip install 'sessionrec[ann]'"
        raise ConfigError(
            f"ann_codes={ann_codes!r} sets the index of the two-stage files, which this export "
            f"does not write ({why}): pass ann=True, or leave ann_codes at 'auto'",
            options=("export_onnx.ann", "export_onnx.ann_codes"),
        )


def _with_ann(ann: bool | None, x: ExportInputs) -> bool:
    """Whether the export builds the two-stage files (``export_onnx``'s ``ann``)."""
    if ann is False:
        return False
    try:
        import faiss  # noqa: F401
    except ImportError:
        if ann:
            raise ConfigError(
                "ann=True needs faiss to build the index of two-stage serving: "
                "pip install 'sessionrec[ann]' (or export without ann: exact scoring)",
                options=("export_onnx.ann",),
            ) from None
        if x.cfg.n_items >= ANN_MIN_ITEMS and x.dtype == "fp32":
            warnings.warn(
                f"{x.cfg.n_items:,} items: exact scoring reads the whole item table per "
                "session; install faiss (pip install 'sessionrec[ann]') and export again "
                "for two-stage serving",
                UserWarning,
                stacklevel=3,
            )
        return False
    if ann is None:
        return x.cfg.n_items >= ANN_MIN_ITEMS and x.dtype == "fp32"
    if x.dtype != "fp32":
        raise ConfigError(
            f"two-stage serving (ann) re-scores candidates with the fp32 item table, got "
            f"item_table_dtype={x.dtype!r}: export with 'fp32' (its table goes to a data "
            "file, which serving maps rather than reads), or without ann",
            options=("export_onnx.ann", "export_onnx.item_table_dtype"),
        )
    return True


def _check(onnx_model: onnx.ModelProto, external: ExternalData | None, directory: Path) -> None:
    """The checker (``full_check``), after making sure the graph fits in one protobuf
    message. A graph with a data file is checked as a file in a temporary folder of
    ``directory``, beside a sparse stand-in of its data file (the checker verifies that
    the data file exists and holds every reference; it reads no data)."""
    size = onnx_model.ByteSize()
    if size > _PROTOBUF_MAX:
        largest = max(onnx_model.graph.initializer, key=lambda t: t.ByteSize(), default=None)
        what = f" (the largest constant: {largest.name}, {largest.ByteSize() / 2**30:.2f} GiB)"
        raise ArtifactError(
            f"the ONNX graph is {size / 2**30:.2f} GiB{what if largest else ''}, above the "
            "2 GiB one ONNX (protobuf) file can hold: "
            + (
                "export with its large constants in a data file (leave external_data unset)"
                if external is None
                else "the item ids alone exceed it: use integer item ids"
            ),
            options=("export_onnx.external_data",),
        )
    if external is None:
        onnx.checker.check_model(onnx_model, full_check=True)
        return
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sessionrec-check-", dir=directory) as tmp:
        with open(Path(tmp) / external.location, "wb") as fh:
            fh.truncate(external.nbytes)
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onnx_model.SerializeToString())
        onnx.checker.check_model(str(path), full_check=True)


def _needed_gb(onnx_model: onnx.ModelProto, external: ExternalData | None) -> float:
    return (onnx_model.ByteSize() + (external.nbytes if external else 0)) / 1e9


def _proto_writer(
    model: onnx.ModelProto, digest: dict[str, str] | None = None, key: str = ""
) -> Callable[[Path], None]:
    """A writer of ``model``'s bytes; records their SHA-256 in ``digest[key]``."""

    def write(path: Path) -> None:
        data = model.SerializeToString()
        if digest is not None:
            digest[key] = hashlib.sha256(data).hexdigest()
        path.write_bytes(data)

    return write


def _writers(
    out_path: Path,
    onnx_model: onnx.ModelProto,
    external: ExternalData | None,
    ann_inputs: ExportInputs | None,
    ann_codes: AnnCodes = "auto",
) -> tuple[dict[str, Callable[[Path], None]], dict[str, str]]:
    """The files of the export, in the order they are renamed into place: the data file
    first (the graphs reference it by its final name), the model, then the two-stage
    files, which record the model's SHA-256."""
    writers: dict[str, Callable[[Path], None]] = {}
    formats: dict[str, str] = {}
    if external is not None:
        writers[external.location] = external.write
        formats[external.location] = DATA_FORMAT
    digest: dict[str, str] = {}
    writers[out_path.name] = _proto_writer(onnx_model, digest, "model")
    formats[out_path.name] = CONTRACT
    if ann_inputs is not None:
        assert external is not None
        writers.update(_two_stage_writers(out_path, ann_inputs, external, digest, ann_codes))
        formats.update(dict.fromkeys(two_stage_names(out_path.name), TWO_STAGE_FORMAT))
    return writers, formats


def _two_stage_writers(
    out_path: Path,
    x: ExportInputs,
    external: ExternalData,
    digest: dict[str, str],
    codes: AnnCodes = "auto",
) -> dict[str, Callable[[Path], None]]:
    """The writers of the session graph, the re-scoring graph and the index."""
    import faiss

    w, cfg = x.weights, x.cfg
    offset = None
    if cfg.new_item_offset != 0.0 and w.cold_mask is not None:
        offset = (w.cold_mask * cfg.new_item_offset).astype("float32")
    width = w.item_table.shape[1] + (offset is not None)
    spec = ann_index.index_spec(cfg.n_items, width, codes)
    index = ann_index.build_index(w.item_table, offset, spherical=cfg.normalize, spec=spec)
    nlist, nprobe = spec.nlist, spec.nprobe
    recall = ann_index.item_recall(
        index, w.item_table, offset, candidates_factor=spec.candidates_factor
    )
    if recall < ann_index.LOW_ITEM_RECALL:
        warnings.warn(
            f"two-stage serving: the index finds {recall:.0%} of the exact top-20 neighbours "
            f"of sample item vectors with nprobe {nprobe} of {nlist:,} lists "
            f"(ann_item_recall_at_20; below {ann_index.LOW_ITEM_RECALL:.0%}): these vectors "
            "have few neighbourhoods (an untrained or barely trained model), so two-stage "
            "answers will often differ from exact ones. Measure the recall on your sessions "
            "against SessionRecommender.load(path, exact=True) and serve with a larger "
            "nprobe or exact=True, or train longer",
            UserWarning,
            stacklevel=4,
        )
    graphs = {"session": stages.build_session_model(x, external)}
    graphs["rescore"] = stages.build_rescore_model(x, external)
    for graph in graphs.values():
        _check(graph, external, out_path.parent)
    session_name, rescore_name, index_name = two_stage_names(out_path.name)

    def stage_writer(stage: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            metadata: dict[str, Any] = {
                **x.metadata(),
                "stage": stage,
                "model_sha256": digest["model"],  # the model was written first
                "ann_index": spec.factory,
                "ann_candidates_factor": spec.candidates_factor,
                "ann_metric": "inner_product",
                "ann_nlist": nlist,
                "ann_nprobe": nprobe,
                "ann_item_recall_at_20": f"{recall:.4f}",
                "ann_offset_column": int(offset is not None),
            }
            set_metadata(graphs[stage], {k: str(v) for k, v in metadata.items()})
            _proto_writer(graphs[stage])(path)

        return write

    return {
        session_name: stage_writer("session"),
        rescore_name: stage_writer("rescore"),
        index_name: lambda path: faiss.write_index(index, str(path)),
    }
