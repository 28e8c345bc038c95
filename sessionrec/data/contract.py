"""A model's contract with its input: the data settings decided once, at ``prepare``.

The settings that shape what a model reads are decided when the dataset is prepared
(:class:`~sessionrec.data.protocol.ProtocolConfig` and the reader's report), recorded in
the dataset's ``dataset.json``, read by training, recorded in the model directory
(``config.json``, key ``contract``) and read by the export, which writes them into the
ONNX file's metadata. No other place holds them:

=======================  ===================================================================
``max_session_length``   :math:`L`: a model reads the last :math:`L` clicks of a session.
                         The protocol cuts every sample's prefix to its last :math:`L`
                         clicks (test samples at ``prepare``, training samples when the
                         trainer builds them), PyTorch evaluation and the exported model
                         cut sessions the same way. ``None``: training and test prefixes
                         are whole, and recommending reads the last
                         :data:`DEFAULT_MAX_SESSION_LENGTH` clicks
                         (:attr:`DataContract.inference_max_length`).
``validation_fraction``  the share of the latest training sessions that select the model.
``time_unit``            how the dump's timestamps were read (``"s"``, ``"ms"``, ``"iso"``,
                         ...; ``None`` for published benchmarks without times).
``id_kind``              ``"int"`` or ``"str"``: the type of the raw item ids a model takes.
=======================  ===================================================================

This module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Protocol

from sessionrec.errors import ConfigError

__all__ = ["DEFAULT_MAX_SESSION_LENGTH", "DEFAULT_VALIDATION_FRACTION", "DataContract"]

#: The last clicks a model reads when its data set no ``max_session_length``.
DEFAULT_MAX_SESSION_LENGTH = 50
#: The validation share when neither the dataset nor the training options set one.
DEFAULT_VALIDATION_FRACTION = 0.1


class _HasMetaAndVocab(Protocol):
    meta: dict[str, Any]

    @property
    def vocab(self) -> Any: ...


@dataclass(frozen=True)
class DataContract:
    """The data settings a model was trained under (see the module docstring).

    Attributes:
        max_session_length: the last clicks of a session a model reads (``None``: whole
            sessions in training, :data:`DEFAULT_MAX_SESSION_LENGTH` when recommending).
        validation_fraction: share of the latest training sessions used for selection;
            ``0.0``: none (a fixed epoch count trained on every session).
        time_unit: how timestamps were read (``None``: unknown or no timestamps).
        id_kind: ``"int"`` or ``"str"``, the raw item id type.

    Raises:
        ConfigError: a value outside what is allowed.
    """

    max_session_length: int | None = None
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    time_unit: str | None = None
    id_kind: str = "int"

    def __post_init__(self) -> None:
        length = self.max_session_length
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 1
        ):
            raise ConfigError(
                f"max_session_length must be an integer >= 1 or None, got {length!r}",
                options=("ProtocolConfig.max_session_length",),
            )
        fraction = self.validation_fraction
        if not (isinstance(fraction, int | float) and math.isfinite(fraction)) or not (
            0.0 <= fraction < 1.0
        ):
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {fraction!r}",
                options=("TrainConfig.validation_fraction",),
            )
        if self.id_kind not in ("int", "str"):
            raise ConfigError(f"id_kind must be 'int' or 'str', got {self.id_kind!r}")

    @property
    def inference_max_length(self) -> int:
        """How many of a session's last clicks a model reads when it recommends: the
        data's ``max_session_length``, else :data:`DEFAULT_MAX_SESSION_LENGTH`. PyTorch
        evaluation and the exported ONNX file both cut sessions to it."""
        return self.max_session_length or DEFAULT_MAX_SESSION_LENGTH

    @classmethod
    def of(cls, dataset: _HasMetaAndVocab) -> DataContract:
        """The contract a prepared dataset (or a published benchmark) records.

        Reads ``meta["protocol"]`` (``max_session_length``, ``validation_fraction``) and
        ``meta["report"]["ingest"]["time_unit"]``; the id kind is the vocabulary's.
        Benchmarks without these keys get the defaults.
        """
        meta = dataset.meta or {}
        protocol = meta.get("protocol") or {}
        ingest = (meta.get("report") or {}).get("ingest") or {}
        fraction = protocol.get("validation_fraction")
        return cls(
            max_session_length=protocol.get("max_session_length"),
            validation_fraction=DEFAULT_VALIDATION_FRACTION if fraction is None else fraction,
            time_unit=ingest.get("time_unit"),
            id_kind=dataset.vocab.kind,
        )

    def with_validation_fraction(self, fraction: float | None) -> DataContract:
        """This contract with another validation share (``None``: unchanged)."""
        return self if fraction is None else replace(self, validation_fraction=fraction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataContract:
        """The inverse of :meth:`to_dict`.

        Raises:
            ConfigError: unknown keys or values outside what is allowed.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown data contract keys: {sorted(unknown)}")
        return cls(**d)
