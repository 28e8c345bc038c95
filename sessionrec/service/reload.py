"""Hot reload: the served model follows its model directory, verified before the swap.

``sessionrec fit --out DIR`` and ``sessionrec export`` publish a model by replacing
``DIR/manifest.json`` atomically (the commit point of
:func:`sessionrec.artifacts.commit_files`). :class:`ModelWatcher` polls the manifest's
identity (inode, size, modification time), and when it changed loads the new model in a
worker thread with :meth:`SessionRecommender.load`, which checks every file against the
manifest (SHA-256), then answers one session with it. Only a model that passed both
replaces the served one, by swapping one reference: a request already running finishes
on the model it started with, the next one gets the new model, none fails. A model that
fails is logged and counted, the previous one keeps serving, and the load is tried again
at the next change of the manifest (or after ``retry_s``: a publication caught half-way
finishes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sessionrec.artifacts import MANIFEST, file_sha256, read_manifest
from sessionrec.recommender import SessionRecommender
from sessionrec.serving.files import typed_metadata

__all__ = ["ServedModel", "ModelWatcher", "load_served_model"]

log = logging.getLogger("sessionrec.serve")


@dataclass(frozen=True)
class ServedModel:
    """A loaded, verified model and what identifies it.

    Attributes:
        rec: the recommender.
        version: the first 12 hex digits of the ``.onnx`` file's SHA-256 (from the
            manifest when there is one: the file was verified against it).
        loaded_at: when it was loaded (Unix seconds).
        signature: the identity of the file watched for changes (manifest, or the
            ``.onnx`` file without one): ``(inode, size, mtime_ns)``.
    """

    rec: SessionRecommender
    version: str
    loaded_at: float
    signature: tuple[int, int, int] | None

    def describe(self) -> dict[str, Any]:
        """The model as ``/health`` shows it: typed metadata (numbers as numbers, the
        JSON-valued keys decoded), the version, how it serves."""
        return {
            "version": self.version,
            "loaded_at": self.loaded_at,
            "path": str(self.rec.path),
            "n_items": self.rec.n_items,
            "id_kind": self.rec.id_kind,
            "max_session_length": self.rec.max_session_length,
            "mode": self.rec.mode,
            "nprobe": self.rec.nprobe,
            "metadata": typed_metadata(self.rec.metadata),
        }


def model_file(path: str | os.PathLike[str]) -> Path:
    """The ``.onnx`` file of ``path`` (a file, or a directory holding ``model.onnx``)."""
    path = Path(path)
    return path / "model.onnx" if path.is_dir() else path


def watched_signature(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """The identity of what a publication replaces: the manifest beside the model file
    (or the file itself without one); ``None`` when neither exists."""
    file = model_file(path)
    for candidate in (file.parent / MANIFEST, file):
        try:
            st = candidate.stat()
        except OSError:
            continue
        return st.st_ino, st.st_size, st.st_mtime_ns
    return None


def _listed_version(path: str | os.PathLike[str]) -> str | None:
    """The version the manifest lists for the model file now (``None``: no manifest,
    or the file is not listed)."""
    file = model_file(path)
    try:
        manifest = read_manifest(file.parent)
    except Exception:  # a manifest being replaced, or broken: the load will say
        return None
    entry = None if manifest is None else manifest["files"].get(file.name)
    return None if entry is None else str(entry["sha256"])[:12]


def load_served_model(path: str | os.PathLike[str], **load_options: Any) -> ServedModel:
    """Load and verify the model of ``path``, then answer one session with it.

    Args:
        path: the ``.onnx`` file or its directory.
        **load_options: :meth:`SessionRecommender.load`'s keywords (``threads``,
            ``require_manifest``, ``exact``, ``nprobe``).

    Raises:
        ArtifactError, ConfigError: as :meth:`SessionRecommender.load`.
    """
    signature = watched_signature(path)  # before loading: a later change is seen again
    rec = SessionRecommender.load(path, **load_options)
    rec.next_items([], k=1)  # the popularity fallback runs the whole graph once
    version = _listed_version(path) or file_sha256(model_file(path))[:12]
    return ServedModel(rec, version, time.time(), signature)


class ModelWatcher:
    """Keeps :attr:`current` the newest model of ``path`` that loads and verifies.

    Args:
        path: the served ``.onnx`` file or its directory.
        first: the model already loaded from it.
        interval_s: how often the manifest is looked at (seconds, > 0).
        retry_s: after a failed load, try the same publication again after this long.
        on_reload: called with ``("ok" | "failed", ServedModel | None)`` after every
            attempt (metrics, logs).
        **load_options: :meth:`SessionRecommender.load`'s keywords.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        first: ServedModel,
        interval_s: float = 1.0,
        retry_s: float = 10.0,
        on_reload: Callable[[str, ServedModel | None], None] | None = None,
        **load_options: Any,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.path = Path(path)
        self.current = first
        self.interval_s = interval_s
        self.retry_s = retry_s
        self._on_reload = on_reload
        self._load_options = load_options
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching (call from within the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def check_now(self) -> bool:
        """Load the model again if its manifest changed; ``True`` when it was swapped."""
        signature = watched_signature(self.path)
        if signature is None or signature == self.current.signature:
            return False
        if _listed_version(self.path) == self.current.version:  # other files changed
            self.current = replace(self.current, signature=signature)
            return False
        try:
            new = await asyncio.to_thread(load_served_model, self.path, **self._load_options)
        except Exception as exc:  # any failure keeps the served model
            log.error(
                "the model published in %s was not loaded, still serving %s: %s",
                self.path,
                self.current.version,
                exc,
            )
            if self._on_reload is not None:
                self._on_reload("failed", None)
            raise
        old, self.current = self.current, new
        log.info("serving model %s (was %s), from %s", new.version, old.version, self.path)
        if self._on_reload is not None:
            self._on_reload("ok", new)
        return True

    async def _watch(self) -> None:
        failed: tuple[int, int, int] | None = None
        failed_at = 0.0
        while True:
            await asyncio.sleep(self.interval_s)
            signature = watched_signature(self.path)
            if signature == failed and time.monotonic() - failed_at < self.retry_s:
                continue
            try:
                await self.check_now()
                failed = None
            except Exception:
                failed, failed_at = signature, time.monotonic()
