"""Local two-tier / weighted router: ``python -m workloads.serving.router --port P
--backend NAME=URL [--backend NAME=URL ...] --mode overflow|split [--overflow-threshold N]
[--weight NAME=PERCENT ...]``.

What a gateway with a queue-aware overflow rule does for a cluster, for one machine (``gpuplane
demo``, single-VM users, the router Deployment of ``components/two_tier/``):

- ``overflow`` (two backends): the first is the steady tier, the second the burst tier (usually a
  scale-to-zero server behind ``workloads/serving/activator.py``, which holds requests while it
  starts). A request goes to the burst tier when the steady tier's load is at or above
  ``--overflow-threshold``; the load is ``--overflow-signal``:
  ``in-flight`` (default) — the requests this router has in flight to the steady tier, exact and
  without lag; or ``queue-depth`` — the steady server's ``gpuplane_serving_queue_depth`` gauge,
  polled from its ``/metrics`` every ``--poll-interval-ms`` (100), plus the requests the router
  sent it since that poll that have not been answered (so a burst between two polls is counted).
  Only POST requests (inference) spill; other methods (health checks, metadata) stay on the
  steady tier. While the burst tier is ejected (below) everything goes to the steady tier, and the
  other way round.
- ``split``: weighted random choice by ``--weight NAME=PERCENT`` (summing to 100; backends not
  named get 0; no weights: all to the first backend), seeded by ``--seed``. Ejected backends are
  skipped and their share spread over the others.
- A backend that cannot be reached answers 502 naming it, one that does not reply within
  ``--upstream-timeout-seconds`` 504 naming it; an unreachable backend is ejected for
  ``--eject-seconds`` (its traffic goes to the other, then it is tried again), so the other keeps
  serving. A reply carries ``x-gpuplane-backend: NAME``.
- Admin routes: ``GET /router/status`` (JSON: mode, per backend url, weight, requests,
  errors_5xx, in_flight, latency_ms p50/p99, since the last reset), ``PUT /router/weights``
  (``{NAME: PERCENT}``, summing to 100, else 422 naming the values), ``PUT /router/backends``
  (``{NAME: URL}`` adds or replaces backends), ``POST /router/reset`` (clears the status figures),
  ``GET /router/metrics`` (Prometheus, cumulative). Every other path is forwarded.
- Forwarding is the activator's: plain ASGI, ``http_pool.ConnectionPool`` keep-alive connections
  per backend, the request body read whole (``--max-body-bytes``, 413 above), hop-by-hop headers
  dropped, the reply passed on as it arrives. ``--backend-path NAME=PATH`` sends every request
  for that backend to PATH (a SageMaker ``/endpoints/E/invocations`` behind a SigV4 signing proxy)
  and ``--backend-header NAME=HEADER:VALUE`` adds a request header for it.

Deliberately not done: TLS to backends (in a cluster the gateway or mesh does it), retries of a
request that may have reached a backend (inference is not known to be idempotent), sticky
sessions, WebSockets, several router replicas sharing load state.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import random
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from workloads.serving.activator import METHODS, REPLY_DROPPED, REQUEST_DROPPED
from workloads.serving.asgi import ForwardFirst, GracefulServer
from workloads.serving.bodies import ClientGone, read_whole_body
from workloads.serving.http_pool import ConnectionPool, UpstreamError, UpstreamTimeout

log = logging.getLogger("gpuplane.router")

MODES = ("overflow", "split")
SIGNALS = ("in-flight", "queue-depth")
ROUTER_PREFIX = "/router/"
QUEUE_DEPTH_METRIC = b"gpuplane_serving_queue_depth"
LATENCY_SAMPLES = 100_000
"""Latencies kept per backend for the status percentiles (the most recent ones)."""
LATENCY_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                           30.0, 60.0, 120.0)
BACKEND_HEADER = b"x-gpuplane-backend"


class BadRouterInput(ValueError):
    """Bad router settings (flags or an admin request); the message names the values and the fix."""


@dataclass(frozen=True)
class RouterConfig:
    """Settings of one router (its command-line flags)."""

    backends: tuple[tuple[str, str], ...]
    """(name, http://host:port) in order; in overflow mode the first is the steady tier."""
    mode: str = "overflow"
    """``overflow`` (spill from the first backend to the second) or ``split`` (weighted)."""
    overflow_threshold: int = 8
    """Steady-tier load (requests) at or above which a request goes to the burst tier."""
    overflow_signal: str = "in-flight"
    """``in-flight`` (the router's own count) or ``queue-depth`` (the steady server's gauge)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Split percentages by backend name (sum 100); empty: all to the first backend."""
    poll_interval_seconds: float = 0.1
    """How often the steady server's queue gauge is read (``queue-depth`` signal only)."""
    upstream_timeout_seconds: float = 120.0
    """Longest wait for one reply (covers a burst tier's cold start behind the activator)."""
    eject_seconds: float = 1.0
    """How long an unreachable backend gets no traffic before it is tried again."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted (413 above)."""
    seed: int | None = None
    """Seed of the split mode's random choice (None: unseeded)."""
    backend_paths: Mapping[str, str] = field(default_factory=dict)
    """Backend name -> the fixed path its requests are sent to (query kept); default: the request's."""
    backend_headers: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """Backend name -> extra request headers ((name, value), ...)."""


def parse_backend_url(name: str, url: str) -> tuple[str, int]:
    """(host, port) of a backend URL; BadRouterInput for anything but http://host[:port][/]."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise BadRouterInput(f"backend {name}={url!r} must be http://HOST:PORT (the router speaks plain HTTP/1.1; "
                             "TLS and path prefixes are left to a gateway in front of it)")
    try:
        port = parts.port or 80
    except ValueError:
        raise BadRouterInput(f"backend {name}={url!r} has a bad port") from None
    return parts.hostname, port


def validate_weights(weights: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    """The weights as floats for every backend (missing ones 0); BadRouterInput naming the values."""
    unknown = [n for n in weights if n not in names]
    if unknown:
        raise BadRouterInput(f"weights name unknown backends {', '.join(map(repr, unknown))} "
                             f"(backends: {', '.join(names)})")
    bad = {n: w for n, w in weights.items()
           if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 100}
    if bad:
        raise BadRouterInput(f"weights must be numbers from 0 to 100, got {json.dumps(bad)}")
    total = sum(float(w) for w in weights.values())
    if abs(total - 100.0) > 1e-6:
        raise BadRouterInput(f"weights must sum to 100, got {json.dumps(dict(weights))} (sum {total:g})")
    return {n: float(weights.get(n, 0.0)) for n in names}


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("gpuplane_router_requests", "Replies by backend and status code.",
                                ["backend", "code"], registry=r)
        self.latency = Histogram("gpuplane_router_latency_seconds", "Request latency through the router, by backend.",
                                 ["backend"], buckets=LATENCY_BUCKETS_SECONDS, registry=r)
        self.in_flight = Gauge("gpuplane_router_in_flight_requests", "Requests in flight, by backend.", ["backend"],
                               registry=r)
        self.overflows = Counter("gpuplane_router_overflows", "Requests spilled to the burst tier.", registry=r)
        self.steady_load = Gauge("gpuplane_router_steady_load", "The steady tier's load as the overflow rule sees it.",
                                 registry=r)
        self.weight = Gauge("gpuplane_router_weight_percent", "Split weight by backend.", ["backend"], registry=r)
        self.ejected = Gauge("gpuplane_router_backend_ejected", "1 while a backend is ejected.", ["backend"],
                             registry=r)
        self._replies: dict[tuple[str, int], Counter] = {}

    def count_reply(self, backend: str, code: int) -> None:
        child = self._replies.get((backend, code))
        if child is None:  # label lookups lock and hash; forwarded requests reuse the child
            child = self._replies[(backend, code)] = self.requests.labels(backend=backend, code=str(code))
        child.inc()


class Backend:
    """One upstream: its pool, the router's in-flight count and the figures since the last reset."""

    def __init__(self, name: str, url: str, metrics: RouterMetrics) -> None:
        self.name, self.url = name, url
        self.host, self.port = parse_backend_url(name, url)
        self.pool = ConnectionPool(self.host, self.port)
        self.weight = 0.0
        self.in_flight = 0
        self.requests = 0
        self.errors_5xx = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.ejected_until = 0.0
        self.latency_child = metrics.latency.labels(backend=name)
        self.in_flight_child = metrics.in_flight.labels(backend=name)
        self.ejected_child = metrics.ejected.labels(backend=name)
        self.path: bytes | None = None
        """Fixed upstream path for every request (``--backend-path``), else the request's own."""
        self.extra_headers: list[tuple[bytes, bytes]] = []

    def available(self, now: float) -> bool:
        return now >= self.ejected_until

    def reset(self) -> None:
        self.requests = self.errors_5xx = 0
        self.latencies.clear()

    def status(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 3) if ordered else None

        return {"url": self.url, "weight": self.weight, "requests": self.requests, "errors_5xx": self.errors_5xx,
                "in_flight": self.in_flight, "latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
                "ejected": not self.available(time.monotonic())}


class RouterState:
    """Backends, weights and the routing rule; the admin routes change it."""

    def __init__(self, config: RouterConfig, metrics: RouterMetrics) -> None:
        if config.mode not in MODES:
            raise BadRouterInput(f"mode {config.mode!r} is not one of {', '.join(MODES)}")
        if config.overflow_signal not in SIGNALS:
            raise BadRouterInput(f"overflow signal {config.overflow_signal!r} is not one of {', '.join(SIGNALS)}")
        if config.overflow_threshold < 1:
            raise BadRouterInput(f"--overflow-threshold={config.overflow_threshold} must be at least 1")
        names = [n for n, _ in config.backends]
        if not names:
            raise BadRouterInput("no backends: pass --backend NAME=URL (twice for overflow mode)")
        if len(set(names)) != len(names):
            raise BadRouterInput(f"backend names repeat: {', '.join(names)}")
        if config.mode == "overflow" and len(names) != 2:
            raise BadRouterInput(f"overflow mode routes between exactly two backends (steady, then burst), "
                                 f"got {len(names)}: {', '.join(names)}")
        self.config, self.metrics = config, metrics
        self.mode = config.mode
        unknown = sorted((set(config.backend_paths) | set(config.backend_headers)) - set(names))
        if unknown:
            raise BadRouterInput(f"--backend-path/--backend-header name unknown backends {', '.join(unknown)} "
                                 f"(backends: {', '.join(names)})")
        bad_paths = {n: p for n, p in config.backend_paths.items() if not p.startswith("/")}
        if bad_paths:
            raise BadRouterInput(f"backend paths must start with '/', got {json.dumps(bad_paths)}")
        self.backends: dict[str, Backend] = {n: self._backend(n, u) for n, u in config.backends}
        self.random = random.Random(config.seed)
        self.steady_queue_depth: float | None = None
        """Last polled queue gauge of the steady tier (queue-depth signal), None before the first poll."""
        self.in_flight_at_poll = 0
        self.set_weights(config.weights or {names[0]: 100})
        self.overflow_spills = 0

    def _backend(self, name: str, url: str) -> Backend:
        backend = Backend(name, url, self.metrics)
        path = self.config.backend_paths.get(name)
        backend.path = path.encode() if path else None
        backend.extra_headers = [(k.strip().lower().encode(), v.strip().encode())
                                 for k, v in self.config.backend_headers.get(name, ())]
        return backend

    # --- routing -------------------------------------------------------------------------------------------
    def set_weights(self, weights: Mapping[str, Any]) -> None:
        checked = validate_weights(weights, list(self.backends))
        for name, backend in self.backends.items():
            backend.weight = checked[name]
            self.metrics.weight.labels(backend=name).set(backend.weight)
        self._cumulative: list[float] = []
        self._order: list[Backend] = []
        total = 0.0
        for backend in self.backends.values():
            if backend.weight > 0:
                total += backend.weight
                self._cumulative.append(total)
                self._order.append(backend)

    def steady_load(self, steady: Backend) -> float:
        if self.config.overflow_signal == "in-flight" or self.steady_queue_depth is None:
            return steady.in_flight
        return self.steady_queue_depth + max(0, steady.in_flight - self.in_flight_at_poll)

    def choose(self, method: str = "POST") -> Backend:
        now = time.monotonic()
        if self.mode == "overflow":
            steady, burst = self.backends.values()
            if not steady.available(now) and burst.available(now):
                return burst
            if method == "POST" and self.steady_load(steady) >= self.config.overflow_threshold \
                    and burst.available(now):
                self.overflow_spills += 1
                self.metrics.overflows.inc()
                return burst
            return steady
        pick = self.random.random() * 100.0
        chosen = self._order[min(bisect.bisect_right(self._cumulative, pick), len(self._order) - 1)] \
            if self._order else next(iter(self.backends.values()))
        if chosen.available(now):
            return chosen
        others = [(b, b.weight) for b in self._order if b is not chosen and b.available(now)]
        if not others:
            return chosen  # everything is ejected: try the drawn one again rather than refuse
        return self.random.choices([b for b, _ in others], weights=[w for _, w in others])[0]

    def eject(self, backend: Backend) -> None:
        backend.ejected_until = time.monotonic() + self.config.eject_seconds

    # --- admin ---------------------------------------------------------------------------------------------
    async def replace_backends(self, urls: Mapping[str, Any]) -> None:
        bad = {n: u for n, u in urls.items() if not isinstance(n, str) or not n or not isinstance(u, str)}
        if bad or not urls:
            raise BadRouterInput(f"backends must be a non-empty JSON object of NAME: URL strings, got "
                                 f"{json.dumps(urls) if isinstance(urls, dict) else urls!r}")
        for name, url in urls.items():
            parse_backend_url(name, url)
        added = [n for n in urls if n not in self.backends]
        if self.mode == "overflow" and added:
            raise BadRouterInput(f"overflow mode routes between exactly two backends "
                                 f"({', '.join(self.backends)}); replace their URLs instead of adding "
                                 f"{', '.join(added)}")
        for name, url in urls.items():
            old = self.backends.get(name)
            if old is not None and old.url == url:
                continue
            fresh = self._backend(name, url)
            if old is not None:
                fresh.weight = old.weight
                # fresh.in_flight starts at 0: requests still in flight on the old URL hold the old
                # Backend and count it down; they are load on the old server, not on the new one.
                await old.pool.close()  # idle connections close now, busy ones when their reply ends
            self.backends[name] = fresh
        self.set_weights({n: b.weight for n, b in self.backends.items()} if self._order
                         else {next(iter(self.backends)): 100})

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "backends": {n: b.status() for n, b in self.backends.items()}}
        if self.mode == "overflow":
            steady = next(iter(self.backends.values()))
            out.update(overflow_threshold=self.config.overflow_threshold, overflow_signal=self.config.overflow_signal,
                       steady_load=self.steady_load(steady), overflows=self.overflow_spills)
        return out

    def reset(self) -> None:
        for backend in self.backends.values():
            backend.reset()
        self.overflow_spills = 0


