"""The two-tier policy: a steady tier of fixed replicas, and a scale-to-zero serverless burst tier
taking what the steady tier's router spills (components/two_tier/, workloads/serving/router.py).

Model, per endpoint, on the same trace and service model as the other policies:

- The router admits a request to the steady tier while fewer than ``spill_threshold`` requests
  are in flight there (the router's ``in-flight`` signal), else spills it. ``spill_threshold`` is
  at most ``steady_replicas × concurrency``, so an admitted request never queues: its latency is
  the service time. The steady tier is billed all the time at the node price, like static-peak.
- The spilled requests form a sub-trace served by :class:`ServerlessPerRequest` (min instances
  0, ``burst_idle_timeout_s``, ``burst_max_instances``) through ``engine.simulate``: the burst
  tier's cost, cold starts and latency come from the same engine the serverless-only policy uses.
- Merged figures: SLO attainment and the cold-start fraction are exact (steady requests meet the
  SLO whenever the service time does; the burst tier's attainment is the engine's). The merged
  p50/p95/p99 are read off the mixture of the steady tier's constant latency and the burst tier's
  p50/p95/p99, interpolated linearly between those quantiles: an estimate, exact when the asked
  quantile falls on one the engine reports or inside the steady tier's share.

``optimise`` searches steady replicas 1..static-peak and spill thresholds (fractions of the steady
tier's capacity), and picks the cheapest setting meeting the SLO target; ``compare`` runs it next
to static-for-peak, Knative-only and serverless-only and marks the Pareto frontier of cost vs
missed-SLO fraction over all of them. ``endpoint_args`` maps a setting to TwoTierEndpoint args.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gpuplane.simulate.engine import PolicyResult, simulate
from gpuplane.simulate.policies import KnativeKeepAlive, PolicyError, ServerlessPerRequest, StaticPeak
from gpuplane.simulate.prices import PriceSpec
from gpuplane.simulate.service import ServiceModel
from gpuplane.simulate.traffic import Trace


@dataclass(frozen=True)
class TwoTier:
    """Steady replicas plus a spill threshold; the burst tier is serverless and scales to zero."""

    steady_replicas: int = 1
    """Replicas of the steady tier, always up (TwoTierEndpoint ``steady_replicas``)."""
    spill_threshold: int | None = None
    """Steady-tier in-flight requests at which requests spill; None = steady_replicas × concurrency."""
    burst_idle_timeout_s: float = 300.0
    """Idle time before a burst instance stops (TwoTierEndpoint ``scale_down_delay_seconds``)."""
    burst_max_instances: int | None = None
    """Ceiling of the burst tier (``burst_max_scale``); None = unbounded."""
    name: str = "two-tier"

    def validate(self, concurrency: int) -> None:
        problems = []
        if self.steady_replicas < 1:
            problems.append(f"steady_replicas={self.steady_replicas} must be ≥ 1")
        cap = self.steady_replicas * concurrency
        if self.spill_threshold is not None and not 1 <= self.spill_threshold <= cap:
            problems.append(f"spill_threshold={self.spill_threshold} must be in [1, steady_replicas × concurrency = {cap}]")
        if self.burst_idle_timeout_s < 0:
            problems.append(f"burst_idle_timeout_s={self.burst_idle_timeout_s} must be ≥ 0")
        if problems:
            raise PolicyError(f"{self.name}: " + "; ".join(problems))


def _spill(trace: Trace, service: ServiceModel, steady: int, threshold: int) -> np.ndarray:
    """Boolean mask (trace order): requests the router sends to the burst tier."""
    st = service.service_times(trace.n_endpoints)
    spill = np.zeros(trace.n_requests, dtype=bool)
    busy: list[list[float]] = [[] for _ in range(trace.n_endpoints)]
    times, eps = trace.times_s.tolist(), trace.endpoint.tolist()
    for i, (t, e) in enumerate(zip(times, eps, strict=True)):
        heap = busy[e]
        while heap and heap[0] <= t:
            heapq.heappop(heap)
        if len(heap) >= threshold:
            spill[i] = True
        else:
            heapq.heappush(heap, t + float(st[e]))
    return spill


def _mixture_quantile(q: float, steady_share: float, steady_ms: float, burst: PolicyResult) -> float:
    if burst.n_requests == 0 or q <= steady_share:
        return steady_ms
    qb = (q - steady_share) / (1.0 - steady_share)  # the quantile asked of the burst tier
    known = [(0.0, steady_ms), (0.5, burst.p50_ms), (0.95, burst.p95_ms), (0.99, burst.p99_ms), (1.0, burst.p99_ms)]
    for (q0, v0), (q1, v1) in itertools.pairwise(known):
        if qb <= q1:
            return v0 + (v1 - v0) * (qb - q0) / (q1 - q0)
    return burst.p99_ms


def simulate_two_tier(trace: Trace, service: ServiceModel, policy: TwoTier, prices: PriceSpec | None = None, *,
                      slo_ms: float = 1000.0) -> PolicyResult:
    """Simulate ``policy`` on ``trace``: steady tier in place, the spilled sub-trace through the engine."""
    prices = prices or PriceSpec()
    service.validate(trace.n_endpoints)
    policy.validate(service.concurrency)
    threshold = policy.spill_threshold or policy.steady_replicas * service.concurrency
    spill = _spill(trace, service, policy.steady_replicas, threshold)
    sub = Trace(times_s=trace.times_s[spill], endpoint=trace.endpoint[spill], duration_s=trace.duration_s,
                n_endpoints=trace.n_endpoints, endpoint_names=trace.endpoint_names)
    burst = simulate(sub, service, ServerlessPerRequest(idle_timeout_s=policy.burst_idle_timeout_s,
                                                        max_instances=policy.burst_max_instances),
                     prices, slo_ms=slo_ms)
    n, n_b = trace.n_requests, int(spill.sum())
    steady_s = policy.steady_replicas * trace.n_endpoints * trace.duration_s
    steady_usd = steady_s * prices.usd_per_gpu_second
    st = service.service_times(trace.n_endpoints)
    served = np.bincount(trace.endpoint[~spill], minlength=trace.n_endpoints)
    steady_ms = float(np.average(st, weights=served) * 1e3) if served.sum() else 0.0
    steady_ok = float(np.sum(served[st * 1e3 <= slo_ms]))
    share = (n - n_b) / n if n else 1.0
    setting = f"steady {policy.steady_replicas}, spill at {threshold}"
    return PolicyResult(
        policy=policy.name,
        params={**asdict(policy), "spill_threshold": threshold},
        gpu_hours=steady_s / 3600.0 + burst.gpu_hours,
        cost_usd=steady_usd + burst.cost_usd,
        cold_start_fraction=burst.cold_start_fraction * n_b / n if n else 0.0,
        queued_fraction=burst.queued_fraction * n_b / n if n else 0.0,
        p50_ms=_mixture_quantile(0.50, share, steady_ms, burst),
        p95_ms=_mixture_quantile(0.95, share, steady_ms, burst),
        p99_ms=_mixture_quantile(0.99, share, steady_ms, burst),
        slo_ms=slo_ms,
        slo_attainment=(steady_ok + burst.slo_attainment * n_b) / n if n else 1.0,
        cold_starts=burst.cold_starts,
        mean_replicas=(steady_s + burst.gpu_hours * 3600.0) / trace.duration_s,
        n_requests=n,
        duration_s=trace.duration_s,
        setting=setting,
        extra={"spilled_fraction": n_b / n if n else 0.0, "steady_usd": steady_usd, "burst_usd": burst.cost_usd,
               "burst_p99_ms": burst.p99_ms},
        idle_gpu_hours=burst.idle_gpu_hours,
    )


@dataclass
class TwoTierComparison:
    """Two-tier's settings and the three baselines on one trace."""

    two_tier: list[PolicyResult]
    baselines: dict[str, PolicyResult]
    """``static-peak``, ``knative`` (Knative-only) and ``serverless`` (serverless-only)."""
    recommended: PolicyResult | None
    """The cheapest two-tier setting meeting the SLO target (None when none does)."""
    slo_target: float
    frontier: list[PolicyResult] = field(default_factory=list)
    """Pareto frontier over every result, cost vs missed-SLO fraction, cheapest first."""

    def all_results(self) -> list[PolicyResult]:
        return [*self.baselines.values(), *self.two_tier]


