"""What OpenTelemetry tracing costs a warm inference request, off and on, measured side by side.

    python -m benchmarks.tracing_overhead [--requests 400] [--rounds 5]

Three copies of the real server app (workloads/serving/app.py) behind real uvicorn on loopback,
with a predictor that returns at once (so the figures are the HTTP + batching + tracing path,
not a model): ``off`` (no tracer: the default), ``on-memory`` (the SDK with an in-memory
exporter: the span work alone) and ``on-file`` (the demo's JSON-lines file exporter, written as
each span ends). Requests go one at a time over one keep-alive connection; the copies take turns
round by round so machine noise hits all three alike. Prints the median latency of each, the
added microseconds and the ratio to ``off``. No pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tests.workloads.test_serving_support import uvicorn_in_thread, wait_until
from workloads.serving import tracing
from workloads.serving.app import ServerConfig, create_app
from workloads.serving.model_runner import Prediction, PredictJob
from workloads.serving.protocol import ModelSpec

INFER = "/v2/models/recommender/infer"
BODY = {"inputs": [{"name": "item_ids", "datatype": "INT64", "shape": [1, 4], "data": [[1, 2, 3, 4]]}],
        "parameters": {"k": 5}}


class InstantPredictor:
    phases: ClassVar[dict[str, float]] = {}

    def load(self) -> ModelSpec:
        return ModelSpec(name="recommender", num_items=100, block_size=8, valid_items=range(1, 101),
                         num_valid_items=100)

    def predict(self, jobs: Sequence[PredictJob]) -> Sequence[Prediction]:
        return [Prediction(items=[list(range(1, job.k + 1))] * job.rows, scores=[[0.0] * job.k] * job.rows)
                for job in jobs]


def tracer_with(exporter: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracing.tracer_from(provider)


def timed_requests(client: httpx.Client, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = client.post(url + INFER, json=BODY)
        out.append(time.perf_counter() - t0)
        if reply.status_code != 200:
            raise SystemExit(f"{url}: {reply.status_code} {reply.text}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracing_overhead")
    parser.add_argument("--requests", type=int, default=400, help="requests per copy per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    with tempfile.TemporaryDirectory() as tmp:
        spans_file = Path(tmp) / "spans.jsonl"
        tracers = {"off": None, "on-memory": tracer_with(memory),
                   "on-file": tracer_with(tracing.JsonLinesSpanExporter(spans_file))}
        config = ServerConfig(max_batch_delay_ms=0.0)
        latencies: dict[str, list[float]] = {name: [] for name in tracers}
        from contextlib import ExitStack

        with ExitStack() as stack:
            urls = {name: stack.enter_context(uvicorn_in_thread(create_app(InstantPredictor(), config, tracer=t)))
                    for name, t in tracers.items()}
            clients = {name: stack.enter_context(httpx.Client(timeout=10)) for name in tracers}
            for name, url in urls.items():
                wait_until(lambda u=url, c=clients[name]: c.get(u + "/v2/health/ready").status_code == 200,
                           what=f"{name} readiness")
                timed_requests(clients[name], url, 50)  # warm-up
            for _ in range(args.rounds):
                for name, url in urls.items():
                    latencies[name] += timed_requests(clients[name], url, args.requests)
                    memory.clear()
        lines = sum(1 for _ in spans_file.open()) if spans_file.exists() else 0
    base = statistics.median(latencies["off"])
    print(f"warm inference request, {args.rounds} rounds x {args.requests} requests per copy, one keep-alive "
          "connection, instant predictor")
    print(f"{'tracing':<10} {'median_us':>10} {'p99_us':>9} {'added_us':>9} {'ratio':>6}")
    for name, values in latencies.items():
        med = statistics.median(values)
        p99 = statistics.quantiles(values, n=100)[98]
        print(f"{name:<10} {med * 1e6:>10.0f} {p99 * 1e6:>9.0f} {(med - base) * 1e6:>9.0f} {med / base:>6.2f}")
    print(f"spans per traced request: 4 (server, queue, batch, model); file exporter wrote {lines} lines")


if __name__ == "__main__":
    main()
