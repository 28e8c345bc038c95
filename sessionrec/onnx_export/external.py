"""Large constants in a data file beside the ONNX file (ONNX *external data*).

A protobuf message, and so an ONNX file, holds at most 2 GiB: the item table of a
catalog of 5 million items at ``d = 100`` (2.0 GB in fp32) does not fit. Above a size
(:data:`EXTERNAL_DATA_MIN_BYTES` of item table) the export writes every large constant
(:data:`EXTERNAL_TENSOR_MIN_BYTES` and up: the item table, the id table, the popularity
ranking) to ``NAME.onnx.data`` beside ``NAME.onnx``
(:func:`sessionrec.serving.files.data_file_name`), which holds only their references
(``data_location = EXTERNAL``, ``location``, ``offset``, ``length``): the standard ONNX
layout every onnxruntime binding loads.

- Each constant starts at a multiple of :data:`ALIGNMENT` (64 KiB, the mapping
  granularity of every platform), so onnxruntime maps the file instead of copying it: a
  graph that only gathers rows (the two-stage graphs) reads the pages it touches.
- The constants are written straight from the model's numpy arrays, in blocks of about
  16 MiB (:meth:`ExternalData.write`): no protobuf copy of the table is ever made.
- Several graphs may share one data file (the exact graph and the two-stage graphs): a
  constant added twice under one name is stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

__all__ = [
    "ALIGNMENT",
    "EXTERNAL_DATA_MIN_BYTES",
    "EXTERNAL_TENSOR_MIN_BYTES",
    "ExternalData",
]

#: The item table size (bytes, in its stored dtype) from which the export writes a data
#: file: below it the file stays one self-contained ``.onnx`` (as every Diginetica-size
#: model); above it the table is never copied into a protobuf message.
EXTERNAL_DATA_MIN_BYTES = 256 * 2**20
#: Constants of this size and more go to the data file (the rest stays in the graph).
EXTERNAL_TENSOR_MIN_BYTES = 2**20
#: Offsets of the constants in the data file are multiples of this (bytes).
ALIGNMENT = 2**16
_BLOCK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class _Entry:
    array: np.ndarray  # the constant (any strides: written block by block)
    offset: int  # bytes from the start of the data file
    nbytes: int


class ExternalData:
    """The constants of one data file, in the order they were added.

    Args:
        location: the data file's name, relative to the ONNX file's directory (what the
            references hold).
        min_bytes: the smallest constant that goes to the file (default
            :data:`EXTERNAL_TENSOR_MIN_BYTES`).
    """

    def __init__(self, location: str, min_bytes: int | None = None) -> None:
        self.location = location
        self.min_bytes = EXTERNAL_TENSOR_MIN_BYTES if min_bytes is None else min_bytes
        self._entries: dict[str, _Entry] = {}
        self._end = 0

    @property
    def nbytes(self) -> int:
        """The size of the data file (bytes)."""
        return self._end

    def tensor(self, name: str, array: np.ndarray) -> TensorProto:
        """A reference to ``array`` as the constant ``name`` (stored once per name).

        ``array`` is kept, not copied, until :meth:`write` (a transposed view is written
        in its logical, C order).

        Raises:
            ValueError: ``name`` was added before with another dtype or shape.
        """
        entry = self._entries.get(name)
        if entry is None:
            offset = -(-self._end // ALIGNMENT) * ALIGNMENT
            entry = _Entry(array, offset, int(array.nbytes))
            self._entries[name] = entry
            self._end = offset + entry.nbytes
        elif entry.array.shape != array.shape or entry.array.dtype != array.dtype:
            raise ValueError(
                f"constant {name!r} added twice with different shapes or dtypes "
                f"({entry.array.shape} {entry.array.dtype} vs {array.shape} {array.dtype})"
            )
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", self.location),
            ("offset", entry.offset),
            ("length", entry.nbytes),
        ):
            field = tensor.external_data.add()
            field.key, field.value = key, str(value)
        return tensor

    def write(self, path: str | Path) -> str:
        """Write the data file to ``path``; returns its SHA-256 (hex).

        Memory: one block of about 16 MiB beyond the arrays themselves.
        """
        digest = hashlib.sha256()
        position = 0
        with open(path, "wb") as fh:
            for entry in self._entries.values():
                padding = bytes(entry.offset - position)
                fh.write(padding)
                digest.update(padding)
                for block in _blocks(entry.array):
                    fh.write(block.data)
                    digest.update(block.data)
                position = entry.offset + entry.nbytes
        return digest.hexdigest()


def _blocks(array: np.ndarray):
    """``array`` as C-contiguous blocks of whole leading-axis slices (~16 MiB each)."""
    if array.ndim == 0 or array.shape[0] == 0:
        yield np.ascontiguousarray(array).reshape(-1)
        return
    row_bytes = max(1, array.nbytes // array.shape[0])
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, array.shape[0], step):
        yield np.ascontiguousarray(array[start : start + step]).reshape(-1)
