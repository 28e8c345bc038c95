"""Load test of ``sessionrec serve`` against the standard-library example, and its hot
reload under load.

    python benchmarks/serve_load.py --out runs/serve_load            # both parts
    python benchmarks/serve_load.py --skip-reload --requests 5000    # throughput only

**Throughput** (same run, same model, same client): a Diginetica-sized model (43,097
items, d = 100, random weights: serving speed does not depend on their values) exported
to ONNX is served by ``sessionrec serve --threads 1`` (one uvicorn worker, micro-batching
on) and by ``examples/serve_http.py --threads 1`` (``http.server``, one call per
request), each in turn, each pinned to one core (``--server-cpu``). ``--clients``
concurrent clients (aiohttp, keep-alive connections, pinned to the other cores) post
``/next_items`` with real Diginetica test prefixes (synthetic ones of similar lengths
when the dataset is absent), ``k = 20``, ``--requests`` in all after ``--warmup`` not
timed. Reported per server: requests per second, p50 / p99 latency, errors (any answer
but 200), and the ratio of the two throughputs.

**Hot reload under load**: ``sessionrec fit`` trains a model on the embedded synthetic
clickstream into a model directory, ``sessionrec serve`` serves it, the clients load it,
and ``sessionrec fit`` runs again into the same directory (``--publish always``, another
seed). Reported: the seconds from the publication (the new manifest's modification time,
the commit point) to the first answer of the new model, and the failed requests during
the whole run (must be 0).

Every HTTP call goes to 127.0.0.1; the client stops after ``--requests`` (or
``--max-seconds``). Prints a table and writes ``OUT/serve_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def start_server(command: list[str], cpus: set[int] | None, env: dict[str, str]) -> tuple[Any, str]:
    """Start a server that prints ``listening on http://HOST:PORT``; return it and its URL."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{command[:3]} did not start: {line!r}")
    return proc, line.split()[-1]


def stop_server(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def drive(
    url: str,
    sessions: list[list[int]],
    clients: int,
    requests: int,
    max_seconds: float,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """``clients`` concurrent clients posting ``/next_items`` until ``requests`` were
    answered, ``max_seconds`` passed or ``stop`` is set. Returns the figures, and the
    times at which each model version first answered."""
    import aiohttp

    latencies: list[float] = []
    failures: list[str] = []
    first_seen: dict[str, float] = {}
    counter = iter(range(10**12))
    deadline = time.monotonic() + max_seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            i = next(counter)
            if stop is None and i >= requests:
                return
            body = {"clicks": sessions[i % len(sessions)], "k": 20}
            t0 = time.perf_counter()
            try:
                async with session.post(f"{url}/next_items", json=body) as response:
                    payload = await response.read()
                    if response.status != 200:
                        failures.append(f"{response.status} {payload[:200]!r}")
                        continue
            except aiohttp.ClientError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            if stop is not None:  # the reload run follows the model versions
                version = json.loads(payload).get("model_version")
                first_seen.setdefault(version, time.time())

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies) + len(failures),
        "errors": len(failures),
        "first_errors": failures[:5],
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "versions_first_seen": first_seen,
    }


def load_sessions(n: int) -> tuple[list[list[int]], str]:
    from sessionrec.bench.workloads import diginetica_sessions, diginetica_sized_model

    vocab = diginetica_sized_model().vocab
    arrays, source = diginetica_sessions(None, vocab, n)
    return [a.tolist() for a in arrays], source


