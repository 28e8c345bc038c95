"""The files of an export and how a reader verifies them (``export/README.md``, "The
files").

``sessionrec export --out DIR/NAME.onnx`` writes, into ``DIR``:

=========================  ===========================  ==================================
file                       manifest format              when
=========================  ===========================  ==================================
``NAME.onnx``              ``sessionrec.onnx/2``        always: the exact graph
``NAME.onnx.data``         ``sessionrec.onnx-data/1``   a large item table (ONNX external
                                                        data: the graphs reference it)
``NAME.session.onnx``      ``sessionrec.ann/1``         two-stage serving: ids -> the
                                                        session vector
``NAME.rescore.onnx``      ``sessionrec.ann/1``         two-stage serving: exact scores of
                                                        the candidates -> top-k ids
``NAME.ann.faiss``         ``sessionrec.ann/1``         two-stage serving: the index
=========================  ===========================  ==================================

A reader checks every file it reads against ``manifest.json`` (SHA-256 and format)
before onnxruntime or faiss opens it. The two-stage graphs hold the SHA-256 of the
``NAME.onnx`` they were exported with (metadata ``model_sha256``): files left by an
earlier export are never served with a newer model.

Standard library only (the serving runtime imports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionrec.artifacts import MANIFEST, file_sha256, verified_path, verified_paths
from sessionrec.errors import ArtifactError

__all__ = [
    "CONTRACT",
    "CONTRACTS",
    "DATA_FORMAT",
    "TWO_STAGE_FORMAT",
    "ModelFiles",
    "TwoStageFiles",
    "data_file_name",
    "two_stage_names",
    "verified_model_files",
    "two_stage_files",
    "typed_metadata",
]

#: The contract of the files this version writes: ``/1`` plus the output
#: ``unknown_clicks``, an optional data file and optional two-stage files.
CONTRACT = "sessionrec.onnx/2"
#: The contracts this version reads.
CONTRACTS = ("sessionrec.onnx/1", CONTRACT)
DATA_FORMAT = "sessionrec.onnx-data/1"
TWO_STAGE_FORMAT = "sessionrec.ann/1"


def data_file_name(model_name: str) -> str:
    """``model.onnx`` -> ``model.onnx.data``: the data file the graphs reference."""
    return f"{model_name}.data"


def two_stage_names(model_name: str) -> tuple[str, str, str]:
    """``model.onnx`` -> ``("model.session.onnx", "model.rescore.onnx",
    "model.ann.faiss")``: the session graph, the re-scoring graph and the index."""
    stem = model_name[: -len(".onnx")] if model_name.endswith(".onnx") else model_name
    return f"{stem}.session.onnx", f"{stem}.rescore.onnx", f"{stem}.ann.faiss"


@dataclass(frozen=True)
class ModelFiles:
    """The exact graph's files, verified.

    Attributes:
        model: the file onnxruntime loads (``path``, or its ``.pending`` twin while an
            export is committing).
        data: the verified data file, or ``None`` (none listed, or no manifest).
        manifest: the directory's manifest, or ``None``.
    """

    model: Path
    data: Path | None
    manifest: dict[str, Any] | None


def verified_model_files(path: Path, manifest: dict[str, Any] | None) -> ModelFiles:
    """``path`` (an exported ``.onnx``) and its data file, checked against ``manifest``
    (the manifest of ``path``'s directory; ``None``: nothing to check).

    Raises:
        ArtifactError: the model or its data file is not listed, has another format
            (a contract this version does not read), was modified, or the data file is
            still under its temporary name (an export interrupted after its commit point).
    """
    if manifest is None:
        return ModelFiles(path, None, None)
    entry = manifest["files"].get(path.name)
    fmt = entry["format"] if entry is not None and entry["format"] in CONTRACTS else CONTRACT
    model = verified_path(path.parent, path.name, fmt, manifest)
    name = data_file_name(path.name)
    data = None
    if name in manifest["files"]:
        data = verified_path(path.parent, name, DATA_FORMAT, manifest)
        if data != path.parent / name:
            # the graph references the data file by its name, which still holds the
            # previous export's bytes
            raise ArtifactError(
                f"{path.parent / name}: an export into {path.parent} was interrupted after "
                "its commit point and its data file is still under a temporary name; "
                "export again into the directory (which completes or replaces it)"
            )
    return ModelFiles(model, data, manifest)


@dataclass(frozen=True)
class TwoStageFiles:
    """The two-stage files beside a model, verified.

    Attributes:
        session: the session graph (ids -> session vector).
        rescore: the re-scoring graph.
        index: the faiss index.
        model_sha256: the SHA-256 of the exact graph they must have been exported with.
    """

    session: Path
    rescore: Path
    index: Path
    model_sha256: str


def two_stage_files(files: ModelFiles, path: Path) -> TwoStageFiles | None:
    """The two-stage files of the model ``path``, verified against its manifest (when
    it has one), or ``None`` when it has none.

    Raises:
        ArtifactError: only some of the three are there, or one does not match the
            manifest.
    """
    names = two_stage_names(path.name)
    directory = path.parent
    if files.manifest is not None:
        listed = [name in files.manifest["files"] for name in names]
        if not any(listed):
            return None
        if not all(listed):
            missing = [n for n, ok in zip(names, listed) if not ok]
            raise ArtifactError(
                f"{directory / MANIFEST} lists only some of the two-stage files (missing: "
                f"{', '.join(missing)}); export the model again"
            )
        paths = verified_paths(directory, dict.fromkeys(names, TWO_STAGE_FORMAT), files.manifest)
        model_sha = files.manifest["files"][path.name]["sha256"]
        return TwoStageFiles(*(paths[n] for n in names), model_sha256=model_sha)
    present = [(directory / n).is_file() for n in names]
    if not all(present):
        return None
    return TwoStageFiles(*(directory / n for n in names), model_sha256=file_sha256(path))


# metadata values that are JSON texts, and those that are numbers (export/README.md)
_JSON_KEYS = ("pad_id", "model_config")
_INT_KEYS = ("opset", "n_items", "dim", "max_session_length", "trained_max_session_length")
_INT_KEYS_TWO_STAGE = ("ann_nlist", "ann_nprobe", "ann_offset_column", "ann_candidates_factor")
_FLOAT_KEYS = ("validation_fraction", "ann_item_recall_at_20")


def typed_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """The file's ``metadata_props`` (all strings) with numbers as numbers and the
    JSON-valued keys (``pad_id``, ``model_config``) decoded: no JSON inside JSON."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            if key in _JSON_KEYS:
                out[key] = json.loads(value)
            elif key in _INT_KEYS or key in _INT_KEYS_TWO_STAGE:
                out[key] = int(value)
            elif key in _FLOAT_KEYS:
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:  # a value not of its documented type: shown as written
            out[key] = value
    return out
