"""The model directory: :class:`TrainedModel`, its crash-safe save and :func:`load_model`.

A model directory holds::

    config.json      format, sessionrec version, the model config, the training config,
                     the data contract (``contract``: the last clicks the model reads, the
                     validation share, the time unit and id kind of its data) and the data
                     fingerprint
    model.pt         the selected weights (a plain state_dict; load with weights_only=True);
                     a content model's catalog features are buffers in it
    vocab.json       the item vocabulary (a content model's: the dataset's items, then the
                     catalog items without clicks, which it scores from content alone)
    item_counts.npy  training clicks per item (popularity fallback, popularity bias)
    history.json     loss, samples/s and validation metrics per epoch
    metrics.json     validation metrics of the selected epoch and the test metrics
    manifest.json    SHA-256 and format of each file above (:mod:`sessionrec.artifacts`);
                     loading refuses a file that does not match it
    checkpoint.pt    the last epoch's full training state, for resuming (not listed in the
                     manifest: it changes every epoch)
    best-epoch-N.bin the best epoch's weights of a model of 256 MiB or more, which
                     checkpoint.pt refers to (:mod:`sessionrec.train.best_state`; a
                     smaller model keeps them in checkpoint.pt)

Formats: ``sessionrec.model/2`` (this version). ``sessionrec.model/1`` (sessionrec 0.1)
loads too: its training config's ``valid_fraction`` and ``max_session_length`` become the
data contract. Any other format is refused with the version that wrote it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sessionrec.artifacts import MANIFEST, commit_files, read_manifest, verified_paths
from sessionrec.data.contract import DEFAULT_VALIDATION_FRACTION, DataContract
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, NonFiniteError
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train.config import TrainConfig
from sessionrec.version import __version__

__all__ = [
    "MODEL_FORMAT",
    "READABLE_FORMATS",
    "MODEL_FILES",
    "TrainedModel",
    "load_model",
    "count_non_finite",
    "non_finite_weights",
]

MODEL_FORMAT = "sessionrec.model/2"
#: Formats :func:`load_model` reads: this one and sessionrec 0.1's.
READABLE_FORMATS = (MODEL_FORMAT, "sessionrec.model/1")
#: What :meth:`TrainedModel.save` writes and :func:`load_model` reads (each in the manifest).
MODEL_FILES = (
    "config.json",
    "model.pt",
    "vocab.json",
    "item_counts.npy",
    "history.json",
    "metrics.json",
)


#: Values checked at a time by :func:`count_non_finite` (64 MiB of fp32): a check of a
#: whole item table at once made three table-sized temporaries (3.7 GB at 5M items).
FINITE_CHECK_BLOCK = 1 << 24


def count_non_finite(values: torch.Tensor) -> int:
    """How many of ``values`` (a floating-point tensor) are NaN or infinite, read in
    blocks of :data:`FINITE_CHECK_BLOCK` values, so the check's memory does not grow with
    the catalog (the saved model's weights, the exported arrays)."""
    flat = values.detach().reshape(-1)  # a view of a contiguous tensor
    return sum(
        int((~torch.isfinite(flat[i : i + FINITE_CHECK_BLOCK])).sum())
        for i in range(0, flat.numel(), FINITE_CHECK_BLOCK)
    )


def non_finite_weights(model: torch.nn.Module) -> dict[str, int]:
    """The tensors of ``model``'s state (weights and float buffers) holding NaN or
    infinite values: name -> how many (empty: every value is finite;
    :func:`count_non_finite`)."""
    found = {}
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            bad = count_non_finite(value)
            if bad:
                found[name] = bad
    return found


@dataclass
class TrainedModel:
    """A trained SR-GNN with what is needed to use and export it.

    Attributes:
        model: the network (on the CPU, in evaluation mode after training).
        vocab: raw item id of every model index.
        train_config: the training options it was trained with.
        item_counts: int64 ``[n_items]`` training clicks per item.
        history: one record per epoch (loss, rate, validation metrics).
        metrics: validation metrics of the selected epoch, the test metrics, calibrations.
        data_fingerprint: SHA-256 of the training data.
        contract: the data settings it was trained under (``None``: the defaults, with
            the vocabulary's id kind).
    """

    model: SRGNN
    vocab: ItemVocab
    train_config: TrainConfig
    item_counts: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None
    contract: DataContract | None = None

    def __post_init__(self) -> None:
        if self.contract is None:
            self.contract = DataContract(id_kind=self.vocab.kind)

    @property
    def data_contract(self) -> DataContract:
        """:attr:`contract`, never ``None``."""
        assert self.contract is not None  # set by __post_init__
        return self.contract

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model directory, crash-safely.

        The files and their SHA-256 go into ``manifest.json``
        (:func:`sessionrec.artifacts.commit_files`): a save killed half-way leaves the
        previous model of ``directory`` loadable and unchanged. Files of the previous model
        that this one does not write (an old ``model.onnx``) are removed.

        Raises:
            NonFiniteError: a weight holds NaN or infinite values (training diverged),
                naming the tensors: nothing is written, the previous model of
                ``directory`` stays.
        """
        directory = Path(directory)
        non_finite = non_finite_weights(self.model)
        if non_finite:
            state = self.model.state_dict()
            listed = ", ".join(
                f"{name!r} ({n:,} of {state[name].numel():,} values)"
                for name, n in list(non_finite.items())[:5]
            )
            more = f" and {len(non_finite) - 5} more tensors" if len(non_finite) > 5 else ""
            raise NonFiniteError(
                f"{directory}: refusing to save a model with NaN or infinite weights, in "
                f"{listed}{more}: the scores that use them would be NaN. Training diverged: "
                "train again with a lower learning rate (TrainConfig.lr)",
                options=("TrainConfig.lr",),
            )
        config = {
            "format": MODEL_FORMAT,
            "sessionrec_version": __version__,
            "model": self.model.config.to_dict(),
            "train": self.train_config.to_dict(),
            "contract": self.data_contract.to_dict(),
            "data_fingerprint": self.data_fingerprint,
        }
        state = self.model.state_dict()
        counts = self.item_counts.astype(np.int64)

        def json_writer(obj: Any) -> Callable[[Path], None]:
            return lambda path: path.write_text(json.dumps(obj, indent=2), encoding="utf-8")

        def save_counts(path: Path) -> None:
            with open(path, "wb") as fh:
                np.save(fh, counts, allow_pickle=False)

        commit_files(
            directory,
            {
                "model.pt": lambda path: torch.save(state, path),
                "vocab.json": self.vocab.save,
                "item_counts.npy": save_counts,
                "history.json": json_writer(self.history),
                "metrics.json": json_writer(self.metrics),
                "config.json": json_writer(config),
            },
            MODEL_FORMAT,
            replace_listed=True,
        )
        return directory


def _readable_format(directory: Path, manifest: dict[str, Any] | None) -> str:
    """The model format of ``directory``'s manifest, if this sessionrec reads it."""
    if manifest is None:
        return MODEL_FORMAT  # verified_paths names the missing manifest
    entry = manifest["files"].get("config.json") or {}
    fmt = entry.get("format", MODEL_FORMAT)
    if fmt not in READABLE_FORMATS:
        raise ArtifactError(
            f"{directory}: a model of format {fmt!r}, written by sessionrec "
            f"{manifest.get('sessionrec_version', '?')}; this sessionrec ({__version__}) reads "
            f"{' and '.join(READABLE_FORMATS)}: load it with the version that wrote it, or "
            "train it again"
        )
    return str(fmt)


def _configs(config: dict[str, Any], vocab: ItemVocab) -> tuple[TrainConfig, DataContract]:
    """The training config and data contract of a ``config.json`` (either format)."""
    train = dict(config["train"])
    if config.get("format") == MODEL_FORMAT:
        return TrainConfig.from_dict(train), DataContract.from_dict(config["contract"])
    # sessionrec.model/1: the data settings were training options
    max_length = train.pop("max_session_length", None)
    fraction = train.pop("valid_fraction", DEFAULT_VALIDATION_FRACTION)
    contract = DataContract(
        max_session_length=max_length, validation_fraction=fraction, id_kind=vocab.kind
    )
    return TrainConfig.from_dict({**train, "validation_fraction": fraction}), contract


def load_model(directory: str | os.PathLike[str]) -> TrainedModel:
    """Load a model directory written by :meth:`TrainedModel.save` (no pickle).

    Every file is checked against ``manifest.json`` first (SHA-256 and format).

    Raises:
        ArtifactError: not a model directory, a file missing, modified or of a format
            this version does not read.
    """
    directory = Path(directory)
    if directory.is_file():  # model.onnx or model.pt given for their directory
        kind = "an exported ONNX model" if directory.suffix == ".onnx" else "a file"
        around = (directory.parent / "config.json").is_file()
        raise ArtifactError(
            f"{directory} is {kind}, not a model directory: pass the directory that "
            "training wrote (model.pt, config.json)"
            + (f", here {directory.parent}" if around else ""),
            options=("load_model.directory",),
        )
    if not (directory / "config.json").is_file() and not (directory / MANIFEST).is_file():
        raise ArtifactError(
            f"{directory}: not a sessionrec model directory (no config.json)",
            options=("load_model.directory",),
        )
    manifest = read_manifest(directory)
    fmt = _readable_format(directory, manifest)
    paths = verified_paths(directory, dict.fromkeys(MODEL_FILES, fmt), manifest)
    config = json.loads(paths["config.json"].read_text())
    if config.get("format") != fmt:
        raise ArtifactError(
            f"{paths['config.json']}: format {config.get('format')!r}, its manifest says "
            f"{fmt!r}; the directory was modified after it was written"
        )
    model = SRGNN(SRGNNConfig.from_dict(config["model"]))
    try:
        state = torch.load(paths["model.pt"], map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"{directory / 'model.pt'}: cannot be loaded ({exc})") from None
    model.load_state_dict(state)
    model.eval()
    vocab = ItemVocab.load(paths["vocab.json"])
    if len(vocab) != model.config.n_items:
        raise ArtifactError(
            f"{directory}: vocabulary has {len(vocab)} items, the model {model.config.n_items}"
        )
    train_config, contract = _configs(config, vocab)
    return TrainedModel(
        model,
        vocab,
        train_config,
        np.load(paths["item_counts.npy"], allow_pickle=False),
        json.loads(paths["history.json"].read_text()),
        json.loads(paths["metrics.json"].read_text()),
        config.get("data_fingerprint"),
        contract,
    )