def throughput(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    from sessionrec.bench.workloads import diginetica_sized_model
    from sessionrec.onnx_export import export_onnx

    model_dir = work / "diginetica_sized"
    export_onnx(diginetica_sized_model(), f"{model_dir}/")
    sessions, source = load_sessions(2000)
    cpus = {args.server_cpu}
    servers = {
        "sessionrec serve": [
            sys.executable, "-m", "sessionrec", "serve", str(model_dir), "--port", "0",
            "--threads", "1", "--log-level", "warning",
        ],
        "examples/serve_http.py": [
            sys.executable, str(ROOT / "examples" / "serve_http.py"),
            "--model", str(model_dir / "model.onnx"), "--port", "0", "--threads", "1",
        ],
    }  # fmt: skip
    out: dict[str, Any] = {"sessions": source, "clients": args.clients}
    for name, command in servers.items():
        proc, url = start_server(command, cpus, env)
        try:
            asyncio.run(drive(url, sessions, args.clients, args.warmup, args.max_seconds))
            out[name] = asyncio.run(
                drive(url, sessions, args.clients, args.requests, args.max_seconds)
            )
            del out[name]["versions_first_seen"]
        finally:
            stop_server(proc)
        print(f"{name}: {out[name]}", file=sys.stderr)
    out["throughput_ratio"] = round(
        out["sessionrec serve"]["requests_per_s"] / out["examples/serve_http.py"]["requests_per_s"],
        2,
    )
    return out


def fit(out: Path, seed: int, env: dict[str, str]) -> None:
    command = [
        sys.executable, "-m", "sessionrec", "fit", "--clicks",
        str(ROOT / "data" / "synthetic" / "clicks.csv"), "--out", str(out), "--epochs", "2",
        "--seed", str(seed), "--publish", "always", "--threads", "1", "--quiet",
    ]  # fmt: skip
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def reload_under_load(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    model_dir = work / "fitted"
    print("fitting the first model ...", file=sys.stderr)
    fit(model_dir, 0, env)
    from sessionrec import SessionRecommender

    rec = SessionRecommender.load(model_dir)
    sessions = [[int(i) for i in rec.next_items([], k=5).ids[:n]] for n in (1, 2, 3)] * 10
    command = [
        sys.executable, "-m", "sessionrec", "serve", str(model_dir), "--port", "0",
        "--threads", "1", "--log-level", "warning",
    ]  # fmt: skip
    proc, url = start_server(command, {args.server_cpu}, env)

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        load = asyncio.create_task(
            drive(url, sessions, args.clients, 0, args.max_seconds + 600, stop)
        )
        print("fitting the next model under load ...", file=sys.stderr)
        await asyncio.to_thread(fit, model_dir, 1, env)
        published = (model_dir / "manifest.json").stat().st_mtime
        await asyncio.sleep(args.after_publish_s)
        stop.set()
        figures = await load
        figures["published_at"] = published
        return figures

    try:
        figures = asyncio.run(run())
    finally:
        stop_server(proc)
    seen = figures.pop("versions_first_seen")
    versions = sorted(seen, key=seen.get)
    figures["versions"] = versions
    if len(versions) >= 2:
        figures["seconds_to_serve_new_model"] = round(
            seen[versions[-1]] - figures["published_at"], 3
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for serve_load.json (default: print only)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--requests", type=int, default=20_000, help="timed requests per server")
    parser.add_argument("--warmup", type=int, default=1000, help="requests before timing")
    parser.add_argument("--max-seconds", type=float, default=120, help="time bound per run")
    parser.add_argument("--server-cpu", type=int, default=0, help="the core the server runs on")
    parser.add_argument("--after-publish-s", type=float, default=5.0, help="load after publish")
    parser.add_argument("--skip-reload", action="store_true", help="throughput only")
    parser.add_argument("--skip-throughput", action="store_true", help="reload only")
    args = parser.parse_args(argv)
    others = os.sched_getaffinity(0) - {args.server_cpu}
    if others:
        os.sched_setaffinity(0, others)  # the clients stay off the server's core
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result: dict[str, Any] = {"cpus": os.cpu_count(), "server_cpu": args.server_cpu}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_throughput:
            result["throughput"] = throughput(args, Path(tmp), env)
        if not args.skip_reload:
            result["reload"] = reload_under_load(args, Path(tmp), env)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "serve_load.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
