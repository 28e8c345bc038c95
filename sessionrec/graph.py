"""Click prefixes -> SR-GNN session graphs, batched as a torch-geometric ``Batch``.

For one session ``s = [s_1, ..., s_n]`` (item indices) the SR-GNN graph (Wu et al.,
AAAI 2019, Sec. 3.2) has one node per distinct item and a directed edge
``s_t -> s_{t+1}`` for every consecutive pair of clicks. With ``A[u, v]`` the weight of
edge ``u -> v`` (1 per distinct edge in the authors' reference code, ``edge_weights=
"binary"``; the number of occurrences with ``edge_weights="count"``), the two normalised
connection matrices are

.. math::

    A^{in}(i, j) = \\frac{A[j, i]}{\\sum_u A[u, i]} \\qquad
    A^{out}(i, j) = \\frac{A[i, j]}{\\sum_v A[i, v]}

i.e. what flows *into* node ``i`` is divided by ``i``'s in-degree, and what ``i`` sends
*out* by its out-degree. Example, ``[1, 2, 3, 2, 4]``: nodes ``1, 2, 3, 4``; edges
``1->2, 2->3, 3->2, 2->4``; ``A^in(2, 1) = A^in(2, 3) = 1/2``, ``A^out(2, 3) =
A^out(2, 4) = 1/2``, every other nonzero entry is 1.

A batch is built for many sessions at once with numpy (sort-unique over ``(session,
item)`` keys), no per-session Python loop. The result is a PyG :class:`Batch` with:

- ``x``: ``int64 [N_nodes]`` item index of each node (nodes of a session are contiguous,
  sorted by item index);
- ``edge_index``: ``int64 [2, E]`` distinct directed edges ``source -> target``;
- ``edge_weight_in``: ``float [E]`` = ``A^in(target, source)``, weight of the message the
  target receives along the edge;
- ``edge_weight_out``: ``float [E]`` = ``A^out(source, target)``, weight of the message
  the source receives from the target in the outgoing direction;
- ``batch``: ``int64 [N_nodes]`` session of each node; ``ptr``: ``[B + 1]`` node offsets;
- ``alias``: ``int64 [N_clicks]`` node of every click position (the reference code's
  ``alias_inputs``); ``click_batch``: ``int64 [N_clicks]`` session of every click;
  ``click_ptr``: ``[B + 1]`` click offsets;
- ``last_node``: ``int64 [B]`` node of each session's last click.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from sessionrec.data.sessions import Samples, lengths_to_offsets
from sessionrec.errors import ConfigError

__all__ = ["EdgeWeights", "session_graph", "session_graph_batch", "graph_arrays"]

EdgeWeights = Literal["binary", "count"]


def graph_arrays(
    items: np.ndarray, offsets: np.ndarray, edge_weights: EdgeWeights = "binary"
) -> dict[str, np.ndarray]:
    """The SR-GNN graphs of a batch of sessions, as numpy arrays (see module docstring).

    Args:
        items: ``int64 [N_clicks]`` item indices, session after session.
        offsets: ``int64 [B + 1]`` session boundaries in ``items``; every session non-empty.
        edge_weights: ``"binary"`` (a repeated transition counts once, as in the authors'
            code) or ``"count"`` (occurrences, as in the paper's Figure 1).
    """
    if edge_weights not in ("binary", "count"):
        raise ConfigError(f"edge_weights must be 'binary' or 'count', got {edge_weights!r}")
    items = np.asarray(items, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n_sessions = len(lengths)
    if np.any(lengths <= 0):
        raise ConfigError("every session of a graph batch needs at least one click")
    if len(items) and items.min() < 0:
        raise ConfigError("item indices must be >= 0 (unknown items are dropped before)")
    click_batch = np.repeat(np.arange(n_sessions, dtype=np.int64), lengths)
    bound = int(items.max()) + 1 if len(items) else 1
    # node = distinct (session, item); np.unique sorts keys, so nodes of a session are
    # contiguous and ordered by item index
    keys, alias = np.unique(click_batch * bound + items, return_inverse=True)
    alias = alias.reshape(-1).astype(np.int64)
    x = keys % bound
    batch = keys // bound
    n_nodes = len(keys)
    node_ptr = lengths_to_offsets(np.bincount(batch, minlength=n_sessions))

    # consecutive clicks of the same session -> directed edges between their nodes
    same = click_batch[1:] == click_batch[:-1]
    src = alias[:-1][same]
    dst = alias[1:][same]
    edge_keys, counts = np.unique(src * n_nodes + dst, return_counts=True)
    src, dst = edge_keys // n_nodes, edge_keys % n_nodes
    weight = np.ones(len(edge_keys)) if edge_weights == "binary" else counts.astype(np.float64)
    in_degree = np.bincount(dst, weights=weight, minlength=n_nodes)
    out_degree = np.bincount(src, weights=weight, minlength=n_nodes)
    return {
        "x": x,
        "edge_index": np.stack([src, dst]),
        "edge_weight_in": weight / in_degree[dst],
        "edge_weight_out": weight / out_degree[src],
        "batch": batch,
        "ptr": node_ptr,
        "alias": alias,
        "click_batch": click_batch,
        "click_ptr": offsets - offsets[0],
        "last_node": alias[offsets[1:] - offsets[0] - 1],
    }


def _to_batch(arrays: dict[str, np.ndarray], num_graphs: int) -> Batch:
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    t["edge_weight_in"] = t["edge_weight_in"].float()
    t["edge_weight_out"] = t["edge_weight_out"].float()
    out = Batch(**t)
    out._num_graphs = num_graphs
    return out


def session_graph_batch(samples: Samples, edge_weights: EdgeWeights = "binary") -> Batch:
    """The graphs of every prefix in ``samples`` as one PyG :class:`Batch`."""
    arrays = graph_arrays(samples.items, samples.offsets, edge_weights)
    return _to_batch(arrays, len(samples))


def session_graph(clicks: np.ndarray | list[int], edge_weights: EdgeWeights = "binary") -> Data:
    """The graph of one session as a PyG :class:`Data` (for inspection and tests).

    Also carries the dense ``A_in`` and ``A_out`` matrices ``[n_nodes, n_nodes]``.
    """
    clicks = np.asarray(clicks, dtype=np.int64)
    arrays = graph_arrays(clicks, np.array([0, len(clicks)]), edge_weights)
    n = len(arrays["x"])
    a_in = np.zeros((n, n))
    a_out = np.zeros((n, n))
    src, dst = arrays["edge_index"]
    a_in[dst, src] = arrays["edge_weight_in"]
    a_out[src, dst] = arrays["edge_weight_out"]
    data = Data(
        **{
            k: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in arrays.items()
            if k not in ("batch", "ptr", "click_batch", "click_ptr")
        }
    )
    data.edge_weight_in = data.edge_weight_in.float()
    data.edge_weight_out = data.edge_weight_out.float()
    data.A_in = torch.from_numpy(a_in)
    data.A_out = torch.from_numpy(a_out)
    data.num_nodes = n
    return data
