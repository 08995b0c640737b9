"""The demo's traces: a real activator cold-starting the real model server with the JSON-lines
exporter, one trace across both processes, and the report's cold-start tree."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gpuplane.demo import traces
from gpuplane.demo.procs import Processes
from gpuplane.demo.report import DemoReport, ServingRecord, render_markdown
from tests.workloads.test_serving_support import PYTHON, free_port, infer_body, write_model_dir


def span(name: str, span_id: str, parent: str | None, start: int, end: int, trace: str = "t1") -> dict:
    return {"name": name, "trace_id": trace, "span_id": span_id, "parent_span_id": parent, "start_ns": start,
            "end_ns": end, "service": "svc"}


def test_the_cold_start_tree_is_the_first_trace_with_a_server_start_depth_first() -> None:
    spans = [
        span("activator POST", "w", None, 9_000_000_000, 9_010_000_000, trace="warm"),
        span("model", "m", "b", 5_100_000_000, 5_200_000_000),
        span("hold", "h", "a", 1_000_000, 4_000_000_000),
        span("activator POST", "a", "remote-parent", 0, 5_300_000_000),
        span("server start", "s", "h", 2_000_000, 3_999_000_000),
        span("batch", "b", "a", 5_000_000_000, 5_250_000_000),
    ]
    rows = traces.cold_start_tree(spans)
    assert [(r["depth"], r["name"]) for r in rows] == [
        (0, "activator POST"), (1, "hold"), (2, "server start"), (1, "batch"), (2, "model")]
    assert rows[1]["start_ms"] == 1.0 and rows[2]["duration_ms"] == 3997.0
    assert traces.cold_start_tree([spans[0]]) == []


def test_the_report_shows_the_cold_start_trace() -> None:
    rows = [{"depth": 0, "name": "activator POST", "service": "gpuplane-activator", "start_ms": 0.0,
             "duration_ms": 4200.0}, {"depth": 1, "name": "hold", "service": "gpuplane-activator",
                                      "start_ms": 0.1, "duration_ms": 4100.0}]
    report = DemoReport(mode="quick", started="now", out_dir="x")
    report.serving = ServingRecord(requests=1, replay_seconds=1, day_seconds=1, speedup=1, idle_seconds=1,
                                   expected_scale_to_zero=0, cold_start_trace=rows)
    md = render_markdown(report)
    assert "The first cold-start request's trace" in md
    assert "  hold" in md and "4100.0 ms" in md


def test_a_cold_start_through_the_real_activator_and_server_is_one_trace(tmp_path: Path) -> None:
    model = write_model_dir(tmp_path / "model")
    spans_file = tmp_path / "spans.jsonl"
    port = free_port()
    server = [PYTHON, "-m", "workloads.serving", "--model-dir", str(model), "--port", "{port}", "--torch-threads", "1"]
    with Processes() as procs:
        act = procs.spawn([PYTHON, "-m", "workloads.serving.activator", "--port", str(port), "--idle-seconds", "60",
                           "--", *server], tmp_path / "activator.log",
                          env={**traces.TRACING_ENV, "GPUPLANE_TRACES_FILE": str(spans_file)})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/activator/status", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        reply = httpx.post(f"{url}/v2/models/recommender/infer", json=infer_body([[1, 2, 3]]), timeout=60)
        assert reply.status_code == 200, reply.text
        assert procs.stop(act, timeout_s=20) == 0
    rows = traces.cold_start_tree(traces.load_spans(spans_file))
    tree = [(r["depth"], r["name"], r["service"]) for r in rows]
    assert tree[:4] == [(0, "activator POST", "gpuplane-activator"), (1, "hold", "gpuplane-activator"),
                        (2, "server start", "gpuplane-activator"), (3, "cold start", "gpuplane-serving")], tree
    phases = [name for depth, name, _ in tree if depth == 4]
    assert phases == ["interpreter", "server_start", "imports", "weights", "warmup"], tree
    request = tree.index((1, "POST /v2/models/{name}/infer", "gpuplane-serving"))
    assert tree[request + 1:request + 4] == [(2, "queue", "gpuplane-serving"), (2, "batch", "gpuplane-serving"),
                                             (3, "model", "gpuplane-serving")], tree
    hold = next(r for r in rows if r["name"] == "hold")
    cold = next(r for r in rows if r["name"] == "cold start")
    assert cold["duration_ms"] <= hold["duration_ms"], "the server's cold start happens inside the hold"
