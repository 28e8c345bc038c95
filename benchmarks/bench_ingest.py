"""Benchmark: memory of prepare and training as the dump grows, in memory vs in shards.

For each dump size (``--clicks``, default 2 and 20 million clicks) it generates a
clickstream CSV (``session_id,item_id,timestamp``) in chunks of one million clicks, so
the generator itself stays small, then runs, each in its own subprocess (its peak
resident memory is that child's ``ru_maxrss``, from ``os.wait4``):

- ``prepare``: ``sessionrec prepare`` (the whole dump in memory);
- ``prepare_sharded``: ``sessionrec prepare --shard-clicks S`` (one shard at a time);
- ``train_sharded`` (and ``train`` with ``--train-in-memory``): ``sessionrec train`` on
  that dataset, at most one epoch within a ``--train-minutes`` budget for the whole
  command (``--max-minutes``, with ``--refit none``; when the README's table was
  measured the budget was the epoch's alone), then validation and the test, which read
  every shard (no repeat-bonus grid).

It prints one JSON object: per size and step the wall time and peak RSS, and the counts
of ``prepare --json``. "Bounded" means the sharded steps' peak RSS stays flat as the dump
grows tenfold, while the in-memory ones grow with it.

Usage (one thread, as on a shared machine)::

    python benchmarks/bench_ingest.py --threads 1 --dir /tmp

Clicks are synthetic: session lengths ``1 + Geometric(0.25)`` (mean 4), items drawn from a
skewed (cubic) distribution over 200,000 ids, sessions starting uniformly over 60 days and
clicks 0-5 minutes apart; the last 6 hours are the test set, 0.2 % of the training
sessions validate (evaluation scores every item for each sample: the slow part, whose
memory does not grow with the number of samples). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

CHUNK = 1_000_000
DAYS = 60
START = 1_451_606_400  # 2016-01-01 UTC


def generate(path: Path, n_clicks: int, n_items: int, seed: int) -> int:
    """Write ``n_clicks`` clicks to ``path`` in chunks; returns the number of sessions."""
    rng = np.random.default_rng(seed)
    next_session = 0
    written = 0
    with open(path, "wb") as f:
        while written < n_clicks:
            want = min(CHUNK, n_clicks - written)
            lengths = 1 + rng.geometric(0.25, size=want // 3 + 16)
            ends = np.cumsum(lengths)
            n_sessions = int(np.searchsorted(ends, want, side="left")) + 1
            lengths = lengths[:n_sessions]
            lengths[-1] -= int(ends[n_sessions - 1] - want)  # exactly `want` clicks
            session = np.repeat(np.arange(next_session, next_session + n_sessions), lengths)
            start = START + rng.random(n_sessions) * DAYS * 86_400
            gaps = rng.random(want) * 300.0
            offsets = np.cumsum(lengths) - lengths
            within = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets] - gaps[offsets], lengths)
            timestamp = np.repeat(start, lengths) + within
            item = (n_items * rng.random(want) ** 3).astype(np.int64)
            chunk = pl.DataFrame({"session_id": session, "item_id": item, "timestamp": timestamp})
            chunk.write_csv(f, include_header=written == 0, float_precision=3)
            next_session += n_sessions
            written += want
    return next_session


def run(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Run ``command``; ``(seconds, peak RSS in MB, stdout)``; stderr goes to ``log``."""
    out = log.with_suffix(".out")
    t0 = time.perf_counter()
    with open(out, "w") as stdout, open(log, "w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak, not the max
    seconds = time.perf_counter() - t0  # over all children so far
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-3000:])
        raise SystemExit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024, out.read_text()  # ru_maxrss: KB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clicks", type=int, nargs="+", default=[2_000_000, 20_000_000], help="dump sizes"
    )
    parser.add_argument("--items", type=int, default=200_000, help="distinct item ids")
    parser.add_argument("--shard-clicks", type=int, default=2_000_000, help="shard size")
    parser.add_argument("--train-minutes", type=float, default=2.0, help="training time")
    parser.add_argument(
        "--train-in-memory", action="store_true", help="also train on the in-memory dataset"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads of every step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()

    env = dict(os.environ)
    threads = str(args.threads)
    env.update(POLARS_MAX_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    py = [sys.executable, "-m", "sessionrec"]
    results: list[dict[str, object]] = []
    for n_clicks in args.clicks:
        with tempfile.TemporaryDirectory(prefix="sessionrec-bench-", dir=args.dir) as tmp:
            work = Path(tmp)
            csv = work / "clicks.csv"
            t0 = time.perf_counter()
            n_sessions = generate(csv, n_clicks, args.items, args.seed)
            row: dict[str, object] = {
                "clicks": n_clicks,
                "sessions_generated": n_sessions,
                "csv_bytes": csv.stat().st_size,
                "generate_s": round(time.perf_counter() - t0, 1),
            }
            print(f"{n_clicks:,} clicks: {row['csv_bytes']:,} bytes", file=sys.stderr)
            prepare = [*py, "prepare", "--clicks", str(csv), "--test-days", "0.25", "--json"]
            # evaluation kept short: scoring every item of the catalogue for each sample
            # is the slow part, and its memory does not depend on the number of samples
            train = [
                *py, "train", "--epochs", "1", "--max-minutes", str(args.train_minutes), "--refit", "none",
                "--validation-fraction", "0.002", "--set", "repeat_bonus_grid=()",
                "--threads", threads, "--quiet", "--json",
            ]  # fmt: skip
            steps = [
                ("prepare", [*prepare, "--out", str(work / "memory")]),
                (
                    "prepare_sharded",
                    [
                        *prepare,
                        "--out",
                        str(work / "shards"),
                        "--shard-clicks",
                        str(args.shard_clicks),
                    ],
                ),  # fmt: skip
                ("train_sharded", [*train, str(work / "shards"), "--out", str(work / "m1")]),
            ]
            if args.train_in_memory:
                steps.append(("train", [*train, str(work / "memory"), "--out", str(work / "m2")]))
            for name, command in steps:
                seconds, peak_mb, stdout = run(command, env, work / f"{name}.log")
                row[name] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 1)}
                print(f"  {name}: {seconds:.1f} s, peak RSS {peak_mb:.1f} MB", file=sys.stderr)
                out = json.loads(stdout)
                if name == "prepare_sharded":
                    row["shards"] = out["report"]["protocol"]["shards"]
                    for key in ("train_sessions", "items", "train_samples", "test_samples"):
                        row[key] = out[key]
                elif name.startswith("train"):
                    row[name]["train_seconds"] = round(out["train_seconds"], 1)  # type: ignore[index]
                    row[name]["test_hr@20"] = round(out["test"]["hr@20"], 2)  # type: ignore[index]
            row["commands"] = [" ".join(["python", *c[1:]]).replace(tmp, "$TMP") for _, c in steps]
            results.append(row)
    print(json.dumps({"threads": args.threads, "shard_clicks": args.shard_clicks,
                      "train_minutes": args.train_minutes, "runs": results}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
