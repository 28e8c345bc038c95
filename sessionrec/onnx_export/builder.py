"""The op builder the export writes its graph with: :meth:`GraphBuilder.op` appends one
:mod:`onnx` node, :meth:`GraphBuilder.const` one initializer (a reference into the data
file for a large one, :mod:`~sessionrec.onnx_export.external`), and each returns the name
of what it made, so a graph reads as nested calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sessionrec.onnx_export.external import ExternalData

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Tiny builder: ``op()`` appends a node and returns its output name(s).

    Names are unique within the graph (``base``, ``base_1``, ...), so the same code
    builds the same graph, name for name. Small unnamed constants with equal dtype,
    shape and bytes are one initializer.

    Args:
        external: the data file that named constants of its ``min_bytes`` and more
            (numbers, not strings) go to; ``None``: every constant is in the graph.

    Attributes:
        nodes: the nodes, in the order they were added (a topological order).
        initializers: the constants, in the order they were added.
    """

    def __init__(self, external: ExternalData | None = None) -> None:
        self.external = external
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def const(self, value: Any, name: str | None = None, dtype: Any = None) -> str:
        """An initializer; small unnamed constants are shared.

        ``value`` is anything :func:`numpy.asarray` takes (float64 is stored as float32;
        an object array holds strings; a view, such as a transposed table, is not copied
        when it goes to the data file); ``name`` names a large constant (an item table),
        which is never shared.
        """
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        named = name is not None
        if name is None:
            key = (array.dtype.str, array.tobytes(), array.shape)
            if array.dtype != object and key in self._consts:
                return self._consts[key]
            name = self._fresh("const")
            if array.dtype != object:
                self._consts[key] = name
        else:
            name = self._fresh(name)
        if (
            named
            and self.external is not None
            and array.dtype != object
            and array.nbytes >= self.external.min_bytes
        ):
            tensor = self.external.tensor(name, array)
        elif array.dtype == object:  # strings
            tensor = helper.make_tensor(
                name, TensorProto.STRING, array.shape, [s.encode() for s in array.ravel()]
            )
        else:
            tensor = numpy_helper.from_array(array, name)
        self.initializers.append(tensor)
        return name

    def op(
        self,
        op_type: str,
        *inputs: str,
        outputs: int = 1,
        name: str | None = None,
        domain: str = "",
        out_name: str | None = None,
        **attrs: Any,
    ) -> Any:
        """Append an ``op_type`` node over ``inputs`` (names) with attributes ``attrs``.

        Args:
            outputs: how many outputs the node has.
            name: the base of the output and node names (default: ``op_type`` in lower
                case).
            domain: the operator set (``"ai.onnx.ml"`` for ``LabelEncoder``).
            out_name: the exact name of a graph output (its name is part of the
                contract).

        Returns:
            The output's name, or a list of ``outputs`` names.
        """
        base = name or op_type.lower()
        if out_name is not None:  # a graph output: its name is part of the contract
            self._names.add(out_name)
            outs = [out_name]
        else:
            outs = [self._fresh(base if outputs == 1 else f"{base}_{i}") for i in range(outputs)]
        node_name = self._fresh(f"{base}_node")
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=node_name, domain=domain, **attrs)
        )
        return outs[0] if outputs == 1 else outs
