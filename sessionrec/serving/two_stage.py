r"""Two-stage serving for large catalogs: an approximate nearest-neighbour index picks
candidates, an exact graph re-scores them.

Exact scoring reads the whole item table on every call (``N d`` multiply-adds: 2 GB of
memory traffic per session at 5 million items and ``d = 100``). Two-stage serving runs,
per call (``export/README.md``, "Two-stage serving"):

1. the **session graph** (``NAME.session.onnx``): raw ids -> the session vector
   :math:`\mathbf{q} = \sigma \mathbf{s}_h / \lVert \mathbf{s}_h \rVert` (NISER's
   temperature included, so that the exact score of item ``j`` is
   :math:`\mathbf{q} \cdot \mathbf{e}_j`), the session's item indices, ``fallback`` and
   ``unknown_clicks``;
2. the **index** (``NAME.ann.faiss``, faiss ``IndexIVFFlat`` or, from 2 million items,
   ``IndexIVFPQFastScan``; inner product): the ``f (k + s)`` items of largest
   :math:`\mathbf{q} \cdot \mathbf{e}_j` among the ``nprobe`` lists nearest
   :math:`\mathbf{q}` (``s``: the session's clicks kept; ``f``: metadata
   ``ann_candidates_factor``, 1 for the exact order of ``IndexIVFFlat``, 20 for the
   approximate scores of 4-bit codes), plus the session's own items;
3. the **re-scoring graph** (``NAME.rescore.onnx``): the exact scores of those
   candidates, computed as the exact graph computes them (the rows of the same item
   table, the new-item offset, the repeat bonus once per session item, the exclusion of
   seen items), the top ``k`` (ties: lower item index first), the popularity fallback
   and the raw ids.

So the answer is the exact graph's whenever the exact top ``k`` are among the
candidates (scores equal to float rounding, ``tests/test_two_stage.py``). A row whose
candidates cannot fill ``k`` (a catalog barely larger than ``k``, lists too small) is
scored against the whole catalog instead.

faiss is imported only here, only when two-stage files are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.errors import ArtifactError
from sessionrec.serving.files import TwoStageFiles

__all__ = ["SESSION_OUTPUTS", "TwoStage"]

#: The outputs of the session graph.
SESSION_OUTPUTS = ("session_vector", "session_items", "fallback", "unknown_clicks")
_RESCORE_OUTPUTS = ["top_ids", "top_scores"]


class TwoStage:
    """The two graphs and the index of two-stage serving (module docstring).

    Create it with :meth:`load`. Safe to share between threads (onnxruntime's ``run``
    and faiss's ``search`` are; the number of lists searched is set once, at load).

    Attributes:
        metadata: the session graph's ``metadata_props`` (the exported model's, plus
            ``ann_*`` keys: the index and its parameters).
        nprobe: the index lists searched per session.
    """

    def __init__(
        self, session: Any, rescore: Any, index: Any, metadata: dict[str, str], nprobe: int
    ) -> None:
        self._session = session
        self._rescore = rescore
        self._index = index
        self.metadata = metadata
        self.nprobe = nprobe
        self.n_items = int(metadata["n_items"])
        self._width = int(metadata["dim"]) + int(metadata.get("ann_offset_column", "0"))
        # files exported before the key have a flat index, whose order is exact: 1
        self._factor = int(metadata.get("ann_candidates_factor", "1"))

    @classmethod
    def load(
        cls, files: TwoStageFiles, options: Any, nprobe: int | None = None
    ) -> tuple[TwoStage | None, str]:
        """The two-stage search of ``files``, or ``(None, why)`` when it cannot serve:
        faiss is not installed, or the files belong to another export of the model.

        Args:
            files: the verified files (:func:`~sessionrec.serving.files.two_stage_files`).
            options: the ``onnxruntime.SessionOptions`` of both graphs.
            nprobe: index lists searched per session (default: the export's choice,
                metadata ``ann_nprobe``).

        Raises:
            ArtifactError: a file is not loadable.
        """
        try:
            import faiss
        except ImportError:
            return None, "faiss is not installed (pip install 'sessionrec[ann]')"
        import onnxruntime as ort

        session = _ort_session(ort, files.session, options)
        metadata = dict(session.get_modelmeta().custom_metadata_map)
        if metadata.get("model_sha256") != files.model_sha256:
            return None, (
                f"{files.session.name} and the other two-stage files were written by another "
                "export than the model's (export the model again to serve it in two stages)"
            )
        rescore = _ort_session(ort, files.rescore, options)
        try:
            index = faiss.read_index(str(files.index))
        except RuntimeError as exc:
            raise ArtifactError(f"{files.index}: not a loadable faiss index ({exc})") from None
        ivf = faiss.extract_index_ivf(index)
        probes = min(int(metadata["ann_nprobe"]) if nprobe is None else int(nprobe), ivf.nlist)
        ivf.nprobe = probes
        return cls(session, rescore, index, metadata, probes), ""

    def run(
        self, ids: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(top_ids, top_scores, fallback, unknown_clicks)`` of the sessions ``ids``
        (``[B, L]``, padded as the contract says), as the exact graph's outputs (rows
        may differ after their last finite score: clients drop ``-inf`` entries)."""
        vectors, items, fallback, unknown = self._session.run(
            list(SESSION_OUTPUTS), {"item_ids": ids}
        )
        candidates = self._candidates(vectors, items, fallback, k, exclude_seen)
        top_ids, top_scores = self._rescore.run(
            _RESCORE_OUTPUTS,
            {
                "session_vector": vectors,
                "session_items": items,
                "candidates": candidates,
                "k": np.array([k], dtype=np.int64),
                "exclude_seen": np.array([bool(exclude_seen)]),
            },
        )
        return top_ids, top_scores, fallback, unknown

    def _candidates(
        self,
        vectors: np.ndarray,
        items: np.ndarray,
        fallback: np.ndarray,
        k: int,
        exclude_seen: bool,
    ) -> np.ndarray:
        """``[B, C]`` candidate item indices, each row increasing, ``-1`` after its
        last; ``C >= min(k, N)`` so that the re-scoring returns ``min(k, N)`` entries."""
        n = self.n_items
        k = min(k, n)
        known = items >= 0
        needed = k + int(known.sum(axis=1).max(initial=0))  # the seen may be excluded
        wanted = min(n, self._factor * needed)
        found = None
        if needed < n and not fallback.all():
            # the index holds [e_j, b_j] with the offset column, then zero columns up to
            # its dimension: the query [q, 1, 0 ...] ranks by q . e_j + b_j
            query = np.zeros((len(vectors), self._index.d), dtype=np.float32)
            query[:, : vectors.shape[1]] = vectors
            query[:, vectors.shape[1] : self._width] = 1.0
            _, found = self._index.search(query, wanted)
        rows: list[np.ndarray | None] = []  # None: the whole catalog
        for b in range(len(items)):
            if fallback[b]:
                rows.append(np.empty(0, dtype=np.int64))
                continue
            row = None
            if found is not None:
                seen = np.unique(items[b][known[b]])
                row = np.union1d(found[b][found[b] >= 0], seen)
                usable = len(row) - (len(seen) if exclude_seen else 0)
                needed = min(k, n - len(seen)) if exclude_seen else k
                if usable < needed:
                    row = None  # too few candidates: score the whole catalog
            rows.append(row)
        width = max(1, k, *(n if r is None else len(r) for r in rows))
        out = np.full((len(rows), width), -1, dtype=np.int64)
        for b, row in enumerate(rows):
            if row is None:
                out[b, :n] = np.arange(n)
            else:
                out[b, : len(row)] = row
        return out


def _ort_session(ort: Any, path: Path, options: Any) -> Any:
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for corrupt files
        raise ArtifactError(f"{path}: not a loadable ONNX model ({exc})") from None
