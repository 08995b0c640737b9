"""Local scale-to-zero activator: ``python -m workloads.serving.activator --port P
--idle-seconds S [options] -- <server command>``.

What Knative's activator does for a cluster, for one machine (``gpuplane demo``, single-VM users):

- Listens on the public port. The model server is not running until the first request, which
  starts the server command as a subprocess; requests that arrive while it starts are held
  (at most ``--max-held``; more get 503 with Retry-After) until ``GET /v2/health/ready``
  answers 200, then forwarded. A start that does not become ready within
  ``--ready-timeout-seconds`` answers the held requests 504 (the process is stopped); a server
  that exits while starting answers them 502.
- Forwards every path except ``/activator/...`` over keep-alive HTTP/1.1 connections
  (``http_pool.ConnectionPool``, one per server start, up to 64 kept idle). The request body is
  read whole first (bounded by ``--max-body-bytes``, 413 above), since it must be held while the
  server starts; the reply is passed on as it arrives (a reply up to 64 KiB in one piece), with
  its Content-Length when the server sent one. Hop-by-hop headers (and ``Expect``) are dropped.
  The forwarding path is plain ASGI (no framework routing, no per-request log lines); an
  unreachable server answers 502, one that does not reply within ``upstream_timeout_seconds``
  504, and a server failing after its reply began closes the client's connection.
- After ``--idle-seconds`` without requests in flight it stops the server with SIGTERM (the
  server drains), SIGKILL after ``--stop-timeout-seconds``; the next request starts it again.
- The upstream port is ``--upstream-port`` or a free loopback port chosen at each start, passed
  to the command through a ``{port}`` placeholder in its arguments and the ``PORT`` variable.
  A command with a literal port (``--port 8000``) and neither ``{port}`` nor ``--upstream-port``
  is refused at start-up. While a start waits, the activator logs the address it polls every
  5 s, and a server found listening only on other ports (psutil, the process and its children)
  for 2 s fails the start: held requests get 502 naming the port and the fix, not a 300 s wait.
- Its own routes: ``/activator/metrics`` (Prometheus: cold starts, cold-start and hold time
  histograms, held requests, upstream up, replies by code) and ``/activator/status`` (JSON).
- SIGTERM/SIGINT stop the listener, stop the server (which drains) and exit 0.
- OpenTelemetry traces (off unless the ``OTEL_*`` variables turn them on, tracing.py): a SERVER
  span per forwarded request with a ``hold`` child while the server starts, a ``server start``
  span under the first held request, ``TRACEPARENT`` passed to the server command (its cold-start
  span joins the trace) and ``traceparent`` forwarded to the server.

Deliberately not done: several replicas, load balancing, streamed request bodies, WebSockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from workloads.serving import tracing
from workloads.serving.asgi import ForwardFirst, GracefulServer
from workloads.serving.bodies import ClientGone, read_whole_body
from workloads.serving.http_pool import ConnectionPool, UpstreamError, UpstreamTimeout

log = logging.getLogger("gpuplane.activator")

READINESS_PATH = "/v2/health/ready"
READINESS_POLL_FIRST_SECONDS = 0.01
READINESS_POLL_MAX_SECONDS = 0.05
WAITING_LOG_EVERY_SECONDS = 5.0
"""While a start waits for readiness, log what it polls this often."""
WRONG_PORT_CHECK_EVERY_SECONDS = 0.5
WRONG_PORT_GRACE_SECONDS = 2.0
"""A server listening only on other ports for this long fails the start (502), not the timeout."""
_FIXED_PORT_FLAGS = ("--port", "-p", "--http-port", "--listen-port", "--server-port")
"""Readiness polls back off from 10 ms to 50 ms: each poll costs the starting server a little CPU."""
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"transfer-encoding", b"upgrade"})
REQUEST_DROPPED = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
"""Request headers not forwarded: the pool writes Host and Content-Length; the body is already read."""
REPLY_DROPPED = HOP_BY_HOP
"""Reply headers not passed on; Content-Length stays, as the body is passed on unchanged."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ACTIVATOR_PREFIX = "/activator/"
HOLD_BUCKETS_SECONDS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class ActivatorConfig:
    """Settings of one activator (its command-line flags)."""

    command: tuple[str, ...]
    """Server command; ``{port}`` in an argument becomes the upstream port."""
    idle_seconds: float
    """Stop the server after this long without requests in flight."""
    max_held: int = 100
    """Most requests held while the server starts; more get 503 with Retry-After."""
    ready_timeout_seconds: float = 300.0
    """Longest wait for the server to become ready before the held requests get 504."""
    upstream_port: int | None = None
    """Fixed upstream port; None picks a free loopback port at each start."""
    stop_timeout_seconds: float = 30.0
    """Wait after SIGTERM before SIGKILL."""
    upstream_timeout_seconds: float = 60.0
    """Longest wait for one forwarded reply."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted (413 above)."""
    retry_after_seconds: int = 1


