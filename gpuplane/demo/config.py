"""Sizes of one demo run: the full demo (a few minutes on 2 CPU cores) and a quick one for tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gpuplane.demo.traffic import DaySpec


@dataclass(frozen=True)
class DemoConfig:
    """Everything the demo's steps are sized by. Times are wall seconds unless named otherwise."""

    mode: str = "full"
    seed: int = 0
    # data
    users: int = 1000
    items: int = 1000
    days: int = 7
    # features
    feature_server_check: bool = True
    """Start ``feast serve`` and compare held-out users' online history with the event log."""
    feature_users_checked: int = 20
    user_id_share: float = 0.2
    """Share of replayed requests that send ``user_id`` (history read from ``feast serve`` by the
    model server) instead of ``item_ids``; needs the feature-server check, which keeps it running."""
    # training (preset tiny)
    max_steps: int = 120
    checkpoint_every: int = 20
    preempt_at_step: int = 50
    """The trainer gets SIGTERM (a spot notice) at the first logged step at or after this one."""
    log_every: int = 5
    # serving and traffic
    day: DaySpec = field(default_factory=DaySpec)
    day_wall_seconds: float = 75.0
    """The 24 h traffic day is replayed in this many seconds."""
    idle_seconds: float = 2.0
    """The activator's idle period before it stops the model server (scale to zero)."""
    serving_threads: int = 1
    """torch threads of the model server (1 suits the tiny model on a busy 2-core host)."""
    concurrency: int = 4
    """Requests one replica serves at once, in the cost simulation."""
    slo_ms: float = 1000.0
    slo_target: float = 0.99
    """The stated SLO of the cost comparison: ``slo_target`` of requests within ``slo_ms`` (cold waits included)."""
    # the model loop (gpuplane pipeline) on the demo's data and model
    loop: bool = True
    """Run the model loop after serving: a new day, fine-tune, MLflow, gate, canary, drills."""
    loop_finetune_steps: int = 60
    """Optimizer steps of each fine-tune in the loop (the shuffled-label model gets ``max_steps``)."""

    def validate(self) -> None:
        problems = []
        if self.preempt_at_step >= self.max_steps:
            problems.append(f"preempt_at_step={self.preempt_at_step} must be below max_steps={self.max_steps}")
        elif self.log_every >= 1 and -(-self.preempt_at_step // self.log_every) * self.log_every >= self.max_steps:
            problems.append(f"no logged step (every {self.log_every}) from preempt_at_step={self.preempt_at_step} "
                            f"to before max_steps={self.max_steps}, so the preemption would never be injected")
        if not 0 <= self.user_id_share <= 1:
            problems.append(f"user_id_share={self.user_id_share} must be in [0, 1]")
        if not self.slo_ms > 0 or not 0 < self.slo_target <= 1:
            problems.append(f"slo_ms={self.slo_ms} must be > 0 and slo_target={self.slo_target} in (0, 1]")
        if not self.day_wall_seconds > 0 or not self.idle_seconds > 0:
            problems.append(f"day_wall_seconds={self.day_wall_seconds} and idle_seconds={self.idle_seconds} must be > 0")
        if min(self.users, self.items, self.days, self.max_steps, self.checkpoint_every, self.log_every) < 1:
            problems.append("users, items, days, max_steps, checkpoint_every and log_every must be ≥ 1")
        if problems:
            raise ValueError("DemoConfig: " + "; ".join(problems))


FULL = DemoConfig()

QUICK = replace(
    FULL,
    mode="quick",
    users=300,
    items=300,
    days=3,
    feature_server_check=False,
    max_steps=30,
    checkpoint_every=10,
    preempt_at_step=12,
    log_every=2,
    day=DaySpec(requests=150.0),
    day_wall_seconds=20.0,
    idle_seconds=1.5,
    loop=False,
)
"""Smaller data, fewer steps, a shorter day, no feature-server check and no model loop (it has its
own end-to-end test and ``gpuplane pipeline --tiny``): for the end-to-end test."""
