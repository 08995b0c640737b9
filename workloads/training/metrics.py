"""Prometheus metrics of a training run, served by rank 0 when ``GPUPLANE_METRICS_PORT`` is set.

Contract: with ``GPUPLANE_METRICS_PORT=P`` (Observability's PodMonitor scrapes port 9090 of pods
labelled ``gpuplane.dev/job``), the process of global rank 0 serves ``/metrics`` on ``0.0.0.0:P``
from a daemon thread; other ranks and runs without the variable export nothing and pay one
attribute test per call. One process is one trainer start, so a restart (after a preemption, or
a JobSet restart) is a new series; dashboards count restarts as series seen in a window. Names:

- ``gpuplane_training_steps_total``: optimizer steps taken by this process.
- ``gpuplane_training_step``: the global step (continues across resumes).
- ``gpuplane_training_resumed_from_step``: the checkpoint step this process resumed from (-1: fresh).
- ``gpuplane_training_loss``, ``gpuplane_training_tokens_per_second``: at each log step.
- ``gpuplane_training_checkpoints_total{kind}``: checkpoints saved (``periodic``, ``preemption``,
  ``final``); ``gpuplane_training_checkpoint_seconds``: how long the last save blocked training.
- ``gpuplane_training_preemptions_total``: stops agreed after a preemption notice or SIGTERM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PORT_VARIABLE = "GPUPLANE_METRICS_PORT"
ADDR_VARIABLE = "GPUPLANE_METRICS_ADDR"
"""Bind address of the metrics server (default ``0.0.0.0``)."""


class TrainingMetrics:
    """The run's collectors; inert (every method returns at once) unless ``enabled``."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = r = CollectorRegistry()
        self.steps = Counter("gpuplane_training_steps", "Optimizer steps taken by this process.", registry=r)
        self.step = Gauge("gpuplane_training_step", "Global step (continues across resumes).", registry=r)
        self.resumed_from = Gauge("gpuplane_training_resumed_from_step",
                                  "Checkpoint step this process resumed from; -1 when it started fresh.", registry=r)
        self.loss = Gauge("gpuplane_training_loss", "Mean token loss at the last log step.", registry=r)
        self.tokens_per_second = Gauge("gpuplane_training_tokens_per_second",
                                       "Tokens per second over the last log window (all ranks).", registry=r)
        self.checkpoints = Counter("gpuplane_training_checkpoints", "Checkpoints saved, by kind.", ["kind"],
                                   registry=r)
        self.checkpoint_seconds = Gauge("gpuplane_training_checkpoint_seconds",
                                        "Seconds the last checkpoint save blocked training.", registry=r)
        self.preemptions = Counter("gpuplane_training_preemptions",
                                   "Stops agreed after a preemption notice or SIGTERM.", registry=r)

    @classmethod
    def from_env(cls, rank: int, environ: Mapping[str, str] | None = None) -> TrainingMetrics:
        """Enabled and serving on ``$GPUPLANE_METRICS_PORT`` for rank 0; inert otherwise."""
        env = os.environ if environ is None else environ
        raw = env.get(PORT_VARIABLE, "").strip()
        if rank != 0 or not raw:
            return cls(False)
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise ValueError(f"{PORT_VARIABLE}={raw!r} must be a port number (1-65535)")
        metrics = cls(True)
        from prometheus_client import start_http_server

        # A pod serves every interface (the PodMonitor scrapes the pod IP); GPUPLANE_METRICS_ADDR=127.0.0.1
        # keeps a run on a shared machine to loopback.
        start_http_server(int(raw), addr=env.get(ADDR_VARIABLE, "0.0.0.0"), registry=metrics.registry)
        return metrics

    def started(self, step: int, resumed_from: int | None) -> None:
        if self.enabled:
            self.step.set(step)
            self.resumed_from.set(-1 if resumed_from is None else resumed_from)

    def stepped(self, step: int) -> None:
        if self.enabled:
            self.steps.inc()
            self.step.set(step)

    def logged(self, loss: float, tokens_per_second: float) -> None:
        if self.enabled:
            self.loss.set(loss)
            self.tokens_per_second.set(tokens_per_second)

    def checkpointed(self, kind: str, blocked_seconds: float) -> None:
        if self.enabled:
            self.checkpoints.labels(kind=kind).inc()
            self.checkpoint_seconds.set(blocked_seconds)

    def preempted(self) -> None:
        if self.enabled:
            self.preemptions.inc()
