"""``sessionrec serve``: the HTTP service (FastAPI on uvicorn, torch-free)."""

from __future__ import annotations

import argparse
import gc
import logging
import socket
import sys
from typing import Any

from sessionrec.cli.conventions import add_threads
from sessionrec.cli.options import check_onnx_path
from sessionrec.errors import ConfigError

_EXTRA_HINT = "pip install 'sessionrec[serve]'"


def _positive(kind: type, name: str, minimum: float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {text}")
        return value

    return parse


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from sessionrec.service.app import ServeConfig, create_app
        from sessionrec.service.reload import load_served_model
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"sessionrec serve needs {exc.name!r}, which is not installed: {_EXTRA_HINT}"
        ) from None
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    load_options = {
        "threads": args.threads,
        "require_manifest": args.require_manifest,
        "exact": args.exact,
        "nprobe": args.nprobe,
    }
    check_onnx_path(args.model, "serve")
    first = load_served_model(args.model, **load_options)
    config = ServeConfig(
        max_batch=args.max_batch,
        max_wait_ms=args.batch_wait_ms,
        workers=args.batch_workers,
        reload_interval_s=args.reload_interval,
    )
    app = create_app(first, config, **load_options)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}); choose another port "
            "(0: any free one)"
        ) from None
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=10,
        )
    )
    rec = first.rec
    print(
        f"serving model {first.version} ({rec.n_items:,} {rec.id_kind} items, {rec.mode}) "
        f"from {rec.path}",
        file=sys.stderr,
    )
    print(f"listening on http://{host}:{port}", flush=True)
    # the model and the app live as long as the process: out of the collector's way,
    # so that its full passes stay short under load (tail latency)
    gc.collect()
    gc.freeze()
    server.run(sockets=[sock])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an exported model over HTTP (JSON API, metrics, micro-batching, hot reload)",
        description="Serve an exported model over HTTP with FastAPI on uvicorn, torch-free: "
        "POST /next_items and /next_items_batch, GET /health, /ready, /metrics (Prometheus), "
        "/openapi.json and /docs. Sessions of concurrent requests are scored in one "
        "onnxruntime call; a model published into MODEL's directory (sessionrec fit --out, "
        "sessionrec export) is verified and served without a restart. Needs "
        f"{_EXTRA_HINT}. Endpoints and errors: export/README.md.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="the exported .onnx file, or its directory (sessionrec export --out, fit --out)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free port)"
    )
    add_threads(p, "onnxruntime threads per call", default=1)
    p.add_argument(
        "--max-batch",
        type=_positive(int, "--max-batch", 1),
        default=256,
        help="most sessions scored in one onnxruntime call (default 256)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=_positive(float, "--batch-wait-ms", 0),
        default=1.0,
        help="how long a session may wait for others when the model is idle (milliseconds, "
        "default 1; 0: score at once what is queued)",
    )
    p.add_argument(
        "--batch-workers",
        type=_positive(int, "--batch-workers", 1),
        default=1,
        help="onnxruntime calls that may run at once (default 1)",
    )
    p.add_argument(
        "--reload-interval",
        type=_positive(float, "--reload-interval", 0),
        default=1.0,
        help="seconds between looks at MODEL's manifest for a newly published model "
        "(default 1; 0: never reload)",
    )
    p.add_argument(
        "--require-manifest",
        action="store_true",
        help="refuse a model without a manifest.json to verify it against",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="score every item even when the export has two-stage files",
    )
    p.add_argument(
        "--nprobe",
        type=_positive(int, "--nprobe", 1),
        help="two-stage serving: index lists searched per session (default: the export's)",
    )
    p.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="log level of the service's log on stderr (default info)",
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        help="log every request on stderr (default: off; /metrics counts them)",
    )
    p.set_defaults(func=_serve)
