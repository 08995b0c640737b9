"""OpenTelemetry traces (workloads/serving/tracing.py): off by default, the standard OTEL_*
variables, the span tree of a request through the real server app, the activator's hold span,
W3C context over HTTP and across the server process start, and the file exporter."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from tests.workloads.test_serving_support import PYTHON, ROOT, infer_body, uvicorn_in_thread, wait_until
from workloads.features.client import FeastHistoryClient
from workloads.serving import tracing
from workloads.serving.activator import ActivatorConfig, create_activator_app
from workloads.serving.app import ServerConfig, create_app
from workloads.serving.history import InMemoryHistorySource
from workloads.serving.model_runner import Prediction, PredictJob
from workloads.serving.protocol import ModelSpec

INFER = "/v2/models/recommender/infer"
REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{REMOTE_TRACE}-{REMOTE_SPAN}-01"


class FakePredictor:
    """A predictor without torch: item ids 1..k for every row, with measured-looking phases."""

    phases: ClassVar[dict[str, float]] = {"imports": 0.01, "weights": 0.02, "warmup": 0.005}

    def load(self) -> ModelSpec:
        time.sleep(sum(self.phases.values()))  # as long as the phases it reports
        return ModelSpec(name="recommender", num_items=20, block_size=8, valid_items=range(1, 21), num_valid_items=20)

    def predict(self, jobs: Sequence[PredictJob]) -> Sequence[Prediction]:
        time.sleep(0.002)  # a forward pass that takes measurable time
        return [Prediction(items=[list(range(1, job.k + 1))] * job.rows, scores=[[0.0] * job.k] * job.rows)
                for job in jobs]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Any:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracing.tracer_from(provider)


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def traceparent(span: ReadableSpan) -> str:
    ctx = span.context
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def one(spans: dict[str, list[ReadableSpan]], name: str) -> ReadableSpan:
    found = spans.get(name, [])
    assert len(found) == 1, f"expected one '{name}' span, got {len(found)} among {sorted(spans)}"
    return found[0]


@pytest.fixture
def served(tracer: Any) -> Iterator[TestClient]:
    app = create_app(FakePredictor(), ServerConfig(max_batch_size=8, max_batch_delay_ms=1), tracer=tracer,
                     history_source=InMemoryHistorySource({"7": [1, 2, 3]}))
    with TestClient(app) as client:
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, what="readiness")
        yield client


# --- configuration from the OTEL_* variables ---------------------------------------------------


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, ()),
    ({"OTEL_TRACES_EXPORTER": "none"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": "console, gpuplane_file"}, ("console", "gpuplane_file")),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "false"}, ("otlp",)),
])
def test_exporters_follow_the_standard_variables_and_are_off_by_default(environ: dict[str, str],
                                                                        expected: tuple[str, ...]) -> None:
    assert tracing.exporter_names(environ) == expected


def test_an_unknown_exporter_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"OTEL_TRACES_EXPORTER='jaeger': jaeger not supported; use .*otlp"):
        tracing.setup("s", environ={"OTEL_TRACES_EXPORTER": "jaeger"})


def test_off_by_default_creates_no_tracer_and_imports_no_opentelemetry() -> None:
    code = ("import sys; from workloads.serving import tracing, app, activator; "
            "t = tracing.setup('gpuplane-serving', environ={}); "
            "print(t, sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None []"


def test_setup_with_an_otlp_endpoint_builds_a_batched_otlp_exporter() -> None:
    code = ("from workloads.serving import tracing; from opentelemetry import trace; "
            "t = tracing.setup('x', environ={'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:9', "
            "'OTEL_SERVICE_NAME': 'svc'}); p = trace.get_tracer_provider(); "
            "print(p.resource.attributes['service.name'], "
            "[type(s).__name__ + ':' + type(s.span_exporter).__name__ "
            " for s in p._active_span_processor._span_processors]); p.shutdown()")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svc ['BatchSpanProcessor:OTLPSpanExporter']"


def test_file_exporter_writes_one_json_line_per_span(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    code = ("from workloads.serving import tracing; "
            f"t = tracing.setup('svc', environ={{'OTEL_TRACES_EXPORTER': 'gpuplane_file', "
            f"'GPUPLANE_TRACES_FILE': {str(path)!r}}}); "
            "span = t.start_span('outer'); "
            "from opentelemetry import trace; ctx = trace.set_span_in_context(span); "
            "t.start_span('inner', context=ctx, attributes={'k': 1}).end(); span.end(); tracing.shutdown(t)")
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    inner, outer = lines
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parent_span_id"] == outer["span_id"] and outer["parent_span_id"] is None
    assert inner["trace_id"] == outer["trace_id"] and inner["attributes"] == {"k": 1}
    assert inner["service"] == "svc" and outer["start_ns"] <= inner["start_ns"] <= inner["end_ns"] <= outer["end_ns"]


# --- the model server ---------------------------------------------------------------------------


def test_a_request_makes_a_server_span_with_queue_batch_and_model_children(
        served: TestClient, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    reply = served.post(INFER, json=infer_body([[1, 2, 3]], k=3), headers={"traceparent": TRACEPARENT})
    assert reply.status_code == 200, reply.text
    spans = by_name(exporter.get_finished_spans())
    server = one(spans, "POST /v2/models/{name}/infer")
    queue, batch, model = one(spans, "queue"), one(spans, "batch"), one(spans, "model")
    assert server.kind == SpanKind.SERVER
    assert f"{server.context.trace_id:032x}" == REMOTE_TRACE, "the caller's traceparent is the parent"
    assert f"{parent_of(server):016x}" == REMOTE_SPAN
    assert parent_of(queue) == parent_of(batch) == server.context.span_id
    assert parent_of(model) == batch.context.span_id
    assert {s.context.trace_id for s in (queue, batch, model)} == {server.context.trace_id}
    # Laid out in time: queue, then batch (which contains the model call), all inside the request.
    assert server.start_time <= queue.start_time <= queue.end_time <= batch.start_time + 1_000
    assert batch.start_time <= model.start_time <= model.end_time <= batch.end_time <= server.end_time
    assert model.end_time - model.start_time >= 2_000_000, "the fake forward pass sleeps 2 ms"
    assert batch.attributes["gpuplane.batch.rows"] == 1 and batch.attributes["gpuplane.batch.requests"] == 1
    assert server.attributes["http.response.status_code"] == 200
    assert "feature lookup" not in spans, "item_ids requests look nothing up"


def test_a_user_id_request_has_a_feature_lookup_span(served: TestClient, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    body = {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["7"]}]}
    assert served.post(INFER, json=body).status_code == 200
    spans = by_name(exporter.get_finished_spans())
    server, lookup = one(spans, "POST /v2/models/{name}/infer"), one(spans, "feature lookup")
    assert server.parent is None, "no traceparent: a new trace"
    assert parent_of(lookup) == server.context.span_id and lookup.attributes["gpuplane.users"] == 1


def test_a_rejected_request_records_its_status_without_an_error(served: TestClient,
                                                                exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    assert served.post(INFER, content=b"{not json").status_code == 400
    server = one(by_name(exporter.get_finished_spans()), "POST /v2/models/{name}/infer")
    assert server.attributes["http.response.status_code"] == 400
    assert server.status.status_code.name == "UNSET", "4xx leaves a server span's status unset"


def test_the_cold_start_is_a_span_with_one_child_per_phase(tracer: Any, exporter: InMemorySpanExporter,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
    app = create_app(FakePredictor(), tracer=tracer)
    with TestClient(app) as client:
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, what="readiness")
    spans = by_name(exporter.get_finished_spans())
    cold = one(spans, "cold start")
    assert f"{parent_of(cold):016x}" == REMOTE_SPAN, "TRACEPARENT from the parent process is the parent"
    phases = [s for s in exporter.get_finished_spans() if parent_of(s) == cold.context.span_id]
    assert [s.name for s in phases] == ["interpreter", "server_start", "imports", "weights", "warmup"]
    weights = one(spans, "weights")
    assert abs((weights.end_time - weights.start_time) - 20_000_000) < 1_000, "the phase's measured 0.02 s"
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(phases)), "back to back"
    assert cold.attributes["gpuplane.cold_start.weights_seconds"] == 0.02


def test_without_a_tracer_the_server_records_nothing(exporter: InMemorySpanExporter) -> None:
    app = create_app(FakePredictor())
    with TestClient(app) as client:
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, what="readiness")
        assert client.post(INFER, json=infer_body([[1, 2]]), headers={"traceparent": TRACEPARENT}).status_code == 200
    assert exporter.get_finished_spans() == ()


# --- the feature-server client ------------------------------------------------------------------


def test_feature_client_span_carries_its_traceparent_to_the_feature_server(
        tracer: Any, exporter: InMemorySpanExporter) -> None:
    seen: list[httpx.Request] = []

    def feast(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"metadata": {"feature_names": ["user_id", "last_items"]},
                                         "results": [{"values": [7], "statuses": ["PRESENT"]},
                                                     {"values": [[4, 5]], "statuses": ["PRESENT"]}]})

    async def lookup() -> Any:
        async with FeastHistoryClient("http://feast:6566", transport=httpx.MockTransport(feast),
                                      tracer=tracer) as client:
            with tracer.start_as_current_span("caller") as caller:
                assert await client.histories(["7"]) == [(4, 5)]
        return caller

    caller = asyncio.run(lookup())
    spans = by_name(exporter.get_finished_spans())
    post = one(spans, "POST /get-online-features")
    assert post.kind == SpanKind.CLIENT and parent_of(post) == caller.get_span_context().span_id
    assert seen[0].headers["traceparent"] == traceparent(post)
    assert post.attributes["http.response.status_code"] == 200


def test_feature_client_without_a_tracer_sends_no_traceparent() -> None:
    seen: list[httpx.Request] = []

    def feast(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"metadata": {"feature_names": ["last_items"]},
                                         "results": [{"values": [[1]], "statuses": ["PRESENT"]}]})

    async def lookup() -> None:
        async with FeastHistoryClient("http://feast:6566", transport=httpx.MockTransport(feast)) as client:
            await client.histories(["1"])

    asyncio.run(lookup())
    assert "traceparent" not in seen[0].headers


# --- the activator ------------------------------------------------------------------------------

ECHO = r"""
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply({"ready": True})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply({"traceparent": self.headers.get("traceparent"), "env": os.environ.get("TRACEPARENT")})
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_activator_holds_a_cold_request_in_a_hold_span_and_propagates_the_context(
        tracer: Any, exporter: InMemorySpanExporter) -> None:
    config = ActivatorConfig(command=(PYTHON, "-c", ECHO), idle_seconds=30.0, ready_timeout_seconds=20.0)
    with uvicorn_in_thread(create_activator_app(config, tracer)) as url:
        cold = httpx.post(f"{url}{INFER}", content=b"x", headers={"traceparent": TRACEPARENT}, timeout=30).json()
        warm = httpx.post(f"{url}{INFER}", content=b"x", timeout=30).json()
    spans = exporter.get_finished_spans()
    named = by_name(spans)
    requests = named["activator POST"]
    assert len(requests) == 2
    first = next(s for s in requests if s.parent is not None)
    assert f"{first.context.trace_id:032x}" == REMOTE_TRACE and f"{parent_of(first):016x}" == REMOTE_SPAN
    hold, start = one(named, "hold"), one(named, "server start")
    assert parent_of(hold) == first.context.span_id, "only the cold request was held"
    assert parent_of(start) == hold.context.span_id, "the start belongs to the request that caused it"
    assert hold.end_time >= start.end_time and start.status.status_code.name == "UNSET"
    # Forwarded: the server sees the activator's request span as its parent ...
    assert cold["traceparent"] == traceparent(first) == f"00-{REMOTE_TRACE}-{first.context.span_id:016x}-01"
    second = next(s for s in requests if s is not first)
    assert warm["traceparent"] == traceparent(second)
    # ... and the server process was started with the start span's context in TRACEPARENT.
    assert cold["env"] == traceparent(start) and start.context.trace_id == first.context.trace_id
    assert first.attributes["http.response.status_code"] == 200


