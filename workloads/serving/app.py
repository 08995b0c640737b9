"""The model server's HTTP layer: Open Inference Protocol v2 routes on Starlette.

Contract:

- Routes: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``,
  ``GET /v2/models/{name}``, ``GET /v2/models/{name}/ready``, ``POST /v2/models/{name}/infer``,
  ``GET /metrics``; and SageMaker's pair, ``GET /ping`` (= ready) and ``POST /invocations`` (= infer
  on the served model, the same OIP v2 body). Every error is JSON ``{"error": "..."}``: bad input is 400, a wrong or
  missing token 401, an unknown model or route 404, a wrong method 405, a body above
  ``max_body_bytes`` 413, loading / draining / a full queue 503 with ``Retry-After``, a failing
  history source 502. Bad input never reaches the model, so it is never a 500.
- Lifecycle (KServe's): at startup the predictor's ``load()`` runs in the model worker thread
  while the server already answers liveness; readiness turns true when it returns. A load
  failure calls ``on_fatal`` (the entry point exits non-zero). ``ServingState.begin_drain()``
  (SIGTERM) turns readiness false and answers new inference requests 503, while requests
  already in flight finish; ``wait_idle()`` tells when they have.
- Before the model is ready (loading) — tested route by route in tests/workloads/test_serving_edges.py:

  ====================================  =================================  ==================
  route                                 while loading (or draining)        once ready
  ====================================  =================================  ==================
  ``GET /v2/health/live``               200 ``{"live": true}``             200
  ``GET /v2/health/ready``              503 ``{"ready": false}``           200
  ``GET /v2``                           200 server metadata                200
  ``GET /v2/models/{name}``             503 error + Retry-After            200 metadata
  ``GET /v2/models/{name}/ready``       503 ``{"name", "ready": false}``   200
  ``POST /v2/models/{name}/infer``      503 error + Retry-After            200 (or 4xx)
  ``GET /metrics``                      200 (cold-start phases once ready) 200
  ``GET /ping``                         503 ``{"ready": false}``           200
  ``POST /invocations``                 503 error + Retry-After            200 (or 4xx)
  ====================================  =================================  ==================

  An unknown model name is 404 in every state; with a token, auth is checked first (401).
  Behind the activator (activator.py) every one of these routes is held while the server
  starts — a probe through it wakes a stopped server; probe ``/activator/status`` instead.
- Auth: with ``auth_token`` set, ``/v2`` metadata and inference require
  ``Authorization: Bearer <token>`` (compared with ``hmac.compare_digest``); health routes and
  ``/metrics`` stay open for probes and scrapers.
- This module does not import torch: the predictor is any object with ``load``/``predict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workloads.serving import tracing
from workloads.serving.batcher import DynamicBatcher, QueueFullError
from workloads.serving.bodies import declared_length, discard_rest, worth_discarding
from workloads.serving.history import HistoryLookupError, HistorySource
from workloads.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from workloads.serving.model_runner import Prediction, PredictJob
from workloads.serving.protocol import (
    BINARY_HEADER,
    EXTENSIONS,
    InferRequest,
    ModelSpec,
    ProtocolError,
    error_body,
    history_from_source,
    infer_response,
    model_metadata,
    parse_infer_request,
)

log = logging.getLogger("gpuplane.serving")

SERVER_NAME = "gpuplane-serving"
SERVER_VERSION = "0.1.0"


@dataclass(frozen=True)
class ServerConfig:
    """Server settings (the command-line flags of ``python -m workloads.serving``)."""

    model_name: str = "recommender"
    """Name in ``/v2/models/{name}``."""
    max_batch_size: int = 64
    """Most rows in one model call; also the largest batch one request may send."""
    max_batch_delay_ms: float = 5.0
    """Longest a request waits for batch mates, in milliseconds."""
    max_queue: int = 256
    """Most requests waiting for a batch; beyond it requests get 503 with Retry-After."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted, in bytes (413 above)."""
    auth_token: str | None = None
    """Bearer token required for metadata and inference; None disables auth."""
    retry_after_seconds: int = 1
    """Retry-After sent with every 503."""


class Predictor(Protocol):
    """What the server runs: KServe-style ``load()`` once, then ``predict()`` per batch.
    Both are blocking and called in the model worker thread."""

    @property
    def phases(self) -> Mapping[str, float]:
        """Cold-start phases measured by ``load()``, in seconds."""
        ...

    def load(self) -> ModelSpec: ...

    def predict(self, jobs: Sequence[PredictJob]) -> Sequence[Prediction]: ...


