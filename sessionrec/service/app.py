"""The HTTP application of ``sessionrec serve`` (FastAPI on uvicorn; torch-free).

Endpoints (JSON in, JSON out; the schema is served at ``/openapi.json``, pages at
``/docs``):

- ``POST /next_items`` ``{"clicks": [id, ...], "k": 20, "exclude_seen": true}`` ->
  ``{"items": [{"item_id": ..., "score": ...}, ...], "fallback": bool,
  "unknown_clicks": int | null, "model_version": "..."}``
- ``POST /next_items_batch`` ``{"sessions": [[id, ...], ...], "k": 20,
  "exclude_seen": true}`` -> ``{"results": [...], "model_version": "..."}``
- ``GET /health`` (liveness): ``{"status": "ok", "n_items", "id_kind", "model": {...}}``
  with the file's metadata typed (numbers as numbers, JSON values decoded);
- ``GET /ready`` (readiness): 200 while a model serves, 503 while shutting down;
- ``GET /metrics``: Prometheus text (requests, latency, batch sizes, the model's
  version, reloads, clicks and unknown clicks, fallbacks).

Errors are ``{"error": "...", ...}`` with the status that says what happened: 400 the
body is not JSON, 404 no such endpoint, 405 wrong method, 413 body over the limit, 422
valid JSON that breaks the schema or the model's id kind (``"errors"`` lists each
problem with its place, ``"clicks[2]"``), 500 an unexpected failure, 503 not ready.
Integer ids are exact at any int64 size.

Sessions of concurrent requests are scored together (:mod:`sessionrec.service.batching`)
and the model follows its directory (:mod:`sessionrec.service.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from sessionrec.errors import ConfigError
from sessionrec.recommender import NextItems
from sessionrec.service.batching import MicroBatcher
from sessionrec.service.reload import ModelWatcher, ServedModel
from sessionrec.version import __version__

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger("sessionrec.serve")

ItemId = StrictInt | StrictStr
MAX_SESSIONS_PER_REQUEST = 10_000
# seconds; from a quarter millisecond (one batched session) to a second
_LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_ENDPOINTS = ("/next_items", "/next_items_batch", "/health", "/ready", "/metrics")


@dataclass(frozen=True)
class ServeConfig:
    """How ``sessionrec serve`` serves (``sessionrec serve --help`` has the flags).

    Attributes:
        max_batch: the most sessions per onnxruntime call.
        max_wait_ms: how long a session may wait for others when the model is idle
            (milliseconds; 0 scores at once what is queued).
        workers: onnxruntime calls that may run at once (threads).
        reload_interval_s: how often the model directory is looked at for a new model
            (seconds; 0: never, the model is fixed for the life of the process).
        max_body_bytes: the largest request body accepted (bytes).
    """

    max_batch: int = 256
    max_wait_ms: float = 1.0
    workers: int = 1
    reload_interval_s: float = 1.0
    max_body_bytes: int = 1 << 20


class NextItemsRequest(BaseModel):
    """One session."""

    model_config = ConfigDict(extra="forbid")
    clicks: list[ItemId] = Field(
        description="the session so far, oldest first: raw item ids of the model's kind "
        "(integers for `id_kind` int, strings for str); unknown ids are ignored and counted"
    )
    k: Annotated[StrictInt, Field(ge=1, description="how many items")] = 20
    exclude_seen: StrictBool = Field(True, description="leave out items already in the session")


class NextItemsBatchRequest(BaseModel):
    """Many sessions, answered in order."""

    model_config = ConfigDict(extra="forbid")
    sessions: list[list[ItemId]] = Field(
        max_length=MAX_SESSIONS_PER_REQUEST, description="sessions, each as `clicks` above"
    )
    k: Annotated[StrictInt, Field(ge=1, description="how many items per session")] = 20
    exclude_seen: StrictBool = Field(True, description="leave out items already in each session")


class Item(BaseModel):
    item_id: ItemId
    score: float


class NextItemsResponse(BaseModel):
    items: list[Item] = Field(description="best first")
    fallback: bool = Field(description="no known click: the most popular items")
    unknown_clicks: int | None = Field(description="clicks the model does not know")
    model_version: str = Field(description="the served model (SHA-256 prefix of its file)")


class SessionResult(BaseModel):
    items: list[Item]
    fallback: bool
    unknown_clicks: int | None


class NextItemsBatchResponse(BaseModel):
    results: list[SessionResult]
    model_version: str


class ErrorResponse(BaseModel):
    error: str
    errors: list[dict[str, str]] | None = None


class _Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sessionrec_requests", "HTTP requests", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "sessionrec_request_duration_seconds",
            "time from the request's arrival to its answer",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "sessionrec_batch_sessions",
            "sessions per onnxruntime call (micro-batching)",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.sessions = Counter("sessionrec_sessions", "sessions answered", registry=r)
        self.clicks = Counter("sessionrec_clicks", "clicks in the sessions answered", registry=r)
        self.unknown = Counter(
            "sessionrec_unknown_clicks", "clicks on ids the model does not know", registry=r
        )
        self.fallback = Counter(
            "sessionrec_fallback_sessions", "sessions answered by popularity", registry=r
        )
        self.model = Gauge(
            "sessionrec_model_info",
            "the served model (value 1): version, catalog size, id kind, mode",
            ["version", "n_items", "id_kind", "mode"],
            registry=r,
        )
        self.model_loaded = Gauge(
            "sessionrec_model_loaded_timestamp_seconds", "when the served model loaded", registry=r
        )
        self.reloads = Counter(
            "sessionrec_model_reloads", "models loaded after start", ["result"], registry=r
        )

    def serve(self, model: ServedModel) -> None:
        self.model.clear()
        rec = model.rec
        self.model.labels(model.version, str(rec.n_items), rec.id_kind, rec.mode).set(1)
        self.model_loaded.set(model.loaded_at)

    def answered(self, clicks: int, result: NextItems) -> None:
        self.sessions.inc()
        self.clicks.inc(clicks)
        if result.unknown_clicks:
            self.unknown.inc(result.unknown_clicks)
        if result.fallback:
            self.fallback.inc()


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _place(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as the request names it: ``("body", "clicks", 2)`` ->
    ``clicks[2]``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("int", "str") or "[" in str(part):  # union branches: not a place
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(e for e in errors if e.get("type") == "json_invalid")
        detail = (reason.get("ctx") or {}).get("error", "")
        return _error(400, f"the request body is not valid JSON ({detail})".replace(" ()", ""))
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return _error(400, "the request body is empty: send a JSON object (see /docs)")
    if any(e.get("type") == "model_attributes_type" and len(e.get("loc", ())) <= 1 for e in errors):
        return _error(422, "the request body must be a JSON object: see /docs for its fields")
    problems: dict[str, str] = {}
    for e in errors:  # an id of neither kind fails both union branches: say it once
        problems.setdefault(_place(tuple(e.get("loc", ()))), e.get("msg", "invalid"))
    listed = [{"place": place, "message": msg} for place, msg in problems.items()]
    summary = "; ".join(f"{p['place']}: {p['message']}" for p in listed[:5])
    more = f" (and {len(listed) - 5} more)" if len(listed) > 5 else ""
    return _error(422, f"the request does not match the schema: {summary}{more}", errors=listed)


class _Edge:
    """Pure ASGI middleware at the edge of the app: counts and times every request,
    refuses a body over the limit (413) before it is read, and reads every POST body as
    JSON whatever its ``Content-Type`` (the API speaks only JSON; ``curl -d`` sends
    ``application/x-www-form-urlencoded``)."""

    def __init__(self, app: Any, metrics: _Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status = {"code": 500}
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        length = next((v for k, v in headers if k == b"content-length"), None)
        if scope["method"] == "POST":
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                refusal = _error(
                    413,
                    f"request body of {int(length)} bytes, over the limit of {self.max_body_bytes}",
                )
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


@dataclass
class _Service:
    """What the endpoints share: the served model, the batcher, the metrics."""

    watcher: ModelWatcher
    batcher: MicroBatcher
    metrics: _Metrics
    ready: bool = False

    async def answer(
        self, model: ServedModel, sessions: list[Any], k: int, exclude: bool, where: str
    ) -> list[NextItems]:
        """Check every session (a bad one fails the request before any is scored), then
        score them with the sessions of other requests."""
        rec = model.rec
        k = rec.validate_options(k, exclude)
        checked = [rec.validate_session(s, where.format(i)) for i, s in enumerate(sessions)]
        results = await asyncio.gather(*(self.batcher.submit(rec, c, k, exclude) for c in checked))
        for c, result in zip(checked, results):
            self.metrics.answered(len(c), result)
        return list(results)

    def refusal(self) -> JSONResponse | None:
        """503 while not ready (shutting down), else ``None``."""
        return None if self.ready else _error(503, "the service is shutting down")


def create_app(
    first: ServedModel,
    config: ServeConfig = ServeConfig(),
    **load_options: Any,
) -> FastAPI:
    """The ASGI application serving ``first`` (and the models published after it in its
    directory, when ``config.reload_interval_s > 0``).

    Args:
        first: the model to serve (:func:`sessionrec.service.reload.load_served_model`).
        config: batching, reload and limits.
        **load_options: :meth:`SessionRecommender.load`'s keywords for reloaded models
            (``threads``, ``require_manifest``, ``exact``, ``nprobe``).
    """
    metrics = _Metrics()
    metrics.serve(first)
    batcher = MicroBatcher(
        config.max_batch, config.max_wait_ms / 1000, config.workers, metrics.batch.observe
    )

    def on_reload(result: str, model: ServedModel | None) -> None:
        metrics.reloads.labels(result).inc()
        if model is not None:
            metrics.serve(model)

    watcher = ModelWatcher(
        first.rec.path,
        first,
        interval_s=config.reload_interval_s or 1.0,
        on_reload=on_reload,
        **load_options,
    )
    service = _Service(watcher, batcher, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        if config.reload_interval_s > 0:
            watcher.start()
        service.ready = True
        try:
            yield
        finally:
            service.ready = False
            await watcher.stop()
            await batcher.stop()

    app = FastAPI(
        title="sessionrec",
        summary="Next-item recommendations for anonymous sessions (SR-GNN, ONNX)",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,  # /next_items/ is a 404 in JSON, not a bare redirect
    )
    app.state.service = service
    app.add_middleware(_Edge, metrics=metrics, max_body_bytes=config.max_body_bytes)
    _add_error_handlers(app)
    _add_routes(app, service)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, f"no such endpoint: {request.url.path}; see /docs")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}")
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}; see the server's log")


def _add_routes(app: FastAPI, service: _Service) -> None:
    watcher = service.watcher

    @app.post(
        "/next_items",
        response_model=None,
        responses={200: {"model": NextItemsResponse}, 422: {"model": ErrorResponse}},
    )
    async def next_items(body: NextItemsRequest) -> Any:
        """The `k` items most likely to be clicked next in one session."""
        if (refused := service.refusal()) is not None:
            return refused
        model = watcher.current
        try:
            (result,) = await service.answer(
                model, [body.clicks], body.k, body.exclude_seen, "clicks"
            )
        except ConfigError as exc:
            return _error(422, str(exc))
        # a JSONResponse skips FastAPI's generic encoder: the dict is JSON-ready
        return JSONResponse({**result.to_dict(), "model_version": model.version})

    @app.post(
        "/next_items_batch",
        response_model=None,
        responses={200: {"model": NextItemsBatchResponse}, 422: {"model": ErrorResponse}},
    )
    async def next_items_batch(body: NextItemsBatchRequest) -> Any:
        """`/next_items` for many sessions in one request (same order)."""
        if (refused := service.refusal()) is not None:
            return refused
        model = watcher.current
        try:
            results = await service.answer(
                model, body.sessions, body.k, body.exclude_seen, "sessions[{}]"
            )
        except ConfigError as exc:
            return _error(422, str(exc))
        return JSONResponse(
            {"results": [r.to_dict() for r in results], "model_version": model.version}
        )

    @app.head("/health", include_in_schema=False)
    async def health_head() -> Response:
        """Liveness for probes that send HEAD."""
        return Response(status_code=200)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, and the served model."""
        model = watcher.current
        return {
            "status": "ok",
            "n_items": model.rec.n_items,
            "id_kind": model.rec.id_kind,
            "model": model.describe(),
        }

    @app.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready() -> Any:
        """Readiness: 200 while a model serves, 503 while shutting down."""
        if (refused := service.refusal()) is not None:
            return refused
        return {"ready": True, "model_version": watcher.current.version}

    @app.get("/metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