class UpstreamStartError(Exception):
    """The server did not become ready; ``status`` is what held requests are answered with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ActivatorMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.cold_starts = Counter("gpuplane_activator_cold_starts", "Server starts caused by a request.", registry=r)
        self.cold_start_seconds = Histogram("gpuplane_activator_cold_start_seconds",
                                            "Server start to ready, in seconds.", buckets=HOLD_BUCKETS_SECONDS,
                                            registry=r)
        self.scale_downs = Counter("gpuplane_activator_scale_downs", "Server stops after the idle period.",
                                   registry=r)
        self.hold_seconds = Histogram("gpuplane_activator_hold_seconds",
                                      "Time requests were held waiting for the server to be ready.",
                                      buckets=HOLD_BUCKETS_SECONDS, registry=r)
        self.held = Gauge("gpuplane_activator_held_requests", "Requests held now.", registry=r)
        self.upstream_up = Gauge("gpuplane_activator_upstream_up", "1 while the server is ready.", registry=r)
        self.requests = Counter("gpuplane_activator_requests", "Replies by status code.", ["code"], registry=r)
        self._replies: dict[int, Counter] = {}

    def count_reply(self, code: int) -> None:
        child = self._replies.get(code)
        if child is None:  # label lookups lock and hash; forwarded requests reuse the child
            child = self._replies[code] = self.requests.labels(code=str(code))
        child.inc()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """The managed server process: stopped → starting → ready → stopping → stopped."""

    def __init__(self, config: ActivatorConfig, metrics: ActivatorMetrics, tracer: Any = None) -> None:
        self.config, self.metrics, self.tracer = config, metrics, tracer
        self.process: asyncio.subprocess.Process | None = None
        self.port: int | None = None
        self.pool: ConnectionPool | None = None
        """Connections to the server of the current start (None before the first)."""
        self.ready = False
        self._starting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        if self._stopping is not None:
            return "stopping"
        if self._starting is not None:
            return "starting"
        return "ready" if self.ready else "stopped"

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def ensure_ready(self) -> None:
        """Return once the server is ready, starting it (once, for all callers) if needed."""
        while True:
            if self.ready and self.alive():
                return
            if self.ready:  # it died on its own: start a fresh one
                log.warning("server exited unexpectedly (code %s); restarting", self.process and self.process.returncode)
                self.ready = False
                self.metrics.upstream_up.set(0)
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
                continue
            if self._starting is None:
                start = self._start() if self.tracer is None else self._traced_start()
                self._starting = asyncio.create_task(start, name="upstream-start")
            await asyncio.shield(self._starting)

    async def _traced_start(self) -> None:
        with tracing.child_span(self.tracer, "server start"):
            await self._start()

    async def _start(self) -> None:
        try:
            self.port = self.config.upstream_port or free_port()
            if self.pool is not None:
                await self.pool.close()
            self.pool = pool = ConnectionPool("127.0.0.1", self.port)
            command = [arg.replace("{port}", str(self.port)) for arg in self.config.command]
            self.metrics.cold_starts.inc()
            started = time.monotonic()
            log.info("starting server on port %d: %s", self.port, " ".join(command))
            try:  # its own session: a Ctrl-C meant for the activator does not reach it twice
                self.process = await asyncio.create_subprocess_exec(
                    *command, env={**os.environ, "PORT": str(self.port), **tracing.child_env(self.tracer)}, start_new_session=True)
            except OSError as exc:
                raise UpstreamStartError(502, f"cannot run the server command {command[0]!r}: {exc.strerror}") from None
            deadline = started + self.config.ready_timeout_seconds
            poll = READINESS_POLL_FIRST_SECONDS
            next_log = started + WAITING_LOG_EVERY_SECONDS
            next_port_check = started + WRONG_PORT_CHECK_EVERY_SECONDS
            elsewhere_since: float | None = None
            while True:
                if self.process.returncode is not None:
                    raise UpstreamStartError(502, f"server exited with code {self.process.returncode} before "
                                                  "becoming ready; see its log")
                now = time.monotonic()
                if now > deadline:
                    await self._terminate()
                    raise UpstreamStartError(504, f"server not ready after {self.config.ready_timeout_seconds:.0f}s "
                                                  "(--ready-timeout-seconds)")
                if now >= next_log:
                    log.info("still waiting for the server (pid %d) to answer GET http://127.0.0.1:%d%s after %.0fs",
                             self.process.pid, self.port, READINESS_PATH, now - started)
                    next_log = now + WAITING_LOG_EVERY_SECONDS
                if now >= next_port_check:
                    next_port_check = now + WRONG_PORT_CHECK_EVERY_SECONDS
                    others = listening_elsewhere(self.process.pid, self.port)
                    elsewhere_since = (elsewhere_since or now) if others else None
                    if others and now - elsewhere_since >= WRONG_PORT_GRACE_SECONDS:
                        await self._terminate()
                        ports = ", ".join(map(str, others))
                        raise UpstreamStartError(
                            502, f"the server listens on port {ports}, not on port {self.port} where the activator "
                                 "polls it; put '{port}' in the server command (e.g. --port {port}), make it listen "
                                 f"on $PORT, or pass --upstream-port {others[0]}")
                with contextlib.suppress(UpstreamError):
                    reply = await pool.request("GET", READINESS_PATH.encode(), (), b"", 1.0)
                    async for _ in reply.chunks():  # read to the end, so the connection is reused
                        pass
                    if reply.status == 200:
                        break
                await asyncio.sleep(poll)
                poll = min(poll * 1.5, READINESS_POLL_MAX_SECONDS)
            self.ready = True
            self.metrics.upstream_up.set(1)
            self.metrics.cold_start_seconds.observe(time.monotonic() - started)
            log.info("server ready after %.2fs", time.monotonic() - started)
        finally:
            self._starting = None

    async def close(self) -> None:
        """Let a start in progress finish, then stop the server."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        await self.stop()

    def stop(self) -> asyncio.Task[None]:
        """Begin stopping the server (SIGTERM, then SIGKILL); returns the task doing it."""
        if self._stopping is None:
            self.ready = False
            self.metrics.upstream_up.set(0)
            self._stopping = asyncio.create_task(self._stop(), name="upstream-stop")
        return self._stopping

    async def _stop(self) -> None:
        try:
            await self._terminate()
        finally:
            self._stopping = None

    async def _terminate(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), self.config.stop_timeout_seconds)
            log.info("server stopped (exit code %d)", code)
        except TimeoutError:
            log.warning("server did not stop within %.0fs of SIGTERM; killing it", self.config.stop_timeout_seconds)
            process.kill()
            await process.wait()


