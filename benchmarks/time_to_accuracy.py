"""Time to accuracy: the test HR@20 / MRR@20 of the model each ``--max-minutes`` budget
publishes, beside VSTAN's (fit and predict) and today's run without a budget, on the
same axes (issue 18).

Usage::

    python benchmarks/time_to_accuracy.py --data diginetica --budgets 5,15,30,60 --out runs/tta-digi
    python benchmarks/time_to_accuracy.py --data yoochoose-100k --budgets 5,15,30,60 --out runs/tta-yc
    python benchmarks/time_to_accuracy.py --plot runs/tta-digi runs/tta-yc --png docs/time_to_accuracy.png

Every point is a ``sessionrec`` command run here, timed from its start to its exit (wall
seconds, the data's reading included): ``sessionrec train DATA --max-minutes M --threads
T --json`` for each budget; ``sessionrec train DATA --threads T --json`` (``--no-budget``
runs it: the selection run of today, no refit) and ``--refit full`` variants on request;
``sessionrec baseline DATA --method vstan --json`` for VSTAN. Test metrics are read from
each command's output, after it has chosen and saved its model. The points of the SR-GNN
authors' reference code are not re-run (it is not part of this project); the plot shows
them from an earlier measurement (``REFERENCE``), marked as such.

``diginetica``: ``--benchmark srgnn-pickle --path ../shared/datasets/diginetica``;
``yoochoose-100k``: the training and test files of ``../shared/datasets/yoochoose-100k`` read
as one dump and prepared with the session-rec preset, its last day the test (the
session-rec split; 6 days of training, the test file's day); ``yoochoose-categories``:
``--benchmark yoochoose-categories``. The benchmark stops with a message when the data
is absent. Results go to ``OUT/results.json`` (a later run into the same ``OUT`` adds its
points) and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
#: The SR-GNN authors' reference code (CRIPAC-DIG/SR-GNN, pytorch_code) on Diginetica, as
#: issue 18 reports it from an earlier measurement on this machine: 4 epochs in about 36
#: minutes. Not re-run here (the code is not part of this project).
REFERENCE = {"diginetica": {"minutes": 36.0, "hr@20": 51.75, "mrr@20": 17.91}}


def _data_arguments(data: str, out: Path) -> list[str]:
    if data == "diginetica":
        path = DATASETS / "diginetica"
        _need(path / "all_train_seq.txt")
        return ["--benchmark", "srgnn-pickle", "--path", str(path)]
    if data == "yoochoose-categories":
        path = DATASETS / "yoochoose-categories"
        _need(path)
        return ["--benchmark", "yoochoose-categories", "--path", str(path)]
    if data == "yoochoose-100k":
        prepared = out / "data"
        if not (prepared / "dataset.json").is_file():
            _prepare_yoochoose(prepared)
        return [str(prepared)]
    sys.exit(f"time_to_accuracy: unknown --data {data!r}")


def _need(path: Path) -> None:
    if not path.exists():
        sys.exit(f"time_to_accuracy: {path} not found (datasets live in ../shared/datasets)")


def _prepare_yoochoose(out: Path) -> None:
    import polars as pl

    from sessionrec.data.ingest import read_clicks
    from sessionrec.data.protocol import ProtocolConfig, prepare

    files = [
        DATASETS / "yoochoose-100k" / "yoochoose-clicks-100k_train_full.txt",
        DATASETS / "yoochoose-100k" / "yoochoose-clicks-100k_test.txt",
    ]
    for path in files:
        _need(path)
    columns = ["session_id", "item_id", "timestamp"]
    frame = pl.concat([read_clicks(p, "session-rec").frame.select(columns) for p in files])
    prepare(frame, ProtocolConfig(test_days=1)).save(out)


def _run(command: list[str], log: Path) -> tuple[dict[str, Any], float]:
    """Run ``command``; its JSON (stdout) and its wall seconds."""
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    with log.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(
            f"time_to_accuracy: {' '.join(command)} failed (exit {done.returncode}); see {log}"
        )
    return json.loads(done.stdout), seconds


def measure(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _data_arguments(args.data, out)
    sessionrec = [sys.executable, "-m", "sessionrec"]
    threads = ["--threads", str(args.threads)]
    saved = out / "results.json"  # earlier runs into OUT are kept: points are added
    points: list[dict[str, Any]] = (
        json.loads(saved.read_text())["points"] if saved.is_file() else []
    )
    first = len(points)
    runs: list[tuple[str, list[str]]] = []
    if args.vstan:
        runs.append(("VSTAN", ["baseline", *data, "--method", "vstan", *threads, "--json"]))
    refit = [] if args.refit is None else ["--refit", args.refit]
    for minutes in args.budgets:
        extra = ["--max-minutes", f"{minutes:g}", *refit]
        runs.append((f"SR-GNN, {' '.join(extra)}", extra))
    if args.no_budget:
        runs.append(("SR-GNN, no budget (today's selection run)", []))
    if args.full_refit:
        runs.append(("SR-GNN, no budget, --refit full", ["--refit", "full"]))
    for i, (label, extra) in enumerate(runs, start=first):
        if label == "VSTAN":
            command = [*sessionrec, *extra]
        else:
            model = out / f"model-{i}"
            command = [*sessionrec, "train", *data, "--out", str(model), "--force"]
            command += [*extra, *threads, "--quiet", "--json"]
        result, seconds = _run(command, out / f"run-{i}.log")
        metrics = result.get("test", result)  # train: {"test": {...}}; baseline: flat
        point = {
            "label": label,
            "command": " ".join(command[2:]),
            "wall_seconds": round(seconds, 1),
            "hr@20": round(float(metrics["hr@20"]), 2),
            "mrr@20": round(float(metrics["mrr@20"]), 2),
        }
        if "budget" in result:
            plan = result["budget"]
            point["plan"] = {
                k: plan[k] for k in ("epochs", "refit", "lr_decay_first", "lr_decay_every")
            }
            point["epochs_trained"] = result.get("epochs_trained")
            point["recent"] = result.get("recent")
        if "best_epoch" in result:
            point["best_epoch"] = result["best_epoch"]
        points.append(point)
        print(json.dumps(point), file=sys.stderr, flush=True)
        (out / "results.json").write_text(
            json.dumps({"data": args.data, "threads": args.threads, "points": points}, indent=2)
        )
    return {"data": args.data, "threads": args.threads, "points": points}


def table(result: dict[str, Any]) -> str:
    rows = [
        f"| {p['label']} | {p['wall_seconds'] / 60:.1f} | {p['hr@20']:.2f} | {p['mrr@20']:.2f} |"
        for p in result["points"]
    ]
    ref = REFERENCE.get(result["data"])
    if ref:
        rows.append(
            f"| SR-GNN authors' code (issue 18's measurement, not re-run) | {ref['minutes']:.1f} | "
            f"{ref['hr@20']:.2f} | {ref['mrr@20']:.2f} |"
        )
    head = "| run | minutes (wall) | HR@20 | MRR@20 |\n|---|---|---|---|"
    return f"{result['data']}, --threads {result['threads']}\n\n" + "\n".join([head, *rows])


def plot(dirs: list[str], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads((Path(d) / "results.json").read_text()) for d in dirs]
    fig, axes = plt.subplots(len(results), 2, figsize=(10, 3.6 * len(results)), squeeze=False)
    for row, result in zip(axes, results):
        for ax, metric in zip(row, ("hr@20", "mrr@20")):
            budget = [
                p
                for p in result["points"]
                if p["label"].startswith("SR-GNN, --max-minutes") and "--refit" not in p["label"]
            ]
            budget.sort(key=lambda p: p["wall_seconds"])
            ax.plot(
                [p["wall_seconds"] / 60 for p in budget],
                [p[metric] for p in budget],
                "o-",
                label="SR-GNN default, --max-minutes (each point: one budget)",
            )
            for p in budget:
                minutes = p["label"].split()[-1]
                ax.annotate(f"{minutes} min", (p["wall_seconds"] / 60, p[metric]), fontsize=7)
            for p in result["points"]:
                if p in budget:
                    continue
                ax.plot(p["wall_seconds"] / 60, p[metric], "s", label=p["label"])
            ref = REFERENCE.get(result["data"])
            if ref:
                ax.plot(
                    ref["minutes"],
                    ref[metric],
                    "x",
                    label="SR-GNN authors' code (earlier measurement)",
                )
            ax.set_xscale("log")
            ax.set_xlabel("wall minutes, from the command's start to its exit")
            ax.set_ylabel(f"test {metric.upper()}")
            ax.set_title(f"{result['data']}, --threads {result['threads']}")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("diginetica", "yoochoose-100k", "yoochoose-categories"))
    p.add_argument("--budgets", default="5,15,30,60", help="minutes, comma-separated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="where the models, logs and results.json go")
    p.add_argument("--no-vstan", dest="vstan", action="store_false", help="skip VSTAN")
    p.add_argument("--no-budget", action="store_true", help="also run without a budget")
    p.add_argument("--full-refit", action="store_true", help="also run --refit full")
    p.add_argument(
        "--refit",
        choices=("auto", "none", "full", "recent"),
        help="--refit of the budgeted runs (default: theirs, auto)",
    )
    p.add_argument("--plot", nargs="+", metavar="DIR", help="draw results.json of DIRs")
    p.add_argument("--png", default="time_to_accuracy.png")
    args = p.parse_args()
    if args.plot:
        plot(args.plot, args.png)
        for d in args.plot:
            print(table(json.loads((Path(d) / "results.json").read_text())) + "\n")
        return
    if not args.data or not args.out:
        p.error("--data and --out are needed to measure (or --plot DIR ...)")
    args.budgets = [float(b) for b in args.budgets.split(",") if b]
    print(table(measure(args)))


if __name__ == "__main__":
    main()
