"""Benchmark: accuracy lost by the reduced item tables of the ONNX export (fp16, int8).

Exports a trained model three times (``--item-table fp32``, ``fp16``, ``int8``), runs every
test sample of an SR-GNN benchmark folder through each file with onnxruntime (raw ids in,
top-20 raw ids out, seen items *not* excluded, as in ``sessionrec evaluate``) and prints,
as one JSON object on stdout, for each table:

- ``hr@20``, ``mrr@20`` (percent) against the test targets;
- ``top20_overlap``: mean share of the fp32 top-20 that the table's top-20 keeps;
- ``same_top20_order``: share of samples whose top-20 list is identical to fp32's;
- ``max_abs_score_diff``: largest difference of a returned score from fp32's score of
  the same rank;
- ``file_mb``.

Usage (one thread, as on a shared machine)::

    OMP_NUM_THREADS=1 python benchmarks/bench_item_table.py --model MODEL_DIR \\
        --path ../shared/datasets/diginetica
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory (sessionrec train --out)")
    parser.add_argument("--path", required=True, help="SR-GNN benchmark folder (test.txt)")
    parser.add_argument("--limit", type=int, help="only the first N test samples")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)

    from sessionrec.data.benchmarks import load_srgnn_pickle
    from sessionrec.evaluate.metrics import hit_rate_at_k, mrr_at_k, target_ranks
    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender
    from sessionrec.train import load_model

    trained = load_model(args.model)
    dataset = load_srgnn_pickle(args.path)
    test = dataset.test
    n = len(test) if args.limit is None else min(args.limit, len(test))
    targets = dataset.vocab.id_of(test.targets[:n])
    prefixes = [dataset.vocab.id_of(test.prefix(i)).tolist() for i in range(n)]

    result: dict[str, object] = {"model": str(args.model), "test_samples": n}
    reference: tuple[np.ndarray, np.ndarray] | None = None
    with tempfile.TemporaryDirectory(prefix="sessionrec-item-table-") as tmp:
        for dtype in ("fp32", "fp16", "int8"):
            path = export_onnx(trained, Path(tmp) / f"{dtype}.onnx", item_table_dtype=dtype)
            rec = SessionRecommender.load(path, threads=1)
            start = time.perf_counter()
            ids, scores = [], []
            for s in range(0, n, args.batch_size):
                batch = rec.next_items_batch(
                    prefixes[s : s + args.batch_size], k=20, exclude_seen=False
                )
                ids += [r.ids for r in batch]
                scores += [r.scores for r in batch]
            seconds = time.perf_counter() - start
            top = np.array(ids)
            top_scores = np.array(scores)
            ranks = target_ranks(top, targets)
            entry: dict[str, float] = {
                "hr@20": 100.0 * hit_rate_at_k(ranks, 20),
                "mrr@20": 100.0 * mrr_at_k(ranks, 20),
                "file_mb": os.path.getsize(path) / 1e6,
                "seconds": seconds,
            }
            if reference is None:
                reference = (top, top_scores)
            else:
                ref_top, ref_scores = reference
                entry["top20_overlap"] = float(
                    np.mean([len(set(a) & set(b)) / 20 for a, b in zip(top, ref_top)])
                )
                entry["same_top20_order"] = float((top == ref_top).all(axis=1).mean())
                entry["max_abs_score_diff"] = float(np.abs(top_scores - ref_scores).max())
            result[dtype] = entry
            print(f"{dtype}: {entry}", file=sys.stderr)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
