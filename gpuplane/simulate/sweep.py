"""Policy sweep, Pareto frontier of cost vs cold-start fraction, and the recommended setting.

:func:`run_sweep` simulates static-for-peak, the oracle and every policy family over a grid of
keep-alive settings (and min-scale 0/1) on one trace, with the same service model and prices.
The frontier keeps the settings no other setting beats on both cost and cold-start fraction.
The recommendation is the cheapest setting whose SLO attainment (fraction of requests with
latency ≤ ``slo_ms``, cold-start waits included) reaches ``slo_target``; static-for-peak is the
fallback, since it never waits. :func:`endpoint_args` turns a result into ``InferenceEndpoint``
arguments (see docs/simulator.md for the mapping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from gpuplane.simulate.engine import PolicyResult, simulate
from gpuplane.simulate.policies import HistogramKeepAlive, KnativeKeepAlive, Oracle, ServerlessPerRequest, StaticPeak
from gpuplane.simulate.prices import PriceSpec
from gpuplane.simulate.service import ServiceModel
from gpuplane.simulate.traffic import Trace

DEFAULT_KEEP_ALIVES_S: tuple[float, ...] = (0.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
FAMILIES = ("knative", "serverless", "histogram")


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep."""

    keep_alives_s: tuple[float, ...] = DEFAULT_KEEP_ALIVES_S
    """Values of each family's keep-alive knob: Knative scale-down delay, serverless idle timeout,
    histogram fallback keep-alive (seconds)."""
    min_scales: tuple[int, ...] = (0, 1)
    """Min-scale / min-instances values crossed with the keep-alives (Knative and serverless)."""
    families: tuple[str, ...] = FAMILIES
    """Policy families to include."""
    knative: KnativeKeepAlive = field(default_factory=KnativeKeepAlive)
    """Base Knative settings; the sweep replaces ``scale_down_delay_s`` and ``min_scale``."""
    serverless: ServerlessPerRequest = field(default_factory=ServerlessPerRequest)
    """Base serverless settings; the sweep replaces ``idle_timeout_s`` and ``min_instances``."""
    histogram: HistogramKeepAlive = field(default_factory=HistogramKeepAlive)
    """Base histogram settings; the sweep replaces ``fallback_keep_alive_s``."""

    def validate(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"SweepSpec: unknown families {unknown}; choose from {', '.join(FAMILIES)}")
        if not self.keep_alives_s or any(not (k >= 0 and math.isfinite(k)) for k in self.keep_alives_s):
            raise ValueError(f"SweepSpec: keep_alives_s={self.keep_alives_s} must be finite values ≥ 0")
        if not self.min_scales or any(m < 0 for m in self.min_scales):
            raise ValueError(f"SweepSpec: min_scales={self.min_scales} must be values ≥ 0")


@dataclass(frozen=True)
class SweepResult:
    """Everything a report needs."""

    static: PolicyResult
    oracle: PolicyResult
    results: tuple[PolicyResult, ...]
    """Every swept setting, all families."""
    frontier: tuple[int, ...]
    """Indices into ``results`` on the cost / cold-start-fraction Pareto frontier, cheapest first."""
    recommended: PolicyResult
    """Cheapest setting meeting the SLO (static-for-peak when none does)."""
    slo_ms: float
    slo_target: float

    def all_results(self) -> list[PolicyResult]:
        return [self.static, self.oracle, *self.results]


def pareto_frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated in (cost, cold fraction), both minimised, cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    out: list[int] = []
    best = math.inf
    for i in order:
        if points[i][1] < best:
            out.append(i)
            best = points[i][1]
    return out


def run_sweep(
    trace: Trace,
    service: ServiceModel,
    prices: PriceSpec | None = None,
    *,
    slo_ms: float = 1000.0,
    slo_target: float = 0.99,
    spec: SweepSpec | None = None,
) -> SweepResult:
    """Simulate every setting of ``spec`` plus static-for-peak and the oracle on ``trace``."""
    spec = spec or SweepSpec()
    spec.validate()
    if not 0 < slo_target <= 1:
        raise ValueError(f"slo_target={slo_target} must be in (0, 1]")
    prices = prices or PriceSpec()
    static = simulate(trace, service, StaticPeak(), prices, slo_ms=slo_ms)
    oracle = simulate(trace, service, Oracle(), prices, slo_ms=slo_ms)
    results: list[PolicyResult] = []
    for fam in spec.families:
        for k in spec.keep_alives_s:
            if fam == "histogram":
                pol = replace(spec.histogram, fallback_keep_alive_s=k)
                results.append(simulate(trace, service, pol, prices, slo_ms=slo_ms))
                continue
            for m in spec.min_scales:
                if fam == "knative":
                    pol_k = replace(spec.knative, scale_down_delay_s=k, min_scale=m)
                    if pol_k.max_scale is not None and pol_k.max_scale < m:
                        continue
                    results.append(simulate(trace, service, pol_k, prices, slo_ms=slo_ms))
                else:
                    pol_s = replace(spec.serverless, idle_timeout_s=k, min_instances=m)
                    if pol_s.max_instances is not None and pol_s.max_instances < m:
                        continue
                    results.append(simulate(trace, service, pol_s, prices, slo_ms=slo_ms))
    frontier = pareto_frontier([(r.cost_usd, r.cold_start_fraction) for r in results])
    meeting = [r for r in results if r.slo_attainment >= slo_target]
    recommended = min(meeting, key=lambda r: r.cost_usd) if meeting else static
    if recommended.cost_usd >= static.cost_usd:  # no saving: keep the simpler static deployment
        recommended = static
    return SweepResult(static, oracle, tuple(results), tuple(frontier), recommended, slo_ms, slo_target)


def endpoint_args(result: PolicyResult, service: ServiceModel, static_replicas: int | None = None) -> dict[str, Any]:
    """``InferenceEndpoint`` arguments that reproduce ``result``'s setting (docs/simulator.md).

    ``static_replicas`` (the static-for-peak replica count of the busiest endpoint) becomes
    ``max_scale`` so the endpoint can always reach the peak the trace needed.
    """
    p = result.params
    args: dict[str, Any] = {}
    if result.policy == "knative":
        args = {
            "min_scale": p["min_scale"],
            "target_concurrency": p["target_concurrency"] or service.concurrency,
            "scale_down_delay_seconds": round(p["scale_down_delay_s"]),
        }
        if p["max_scale"] is not None:
            args["max_scale"] = p["max_scale"]
    elif result.policy == "serverless":
        args = {
            "min_scale": p["min_instances"],
            "target_concurrency": service.concurrency,
            "scale_down_delay_seconds": round(p["idle_timeout_s"]),
        }
        if p["max_instances"] is not None:
            args["max_scale"] = p["max_instances"]
    elif result.policy == "histogram":
        args = {
            "min_scale": 0,
            "target_concurrency": p["target_concurrency"] or service.concurrency,
            "scale_down_delay_seconds": round(p["fallback_keep_alive_s"]),
        }
    elif result.policy == "static-peak":
        replicas = static_replicas if static_replicas is not None else 1
        args = {"min_scale": replicas, "max_scale": replicas, "target_concurrency": service.concurrency}
    if static_replicas is not None and "max_scale" not in args:
        args["max_scale"] = max(static_replicas, args.get("min_scale", 0), 1)
    return args
