"""``SessionRecommender``: next-item recommendations from an exported ONNX file.

This module imports numpy and onnxruntime only (never torch, torch_geometric or polars),
so a service that serves recommendations needs neither PyTorch nor the training stack::

    from sessionrec import SessionRecommender

    rec = SessionRecommender.load("model.onnx", threads=1)
    for item_id, score in rec.next_items([1001, 1002], k=10):
        ...

The file's contract (inputs, outputs, padding, fallback, metadata) is ``export/README.md``.
A :class:`SessionRecommender` is safe to share between threads: each call builds its own
input arrays and ``onnxruntime.InferenceSession.run`` is thread-safe.

A file exported with two-stage serving (``NAME.session.onnx``, ``NAME.rescore.onnx`` and
``NAME.ann.faiss`` beside it: large catalogs) is served in two stages
(:mod:`sessionrec.serving.two_stage`: candidates from an index, then exact re-scoring)
when faiss is installed, unless ``exact=True``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sessionrec.artifacts import read_manifest
from sessionrec.errors import ArtifactError, ConfigError
from sessionrec.serving.files import CONTRACTS, ModelFiles, two_stage_files, verified_model_files
from sessionrec.serving.two_stage import TwoStage

__all__ = ["Recommendation", "NextItems", "SessionRecommender"]

# CONTRACTS (the contracts read: sessionrec.onnx/1 and /2) are sessionrec.serving.files';
# the outputs read (= sessionrec.onnx_export.OUTPUT_*);
# "unknown_clicks" is absent from files exported before sessionrec 0.2.0
_OUTPUTS = ("top_ids", "top_scores", "fallback")
_OUTPUT_UNKNOWN = "unknown_clicks"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Recommendation(NamedTuple):
    """One recommended item: its raw id (as in the training data) and its score."""

    item_id: int | str
    score: float


@dataclass(frozen=True)
class NextItems:
    """The top-k items for one session, best first.

    Iterating yields :class:`Recommendation` ``(item_id, score)`` pairs.

    Attributes:
        items: the recommendations. Items excluded as already seen never appear, so there
            are fewer than ``k`` when ``k`` exceeds the unseen catalog.
        fallback: ``True`` when the session had no known item and the items are the most
            popular ones of the training data (score = share of the training clicks).
        unknown_clicks: how many of the session's clicks were ids the model does not know
            (ignored; padding is not counted), or ``None`` when the file does not report
            it (exported before sessionrec 0.2.0: export it again).
    """

    items: tuple[Recommendation, ...]
    fallback: bool
    unknown_clicks: int | None = None

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Recommendation:
        return self.items[i]

    @property
    def ids(self) -> list[int | str]:
        return [r.item_id for r in self.items]

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.items]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"items": [{"item_id", "score"}, ...], "fallback": bool,
        "unknown_clicks": int | None}``."""
        return {
            "items": [{"item_id": r.item_id, "score": r.score} for r in self.items],
            "fallback": self.fallback,
            "unknown_clicks": self.unknown_clicks,
        }