def _cheapest_meeting(results: list[PolicyResult], target: float) -> PolicyResult | None:
    ok = [r for r in results if r.slo_attainment >= target]
    return min(ok, key=lambda r: r.cost_usd) if ok else None


def compare(trace: Trace, service: ServiceModel, prices: PriceSpec | None = None, *, slo_ms: float = 1000.0,
            slo_target: float = 0.99, threshold_fractions: tuple[float, ...] = (0.5, 0.75, 1.0),
            burst_idle_timeout_s: float = 300.0, knative_delays_s: tuple[float, ...] = (0.0, 300.0, 900.0),
            max_steady: int | None = None) -> TwoTierComparison:
    """Static-for-peak, Knative-only and serverless-only beside the two-tier settings searched.

    Knative-only is the cheapest of min-scale 0 with ``knative_delays_s`` meeting the target (else
    the one with the best attainment); serverless-only is :class:`ServerlessPerRequest` with
    ``burst_idle_timeout_s``, as the burst tier."""
    prices = prices or PriceSpec()
    static = simulate(trace, service, StaticPeak(), prices, slo_ms=slo_ms, setting="for peak")
    knative = [simulate(trace, service, KnativeKeepAlive(scale_down_delay_s=d), prices, slo_ms=slo_ms,
                        setting=f"scale-down delay {d:g} s") for d in knative_delays_s]
    knative_pick = _cheapest_meeting(knative, slo_target) or max(knative, key=lambda r: r.slo_attainment)
    serverless = simulate(trace, service, ServerlessPerRequest(idle_timeout_s=burst_idle_timeout_s), prices,
                          slo_ms=slo_ms, setting=f"idle timeout {burst_idle_timeout_s:g} s")
    peak = max(1, round(static.mean_replicas / max(trace.n_endpoints, 1)))
    top = max_steady or peak
    results = []
    for steady in range(1, top + 1):
        cap = steady * service.concurrency
        for threshold in sorted({max(1, min(cap, round(f * cap))) for f in threshold_fractions}):
            results.append(simulate_two_tier(trace, service, TwoTier(steady, threshold, burst_idle_timeout_s),
                                             prices, slo_ms=slo_ms))
    baselines = {"static-peak": static, "knative": knative_pick, "serverless": serverless}
    out = TwoTierComparison(results, baselines, _cheapest_meeting(results, slo_target), slo_target)
    every = out.all_results()
    order = sorted(every, key=lambda r: (r.cost_usd, 1 - r.slo_attainment))
    best = math.inf
    for r in order:
        missed = 1 - r.slo_attainment
        if missed < best:
            out.frontier.append(r)
            best = missed
    return out


