"""Sizes and policies of one local model-loop run (``gpuplane pipeline``, the demo's loop step)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from workloads.pipeline.canary import CanaryPolicy
from workloads.pipeline.gate import GateConfig


@dataclass(frozen=True)
class LoopConfig:
    """Everything the loop is sized by. Times are wall seconds unless named otherwise."""

    mode: str = "full"
    seed: int = 0
    # day-1 window (bootstrap: data, a model trained from scratch, the first champion)
    users: int = 1000
    items: int = 1000
    days: int = 7
    new_days: int = 1
    """Days of events that land in each new window."""
    bootstrap_steps: int = 120
    """Optimizer steps of the first model (from scratch) and of the shuffled-label model."""
    finetune_steps: int = 60
    """Optimizer steps of a fine-tune from the champion's weights."""
    log_every: int = 10
    train_threads: int = 1
    """torch threads of the trainer (1 leaves a core to the model servers answering traffic)."""
    features: bool = True
    """Re-materialise the Feast features for each new window (skipped, with a note, without feast)."""
    gate: GateConfig = field(default_factory=GateConfig)
    canary: CanaryPolicy = field(default_factory=CanaryPolicy)
    # traffic and serving
    request_rate_per_s: float = 20.0
    """Requests per second the generator sends through the router for the whole loop."""
    max_in_flight: int = 32
    """Requests the generator keeps in flight at most (beyond it, a send waits)."""
    steady_seconds: float = 4.0
    """Traffic observed with only the champion serving and nothing else running (the steady period)."""
    drain_seconds: float = 1.0
    """Wait after a backend's weight drops to 0 before its activator is stopped (it drains on SIGTERM too)."""
    serving_threads: int = 1
    fault_error_rate: float = 0.5
    """Share of infer requests the faulty model server answers 500 (the rollback drill)."""
    worse_drill: bool = True
    """Train a model on shuffled labels and show the gate rejecting it."""
    fault_drill: bool = True
    """Fine-tune a good model, serve it with injected infer errors and show the canary rolling it back."""

    def validate(self) -> None:
        self.gate.validate()
        self.canary.validate()
        problems = []
        for name in ("users", "items", "days", "new_days", "bootstrap_steps", "finetune_steps", "log_every",
                     "train_threads", "serving_threads", "max_in_flight"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be ≥ 1")
        if not self.request_rate_per_s > 0:
            problems.append(f"request_rate_per_s={self.request_rate_per_s} must be > 0")
        if not 0 < self.fault_error_rate <= 1:
            problems.append(f"fault_error_rate={self.fault_error_rate} must be in (0, 1]")
        if self.steady_seconds < 0 or self.drain_seconds < 0:
            problems.append("steady_seconds and drain_seconds must be ≥ 0")
        if problems:
            raise ValueError("LoopConfig: " + "; ".join(problems))


FULL = LoopConfig()

TINY = replace(
    FULL,
    mode="tiny",
    users=300,
    items=300,
    days=3,
    bootstrap_steps=30,
    finetune_steps=30,
    log_every=10,
    features=False,
    canary=CanaryPolicy(percent=25.0, window_seconds=4.0, max_error_rate=0.02, max_p99_ms=2000.0, min_requests=15),
    request_rate_per_s=15.0,
    steady_seconds=2.0,
    drain_seconds=0.5,
)
"""Small data, few steps, no Feast, a 4 s canary window: for the slow test and the quick demo."""
