"""Artifact manifests: what a directory of sessionrec files holds, and proof it is unchanged.

Every directory sessionrec writes models into (``sessionrec train --out``, and the
directory of an exported ``.onnx`` file) has a ``manifest.json``::

    {
      "manifest_version": 1,
      "sessionrec_version": "0.1.0",
      "files": {
        "model.pt":   {"format": "sessionrec.model/1", "sha256": "9f2c...", "bytes": 17240511},
        "model.onnx": {"format": "sessionrec.onnx/1",  "sha256": "41d0...", "bytes": 17391204}
      }
    }

Loading a model verifies the files it reads against the manifest (SHA-256 and format)
and refuses a missing, tampered or incompatible file with an :class:`ArtifactError` that
says which file and what to do. Files the manifest does not list (logs, ``checkpoint.pt``,
your own notes) are left alone.

Writes are crash-safe (:func:`commit_files`): the new files are written under temporary
names and flushed to disk, then the manifest is replaced atomically (the commit point),
then the files are renamed into place. A process killed before the commit leaves the
previous files and manifest untouched; killed after it, the readers find each new file
either in place or still under its temporary name (``.NAME.pending``), which
:func:`verified_path` checks and uses. The next commit in the directory finishes or
removes leftovers.

This module is torch-free (standard library only): the serving runtime imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sessionrec.errors import ArtifactError
from sessionrec.version import __version__

__all__ = [
    "MANIFEST",
    "MANIFEST_VERSION",
    "commit_files",
    "file_sha256",
    "publish_directory",
    "read_manifest",
    "verified_path",
    "verified_paths",
]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _pending(directory: Path, name: str) -> Path:
    return directory / f".{name}.pending"


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The directory's manifest (``None`` when it has none), checked for shape and version."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); the directory was damaged") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{path}: not a sessionrec manifest (no 'files' table)")
    version = manifest.get("manifest_version")
    if version != MANIFEST_VERSION:
        raise ArtifactError(
            f"{path}: manifest version {version!r}, this sessionrec reads version "
            f"{MANIFEST_VERSION}; use the sessionrec that wrote it, or retrain"
        )
    for name, entry in manifest["files"].items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("format"), str)
        ):
            raise ArtifactError(f"{path}: the entry of {name!r} lacks 'sha256' or 'format'")
    return manifest


def verified_path(
    directory: str | os.PathLike[str],
    name: str,
    fmt: str,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """The path of ``directory/name`` after checking it against the manifest
    (:func:`verified_paths` for one file)."""
    return verified_paths(directory, {name: fmt}, manifest)[name]


def verified_paths(
    directory: str | os.PathLike[str],
    formats: Mapping[str, str],
    manifest: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """The paths of the files ``formats`` names, each checked against the manifest (read
    once).

    Args:
        directory: the artifact directory.
        formats: file name -> the format this reader understands (e.g.
            ``"sessionrec.model/1"``).
        manifest: the directory's manifest if the caller has read it already
            (:func:`read_manifest`); else it is read here.

    Returns:
        name -> ``directory/name``, or its ``.pending`` twin when a commit was interrupted
        after its manifest was written (the twin then holds the committed bytes).

    Raises:
        ArtifactError: no manifest, a file is not listed, is missing, has another format,
            or its SHA-256 differs from the manifest's.
    """
    directory = Path(directory)
    manifest = read_manifest(directory) if manifest is None else manifest
    if manifest is None:
        raise ArtifactError(
            f"{directory}: no {MANIFEST}, so its files cannot be verified (written by a "
            "sessionrec without manifests, or copied without it); copy the whole directory, or "
            "train / export again"
        )
    return {
        name: _verified_file(directory, name, fmt, manifest["files"].get(name))
        for name, fmt in formats.items()
    }


def _verified_file(directory: Path, name: str, fmt: str, entry: dict[str, Any] | None) -> Path:
    if entry is None:
        raise ArtifactError(f"{directory / MANIFEST} does not list {name!r}; export or train again")
    if entry["format"] != fmt:
        raise ArtifactError(
            f"{directory / name}: format {entry['format']!r}, this sessionrec reads {fmt!r}; "
            "use the sessionrec version that wrote it, or train / export again"
        )
    for path in (directory / name, _pending(directory, name)):
        if path.is_file() and file_sha256(path) == entry["sha256"]:
            return path
    if not (directory / name).is_file():
        raise ArtifactError(f"{directory / name}: missing (listed in {MANIFEST})")
    raise ArtifactError(
        f"{directory / name}: SHA-256 differs from {MANIFEST}: the file was modified or "
        "corrupted after it was written; refusing to load it (train / export again)"
    )


def _write_synced(path: Path, write: Callable[[Path], None]) -> None:
    write(path)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory handles)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _finish_interrupted_commit(directory: Path, manifest: dict[str, Any] | None) -> None:
    """Move committed ``.pending`` files into place; drop uncommitted ones and temp files."""
    listed = {} if manifest is None else manifest["files"]
    for leftover in [*directory.glob(".*.pending*"), directory / f".{MANIFEST}.tmp"]:
        name = leftover.name[1 : -len(".pending")]
        entry = listed.get(name) if leftover.name.endswith(".pending") else None
        if entry is not None and file_sha256(leftover) == entry["sha256"]:
            os.replace(leftover, directory / name)
        else:
            leftover.unlink(missing_ok=True)


def commit_files(
    directory: str | os.PathLike[str],
    writers: Mapping[str, Callable[[Path], None]],
    fmt: Mapping[str, str] | str,
    *,
    replace_listed: bool = False,
) -> dict[str, Any]:
    """Write files into ``directory`` and record them in its manifest, crash-safely.

    Args:
        directory: created if needed.
        writers: file name -> a function that writes the file's bytes to the path it is
            given (a temporary path in ``directory``).
        fmt: the format of every file, or one per file name.
        replace_listed: the written files replace the whole set the manifest lists (a
            retrained model: files of the previous set that are not written again, such
            as an old export, are deleted after the commit). ``False`` adds to or updates
            the set (an export into a model directory).

    Returns:
        The new manifest.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in writers:
        if name == MANIFEST or "/" in name or os.sep in name or name.startswith("."):
            raise ArtifactError(f"{name!r} cannot be an artifact file name")
    old = read_manifest(directory)
    _finish_interrupted_commit(directory, old)
    files: dict[str, Any] = {} if old is None or replace_listed else dict(old["files"])
    for name, write in writers.items():
        pending = _pending(directory, name)
        _write_synced(pending, write)
        files[name] = {
            "format": fmt if isinstance(fmt, str) else fmt[name],
            "sha256": file_sha256(pending),
            "bytes": pending.stat().st_size,
        }
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "sessionrec_version": __version__,
        "files": dict(sorted(files.items())),
    }
    tmp = directory / f".{MANIFEST}.tmp"
    _write_synced(tmp, lambda p: p.write_text(json.dumps(manifest, indent=2), encoding="utf-8"))
    os.replace(tmp, directory / MANIFEST)  # the commit point
    _fsync_directory(directory)
    for name in writers:
        os.replace(_pending(directory, name), directory / name)
    if old is not None and replace_listed:
        for name in set(old["files"]) - set(files):
            (directory / name).unlink(missing_ok=True)
    _fsync_directory(directory)
    return manifest


def publish_directory(
    staging: str | os.PathLike[str], target: str | os.PathLike[str]
) -> dict[str, Any]:
    """Copy every file ``staging``'s manifest lists into ``target`` in one commit.

    ``target``'s previous set is replaced as a whole (:func:`commit_files` with
    ``replace_listed=True``): readers see either the previous model or the new one, and
    a process killed during the copy leaves the previous one.
    """
    staging = Path(staging)
    manifest = read_manifest(staging)
    if manifest is None:
        raise ArtifactError(f"{staging}: nothing to publish (no {MANIFEST})")
    formats = {name: e["format"] for name, e in manifest["files"].items()}
    sources = verified_paths(staging, formats)

    def copier(source: Path) -> Callable[[Path], None]:
        return lambda path: shutil.copyfile(source, path)

    return commit_files(
        target,
        {name: copier(source) for name, source in sources.items()},
        formats,
        replace_listed=True,
    )
