"""OpenTelemetry traces of the model server, the activator, the router and feature lookups.

Contract:

- ``setup(service_name)`` reads the standard ``OTEL_*`` variables and returns a ``Tracer``, or
  ``None`` when tracing is off. Off is the default: nothing is imported from OpenTelemetry, no
  exporter exists and every hook is one ``is None`` test, so a server without tracing pays nothing
  (``python -m benchmarks.tracing_overhead`` prints the warm-request cost off and on).
  Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter, or when an OTLP endpoint
  (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set. Unlike the
  SDK's auto-configuration, an unset ``OTEL_TRACES_EXPORTER`` does not mean ``otlp`` here unless
  an endpoint is also set: a pod with no collector would retry against ``localhost:4318`` for ever.
- ``OTEL_SDK_DISABLED=true`` turns everything off whatever else is set (the spec's semantics).
  ``OTEL_TRACES_EXPORTER`` is a comma-separated list of ``otlp`` (OTLP over HTTP/protobuf, or gRPC
  with ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``; batched, ``OTEL_BSP_*`` apply), ``console`` (the SDK's
  ``ConsoleSpanExporter`` on stdout) and ``gpuplane_file`` (one JSON object per span and line,
  appended to ``GPUPLANE_TRACES_FILE``, default ``spans.jsonl``; written as each span ends so a
  report can read it while the process runs); ``none`` alone means off. ``OTEL_SERVICE_NAME``
  (default: the ``service_name`` argument), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``
  and ``OTEL_PROPAGATORS`` are read by the SDK itself. An unknown exporter name raises
  ``ValueError`` naming it and the accepted ones.
- Context crosses HTTP as W3C ``traceparent`` / ``tracestate`` headers (``extract`` from ASGI
  headers, ``inject_headers`` into forwarded ones) and crosses a process start as the
  ``TRACEPARENT`` / ``TRACESTATE`` environment variables (``child_env`` / ``context_from_env``),
  so a server started by the activator puts its cold-start span under the request that woke it.
- Span names: the server's ``POST /v2/models/{name}/infer`` (SERVER) with children ``feature
  lookup`` (and the client's ``POST /get-online-features``), ``queue``, ``batch`` and ``batch``'s
  child ``model``; the server's ``cold start`` with one child per phase (``interpreter``,
  ``server_start``, ``imports``, ``weights``, ``warmup``); the activator's ``activator <METHOD>``
  (SERVER) with ``hold`` (while the server starts) and ``server start``; the router's
  ``router <METHOD>`` (SERVER, attribute ``gpuplane.backend``).
  Attributes use the ``gpuplane.*`` prefix besides the HTTP semantic-convention names.

This module imports OpenTelemetry only inside functions that run when tracing is on.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Span, Tracer

EXPORTERS = ("otlp", "console", "gpuplane_file", "none")
TRACES_FILE_VARIABLE = "GPUPLANE_TRACES_FILE"
DEFAULT_TRACES_FILE = "spans.jsonl"
INSTRUMENTATION_NAME = "gpuplane.workloads.serving"
_TRUE = ("true", "1", "yes", "on")


def exporter_names(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters the variables ask for; () when tracing is off. Raises ValueError on an unknown name."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return ()
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not raw:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ("otlp",) if endpoint else ()
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER={raw!r}: {', '.join(unknown)} not supported; "
                         f"use a comma-separated list of {', '.join(EXPORTERS)}")
    return tuple(n for n in names if n != "none")


class JsonLinesSpanExporter:
    """A span exporter that appends one JSON object per span to a file (the local demo's traces).

    Each line holds ``name``, ``trace_id`` and ``span_id`` (hex), ``parent_span_id`` (hex or
    null), ``kind``, ``start_ns`` / ``end_ns`` (Unix nanoseconds), ``status``, ``attributes``,
    ``events`` and ``service`` (the resource's ``service.name``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by shutdown)

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(span_record(s), separators=(",", ":")) + "\n" for s in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One finished span as plain JSON values (the file exporter's line)."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
        "service": (span.resource.attributes.get("service.name") if span.resource else None),
    }


def _exporter(name: str, environ: Mapping[str, str]) -> tuple[Any, bool]:
    """The exporter called ``name`` and whether it is batched (else exported as each span ends)."""
    if name == "gpuplane_file":
        return JsonLinesSpanExporter(environ.get(TRACES_FILE_VARIABLE) or DEFAULT_TRACES_FILE), False
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(), False
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(), True
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(), True  # reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT itself


def setup(service_name: str, *, environ: Mapping[str, str] | None = None) -> Tracer | None:
    """A tracer configured from the ``OTEL_*`` variables, or None when tracing is off (the default).

    Installs the SDK provider as the global one (so ``shutdown()`` flushes it at exit)."""
    env = os.environ if environ is None else environ
    names = exporter_names(env)
    if not names:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (which wins over ours).
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    for name in names:
        exporter, batched = _exporter(name, env)
        provider.add_span_processor(BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.get_tracer(INSTRUMENTATION_NAME)


def tracer_from(provider: TracerProvider) -> Tracer:
    """A tracer of a given provider (tests pass one with an in-memory exporter)."""
    return provider.get_tracer(INSTRUMENTATION_NAME)


def shutdown(tracer: Tracer | None) -> None:
    """Flush and stop the global provider's exporters (at process exit); nothing when off."""
    if tracer is None:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if stop is not None:
        stop()


# --- context propagation ----------------------------------------------------------------------


class _AsgiGetter:
    """Reads W3C headers from ASGI's ``[(name_bytes, value_bytes), ...]``."""

    def get(self, carrier: Iterable[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.encode()
        found = [v.decode("latin-1") for k, v in carrier if k == wanted]
        return found or None

    def keys(self, carrier: Iterable[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _AsgiGetter()


def extract(headers: Iterable[tuple[bytes, bytes]]) -> Context:
    """The remote parent context carried by ASGI request headers (empty when there is none)."""
    from opentelemetry import propagate

    return propagate.extract(list(headers), getter=_GETTER)


def inject_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with the current span's ``traceparent`` / ``tracestate`` instead of the incoming ones."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    keys = {k.encode() for k in carrier}
    return [(k, v) for k, v in headers if k not in keys] + [(k.encode(), v.encode()) for k, v in carrier.items()]


def current_carrier() -> dict[str, str]:
    """The current span's context as a header dict (for httpx requests)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def child_env(tracer: Tracer | None) -> dict[str, str]:
    """``TRACEPARENT`` / ``TRACESTATE`` of the current span, for a child process's environment."""
    if tracer is None:
        return {}
    return {k.upper(): v for k, v in current_carrier().items() if k in ("traceparent", "tracestate")}


def context_from_env(environ: Mapping[str, str] | None = None) -> Context | None:
    """The parent context a parent process passed in ``TRACEPARENT`` (None when absent)."""
    env = os.environ if environ is None else environ
    if not env.get("TRACEPARENT"):
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": env["TRACEPARENT"]}
    if env.get("TRACESTATE"):
        carrier["tracestate"] = env["TRACESTATE"]
    return TraceContextTextMapPropagator().extract(carrier)


# --- spans around live work ------------------------------------------------------------------


@contextlib.contextmanager
def server_span(tracer: Tracer, name: str, scope: Mapping[str, Any]) -> Iterator[Span]:
    """The current span for one HTTP request handled from an ASGI ``scope``, child of the caller's
    ``traceparent`` (a new trace without one). An exception carrying ``status`` (the servers' early
    replies) sets ``http.response.status_code``; only 5xx and other exceptions mark the span an error
    (the semantic conventions leave 4xx unset on server spans)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    attributes = {"http.request.method": scope.get("method", ""), "url.path": scope.get("path", ""),
                  "http.route": name.partition(" ")[2] or name}
    with tracer.start_as_current_span(name, context=extract(scope.get("headers", ())), kind=SpanKind.SERVER,
                                      attributes=attributes, record_exception=False,
                                      set_status_on_exception=False) as span:
        try:
            yield span
        except Exception as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int):
                span.set_attribute("http.response.status_code", status)
            if not isinstance(status, int) or status >= 500:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


@contextlib.contextmanager
def child_span(tracer: Tracer | None, name: str, *, client: bool = False,
               attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
    """A child of the current span (INTERNAL, or CLIENT for an outgoing call); nothing when off."""
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
                                      attributes=dict(attributes or {})) as span:
        yield span


def router_hook(tracer: Tracer) -> Any:
    """The router's ``forward_hook``: a SERVER span ``router <METHOD>`` per forwarded request (child of
    the caller's ``traceparent``, attribute ``gpuplane.backend``), whose context replaces the
    request's ``traceparent`` before the router copies its headers to the chosen backend."""

    @contextlib.asynccontextmanager
    async def hook(scope: dict[str, Any], backend: Any) -> Any:
        with server_span(tracer, f"router {scope.get('method', '')}", scope) as span:
            span.set_attribute("gpuplane.backend", getattr(backend, "name", str(backend)))
            scope["headers"] = inject_headers(list(scope.get("headers", ())))
            yield span

    return hook


def set_status_code(span: Span | None, status: int) -> None:
    """Record an HTTP reply's status on ``span``; a 5xx marks it an error."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


# --- spans recorded after the fact ------------------------------------------------------------


def record_stages(tracer: Tracer, parent: Span, times: Any, done_at: float) -> None:
    """``queue``, ``batch`` and ``model`` spans under ``parent`` from the batcher's ``StageTimes``
    (``time.perf_counter()`` instants), placed on the wall clock by ``done_at`` (perf_counter now)."""
    from opentelemetry import trace

    offset = time.time_ns() - int(done_at * 1e9)

    def ns(t: float) -> int:
        return offset + int(t * 1e9)

    ctx = trace.set_span_in_context(parent)
    batch_start = times.enqueued_at + times.queue_seconds
    batch_end = batch_start + times.inference_seconds
    tracer.start_span("queue", context=ctx, start_time=ns(times.enqueued_at)).end(end_time=ns(batch_start))
    batch = tracer.start_span("batch", context=ctx, start_time=ns(batch_start), attributes={
        "gpuplane.batch.rows": times.batch_rows, "gpuplane.batch.requests": times.batch_requests})
    tracer.start_span("model", context=trace.set_span_in_context(batch), start_time=ns(times.model_started_at),
                      attributes={"gpuplane.batch.rows": times.batch_rows}).end(end_time=ns(times.model_ended_at))
    batch.end(end_time=ns(batch_end))


def record_cold_start(tracer: Tracer, phases: Mapping[str, float], ready_at_ns: int,
                      parent: Context | None = None) -> None:
    """A ``cold start`` span ending at ``ready_at_ns`` and lasting the ``total`` phase, with one child
    per other phase laid end to end in the order given (the phases are measured back to back)."""
    total = phases.get("total", sum(s for p, s in phases.items() if p != "total"))
    start = ready_at_ns - int(total * 1e9)
    from opentelemetry import trace

    span = tracer.start_span("cold start", context=parent, start_time=start,
                             attributes={f"gpuplane.cold_start.{p}_seconds": round(s, 6) for p, s in phases.items()})
    ctx = trace.set_span_in_context(span)
    at = start
    for phase, seconds in phases.items():
        if phase == "total":
            continue
        end = min(at + int(seconds * 1e9), ready_at_ns)
        tracer.start_span(phase, context=ctx, start_time=at).end(end_time=end)
        at = end
    span.end(end_time=ready_at_ns)
