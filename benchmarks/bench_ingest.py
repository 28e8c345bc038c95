"""Benchmark: prepare a generated 20-million-click CSV; report wall time and peak RSS.

Generates a clickstream CSV (``session_id,item_id,timestamp``) in chunks of one million
clicks, so the generator itself stays small, then runs ``sessionrec prepare`` on it in a
subprocess and reports, as one JSON object on stdout:

- ``generate_s``: time to write the CSV; ``csv_bytes``: its size;
- ``prepare_s``: wall time of ``sessionrec prepare`` (subprocess, start to exit);
- ``peak_rss_mb``: the subprocess' peak resident memory (``ru_maxrss`` of the child);
- the counts ``sessionrec prepare --json`` printed.

The target is a peak RSS under 3 GB: the text of the dump is scanned lazily and collected
with polars' streaming engine, so only the canonical columns live in memory.

Usage (one thread, as on a shared machine)::

    OMP_NUM_THREADS=1 POLARS_MAX_THREADS=1 python benchmarks/bench_ingest.py --threads 1

Clicks are synthetic: session lengths ``1 + Geometric(0.25)`` (mean 4), items drawn from a
skewed (cubic) distribution over 200,000 ids, sessions starting uniformly over 60 days and
clicks 0-5 minutes apart. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20_000_000, help="clicks to generate")
    parser.add_argument("--items", type=int, default=200_000, help="distinct item ids")
    parser.add_argument("--threads", type=int, default=1, help="POLARS_MAX_THREADS for prepare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sessionrec-bench-", dir=args.dir) as tmp:
        csv = Path(tmp) / "clicks.csv"
        t0 = time.perf_counter()
        n_sessions = generate(csv, args.clicks, args.items, args.seed)
        generate_s = time.perf_counter() - t0
        print(f"generated {csv.stat().st_size / 1e9:.2f} GB in {generate_s:.1f}s", file=sys.stderr)

        env = dict(os.environ)
        threads = str(args.threads)
        env.update(POLARS_MAX_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        command = [
            sys.executable, "-m", "sessionrec", "prepare",
            "--clicks", str(csv), "--out", str(Path(tmp) / "prepared"), "--json",
        ]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        prepare_s = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
        out = json.loads(done.stdout)
        result = {
            "clicks": args.clicks,
            "sessions_generated": n_sessions,
            "csv_bytes": csv.stat().st_size,
            "threads": args.threads,
            "generate_s": round(generate_s, 2),
            "prepare_s": round(prepare_s, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "target_peak_rss_mb": 3072,
            "command": " ".join(["python", *command[1:]]).replace(tmp, "$TMP"),
            **{k: out[k] for k in ("train_sessions", "test_sessions", "items",
                                   "train_samples", "test_samples")},
            "rows_read": out["report"]["ingest"]["rows_read"],
            "duplicates_dropped": out["report"]["ingest"]["duplicates_dropped"],
        }  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
