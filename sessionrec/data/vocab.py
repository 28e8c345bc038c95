"""Item vocabulary: raw item ids (int or string, as given) <-> contiguous indices.

Index ``i`` is the ``i``-th id of :attr:`ItemVocab.ids`. The vocabulary is saved with every
dataset and model as JSON (never pickle), so ids survive a round trip exactly.

This module imports numpy only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from sessionrec.errors import ArtifactError, ConfigError

__all__ = ["ItemVocab"]

IdKind = Literal["int", "str"]
_FORMAT = "sessionrec.item-vocab/1"


class ItemVocab:
    """Raw item ids in index order.

    Args:
        ids: unique raw ids; index ``i`` maps to ``ids[i]``. Integers are kept as int64,
            anything else as ``str``.
    """

    def __init__(self, ids: Sequence[int] | Sequence[str] | np.ndarray) -> None:
        array = np.asarray(ids)
        if array.ndim != 1:
            raise ConfigError(f"ItemVocab: ids must be 1-D, got shape {array.shape}")
        if array.dtype.kind in "iu":
            self.kind: IdKind = "int"
            self.ids = array.astype(np.int64)
        elif array.dtype.kind in "US" or array.dtype == object or len(array) == 0:
            self.kind = "str" if len(array) else "int"
            self.ids = array.astype(str).astype(object) if len(array) else array.astype(np.int64)
        else:
            raise ConfigError(
                f"ItemVocab: item ids must be integers or strings, got dtype {array.dtype}"
            )
        self._index = {v: i for i, v in enumerate(self.ids.tolist())}
        if len(self._index) != len(self.ids):
            raise ConfigError("ItemVocab: item ids must be unique")

    @classmethod
    def from_sorted_unique(cls, ids: Iterable[int] | Iterable[str]) -> ItemVocab:
        """Vocabulary of the sorted unique ids (a deterministic order)."""
        return cls(np.unique(np.asarray(list(ids))))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, raw_id: object) -> bool:
        return raw_id in self._index

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ItemVocab)
            and self.kind == other.kind
            and len(self) == len(other)
            and bool(np.all(self.ids == other.ids))
        )

    def __repr__(self) -> str:
        return f"ItemVocab({len(self)} {self.kind} ids)"

    def index_of(self, raw_ids: Iterable[object], unknown: int = -1) -> np.ndarray:
        """Indices of ``raw_ids`` (int64); ids not in the vocabulary get ``unknown``."""
        get = self._index.get
        return np.fromiter((get(r, unknown) for r in raw_ids), dtype=np.int64)

    def id_of(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """Raw ids at ``indices``."""
        return self.ids[np.asarray(indices, dtype=np.int64)]

    # -- persistence ------------------------------------------------------------------
    def to_json(self) -> dict[str, object]:
        return {"format": _FORMAT, "kind": self.kind, "ids": self.ids.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, object], source: str = "vocabulary") -> ItemVocab:
        if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
            raise ArtifactError(f"{source}: not a sessionrec item vocabulary ({_FORMAT})")
        ids = obj.get("ids")
        kind = obj.get("kind")
        if not isinstance(ids, list) or kind not in ("int", "str"):
            raise ArtifactError(f"{source}: malformed item vocabulary")
        if kind == "int":
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
                raise ArtifactError(f"{source}: kind 'int' but some ids are not integers")
            return cls(np.asarray(ids, dtype=np.int64))
        return cls(np.asarray([str(v) for v in ids], dtype=object))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON atomically (a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json()), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ItemVocab:
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"{path}: item vocabulary not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: item vocabulary is not valid JSON ({exc})") from None
        return cls.from_json(obj, str(path))