def endpoint_args(result: PolicyResult, service: ServiceModel) -> dict[str, Any]:
    """TwoTierEndpoint arguments that reproduce a two-tier ``result``'s setting."""
    if result.policy != "two-tier":
        raise ValueError(f"endpoint_args: {result.policy!r} is not a two-tier result")
    p = result.params
    args: dict[str, Any] = {
        "steady_replicas": p["steady_replicas"],
        "steady_max_replicas": p["steady_replicas"],
        "target_concurrency": service.concurrency,
        "spill_threshold": p["spill_threshold"],
        "scale_down_delay_seconds": round(p["burst_idle_timeout_s"]),
    }
    if p["burst_max_instances"] is not None:
        args["burst_max_scale"] = p["burst_max_instances"]
    return args


def write_plot(path: Any, comparison: TwoTierComparison) -> bool:
    """Cost vs missed-SLO fraction for every result, frontier marked; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tt = comparison.two_tier
    ax.scatter([r.cost_usd for r in tt], [1 - r.slo_attainment for r in tt], s=18, label="two-tier settings")
    for name, r in comparison.baselines.items():
        ax.scatter([r.cost_usd], [1 - r.slo_attainment], marker="s", s=50, label=f"{name} ({r.setting})")
    front = comparison.frontier
    ax.plot([r.cost_usd for r in front], [1 - r.slo_attainment for r in front], "k--", lw=0.8, label="Pareto frontier")
    if comparison.recommended is not None:
        r = comparison.recommended
        ax.scatter([r.cost_usd], [1 - r.slo_attainment], marker="*", s=160, c="green", label=f"recommended: {r.setting}")
    ax.set_xlabel("cost (USD)")
    ax.set_ylabel(f"requests missing the {front[0].slo_ms:g} ms SLO" if front else "missed SLO")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


__all__ = ["TwoTier", "TwoTierComparison", "compare", "endpoint_args", "simulate_two_tier", "write_plot"]