def test_activator_without_a_tracer_passes_an_incoming_traceparent_on_unchanged() -> None:
    config = ActivatorConfig(command=(PYTHON, "-c", ECHO), idle_seconds=30.0, ready_timeout_seconds=20.0)
    with uvicorn_in_thread(create_activator_app(config)) as url:
        seen = httpx.post(f"{url}{INFER}", content=b"x", headers={"traceparent": TRACEPARENT}, timeout=30).json()
    assert seen == {"traceparent": TRACEPARENT, "env": None}


# --- the router ---------------------------------------------------------------------------------


def test_router_span_names_the_backend_and_becomes_the_backends_parent(
        tracer: Any, exporter: InMemorySpanExporter) -> None:
    from workloads.serving.router import RouterConfig, create_router_app

    config = ActivatorConfig(command=(PYTHON, "-c", ECHO), idle_seconds=30.0, ready_timeout_seconds=20.0)
    with uvicorn_in_thread(create_activator_app(config)) as steady:
        router = create_router_app(RouterConfig(backends=(("steady", steady), ("burst", steady)),
                                                overflow_threshold=100),
                                   forward_hook=tracing.router_hook(tracer))
        with uvicorn_in_thread(router) as url:
            seen = httpx.post(f"{url}{INFER}", content=b"x", headers={"traceparent": TRACEPARENT}, timeout=30).json()
    span = one(by_name(exporter.get_finished_spans()), "router POST")
    assert span.kind == SpanKind.SERVER and f"{parent_of(span):016x}" == REMOTE_SPAN
    assert span.attributes["gpuplane.backend"] == "steady"
    assert seen["traceparent"] == traceparent(span), "the untraced activator passes the router's context on"
