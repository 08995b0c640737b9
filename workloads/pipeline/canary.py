"""The canary controller: from live stats of the canary backend, continue, promote or roll back.

A pure function (:func:`judge`) of the policy and the canary's stats since its traffic share
began, called once per observation; the caller (the local loop, or a controller on a cluster)
reads the stats, e.g. from the router's ``GET /router/status``, and acts on the verdict:

- ``rollback`` as soon as the 5xx rate exceeds ``max_error_rate`` over at least
  ``min_requests`` requests (errors are not worth waiting for), or, at the end of the window,
  when the p99 latency exceeds ``max_p99_ms``, or when the window has been extended to
  ``max_window_factor`` × ``window_seconds`` without ``min_requests`` (too little traffic to judge
  is not a pass);
- ``promote`` (to 100 %) when ``window_seconds`` have passed with at least ``min_requests``
  requests, the error rate and the p99 within bounds;
- ``continue`` otherwise.

Bad input (a percentage outside 0-100, a non-positive window) raises one :class:`CanaryInputError`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Action = Literal["continue", "promote", "rollback"]


class CanaryInputError(ValueError):
    """The canary policy is invalid; the message names the field, the value and the fix."""


@dataclass(frozen=True)
class CanaryPolicy:
    """When a canary is promoted to 100 % or rolled back."""

    percent: float = 20.0
    """Share of requests sent to the canary while it is judged, in percent (0 < percent < 100)."""
    window_seconds: float = 8.0
    """Observation window: the canary is promoted once it has served this long within bounds."""
    max_error_rate: float = 0.01
    """Largest share of canary requests that may end in a 5xx (0.01 = 1 %)."""
    max_p99_ms: float = 1500.0
    """Largest p99 latency of canary requests, in milliseconds, over the window."""
    min_requests: int = 20
    """Canary requests needed before any verdict other than ``continue``."""
    max_window_factor: float = 3.0
    """The window is extended up to this many times while too few requests arrive; then rollback."""

    def validate(self) -> None:
        problems = []

        def finite(v: object) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        if not (finite(self.percent) and 0 < self.percent < 100):
            problems.append(f"percent={self.percent!r} must be between 0 and 100 (exclusive): the canary's share "
                            "of traffic, e.g. 20")
        if not (finite(self.window_seconds) and self.window_seconds > 0):
            problems.append(f"window_seconds={self.window_seconds!r} must be > 0")
        if not (finite(self.max_error_rate) and 0 <= self.max_error_rate < 1):
            problems.append(f"max_error_rate={self.max_error_rate!r} must be in [0, 1), e.g. 0.01 for 1 %")
        if not (finite(self.max_p99_ms) and self.max_p99_ms > 0):
            problems.append(f"max_p99_ms={self.max_p99_ms!r} must be > 0 (milliseconds)")
        if not (isinstance(self.min_requests, int) and self.min_requests >= 1):
            problems.append(f"min_requests={self.min_requests!r} must be an integer ≥ 1")
        if not (finite(self.max_window_factor) and self.max_window_factor >= 1):
            problems.append(f"max_window_factor={self.max_window_factor!r} must be ≥ 1")
        if problems:
            raise CanaryInputError("canary policy: " + "; ".join(problems))


@dataclass(frozen=True)
class CanaryStats:
    """The canary backend's figures since its share of traffic began."""

    elapsed_seconds: float
    requests: int
    errors_5xx: int
    p99_ms: float | None
    """None while no request has completed."""

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str
    stats: CanaryStats

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "stats": asdict(self.stats)}


def judge(policy: CanaryPolicy, stats: CanaryStats) -> Verdict:
    """The verdict for ``stats``; see the module docstring."""
    policy.validate()
    p, s = policy, stats
    if s.requests >= p.min_requests and s.error_rate > p.max_error_rate:
        return Verdict("rollback", f"5xx rate {100 * s.error_rate:.1f}% ({s.errors_5xx}/{s.requests}) exceeds "
                                   f"{100 * p.max_error_rate:g}%", s)
    if s.elapsed_seconds < p.window_seconds:
        return Verdict("continue", f"{s.elapsed_seconds:.1f} of {p.window_seconds:g} s observed", s)
    if s.requests < p.min_requests:
        if s.elapsed_seconds >= p.window_seconds * p.max_window_factor:
            return Verdict("rollback", f"only {s.requests} canary requests in {s.elapsed_seconds:.1f} s (need "
                                       f"{p.min_requests}): too little traffic to judge", s)
        return Verdict("continue", f"window extended: {s.requests} of {p.min_requests} requests needed", s)
    if s.p99_ms is not None and s.p99_ms > p.max_p99_ms:
        return Verdict("rollback", f"p99 {s.p99_ms:.0f} ms exceeds {p.max_p99_ms:g} ms over the window", s)
    return Verdict("promote", f"{s.requests} requests in {s.elapsed_seconds:.1f} s: 5xx rate "
                              f"{100 * s.error_rate:.1f}% ≤ {100 * p.max_error_rate:g}%, p99 "
                              f"{0.0 if s.p99_ms is None else s.p99_ms:.0f} ms ≤ {p.max_p99_ms:g} ms", s)