class SessionRecommender:
    """Runs an exported sessionrec ONNX file with onnxruntime.

    Create it with :meth:`load`. Attributes: ``path``, ``metadata`` (the file's
    ``metadata_props``), ``n_items``, ``id_kind`` (``"int"`` or ``"str"``),
    ``max_session_length``, ``counts_unknown_clicks`` (``False`` for a file exported
    before sessionrec 0.2.0, whose results have ``unknown_clicks=None``), ``mode``
    (``"exact"``, or ``"two_stage"``: candidates from the index, exact re-scoring),
    ``nprobe`` (the index lists searched per session in two stages, else ``None``).
    """

    def __init__(
        self,
        session: Any,
        path: Path,
        metadata: dict[str, str],
        two_stage: TwoStage | None = None,
    ) -> None:
        self._session = session
        self._two_stage = two_stage
        self.mode = "exact" if two_stage is None else "two_stage"
        self.nprobe: int | None = None if two_stage is None else two_stage.nprobe
        self.path = path
        self.metadata = metadata
        self.id_kind: str = metadata["id_kind"]
        self.n_items = int(metadata["n_items"])
        self.max_session_length = int(metadata["max_session_length"])
        self._pad: int | str = -1 if self.id_kind == "int" else ""
        self._dtype: Any = np.int64 if self.id_kind == "int" else object
        names = {o.name for o in session.get_outputs()} if two_stage is None else {_OUTPUT_UNKNOWN}
        self.counts_unknown_clicks = _OUTPUT_UNKNOWN in names
        self._outputs = [*_OUTPUTS, _OUTPUT_UNKNOWN] if self.counts_unknown_clicks else [*_OUTPUTS]

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        threads: int | None = None,
        *,
        require_manifest: bool = False,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> SessionRecommender:
        """Load an exported model.

        When the file's directory has a ``manifest.json`` (``sessionrec export`` writes
        one), every file read is checked against it first (the ``.onnx``, its data file
        ``NAME.onnx.data`` and the two-stage files when there are): a modified file, or
        one of a contract version this sessionrec does not read, is refused. Contracts
        read: ``sessionrec.onnx/1`` and ``/2``.

        Args:
            path: the ``.onnx`` file written by ``sessionrec export``, or a directory
                holding it as ``model.onnx``.
            threads: onnxruntime intra-op threads per call (``None``: onnxruntime's
                default, one per physical core). Services that run many calls in parallel
                usually want ``1``.
            require_manifest: refuse a file without a manifest beside it (a service that
                must never run an unverified file).
            exact: score every item on every call even when the export has two-stage
                files (which are then not read).
            nprobe: with two-stage files, the index lists searched per session (default:
                the export's choice, metadata ``ann_nprobe``): more finds more of the
                exact top-k and costs more.

        Raises:
            ArtifactError: no such file, not a sessionrec ONNX model, or a file does not
                match its manifest.
            ConfigError: ``threads`` or ``nprobe`` is not an integer >= 1.
        """
        import onnxruntime as ort

        path = Path(path)
        if path.is_dir():
            path = path / "model.onnx"
        if not path.is_file():
            raise ArtifactError(f"{path}: no such model file (export one with `sessionrec export`)")
        manifest = read_manifest(path.parent)  # read once: presence, then verification
        if manifest is None and require_manifest:
            raise ArtifactError(
                f"{path}: no manifest.json beside it to verify it against (require_manifest=True); "
                "deploy the manifest written by `sessionrec export` with the file"
            )
        files = verified_model_files(path, manifest)
        for name, value in (("threads", threads), ("nprobe", nprobe)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, Integral) or value < 1
            ):
                raise ConfigError(
                    f"{name} must be an integer >= 1 or None, got {value!r}",
                    options=(f"SessionRecommender.load.{name}",),
                )
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # the file is portable (standard ops only); fusions for this CPU happen here
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        two_stage = None if exact else _two_stage(files, path, options, nprobe)
        if two_stage is not None:
            return cls(None, path, two_stage.metadata, two_stage)
        try:
            session = ort.InferenceSession(
                str(files.model), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for corrupt files
            raise ArtifactError(f"{path}: not a loadable ONNX model ({exc})") from None
        metadata = dict(session.get_modelmeta().custom_metadata_map)
        if metadata.get("contract") not in CONTRACTS:
            raise ArtifactError(
                f"{path}: not a sessionrec model of contract {' or '.join(map(repr, CONTRACTS))} "
                f"(found contract {metadata.get('contract')!r}); export it with `sessionrec export`"
            )
        for key in ("id_kind", "n_items", "max_session_length"):
            if key not in metadata:
                raise ArtifactError(f"{path}: metadata lacks {key!r}; export the model again")
        outputs = [o.name for o in session.get_outputs()]
        if not set(_OUTPUTS) <= set(outputs):
            raise ArtifactError(
                f"{path}: outputs {outputs}, a sessionrec model has {list(_OUTPUTS)}; "
                "export the model again"
            )
        return cls(session, path, metadata)

    def __repr__(self) -> str:
        return f"SessionRecommender({str(self.path)!r}, {self.n_items} {self.id_kind} items)"

    # -- input checking -------------------------------------------------------------------
    def _check_id(self, value: Any, where: str) -> int | str:
        if self.id_kind == "int":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
                raise ConfigError(
                    f"{where}: item ids of this model are integers, got "
                    f"{type(value).__name__} {value!r}"
                )
            value = int(value)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ConfigError(f"{where}: item id {value} does not fit in int64")
            return value
        if not isinstance(value, str):
            raise ConfigError(
                f"{where}: item ids of this model are strings, got {type(value).__name__} {value!r}"
            )
        return value

    def _session_ids(self, clicks: Any, where: str) -> np.ndarray:
        """``clicks`` as a 1-D int64 (or object, for string ids) array, checked."""
        if isinstance(clicks, (str, bytes)) or not isinstance(clicks, (Sequence, np.ndarray)):
            raise ConfigError(
                f"{where}: a session is a list of item ids, got {type(clicks).__name__}"
            )
        if isinstance(clicks, np.ndarray):
            if clicks.ndim != 1:
                raise ConfigError(
                    f"{where}: a session is 1-D, got an array of shape {clicks.shape}"
                )
            if self.id_kind == "int" and clicks.dtype.kind == "i":
                return clicks.astype(np.int64, copy=False)
            clicks = clicks.tolist()
        # fast path: plain ints (or strs); anything else is checked id by id
        plain = int if self.id_kind == "int" else str
        if not all(type(v) is plain for v in clicks):
            clicks = [self._check_id(v, f"{where}[{i}]") for i, v in enumerate(clicks)]
        try:
            return np.array(clicks, dtype=self._dtype)
        except OverflowError:
            for i, v in enumerate(clicks):
                self._check_id(v, f"{where}[{i}]")
            raise  # pragma: no cover (one of the ids does not fit and raised above)

    def validate_session(self, clicks: Any, where: str = "clicks") -> np.ndarray:
        """``clicks`` checked against the model's id kind, as the array :meth:`next_items`
        reads: 1-D ``int64`` for integer ids, ``object`` (``str``) for string ids.

        A service checks each request with it before joining sessions of several requests
        in one :meth:`next_items_batch` call, so that a bad id fails its own request only.

        Args:
            clicks: a list (or 1-D array) of raw item ids.
            where: how the message names the session (``"clicks"``, ``"sessions[3]"``).

        Raises:
            ConfigError: not a list of ids of the model's kind (the message names the
                first bad id by its position), or an integer id outside int64.
        """
        return self._session_ids(clicks, where)

    def validate_options(self, k: Any, exclude_seen: Any) -> int:
        """``k`` as an ``int`` after checking ``k`` and ``exclude_seen`` as
        :meth:`next_items` does (``k >= 1`` an integer, ``exclude_seen`` a bool).

        Raises:
            ConfigError: naming the bad value.
        """
        return self._check_options(k, exclude_seen)

    @staticmethod
    def _check_options(k: Any, exclude_seen: Any) -> int:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, Integral):
            raise ConfigError(f"k must be a positive integer, got {type(k).__name__} {k!r}")
        if k <= 0:
            raise ConfigError(f"k must be >= 1, got {k}")
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise ConfigError(f"exclude_seen must be True or False, got {exclude_seen!r}")
        return int(min(k, _INT64_MAX))

    # -- inference ------------------------------------------------------------------------
    def _run(self, batch: list[np.ndarray], k: int, exclude_seen: bool) -> list[NextItems]:
        if len(batch) == 1 and len(batch[0]):
            ids = batch[0][None, :]
        else:  # padded with the padding id (the contract): [B, max(1, longest)]
            width = max(1, max(len(s) for s in batch))
            ids = np.full((len(batch), width), self._pad, dtype=self._dtype)
            for row, clicks in zip(ids, batch):
                row[: len(clicks)] = clicks
        if self._two_stage is not None:
            top_ids, top_scores, fallback, *rest = self._two_stage.run(ids, k, exclude_seen)
        else:
            top_ids, top_scores, fallback, *rest = self._session.run(
                self._outputs,
                {
                    "item_ids": ids,
                    "k": np.array([k], dtype=np.int64),
                    "exclude_seen": np.array([bool(exclude_seen)]),
                },
            )
        keep = np.isfinite(top_scores)  # -inf: excluded (seen) items past the unseen ones
        unknown = rest[0].tolist() if rest else [None] * len(batch)
        results = []
        for b in range(len(batch)):
            row_keep = keep[b]
            results.append(
                NextItems(
                    tuple(
                        Recommendation(i, s)
                        for i, s in zip(
                            top_ids[b][row_keep].tolist(), top_scores[b][row_keep].tolist()
                        )
                    ),
                    bool(fallback[b]),
                    unknown[b],
                )
            )
        return results

    def next_items(
        self,
        clicks: Sequence[int] | Sequence[str] | np.ndarray,
        k: int = 20,
        exclude_seen: bool = True,
    ) -> NextItems:
        """The ``k`` items most likely to be clicked next after ``clicks``.

        Args:
            clicks: the session so far, oldest first: raw item ids as in the training data.
                Unknown ids are ignored (and counted: ``NextItems.unknown_clicks``); only
                the last ``max_session_length`` known clicks count. An empty or
                all-unknown session gets the popularity fallback.
            k: how many items (>= 1; more than the catalog gives the whole catalog).
            exclude_seen: leave out items already in the session.

        Raises:
            ConfigError: ``clicks`` is not a list of ids of the model's kind, ``k < 1``,
                ``exclude_seen`` not a bool.
        """
        k = self._check_options(k, exclude_seen)
        return self._run([self._session_ids(clicks, "clicks")], k, exclude_seen)[0]

    def next_items_batch(
        self,
        sessions: Sequence[Sequence[int] | Sequence[str] | np.ndarray],
        k: int = 20,
        exclude_seen: bool = True,
    ) -> list[NextItems]:
        """:meth:`next_items` of many sessions in one onnxruntime call (same order)."""
        k = self._check_options(k, exclude_seen)
        if isinstance(sessions, (str, bytes)) or not isinstance(sessions, (Sequence, np.ndarray)):
            raise ConfigError(f"sessions must be a list of sessions, got {type(sessions).__name__}")
        batch = [self._session_ids(s, f"sessions[{i}]") for i, s in enumerate(sessions)]
        if not batch:
            return []
        return self._run(batch, k, exclude_seen)


def _two_stage(files: ModelFiles, path: Path, options: Any, nprobe: int | None) -> TwoStage | None:
    """The two-stage search of the model ``path`` when its export has one that can serve
    (faiss installed, the files of the same export), else ``None`` (with a warning when
    there are two-stage files that cannot serve)."""
    found = two_stage_files(files, path)
    if found is None:
        return None
    two_stage, why = TwoStage.load(found, options, nprobe)
    if two_stage is None:
        warnings.warn(
            f"{path}: two-stage serving is not used, {why}; serving exact scoring, which "
            "reads the whole item table on every call",
            UserWarning,
            stacklevel=3,
        )
    return two_stage