def listening_elsewhere(pid: int, port: int) -> list[int]:
    """TCP ports the process (or its children) listens on, when ``port`` is not among them."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    ports: set[int] = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        ports |= {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}
    return [] if not ports or port in ports else sorted(ports)


def fixed_port_in(command: Sequence[str]) -> tuple[str, int] | None:
    """A literal port the command will listen on (``--port 8000``, ``--port=8000``, ``-p 8000``), if any."""
    for i, arg in enumerate(command):
        flag, eq, value = arg.partition("=")
        if eq and flag in _FIXED_PORT_FLAGS and value.isdigit():
            return arg, int(value)
        if arg in _FIXED_PORT_FLAGS and i + 1 < len(command) and command[i + 1].isdigit():
            return f"{arg} {command[i + 1]}", int(command[i + 1])
    return None


def create_activator_app(config: ActivatorConfig, tracer: Any = None) -> Starlette:
    """The activator as an ASGI app; the server process lives as long as the app's lifespan.
    ``/activator/...`` routes and the lifespan go through Starlette, everything else straight to
    the forwarding path. ``tracer``: an OpenTelemetry tracer (``tracing.setup``); None: no tracing."""
    metrics = ActivatorMetrics()
    retry = [(b"retry-after", str(config.retry_after_seconds).encode())]
    upstream = Upstream(config, metrics, tracer)
    activity = {"in_flight": 0, "held": 0, "last": time.monotonic()}
    timeout = config.upstream_timeout_seconds

    async def reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        metrics.count_reply(status)
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                                *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    async def read_body(scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body; None when it exceeds the limit (the rest is discarded within a
        budget so the client reads the 413, workloads/serving/bodies.py); ClientGone if the client left."""
        return await read_whole_body(scope["headers"], receive, config.max_body_bytes)

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            await reply(send, 405, f"method {scope['method']} is not forwarded; use one of {', '.join(sorted(METHODS))}")
            return
        try:
            body = await read_body(scope, receive)
        except ClientGone:
            return
        if body is None:
            await reply(send, 413, f"request body exceeds the activator's limit of {config.max_body_bytes} bytes "
                                   "(--max-body-bytes)", [(b"connection", b"close")])
            return
        activity["in_flight"] += 1
        activity["last"] = time.monotonic()
        try:
            if not (upstream.ready and upstream.alive()):
                if activity["held"] >= config.max_held:
                    await reply(send, 503, f"{activity['held']} requests are already waiting for the server to "
                                           f"start (--max-held {config.max_held}); retry later", retry)
                    return
                activity["held"] += 1
                metrics.held.inc()
                held_at = time.monotonic()
                try:
                    with tracing.child_span(tracer, "hold"):
                        await upstream.ensure_ready()
                except UpstreamStartError as exc:
                    await reply(send, exc.status, str(exc))
                    return
                finally:
                    activity["held"] -= 1
                    metrics.held.dec()
                    metrics.hold_seconds.observe(time.monotonic() - held_at)
            pool = upstream.pool
            assert pool is not None  # set by the start that made the server ready
            target = scope.get("raw_path") or scope["path"].encode()
            if scope["query_string"]:
                target = b"%s?%s" % (target, scope["query_string"])
            headers = [(k, v) for k, v in scope["headers"] if k not in REQUEST_DROPPED]
            if tracer is not None:  # the server's span becomes a child of this request's
                headers = tracing.inject_headers(headers)
            try:
                answer = await pool.request(scope["method"], target, headers, body, timeout)
            except UpstreamTimeout:
                await reply(send, 504, f"server did not answer within {timeout:.0f}s")
                return
            except UpstreamError as exc:
                await reply(send, 502, f"server unreachable: {exc}")
                return
            metrics.count_reply(answer.status)
            await send({"type": "http.response.start", "status": answer.status,
                        "headers": [(k, v) for k, v in answer.headers if k not in REPLY_DROPPED]})
            if answer.body is not None:
                await send({"type": "http.response.body", "body": answer.body})
                return
            try:
                async for chunk in answer.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:  # the reply has begun: all that is left is to cut it short
                log.warning("server failed in the middle of a reply to %s %s: %s", scope["method"], scope["path"], exc)
                raise
            await send({"type": "http.response.body", "body": b""})
        finally:
            activity["in_flight"] -= 1
            activity["last"] = time.monotonic()

    async def activator_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> Response:
        return JSONResponse({"upstream": upstream.state, "port": upstream.port, "held": activity["held"],
                             "in_flight": activity["in_flight"],
                             "idle_seconds": round(time.monotonic() - activity["last"], 3)})

    async def scale_down_when_idle() -> None:
        interval = min(1.0, max(0.05, config.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            idle = time.monotonic() - activity["last"]
            if upstream.ready and activity["in_flight"] == 0 and idle >= config.idle_seconds:
                log.info("idle for %.1fs: stopping the server", idle)
                metrics.scale_downs.inc()
                upstream.stop()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.create_task(scale_down_when_idle(), name="idle-reaper")
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await upstream.close()

    app = Starlette(routes=[
        Route("/activator/metrics", activator_metrics, methods=["GET"]),
        Route("/activator/status", status, methods=["GET"]),
    ], lifespan=lifespan)
    async def traced_forward(scope: Scope, receive: Receive, send: Send) -> None:
        with tracing.server_span(tracer, f"activator {scope['method']}", scope) as span:
            async def send_noting_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    tracing.set_status_code(span, message["status"])
                await send(message)

            await forward(scope, receive, send_noting_status)

    app.add_middleware(ForwardFirst, forward=forward if tracer is None else traced_forward, prefix=ACTIVATOR_PREFIX)
    app.state.upstream = upstream
    app.state.metrics = metrics
    return app





def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workloads.serving.activator",
        usage="%(prog)s --port P --idle-seconds S [options] -- <server command>",
        description="Start a model server on the first request, hold requests while it starts, "
                    "stop it when idle. '{port}' in the server command becomes its port (also $PORT).")
    p.add_argument("--port", type=int, required=True, help="public port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="public bind address (default: %(default)s)")
    p.add_argument("--idle-seconds", type=float, required=True, help="stop the server after this long idle")
    p.add_argument("--max-held", type=int, default=100, help="most requests held during a start (default: %(default)s)")
    p.add_argument("--ready-timeout-seconds", type=float, default=300.0,
                   help="longest wait for the server's readiness (default: %(default)s)")
    p.add_argument("--upstream-port", type=int, help="fixed server port (default: a free port per start)")
    p.add_argument("--stop-timeout-seconds", type=float, default=30.0,
                   help="wait after SIGTERM before SIGKILL (default: %(default)s)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, tuple[str, ...]]:
    parser = build_parser()
    argv = list(argv)
    if "--" not in argv:
        parser.error("missing '-- <server command>', e.g. -- python -m workloads.serving --model-dir DIR --port {port}")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), tuple(argv[split + 1:])
    if not command:
        parser.error("the server command after '--' is empty")
    problems = [f"{flag}={value} must be positive" for flag, value in
                [("--idle-seconds", args.idle_seconds), ("--max-held", args.max_held),
                 ("--ready-timeout-seconds", args.ready_timeout_seconds), ("--max-body-bytes", args.max_body_bytes)]
                if value <= 0]
    if args.upstream_port is not None and args.upstream_port == args.port:
        problems.append(f"--upstream-port={args.upstream_port} must differ from --port")
    fixed = fixed_port_in(command) if args.upstream_port is None and not any("{port}" in a for a in command) else None
    if fixed is not None:
        problems.append(f"the server command listens on a fixed port ('{fixed[0]}') but the activator picks a free "
                        f"port per start and would poll the wrong one; write '{fixed[0].split()[0].split('=')[0]} {{port}}' "
                        f"in the command, or pass --upstream-port {fixed[1]}")
    if problems:
        parser.error("; ".join(problems))
    return args, command


def main(argv: Sequence[str] | None = None) -> int:
    args, command = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.upstream_port is None and not any("{port}" in a for a in command):
        log.warning("the server command has no '{port}': it must listen on the port in $PORT (a start that listens "
                    "elsewhere fails with 502 after %.0fs)", WRONG_PORT_GRACE_SECONDS)
    config = ActivatorConfig(command=command, idle_seconds=args.idle_seconds, max_held=args.max_held,
                             ready_timeout_seconds=args.ready_timeout_seconds, upstream_port=args.upstream_port,
                             stop_timeout_seconds=args.stop_timeout_seconds, max_body_bytes=args.max_body_bytes)
    try:
        tracer = tracing.setup("gpuplane-activator")
    except ValueError as exc:
        build_parser().error(str(exc))
    app = create_activator_app(config, tracer)
    server = GracefulServer(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                    access_log=False, lifespan="on"))
    try:
        server.run()
    finally:
        tracing.shutdown(tracer)  # flush spans still batched
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
