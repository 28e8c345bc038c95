"""What an exported file promises its services: the names of its inputs and outputs, the
padding ids, the opsets, and the metadata it carries (``export/README.md`` is the
contract for the people who write services; this module is the one place the export reads
it from)."""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnx

from sessionrec.data.contract import DEFAULT_MAX_SESSION_LENGTH
from sessionrec.errors import ConfigError
from sessionrec.serving.files import CONTRACT, DATA_FORMAT, TWO_STAGE_FORMAT
from sessionrec.version import __version__

if TYPE_CHECKING:
    from sessionrec.train import TrainedModel

__all__ = [
    "CONTRACT",
    "DATA_FORMAT",
    "DEFAULT_MAX_SESSION_LENGTH",
    "DEFAULT_OPSET",
    "IR_VERSION",
    "INPUT_CANDIDATES",
    "INPUT_EXCLUDE",
    "INPUT_IDS",
    "INPUT_K",
    "INPUT_SESSION_ITEMS",
    "INPUT_SESSION_VECTOR",
    "ML_OPSET",
    "OUTPUT_FALLBACK",
    "OUTPUT_IDS",
    "OUTPUT_SCORES",
    "OUTPUT_UNKNOWN",
    "PAD_INT",
    "PAD_STR",
    "TWO_STAGE_FORMAT",
    "ItemTableDtype",
    "file_metadata",
    "onnx_metadata",
    "resolve_max_session_length",
    "set_metadata",
]

# CONTRACT ("sessionrec.onnx/2"), DATA_FORMAT and TWO_STAGE_FORMAT are the serving side's
# (sessionrec.serving.files): one definition for the writer and the readers
DEFAULT_OPSET = 18  # ScatterElements with reduction="min"/"max" needs 18
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder with int64 and string keys
IR_VERSION = 8  # the IR of opset 18: loadable by onnxruntime >= 1.14
INPUT_IDS, INPUT_K, INPUT_EXCLUDE = "item_ids", "k", "exclude_seen"
OUTPUT_IDS, OUTPUT_SCORES, OUTPUT_FALLBACK = "top_ids", "top_scores", "fallback"
# added in sessionrec 0.2.0 (contract sessionrec.onnx/2; some /1 files of 0.2.0
# development versions have it too)
OUTPUT_UNKNOWN = "unknown_clicks"
# the two-stage graphs (sessionrec.onnx_export.stages): the session graph's outputs are
# the re-scoring graph's inputs
INPUT_SESSION_VECTOR, INPUT_SESSION_ITEMS = "session_vector", "session_items"
INPUT_CANDIDATES = "candidates"
PAD_INT, PAD_STR = -1, ""

ItemTableDtype = Literal["fp32", "fp16", "int8"]


def resolve_max_session_length(trained: TrainedModel, value: int | None) -> int:
    """The last clicks of a session the exported file reads.

    The model's data contract decides (``trained.contract.inference_max_length``: the
    ``max_session_length`` its dataset was prepared with, else
    :data:`~sessionrec.data.contract.DEFAULT_MAX_SESSION_LENGTH`). ``value`` overrides it
    with a :class:`UserWarning`: PyTorch evaluation then cuts sessions differently from
    the file. A value above the length the model was trained on is refused: the
    positions beyond it were never trained.

    Raises:
        ConfigError: ``value`` is not an integer >= 1, or above the trained length.
    """
    contract = trained.data_contract
    trained_length = contract.inference_max_length
    if value is None:
        return trained_length
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(
            f"max_session_length must be an integer >= 1, got {value!r}",
            options=("export_onnx.max_session_length",),
        )
    value = int(value)
    if contract.max_session_length is not None and value > contract.max_session_length:
        raise ConfigError(
            f"max_session_length {value} is longer than the {contract.max_session_length} "
            "clicks this model was trained on (its dataset was prepared with "
            f"max_session_length={contract.max_session_length}): positions beyond them were "
            "never trained; export with the model's own length (leave max_session_length "
            "unset) or a shorter one",
            options=("export_onnx.max_session_length",),
        )
    if value != trained_length:
        warnings.warn(
            f"max_session_length={value} overrides the model's {trained_length}: the exported "
            f"file reads the last {value} clicks of a session, PyTorch evaluation the last "
            f"{trained_length}",
            UserWarning,
            stacklevel=3,
        )
    return value


def file_metadata(trained: TrainedModel, opset: int, dtype: str, max_len: int) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (strings; ``export/README.md``)."""
    cfg = trained.model.config
    contract = trained.data_contract
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
        "trained_max_session_length": str(contract.inference_max_length),
        "validation_fraction": str(contract.validation_fraction),
        "time_unit": contract.time_unit or "",
        "item_table_dtype": dtype,
        "fallback": "popularity",
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the ``metadata_props`` of ``model`` with ``metadata``."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (without loading its weights)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
