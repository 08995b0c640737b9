"""Serving policies the simulator compares, as frozen parameter sets.

Each policy is a plain dataclass; ``engine.simulate`` interprets it. The replica model shared by
all of them (see ``engine.py``): replica slot ``j`` (1-based) is *needed* while more than
``(j-1)·target`` requests are in flight at the endpoint; a policy decides how long an idle slot
stays up (keep-alive), which slots are always up (min-scale), the ceiling (max-scale), which
cold-start phases a new slot pays, and how it is billed.

- :class:`StaticPeak` — replicas fixed at the endpoint's peak, never cold.
- :class:`KnativeKeepAlive` — scale-to-zero with a fixed keep-alive built from Knative's knobs
  (stable window, scale-down delay, scale-to-zero grace), target concurrency, min/max scale.
- :class:`ServerlessPerRequest` — Cloud Run-like: scale out per request, per-second billing
  while an instance is up (instance-based billing, required for GPUs) or only while it serves
  (request-based), idle instances kept for ``idle_timeout_s``, min/max instances.
- :class:`HistogramKeepAlive` — Shahrad et al., ATC 2020: per-endpoint idle-time histogram,
  pre-warm at the 5th percentile, keep alive to the 99th, a forecast of the next idle time for
  endpoints idle mostly beyond the histogram, fixed keep-alive when it is not representative.
- :class:`Oracle` — pays only busy time, never cold: a lower bound, not a deployable policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ColdPhases = Literal["node", "pod"]


class PolicyError(ValueError):
    """A policy parameter is out of range; the message names the policy, the field and the fix."""


def _check(policy: str, problems: list[str]) -> None:
    if problems:
        raise PolicyError(f"{policy}: " + "; ".join(problems))


def _nonneg(problems: list[str], **values: float | None) -> None:
    for k, v in values.items():
        if v is not None and not v >= 0:
            problems.append(f"{k}={v} must be ≥ 0")


@dataclass(frozen=True)
class StaticPeak:
    """Provisioning for peak: every endpoint runs ``ceil(peak in-flight / concurrency)`` replicas all the time."""

    window_s: float = 60.0
    """Peak of the mean in-flight count over this window (a Knative stable window). Bursts shorter
    than it queue; 0 sizes for the instantaneous peak, which never queues."""
    target_utilization: float = 0.7
    """Size so the peak uses this fraction of replica capacity: the same target the autoscaled
    policies use (Knative's 70 % default), so a constant load costs the same either way."""
    min_replicas: int = 1
    """Replicas kept per endpoint even if its peak needs fewer (a deployed endpoint has at least one)."""
    name: str = "static-peak"

    def validate(self) -> None:
        p: list[str] = []
        _nonneg(p, window_s=self.window_s, min_replicas=self.min_replicas)
        if not 0 < self.target_utilization <= 1:
            p.append(f"target_utilization={self.target_utilization} must be in (0, 1]")
        _check(self.name, p)


@dataclass(frozen=True)
class KnativeKeepAlive:
    """Knative-like scale-to-zero. The last replica stays ``stable_window_s + scale_down_delay_s +
    scale_to_zero_grace_s`` after its last request. Further replicas follow the desired count
    ``max(ceil(stable mean / target), ceil(panic mean / target))`` and stay ``scale_down_delay_s``
    after it drops."""

    stable_window_s: float = 60.0
    """Knative ``autoscaling.knative.dev/window`` (default 60 s)."""
    scale_down_delay_s: float = 0.0
    """Knative ``scale-down-delay``; InferenceEndpoint ``scale_down_delay_seconds``. The sweep knob."""
    scale_to_zero_grace_s: float = 30.0
    """Knative ``scale-to-zero-grace-period`` (default 30 s)."""
    target_utilization: float = 0.7
    """Knative ``container-concurrency-target-percentage`` (default 70 %): replicas beyond the first
    are added when the mean in-flight count exceeds this fraction of their capacity."""
    panic_window_fraction: float = 0.10
    """Knative panic window as a fraction of the stable window (default 10 %): scale-up on bursts."""
    target_concurrency: int | None = None
    """In-flight requests per replica the autoscaler aims at (``target``); None = the service concurrency."""
    min_scale: int = 0
    """Replicas always up per endpoint (``min-scale``); ≥ 1 removes cold starts of the first replica."""
    max_scale: int | None = None
    """Ceiling per endpoint (``max-scale``); requests beyond it queue. None = unbounded."""
    cold_phases: ColdPhases = "node"
    """``node``: a new replica needs a new GPU node (provisioning + pull + load); ``pod``: load only."""
    name: str = "knative"

    @property
    def keep_alive_s(self) -> float:
        """Idle time before the last replica is removed."""
        return self.stable_window_s + self.scale_down_delay_s + self.scale_to_zero_grace_s

    def validate(self) -> None:
        p: list[str] = []
        _nonneg(
            p,
            stable_window_s=self.stable_window_s,
            scale_down_delay_s=self.scale_down_delay_s,
            scale_to_zero_grace_s=self.scale_to_zero_grace_s,
        )
        _scales(p, self.min_scale, self.max_scale, "min_scale", "max_scale")
        if self.target_concurrency is not None and self.target_concurrency < 1:
            p.append(f"target_concurrency={self.target_concurrency} must be ≥ 1")
        if not 0 < self.target_utilization <= 1 or not 0 < self.panic_window_fraction <= 1:
            p.append(
                f"target_utilization={self.target_utilization}, panic_window_fraction={self.panic_window_fraction}: need (0, 1]"
            )
        if self.cold_phases not in ("node", "pod"):
            p.append(f"cold_phases={self.cold_phases!r} must be 'node' or 'pod'")
        _check(self.name, p)


@dataclass(frozen=True)
class ServerlessPerRequest:
    """Cloud Run-like per-request scaling with per-second billing."""

    idle_timeout_s: float = 900.0
    """How long an idle instance is kept before shutdown (Cloud Run keeps idle instances up to ~15 min)."""
    min_instances: int = 0
    """Instances always up per endpoint, billed all the time."""
    max_instances: int | None = None
    """Ceiling per endpoint; requests beyond it queue. None = unbounded."""
    billing: Literal["instance", "request"] = "instance"
    """``instance``: billed from start to shutdown (Cloud Run GPU); ``request``: only while serving, plus start-up."""
    billing_increment_s: float = 0.1
    """Each instance's billed time is rounded up to a multiple of this, per instance (Cloud Run:
    "rounded up to the nearest 100 millisecond", https://cloud.google.com/run/pricing); 0 = exact."""
    name: str = "serverless"

    def validate(self) -> None:
        p: list[str] = []
        _nonneg(p, idle_timeout_s=self.idle_timeout_s, billing_increment_s=self.billing_increment_s)
        _scales(p, self.min_instances, self.max_instances, "min_instances", "max_instances")
        if self.billing not in ("instance", "request"):
            p.append(f"billing={self.billing!r} must be 'instance' or 'request'")
        _check(self.name, p)


@dataclass(frozen=True)
class HistogramKeepAlive:
    """Shahrad et al. (ATC 2020) hybrid histogram policy for the first replica; further replicas
    use ``extra_keep_alive_s``. Per endpoint (application) an idle-time histogram, updated at
    every idle time from the idle times seen so far (no look-ahead), sets a pre-warm window (the
    replica is unloaded after a request and loaded again when it opens) and a keep-alive window.
    Endpoints whose idle times mostly fall beyond the histogram get a time-series forecast of the
    next idle time instead (the paper fits ARIMA; here simple exponential smoothing, the
    ARIMA(0,1,1) forecast, because per-app ARIMA fits on the handful of such idle times a day
    holds are not meaningful and the project carries no statsmodels). Endpoints with too few
    idle times or a flat histogram use the fixed ``fallback_keep_alive_s``."""

    bin_s: float = 60.0
    """Histogram bin width (the paper uses 1 minute)."""
    range_s: float = 4 * 3600.0
    """Histogram range; idle times beyond it are out of bounds (the paper uses 4 hours)."""
    prewarm_percentile: float = 5.0
    """Pre-warm window = this percentile of idle time (the head; the paper: 5th)."""
    keepalive_percentile: float = 99.0
    """Keep-alive window ends at this percentile of idle time (the tail; the paper: 99th)."""
    margin: float = 0.10
    """Safety margin: pre-warm shortened and keep-alive lengthened by this fraction (the paper: 10 %)."""
    min_samples: int = 10
    """In-range idle times needed before the histogram is trusted."""
    cv_threshold: float = 2.0
    """The histogram is representative when the CV of its bin counts is at least this."""
    max_out_of_bounds: float = 0.5
    """More than this fraction of idle times beyond ``range_s`` switches the endpoint to the forecast."""
    forecast_alpha: float = 0.5
    """Smoothing constant of the idle-time forecast (ARIMA(0,1,1) with θ = 1 − α)."""
    forecast_margin: float = 0.15
    """Forecast windows: pre-warm at (1 − margin) × the forecast idle time, keep alive until (1 + margin) × it."""
    fallback_keep_alive_s: float = 600.0
    """Fixed keep-alive used while the histogram is not representative. The sweep knob."""
    extra_keep_alive_s: float = 60.0
    """Keep-alive of replicas beyond the first (a Knative stable window)."""
    target_concurrency: int | None = None
    """In-flight requests per replica; None = the service concurrency."""
    max_scale: int | None = None
    """Ceiling per endpoint; None = unbounded."""
    cold_phases: ColdPhases = "node"
    """As for :class:`KnativeKeepAlive`."""
    name: str = "histogram"

    def validate(self) -> None:
        p: list[str] = []
        _nonneg(
            p,
            fallback_keep_alive_s=self.fallback_keep_alive_s,
            extra_keep_alive_s=self.extra_keep_alive_s,
            margin=self.margin,
        )
        if not (self.bin_s > 0 and self.range_s >= self.bin_s):
            p.append(f"bin_s={self.bin_s}, range_s={self.range_s}: need 0 < bin_s ≤ range_s")
        if not 0 <= self.prewarm_percentile < self.keepalive_percentile <= 100:
            p.append(
                f"prewarm_percentile={self.prewarm_percentile}, keepalive_percentile={self.keepalive_percentile}: need 0 ≤ prewarm < keepalive ≤ 100"
            )
        if not 0 < self.forecast_alpha <= 1 or not 0 <= self.forecast_margin < 1:
            p.append(
                f"forecast_alpha={self.forecast_alpha}, forecast_margin={self.forecast_margin}: need 0 < alpha ≤ 1 and 0 ≤ margin < 1"
            )
        if self.target_concurrency is not None and self.target_concurrency < 1:
            p.append(f"target_concurrency={self.target_concurrency} must be ≥ 1")
        _scales(p, 0, self.max_scale, "min_scale", "max_scale")
        _check(self.name, p)


@dataclass(frozen=True)
class Oracle:
    """Lower bound: pays the busy replica time (work / concurrency), never cold.

    With ``start_s`` > 0 it also pays for starting replicas, as any real platform does: it knows
    every arrival in advance, so each idle gap between busy periods costs it the cheaper of
    keeping the replica up through the gap or stopping and starting it again (billed ``start_s``
    while it loads, ready exactly when the next request arrives), plus one start per endpoint.
    Without that, a sparse trace's bound is a few GPU-seconds a day, which no platform can come
    near (every policy bills a whole cold start per run); with ``start_s`` no longer than any
    policy's cold start it stays a lower bound for every policy that bills instance time (not
    for request-based serverless billing, which pays only while requests run).
    """

    name: str = "oracle"
    start_s: float = 0.0
    """Billed seconds per replica start (e.g. the service model's ``cold_start.pod_s``); 0: busy time only."""

    def validate(self) -> None:
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise PolicyError(f"oracle: start_s={self.start_s} must be finite and ≥ 0 seconds")


Policy = StaticPeak | KnativeKeepAlive | ServerlessPerRequest | HistogramKeepAlive | Oracle


def _scales(p: list[str], lo: int, hi: int | None, lo_name: str, hi_name: str) -> None:
    if lo < 0:
        p.append(f"{lo_name}={lo} must be ≥ 0")
    if hi is not None and (hi < 1 or hi < lo):
        p.append(f"{hi_name}={hi} must be ≥ 1 and ≥ {lo_name}={lo}")
