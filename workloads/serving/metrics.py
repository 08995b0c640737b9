"""Prometheus metrics of the model server, and the process-age clock the cold-start phases use.

Contract: every server instance owns its own ``CollectorRegistry`` (so tests can run several
in one process); ``/metrics`` renders it in the Prometheus text format. Names:

- ``gpuplane_serving_requests_total{route, code}``: replies by route template and status code.
- ``gpuplane_serving_latency_seconds{stage}``: histograms for ``queue`` (waiting for a batch),
  ``inference`` (the batch's forward pass) and ``total`` (request handler, end to end).
- ``gpuplane_serving_batch_size``: histogram of rows per executed batch.
- ``gpuplane_serving_queue_depth``, ``gpuplane_serving_in_flight_requests``: gauges.
- ``gpuplane_serving_cold_start_phase_seconds{phase}``: gauges for ``interpreter`` (process start
  to main, with the HTTP layer's imports), ``server_start``, ``imports`` (torch, safetensors),
  ``weights``, ``warmup`` and ``total`` (process start to ready).
- ``gpuplane_serving_ready``: 1 while the model is loaded and the server is not draining.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics", "process_start_monotonic"]

LATENCY_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COLD_START_PHASES = ("interpreter", "server_start", "imports", "weights", "warmup", "total")


def process_start_monotonic() -> float:
    """``time.monotonic()`` at the moment this process was created (Linux: /proc), so that the
    interpreter's own start-up counts in the cold start; elsewhere, now."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        age = 0.0
    return time.monotonic() - max(age, 0.0)


class ServingMetrics:
    """The server's collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("gpuplane_serving_requests", "HTTP replies by route and status code.",
                                ["route", "code"], registry=r)
        self.latency = Histogram("gpuplane_serving_latency_seconds",
                                 "Inference request latency by stage: queue, inference, total.",
                                 ["stage"], buckets=LATENCY_BUCKETS_SECONDS, registry=r)
        self.batch_size = Histogram("gpuplane_serving_batch_size", "Rows per executed batch.",
                                    buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.queue_depth = Gauge("gpuplane_serving_queue_depth", "Requests waiting for a batch.", registry=r)
        self.in_flight = Gauge("gpuplane_serving_in_flight_requests", "Inference requests being handled.",
                               registry=r)
        self.cold_start = Gauge("gpuplane_serving_cold_start_phase_seconds",
                                "Cold-start phase durations: interpreter, server_start, imports, weights, "
                                "warmup, total (process start to ready).", ["phase"], registry=r)
        self.ready = Gauge("gpuplane_serving_ready", "1 when the model is loaded and the server is not draining.",
                           registry=r)

        # Label lookups take a lock and hash the labels; the hot path uses these children instead.
        self.queue_latency = self.latency.labels(stage="queue")
        self.inference_latency = self.latency.labels(stage="inference")
        self.total_latency = self.latency.labels(stage="total")
        self._replies: dict[tuple[str, int], Counter] = {}

    def count_reply(self, route: str, code: int) -> None:
        """One HTTP reply on ``route`` (a route template) with status ``code``."""
        child = self._replies.get((route, code))
        if child is None:
            child = self._replies[(route, code)] = self.requests.labels(route=route, code=str(code))
        child.inc()

    def track_queue_depth(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def set_cold_start(self, phases: Mapping[str, float]) -> None:
        for phase, seconds in phases.items():
            self.cold_start.labels(phase=phase).set(seconds)

    def observe_batch(self, rows: int) -> None:
        """One executed batch of ``rows`` rows (its latency is observed per request)."""
        self.batch_size.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
