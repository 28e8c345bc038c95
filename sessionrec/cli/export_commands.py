"""``sessionrec export`` (model directory -> one ONNX file) and ``sessionrec recommend``
(next items from an ONNX file, torch-free)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sessionrec.cli.conventions import add_deprecated_alias, add_json, add_threads
from sessionrec.cli.options import check_onnx_path, print_json, set_threads
from sessionrec.errors import ConfigError


def _export(args: argparse.Namespace) -> int:
    import os
    import time

    from sessionrec.onnx_export import export_onnx, onnx_metadata
    from sessionrec.serving.files import two_stage_names

    set_threads(args.threads)
    start = time.perf_counter()
    path = export_onnx(
        args.model,
        args.out,
        opset=args.opset,
        item_table_dtype=args.item_table,
        max_session_length=args.max_session_length,
        external_data=True if args.external_data else None,
        ann=args.ann,
        ann_codes=args.ann_codes,
    )
    files = _export_files(path)
    result = {
        "out": str(path),
        "bytes": os.path.getsize(path),
        "files": files,
        "seconds": time.perf_counter() - start,
        "metadata": onnx_metadata(path),
    }
    if args.json:
        print_json(result)
    else:
        meta = result["metadata"]
        print(
            f"wrote {path} ({result['bytes'] / 1e6:.1f} MB): {meta['n_items']} {meta['id_kind']} "
            f"items, d={meta['dim']}, item table {meta['item_table_dtype']}, "
            f"sessions cut to the last {meta['max_session_length']} known clicks"
        )
        for name, size in files.items():
            if name != path.name:
                print(f"  with {path.parent / name} ({size / 1e6:.1f} MB)")
        session = path.parent / two_stage_names(path.name)[0]
        if session.name in files:
            ann = onnx_metadata(session)
            print(
                f"  two-stage index {ann['ann_index']}: nprobe {ann['ann_nprobe']}, "
                f"{ann.get('ann_candidates_factor', '1')}x candidates re-scored, finds "
                f"{float(ann['ann_item_recall_at_20']):.1%} of item vectors' exact top-20"
            )
    return 0


def _export_files(path: Path) -> dict[str, int]:
    """The files of the export of ``path`` (its data and two-stage files) and their sizes."""
    from sessionrec.serving.files import data_file_name, two_stage_names

    names = [path.name, data_file_name(path.name), *two_stage_names(path.name)]
    return {n: (path.parent / n).stat().st_size for n in names if (path.parent / n).is_file()}


def _parse_clicks(text: str, id_kind: str) -> list[int] | list[str]:
    tokens = [t.strip() for t in text.split(",")] if text.strip() else []
    if id_kind == "str":
        return tokens
    clicks = []
    for token in tokens:
        try:
            clicks.append(int(token))
        except ValueError:
            raise ConfigError(
                f"--session: {token!r} is not an integer, and this model's item ids are integers"
            ) from None
    return clicks


def _recommend(args: argparse.Namespace) -> int:
    from sessionrec.recommender import SessionRecommender

    if args.session is None:
        raise ConfigError("recommend needs --session IDS (the session's item ids; '' for none)")
    check_onnx_path(args.model, "recommend")
    rec = SessionRecommender.load(
        args.model, threads=args.threads, exact=args.exact, nprobe=args.nprobe
    )
    clicks = _parse_clicks(args.session, rec.id_kind)
    result = rec.next_items(clicks, k=args.k, exclude_seen=not args.include_seen)
    if args.json:
        print_json(result.to_dict())
        return 0
    if result.unknown_clicks is None:
        print(
            "unknown clicks: not counted by this file (exported before sessionrec 0.2.0; "
            "export it again to count them)",
            file=sys.stderr,
        )
    else:
        print(
            f"unknown clicks: {result.unknown_clicks} of {len(clicks)} (ids not in the "
            "model's vocabulary, ignored)",
            file=sys.stderr,
        )
    if result.fallback:
        print("no known item in the session: most popular items", file=sys.stderr)
    if rec.mode == "two_stage":
        print(
            "two-stage scoring: candidates from the index, re-scored exactly (--exact "
            "scores every item)",
            file=sys.stderr,
        )
    for rank, (item_id, score) in enumerate(result, 1):
        print(f"{rank:>4}  {item_id}  {score:.6g}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model to one ONNX file (raw item ids in, top-k ids out)",
        description="Export the whole inference path (id mapping, session graph, SR-GNN, "
        "top-k) to one ONNX file that onnxruntime runs alone; contract: export/README.md.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="MODEL_DIR",
        help="model directory (sessionrec train --out; not the .onnx file)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="the .onnx file to write, or a folder (an existing directory or a path ending "
        "with /) to write FOLDER/model.onnx into",
    )
    p.add_argument(
        "--item-table",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="item table precision: fp32 (reference), fp16 (half the file), int8 (a quarter "
        "of the file and of the memory read per call)",
    )
    p.add_argument(
        "--max-session-length",
        type=int,
        help="keep the last N known clicks of a session (default: the training setting, else 50)",
    )
    p.add_argument(
        "--external-data",
        action="store_true",
        help="write the item table to OUT.data beside the file (ONNX external data); "
        "default: from a 256 MiB table, always with --ann",
    )
    p.add_argument(
        "--ann",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write the files of two-stage serving (candidates from a faiss index, "
        "exact re-scoring; needs pip install 'sessionrec[ann]'); default: from 1,000,000 "
        "items when faiss is installed",
    )
    p.add_argument(
        "--ann-codes",
        choices=("auto", "flat", "pq4"),
        default="auto",
        help="what the two-stage index stores: the item vectors (flat) or 4-bit "
        "product-quantised codes with 20x candidates re-scored exactly (pq4); default: pq4 "
        "from 2,000,000 items",
    )
    p.add_argument("--opset", type=int, default=18, metavar="N", help="ONNX opset (>= 18)")
    add_threads(p, "torch intra-op threads of the export and its checks")
    add_json(p)
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "recommend",
        help="next items for a session, from an exported ONNX file (torch-free)",
        description="The next items of one session from an exported model, with onnxruntime "
        "alone (no PyTorch): ranked item ids and scores on stdout, notes (unknown clicks, "
        "fallback to popular items) on stderr.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="ONNX",
        help="the .onnx file written by sessionrec export, or the directory holding it as "
        "model.onnx",
    )
    p.add_argument(
        "--session",
        metavar="IDS",
        help="the session so far, oldest first: comma-separated raw item ids ('' for none)",
    )
    add_deprecated_alias(p, "--clicks", "--session", "session")
    p.add_argument("--k", type=int, default=20, metavar="K", help="how many items (default 20)")
    p.add_argument(
        "--include-seen", action="store_true", help="also recommend items already in the session"
    )
    add_threads(p, "onnxruntime intra-op threads", default=1)
    p.add_argument(
        "--exact",
        action="store_true",
        help="score every item even when the export has two-stage files",
    )
    p.add_argument(
        "--nprobe",
        type=int,
        metavar="N",
        help="two-stage serving: index lists searched per session (default: the export's)",
    )
    add_json(p)
    p.set_defaults(func=_recommend)
