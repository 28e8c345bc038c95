"""Standalone client for sessionrec ONNX models: numpy + onnxruntime, nothing else.

Copy this one file into any Python service (``pip install numpy onnxruntime``). The model
contract is ``export/README.md``.

Library use::

    from sessionrec_client import SessionRecommender

    rec = SessionRecommender("model.onnx", threads=1)
    rec.next_items([1001, 1002], k=10)
    # -> {"items": [{"item_id": 1017, "score": ...}, ...], "fallback": False}

Command line (the same JSON as ``export/node/recommend.js``)::

    echo '{"sessions": [[1001, 1002], []], "k": 5}' \\
        | python sessionrec_client.py model.onnx
    # -> {"results": [{"items": [...], "fallback": false}, {"items": [...], "fallback": true}]}
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

CONTRACT = "sessionrec.onnx/1"


class ClientError(ValueError):
    """Bad input or a file that is not a sessionrec model."""


def verified_path(path: str) -> str:
    """``path`` checked against the ``manifest.json`` beside it, when there is one
    (export/README.md): the SHA-256 and the contract of the file must match. Returns the
    file to load: ``path``, or its ``.NAME.pending`` twin while an export is committing."""
    file = Path(path)
    manifest_path = file.parent / "manifest.json"
    if not manifest_path.is_file():
        return path
    entry = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {}).get(file.name)
    if entry is None:
        raise ClientError(f"{manifest_path} does not list {file.name!r}")
    if entry.get("format") != CONTRACT:
        raise ClientError(f"{path}: contract {entry.get('format')!r}, this client reads {CONTRACT}")
    for candidate in (file, file.parent / f".{file.name}.pending"):
        if candidate.is_file():
            digest = hashlib.sha256()
            with open(candidate, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() == entry["sha256"]:
                return str(candidate)
    raise ClientError(f"{path}: SHA-256 differs from {manifest_path}: modified or corrupted")


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
        if self.metadata.get("contract") != CONTRACT:
            raise ClientError(f"{path}: not a sessionrec model (contract {CONTRACT})")
        self.id_kind = self.metadata["id_kind"]  # "int" or "str"
        self.n_items = int(self.metadata["n_items"])

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
        return clicks

    def next_items_batch(
        self, sessions: Sequence[Sequence[Any]], k: int = 20, exclude_seen: bool = True
    ) -> list[dict[str, Any]]:
        """Top-k of every session: ``[{"items": [{"item_id", "score"}], "fallback"}]``."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ClientError(f"k must be an integer >= 1, got {k!r}")
        rows = [self._row(s) for s in sessions]
        if not rows:
            return []
        # the contract's padding: -1 (int64 ids) or "" (string ids), at least one column
        width = max(1, max(len(r) for r in rows))
        pad, dtype = (-1, np.int64) if self.id_kind == "int" else ("", object)
        ids = np.full((len(rows), width), pad, dtype=dtype)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = row
        top_ids, top_scores, fallback = self.session.run(
            None,
            {
                "item_ids": ids,
                "k": np.array([min(k, 2**63 - 1)], dtype=np.int64),
                "exclude_seen": np.array([bool(exclude_seen)]),
            },
        )
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
    request = json.loads(text)
    if isinstance(request, list):
        request = {"sessions": request}
    k = args.k if args.k is not None else request.get("k", 20)
    exclude = False if args.include_seen else request.get("exclude_seen", True)
    try:
        rec = SessionRecommender(args.model, threads=args.threads)
        results = rec.next_items_batch(request["sessions"], k=k, exclude_seen=exclude)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