class ServingState:
    """Readiness, draining and in-flight accounting, shared by routes and the entry point."""

    def __init__(self) -> None:
        self.spec: ModelSpec | None = None
        self.draining = False
        self.load_error: str | None = None
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def ready(self) -> bool:
        return self.spec is not None and not self.draining

    def begin_drain(self) -> None:
        """Stop taking new inference requests; those in flight go on."""
        self.draining = True

    async def wait_idle(self, timeout_seconds: float) -> bool:
        """True once no inference request is in flight; False if ``timeout_seconds`` passed."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_seconds)
        except TimeoutError:
            return False
        return True

    @contextlib.contextmanager
    def track(self) -> Any:
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()


class _Reject(Exception):
    """An early reply from a route (auth, readiness, size)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message), status_code=status, headers=dict(headers or {}))


class _CountReplies:
    """ASGI middleware: counts replies by route template and status code."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.count_reply(template, status)


def create_app(
    predictor: Predictor,
    config: ServerConfig = ServerConfig(),
    *,
    history_source: HistorySource | None = None,
    process_start: float | None = None,
    on_fatal: Callable[[], None] | None = None,
    tracer: Any = None,
) -> Starlette:
    """Build the ASGI app. ``process_start`` is ``time.monotonic()`` at process creation (for
    the cold-start ``total`` phase; default: now). ``on_fatal`` is called if loading fails.
    ``tracer`` (an OpenTelemetry tracer from ``tracing.setup``; None: no tracing) traces inference
    requests and the cold start (workloads/serving/tracing.py)."""
    metrics = ServingMetrics()
    state = ServingState()
    started = time.monotonic() if process_start is None else process_start
    retry = {"Retry-After": str(config.retry_after_seconds)}
    token = config.auth_token.encode() if config.auth_token else None
    batcher: DynamicBatcher[PredictJob, Prediction] = DynamicBatcher(
        predictor.predict,
        rows_of=lambda job: job.rows,
        max_batch_size=config.max_batch_size,
        max_delay_seconds=config.max_batch_delay_ms / 1000.0,
        max_queue=config.max_queue,
        on_batch=metrics.observe_batch,
    )
    metrics.track_queue_depth(lambda: batcher.depth)
    metrics.in_flight.set_function(lambda: state.in_flight)
    metrics.ready.set_function(lambda: 1.0 if state.ready else 0.0)

    def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise _Reject(401, "missing bearer token; send 'Authorization: Bearer <token>'",
                          {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(presented.strip().encode(), token):
            raise _Reject(401, "invalid bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def loaded_spec(name: str) -> ModelSpec:
        if name != config.model_name:
            raise _Reject(404, f"unknown model '{name}'; this server serves '{config.model_name}'")
        if state.draining:
            raise _Reject(503, "server is shutting down; retry on another replica", retry)
        if state.spec is None:
            raise _Reject(503, f"model '{name}' is still loading", retry)
        return state.spec

    async def read_body(request: Request) -> bytes:
        # Over the limit: discard the rest before replying, so a client still sending reads the
        # 413 instead of a connection reset (workloads/serving/bodies.py).
        limit = config.max_body_bytes
        headers = request.scope["headers"]
        declared = declared_length(headers)
        if declared is not None and declared > limit:
            if worth_discarding(headers):
                await discard_rest(request.receive)
            raise _Reject(413, f"request body of {declared} bytes exceeds the limit of {limit} bytes "
                               "(--max-body-bytes); send fewer rows per request", {"Connection": "close"})
        chunks, size = [], 0
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > limit:
                if more and worth_discarding(headers, size):
                    await discard_rest(request.receive, size)
                raise _Reject(413, f"request body exceeds the limit of {limit} bytes (--max-body-bytes); "
                                   "send fewer rows per request", {"Connection": "close"})
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def histories_of(request: InferRequest, spec: ModelSpec) -> tuple[tuple[int, ...], ...]:
        if request.histories is not None:
            return request.histories
        users = request.user_ids or ()
        if history_source is None:
            raise _Reject(400, "input 'user_id' needs a history source, and this server has none "
                               "configured; send 'item_ids' (each user's recent items) instead")
        try:
            with tracing.child_span(tracer, "feature lookup", attributes={"gpuplane.users": len(users)}):
                found = await history_source.histories(users)
        except HistoryLookupError as exc:
            raise _Reject(502, f"history source {history_source.name} failed: {exc}") from None
        if len(found) != len(users):
            raise _Reject(502, f"history source {history_source.name} returned {len(found)} histories "
                               f"for {len(users)} users")
        return tuple(history_from_source(u, items, spec) for u, items in zip(users, found, strict=True))

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)

    async def server_metadata(request: Request) -> Response:
        authorize(request)
        return JSONResponse({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)})

    async def metadata(request: Request) -> Response:
        authorize(request)
        spec = loaded_spec(request.path_params["name"])
        return JSONResponse(model_metadata(spec, config.max_batch_size))

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        if name != config.model_name:
            raise _Reject(404, f"unknown model '{name}'; this server serves '{config.model_name}'")
        return JSONResponse({"name": name, "ready": state.ready}, status_code=200 if state.ready else 503)

    async def infer(request: Request) -> Response:
        if tracer is None:
            return await handle_infer(request, None)
        with tracing.server_span(tracer, "POST /v2/models/{name}/infer", request.scope) as span:
            reply = await handle_infer(request, span)
            tracing.set_status_code(span, reply.status_code)
            return reply

    async def handle_infer(request: Request, span: Any) -> Response:
        t0 = time.perf_counter()
        with state.track():
            authorize(request)
            spec = loaded_spec(request.path_params.get("name", config.model_name))  # /invocations: the one model
            body = await read_body(request)
            parsed = parse_infer_request(body, spec, config.max_batch_size, request.headers.get(BINARY_HEADER))
            job = PredictJob(await histories_of(parsed, spec), parsed.k)
            try:
                prediction, times = await batcher.submit(job)
            except QueueFullError as exc:
                raise _Reject(503, f"server is at capacity: {exc}; retry later", retry) from None
            if span is not None:
                tracing.record_stages(tracer, span, times, time.perf_counter())
            reply = JSONResponse(infer_response(spec, parsed, prediction.items, prediction.scores))
        metrics.queue_latency.observe(times.queue_seconds)
        metrics.inference_latency.observe(times.inference_seconds)
        metrics.total_latency.observe(time.perf_counter() - t0)
        return reply

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def load() -> None:
        t0 = time.monotonic()
        try:
            spec = await batcher.run_in_worker(predictor.load)
        except Exception as exc:
            state.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", state.load_error)
            if on_fatal is not None:
                on_fatal()
            return
        phases = {"interpreter": app_started - started, "server_start": t0 - app_started,
                  **predictor.phases, "total": time.monotonic() - started}
        metrics.set_cold_start(phases)
        if tracer is not None:  # under the request that started this process, when the activator passed one
            tracing.record_cold_start(tracer, phases, time.time_ns(), tracing.context_from_env())
        state.spec = spec
        log.info("ready: model '%s' (%d items, block_size %d); cold start %s", spec.name, spec.num_items,
                 spec.block_size, " ".join(f"{p}={s:.3f}s" for p, s in phases.items()))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        loader = asyncio.create_task(load(), name="model-load")
        try:
            yield
        finally:
            state.begin_drain()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            await batcher.stop()
            if history_source is not None:
                await history_source.aclose()

    async def on_reject(request: Request, exc: Exception) -> Response:
        reject = cast(_Reject, exc)
        return _error(reject.status, reject.message, reject.headers)

    async def on_protocol_error(request: Request, exc: Exception) -> Response:
        invalid = cast(ProtocolError, exc)
        return _error(invalid.status, invalid.message)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        http = cast(HTTPException, exc)
        message = {404: f"no route {request.url.path}", 405: f"method {request.method} is not allowed on "
                   f"{request.url.path}"}.get(http.status_code, str(http.detail))
        return _error(http.status_code, message, http.headers)

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    app_started = time.monotonic()
    app = Starlette(
        routes=[  # matched in order: the hot route first
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/health/live", live, methods=["GET"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
            Route("/v2", server_metadata, methods=["GET"]),
            Route("/v2/models/{name}", metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            # SageMaker's container contract (it runs `docker run IMAGE serve` and calls these on 8080):
            # /ping is readiness, /invocations an OIP v2 infer request for the served model.
            Route("/ping", ready, methods=["GET"]),
            Route("/invocations", infer, methods=["POST"]),
        ],
        exception_handlers={_Reject: on_reject, ProtocolError: on_protocol_error, HTTPException: on_http_error,
                            Exception: on_crash},
        lifespan=lifespan,
    )
    app.add_middleware(_CountReplies, metrics=metrics)
    app.state.serving = state
    app.state.metrics = metrics
    app.state.batcher = batcher
    return app