ForwardHook = Callable[[Scope, Backend], contextlib.AbstractAsyncContextManager[Any]]
"""Wraps one forwarded request (``async with hook(scope, backend):``) — where tracing attaches a span."""


@contextlib.asynccontextmanager
async def _no_hook(scope: Scope, backend: Backend) -> AsyncIterator[None]:
    yield


def create_router_app(config: RouterConfig, *, forward_hook: ForwardHook | None = None) -> Starlette:
    """The router as an ASGI app. ``/router/...`` routes and the lifespan go through Starlette,
    everything else straight to the forwarding path. ``forward_hook`` (default none) wraps each
    forwarded request once its backend is chosen: the place for a tracing span."""
    metrics = RouterMetrics()
    state = RouterState(config, metrics)
    timeout = config.upstream_timeout_seconds
    hook = forward_hook or _no_hook

    async def reply(send: Send, status: int, payload: dict[str, Any], backend: str | None = None) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if backend is not None:
            headers.append((BACKEND_HEADER, backend.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def read_body(scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body; None when it exceeds the limit (discarded first, so the client
        reads the 413); ClientGone if the client left."""
        return await read_whole_body(scope["headers"], receive, config.max_body_bytes)

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            await reply(send, 405, {"error": f"method {scope['method']} is not forwarded; use one of "
                                             f"{', '.join(sorted(METHODS))}"})
            return
        try:
            body = await read_body(scope, receive)
        except ClientGone:
            return
        if body is None:
            await reply(send, 413, {"error": f"request body exceeds the router's limit of {config.max_body_bytes} "
                                             "bytes (--max-body-bytes)"})
            return
        started = time.perf_counter()
        backend = state.choose(scope["method"])
        name = backend.name
        backend.in_flight += 1
        backend.in_flight_child.inc()
        code = 502
        try:
            async with hook(scope, backend):
                target = backend.path or scope.get("raw_path") or scope["path"].encode()
                if scope["query_string"]:
                    target = b"%s?%s" % (target, scope["query_string"])
                headers = [(k, v) for k, v in scope["headers"] if k not in REQUEST_DROPPED]
                if backend.extra_headers:
                    headers.extend(backend.extra_headers)
                try:
                    answer = await backend.pool.request(scope["method"], target, headers, body, timeout)
                except UpstreamTimeout:
                    code = 504
                    await reply(send, 504, {"error": f"backend {name!r} ({backend.url}) did not answer within "
                                                     f"{timeout:g}s", "backend": name}, name)
                    return
                except UpstreamError as exc:
                    state.eject(backend)
                    await reply(send, 502, {"error": f"backend {name!r} ({backend.url}) unreachable: {exc}",
                                            "backend": name}, name)
                    return
                code = answer.status
                await send({"type": "http.response.start", "status": code,
                            "headers": [*(h for h in answer.headers if h[0] not in REPLY_DROPPED),
                                        (BACKEND_HEADER, name.encode())]})
                if answer.body is not None:
                    await send({"type": "http.response.body", "body": answer.body})
                    return
                try:
                    async for chunk in answer.chunks():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except UpstreamError as exc:  # the reply has begun: all that is left is to cut it short
                    code = 502
                    log.warning("backend %s failed in the middle of a reply to %s %s: %s", name, scope["method"],
                                scope["path"], exc)
                    raise
                await send({"type": "http.response.body", "body": b""})
        finally:
            backend.in_flight -= 1
            backend.in_flight_child.dec()
            elapsed = time.perf_counter() - started
            backend.requests += 1
            if code >= 500:
                backend.errors_5xx += 1
            backend.latencies.append(elapsed)
            backend.latency_child.observe(elapsed)
            metrics.count_reply(name, code)

    async def poll_steady_queue() -> None:
        """Read the steady server's queue gauge every poll interval (queue-depth signal)."""
        warned = False
        while True:
            steady = next(iter(state.backends.values()))
            in_flight = steady.in_flight
            try:
                answer = await steady.pool.request("GET", b"/metrics", (), b"", max(1.0, config.poll_interval_seconds))
                text = answer.body if answer.body is not None else b"".join([c async for c in answer.chunks()])
                depth = next((float(line.split()[1]) for line in text.splitlines()
                              if line.startswith(QUEUE_DEPTH_METRIC + b" ")), None)
                if depth is None:
                    raise UpstreamError(f"/metrics answered {answer.status} without {QUEUE_DEPTH_METRIC.decode()}")
                state.steady_queue_depth, state.in_flight_at_poll = depth, in_flight
                metrics.steady_load.set(state.steady_load(steady))
                warned = False
            except (UpstreamError, ValueError, IndexError) as exc:
                state.steady_queue_depth = None  # fall back to the router's own in-flight count
                if not warned:
                    log.warning("cannot read the steady tier's queue depth (%s); using in-flight until it answers",
                                exc)
                    warned = True
            await asyncio.sleep(config.poll_interval_seconds)

    def admin_error(exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    async def json_body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise BadRouterInput(f"the body is not JSON: {exc}") from None

    async def status(request: Request) -> Response:
        return JSONResponse(state.status())

    async def put_weights(request: Request) -> Response:
        try:
            weights = await json_body(request)
            if not isinstance(weights, dict):
                raise BadRouterInput(f"weights must be a JSON object of NAME: PERCENT, got {weights!r}")
            state.set_weights(weights)
        except BadRouterInput as exc:
            return admin_error(exc)
        log.info("weights now %s", {n: b.weight for n, b in state.backends.items()})
        return JSONResponse(state.status())

    async def put_backends(request: Request) -> Response:
        try:
            urls = await json_body(request)
            if not isinstance(urls, dict):
                raise BadRouterInput(f"backends must be a JSON object of NAME: URL, got {urls!r}")
            await state.replace_backends(urls)
        except BadRouterInput as exc:
            return admin_error(exc)
        log.info("backends now %s", {n: b.url for n, b in state.backends.items()})
        return JSONResponse(state.status())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.status())

    async def router_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        poller = (asyncio.create_task(poll_steady_queue(), name="steady-queue-poll")
                  if config.mode == "overflow" and config.overflow_signal == "queue-depth" else None)
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            for backend in state.backends.values():
                await backend.pool.close()

    app = Starlette(routes=[
        Route("/router/status", status, methods=["GET"]),
        Route("/router/weights", put_weights, methods=["PUT"]),
        Route("/router/backends", put_backends, methods=["PUT"]),
        Route("/router/reset", reset, methods=["POST"]),
        Route("/router/metrics", router_metrics, methods=["GET"]),
    ], lifespan=lifespan)
    app.add_middleware(ForwardFirst, forward=forward, prefix=ROUTER_PREFIX)
    app.state.router = state
    app.state.metrics = metrics
    return app





def _pair(flag: str, text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{flag} takes NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workloads.serving.router",
        description="Forward to a steady backend and spill to a burst backend above a load threshold "
                    "(--mode overflow), or split traffic by weight (--mode split).")
    p.add_argument("--port", type=int, required=True, help="port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--backend", action="append", default=[], type=lambda t: _pair("--backend", t),
                   metavar="NAME=URL", help="a backend, http://HOST:PORT; repeat (overflow: steady first, then burst)")
    p.add_argument("--mode", choices=MODES, default="overflow", help="routing rule (default: %(default)s)")
    p.add_argument("--overflow-threshold", type=int, default=8,
                   help="steady-tier load at or above which requests spill to the burst tier (default: %(default)s)")
    p.add_argument("--overflow-signal", choices=SIGNALS, default="in-flight",
                   help="the steady tier's load: the router's in-flight count, or the server's polled "
                        "gpuplane_serving_queue_depth (default: %(default)s)")
    p.add_argument("--poll-interval-ms", type=float, default=100.0,
                   help="queue-depth poll interval (default: %(default)s)")
    p.add_argument("--weight", action="append", default=[], type=lambda t: _pair("--weight", t),
                   metavar="NAME=PERCENT", help="split weight; repeat; must sum to 100")
    p.add_argument("--upstream-timeout-seconds", type=float, default=120.0,
                   help="longest wait for one reply, a burst tier's cold start included (default: %(default)s)")
    p.add_argument("--eject-seconds", type=float, default=1.0,
                   help="an unreachable backend gets no traffic for this long (default: %(default)s)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body (default: %(default)s)")
    p.add_argument("--seed", type=int, help="seed of the split mode's random choice")
    p.add_argument("--backend-path", action="append", default=[], type=lambda t: _pair("--backend-path", t),
                   metavar="NAME=PATH", help="send every request for NAME to PATH (query kept)")
    p.add_argument("--backend-header", action="append", default=[], type=lambda t: _pair("--backend-header", t),
                   metavar="NAME=HEADER:VALUE", help="add a request header for NAME; repeat")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def config_from_args(argv: Sequence[str]) -> tuple[argparse.Namespace, RouterConfig]:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    weights: dict[str, float] = {}
    problems = []
    for name, value in args.weight:
        try:
            weights[name] = float(value)
        except ValueError:
            problems.append(f"--weight {name}={value}: the percent must be a number")
    for flag, value in [("--upstream-timeout-seconds", args.upstream_timeout_seconds),
                        ("--poll-interval-ms", args.poll_interval_ms), ("--max-body-bytes", args.max_body_bytes),
                        ("--eject-seconds", args.eject_seconds)]:
        if value <= 0:
            problems.append(f"{flag}={value} must be positive")
    headers: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, text in args.backend_header:
        header, sep, value = text.partition(":")
        if not sep or not header.strip():
            problems.append(f"--backend-header {name}={text}: give HEADER:VALUE")
            continue
        headers[name] = (*headers.get(name, ()), (header, value))
    if args.weight and args.mode == "overflow":
        problems.append("--weight applies to --mode split; overflow mode routes by --overflow-threshold")
    config = RouterConfig(
        backends=tuple(args.backend), mode=args.mode, overflow_threshold=args.overflow_threshold,
        overflow_signal=args.overflow_signal, weights=weights, poll_interval_seconds=args.poll_interval_ms / 1e3,
        upstream_timeout_seconds=args.upstream_timeout_seconds, eject_seconds=args.eject_seconds,
        max_body_bytes=args.max_body_bytes, seed=args.seed, backend_paths=dict(args.backend_path),
        backend_headers=headers)
    if not problems:
        try:
            RouterState(config, RouterMetrics())  # the same checks the app makes, as one flag error
            for name, url in config.backends:
                parse_backend_url(name, url)
        except BadRouterInput as exc:
            problems.append(str(exc))
    if problems:
        parser.error("; ".join(problems))
    return args, config


def main(argv: Sequence[str] | None = None) -> int:
    args, config = config_from_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from workloads.serving import tracing  # OTEL_* variables turn traces on (tracing.py)

    try:
        tracer = tracing.setup("gpuplane-router")
    except ValueError as exc:
        build_parser().error(str(exc))
    app = create_router_app(config, forward_hook=None if tracer is None else tracing.router_hook(tracer))
    server = GracefulServer(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                    access_log=False, lifespan="on"))
    try:
        server.run()
    finally:
        tracing.shutdown(tracer)
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
