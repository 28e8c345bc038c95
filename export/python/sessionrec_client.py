"""Standalone client for sessionrec ONNX models: numpy + onnxruntime, nothing else.

Copy this one file into any Python service (``pip install numpy onnxruntime``). The model
contract is ``export/README.md``.

Library use::

    from sessionrec_client import SessionRecommender

    rec = SessionRecommender("model.onnx", threads=1)
    rec.next_items([1001, 1002], k=10)
    # -> {"items": [{"item_id": 1017, "score": ...}, ...], "fallback": False,
    #     "unknown_clicks": 0}

``unknown_clicks``: how many of the session's ids the model does not know (ignored), or
``None`` for a file exported before sessionrec 0.2.0 (which does not count them).

Reads contracts ``sessionrec.onnx/1`` and ``/2``. A large model's item table may sit in a
data file beside the ``.onnx`` (``model.onnx.data``; onnxruntime loads it); with a
``manifest.json`` beside them, both files are verified first. This client always scores
exactly: the two-stage files of a large export (``model.session.onnx``, ...) are for
``sessionrec.SessionRecommender``.

Command line (byte for byte the JSON ``export/node/recommend.js`` prints for the same
input: ``json.dumps`` defaults, int64 ids as JSON numbers, scores as ``repr(float)``)::

    echo '{"sessions": [[1001, 1002], []], "k": 5}' \\
        | python sessionrec_client.py model.onnx
    # -> {"results": [{"items": [...], "fallback": false, "unknown_clicks": 0},
    #     {"items": [...], "fallback": true, "unknown_clicks": 0}]}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

CONTRACTS = ("sessionrec.onnx/1", "sessionrec.onnx/2")  # the contracts this client reads
DATA_FORMAT = "sessionrec.onnx-data/1"  # the data file beside a large model
OUTPUTS = ["top_ids", "top_scores", "fallback"]
OUTPUT_UNKNOWN = "unknown_clicks"  # added in sessionrec 0.2.0; older files lack it
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ClientError(ValueError):
    """Bad input or a file that is not a sessionrec model."""


def _matching(file: Path, entry: dict[str, Any], manifest_path: Path) -> Path:
    """``file`` or its ``.NAME.pending`` twin, whichever has the manifest's SHA-256."""
    for candidate in (file, file.parent / f".{file.name}.pending"):
        if candidate.is_file():
            digest = hashlib.sha256()
            with open(candidate, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() == entry.get("sha256"):
                return candidate
    raise ClientError(f"{file}: SHA-256 differs from {manifest_path}: modified or corrupted")


def verified_path(path: str) -> str:
    """``path`` checked against the ``manifest.json`` beside it, when there is one
    (export/README.md): the SHA-256 and the contract of the file must match, and so must
    those of its data file (``NAME.data``) when the manifest lists one. Returns the file
    to load: ``path``, or its ``.NAME.pending`` twin while an export is committing."""
    file = Path(path)
    manifest_path = file.parent / "manifest.json"
    if not manifest_path.is_file():
        return path
    listed = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
    entry = listed.get(file.name)
    if entry is None:
        raise ClientError(f"{manifest_path} does not list {file.name!r}")
    if entry.get("format") not in CONTRACTS:
        raise ClientError(
            f"{path}: contract {entry.get('format')!r}, this client reads {' and '.join(CONTRACTS)}"
        )
    model = _matching(file, entry, manifest_path)
    data_entry = listed.get(f"{file.name}.data")
    if data_entry is not None:
        data = file.parent / f"{file.name}.data"
        if data_entry.get("format") != DATA_FORMAT:
            raise ClientError(
                f"{data}: format {data_entry.get('format')!r}, expected {DATA_FORMAT}"
            )
        if _matching(data, data_entry, manifest_path) != data:
            raise ClientError(
                f"{data}: an export was interrupted after its commit point (the data file is "
                "still under a temporary name): export again"
            )
    return str(model)


class SessionRecommender:
    """Top-k next items from an exported sessionrec model.

    Thread-safe: ``onnxruntime.InferenceSession.run`` is, and every call builds its own
    arrays.
    """

    def __init__(self, path: str, threads: int | None = 1) -> None:
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        source = verified_path(path)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.metadata.get("contract") not in CONTRACTS:
            raise ClientError(
                f"{path}: not a sessionrec model of contract {' or '.join(CONTRACTS)} "
                f"(found {self.metadata.get('contract')!r})"
            )
        self.id_kind = self.metadata["id_kind"]  # "int" or "str"
        self.n_items = int(self.metadata["n_items"])
        names = [o.name for o in self.session.get_outputs()]
        if not set(OUTPUTS) <= set(names):
            raise ClientError(f"{path}: outputs {names}, a sessionrec model has {OUTPUTS}")
        self.counts_unknown_clicks = OUTPUT_UNKNOWN in names  # False: exported before 0.2.0
        self.outputs = OUTPUTS + [OUTPUT_UNKNOWN] if self.counts_unknown_clicks else OUTPUTS

    def _row(self, clicks: Any) -> list[Any]:
        if isinstance(clicks, (str, bytes)) or not isinstance(clicks, (Sequence, np.ndarray)):
            raise ClientError(f"a session is a list of item ids, got {type(clicks).__name__}")
        clicks = list(clicks.tolist() if isinstance(clicks, np.ndarray) else clicks)
        for value in clicks:
            ok = (
                isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                if self.id_kind == "int"
                else isinstance(value, str)
            )
            if not ok:
                raise ClientError(f"item ids of this model are {self.id_kind}, got {value!r}")
            if self.id_kind == "int" and not INT64_MIN <= value <= INT64_MAX:
                raise ClientError(f"item id {value} does not fit in int64 (the model's id type)")
        return clicks

    def next_items_batch(
        self, sessions: Sequence[Sequence[Any]], k: int = 20, exclude_seen: bool = True
    ) -> list[dict[str, Any]]:
        """Top-k of every session: ``[{"items": [{"item_id", "score"}], "fallback",
        "unknown_clicks"}]`` (``unknown_clicks``: ``None`` for a file exported before
        sessionrec 0.2.0)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ClientError(f"k must be an integer >= 1, got {k!r}")
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise ClientError(f"exclude_seen must be true or false, got {exclude_seen!r}")
        if isinstance(sessions, (str, bytes)) or not isinstance(sessions, (Sequence, np.ndarray)):
            raise ClientError(f"sessions must be a list of sessions, got {type(sessions).__name__}")
        rows = [self._row(s) for s in sessions]
        if not rows:
            return []
        # the contract's padding: -1 (int64 ids) or "" (string ids), at least one column
        width = max(1, max(len(r) for r in rows))
        pad, dtype = (-1, np.int64) if self.id_kind == "int" else ("", object)
        ids = np.full((len(rows), width), pad, dtype=dtype)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = row
        top_ids, top_scores, fallback, *rest = self.session.run(
            self.outputs,
            {
                "item_ids": ids,
                "k": np.array([min(k, 2**63 - 1)], dtype=np.int64),
                "exclude_seen": np.array([bool(exclude_seen)]),
            },
        )
        unknown = rest[0].tolist() if rest else [None] * len(rows)
        results = []
        for b in range(len(rows)):
            keep = np.isfinite(top_scores[b])  # -inf: excluded items past the unseen ones
            results.append(
                {
                    "items": [
                        {"item_id": i, "score": s}
                        for i, s in zip(top_ids[b][keep].tolist(), top_scores[b][keep].tolist())
                    ],
                    "fallback": bool(fallback[b]),
                    "unknown_clicks": unknown[b],
                }
            )
        return results

    def next_items(
        self, clicks: Sequence[Any], k: int = 20, exclude_seen: bool = True
    ) -> dict[str, Any]:
        """Top-k next items of one session (oldest click first)."""
        return self.next_items_batch([clicks], k=k, exclude_seen=exclude_seen)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Top-k next items of the sessions given as JSON on stdin (or --input)."
    )
    parser.add_argument("model", help="the .onnx file (sessionrec export)")
    parser.add_argument(
        "--input",
        help="JSON file (default: stdin): a list of sessions, or "
        '{"sessions": [...], "k": 20, "exclude_seen": true}',
    )
    parser.add_argument("--k", type=int, help="overrides the input's k (default 20)")
    parser.add_argument("--include-seen", action="store_true", help="do not exclude seen items")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    text = open(args.input, encoding="utf-8").read() if args.input else sys.stdin.read()
    try:
        request = json.loads(text)
        if isinstance(request, list):
            request = {"sessions": request}
        if not isinstance(request, dict) or "sessions" not in request:
            raise ClientError('the input must be a list of sessions or {"sessions": [...], ...}')
        k = args.k if args.k is not None else request.get("k", 20)
        exclude = False if args.include_seen else request.get("exclude_seen", True)
        rec = SessionRecommender(args.model, threads=args.threads)
        results = rec.next_items_batch(request["sessions"], k=k, exclude_seen=exclude)
    except (ClientError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
