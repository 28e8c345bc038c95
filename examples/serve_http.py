"""A next-item recommendation HTTP service: the standard library and SessionRecommender
(numpy + onnxruntime; no PyTorch).

A zero-dependency sample: a service in production wants ``sessionrec serve`` (FastAPI on
uvicorn: micro-batching, hot reload, metrics, readiness; several times the throughput of
this one, ``benchmarks/serve_load.py``).

Run::

    python examples/serve_http.py --model model.onnx --port 8080

Endpoints (JSON in, JSON out):

- ``GET /health`` -> ``{"status": "ok", "n_items": ..., "id_kind": ..., "metadata": {...}}``
  (the file's metadata, numbers as numbers and JSON values decoded)
- ``POST /next_items`` with ``{"clicks": [id, ...], "k": 20, "exclude_seen": true}``
  -> ``{"items": [{"item_id": ..., "score": ...}, ...], "fallback": false,
  "unknown_clicks": 0}``
- ``POST /next_items_batch`` with ``{"sessions": [[id, ...], ...], "k": 20}``
  -> ``{"results": [{"items": [...], "fallback": ..., "unknown_clicks": ...}, ...]}``

``unknown_clicks``: how many of the session's ids the model does not know (they are
ignored), ``null`` for a file exported before sessionrec 0.2.0. Integer ids are exact at
any int64 size (Python's ``json`` keeps big integers).

Bad input gets ``400 {"error": "..."}``, ``POST /health`` 405. The server is threaded; one
:class:`SessionRecommender` is shared by all request threads (it is thread-safe). On start
it prints ``listening on http://HOST:PORT`` (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sessionrec import SessionRecommender
from sessionrec.errors import SessionrecError
from sessionrec.serving.files import typed_metadata

MAX_BODY_BYTES = 1 << 20


def make_handler(rec: SessionRecommender) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``rec``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "sessionrec-example/1"

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _read_json(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError(f"request body over {MAX_BODY_BYTES} bytes")
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError as exc:
                raise ValueError(f"the request body is not valid JSON ({exc.msg})") from None
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            return body

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                self._send(
                    HTTPStatus.OK,
                    {
                        "status": "ok",
                        "n_items": rec.n_items,
                        "id_kind": rec.id_kind,
                        "metadata": typed_metadata(rec.metadata),
                    },
                )
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path == "/health":
                self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
                self.send_header("Allow", "GET")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                body = self._read_json()
                options = {
                    "k": body.get("k", 20),
                    "exclude_seen": body.get("exclude_seen", True),
                }
                if self.path == "/next_items":
                    if "clicks" not in body:
                        raise ValueError('missing "clicks": a list of item ids')
                    result: dict[str, Any] = rec.next_items(body["clicks"], **options).to_dict()
                elif self.path == "/next_items_batch":
                    if "sessions" not in body:
                        raise ValueError('missing "sessions": a list of lists of item ids')
                    results = rec.next_items_batch(body["sessions"], **options)
                    result = {"results": [r.to_dict() for r in results]}
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
                    return
            except (SessionrecError, ValueError) as exc:  # JSONDecodeError is a ValueError
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            self._send(HTTPStatus.OK, result)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the .onnx file (sessionrec export)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per call")
    args = parser.parse_args(argv)
    rec = SessionRecommender.load(args.model, threads=args.threads)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(rec))
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
