"""Policy sweep, Pareto frontier of cost vs cold-start fraction, and the recommended setting.

:func:`run_sweep` simulates static-for-peak, the oracle and every policy family over a grid of
keep-alive settings (and min-scale 0/1) on one trace, with the same service model and prices.
The frontier keeps the settings no other setting beats on both cost and cold-start fraction.
The recommendation is the cheapest setting whose SLO attainment (fraction of requests with
latency ≤ ``slo_ms``, cold-start waits included) reaches ``slo_target``, static-for-peak included;
it never picks a setting that misses the SLO (when nothing swept meets it, static sized for the
instantaneous peak, which never queues, or none), and says why, with the oracle bound when
static is cheapest. :func:`endpoint_args` turns a result into ``InferenceEndpoint``
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
    recommended: PolicyResult | None
    """Cheapest setting meeting the SLO; never one that misses it. Static-for-peak when it meets
    the SLO and nothing cheaper does; static sized for the instantaneous peak (which never queues)
    when nothing else meets it; None when even that misses (the service time alone breaks the SLO)."""
    slo_ms: float
    slo_target: float
    reason: str = ""
    """Why this recommendation, in one or two sentences (with the oracle bound when static wins)."""

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
    # The bound pays a model load per start: busy time alone is a few GPU-seconds on a sparse trace.
    oracle = simulate(trace, service, Oracle(start_s=service.cold_start.pod_s), prices, slo_ms=slo_ms)
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
    recommended, reason = _recommend(trace, service, prices, static, oracle, results, slo_ms, slo_target)
    return SweepResult(static, oracle, tuple(results), tuple(frontier), recommended, slo_ms, slo_target, reason)


def cheapest_meeting(results: list[PolicyResult] | tuple[PolicyResult, ...], slo_target: float,
                     family: str | None = None) -> PolicyResult | None:
    """The cheapest result (of ``family``, or any) whose SLO attainment reaches ``slo_target``; None if none does."""
    meets = [r for r in results if r.slo_attainment >= slo_target and (family is None or r.policy == family)]
    return min(meets, key=lambda r: r.cost_usd) if meets else None


def _recommend(
    trace: Trace,
    service: ServiceModel,
    prices: PriceSpec,
    static: PolicyResult,
    oracle: PolicyResult,
    results: list[PolicyResult],
    slo_ms: float,
    slo_target: float,
) -> tuple[PolicyResult | None, str]:
    """The cheapest setting whose SLO attainment reaches ``slo_target``, and why."""
    best = cheapest_meeting(results, slo_target)
    bound = 1.0 - oracle.gpu_hours / static.gpu_hours if static.gpu_hours > 0 else 0.0
    slo = f"{slo_target:.1%} within {slo_ms:g} ms"
    if static.slo_attainment >= slo_target and (best is None or static.cost_usd <= best.cost_usd):
        if best is None:
            other = "no autoscaled setting meets the SLO"
        else:
            other = (
                f"the cheapest autoscaled setting that meets it ({best.policy}, {best.setting}) costs "
                f"{best.cost_usd:,.2f} USD, {best.cost_usd / static.cost_usd - 1:.1%} more"
                if static.cost_usd > 0
                else f"the cheapest autoscaled setting costs {best.cost_usd:,.2f} USD"
            )
        return static, (
            f"Static-for-peak is cheapest at {static.cost_usd:,.2f} USD: {other}. The most any autoscaler could "
            f"save on this trace is {bound:.1%} (oracle, busy time plus a model load per start: {oracle.gpu_hours:,.1f} of "
            f"{static.gpu_hours:,.1f} GPU-h), and cold starts ({static.extra.get('cold_start_s', 0) or _cold_s(results):g} s "
            "each), keep-alive and whole replicas spend more than that margin."
        )
    if best is not None:
        why = (
            f"static-for-peak misses the SLO ({static.slo_attainment:.2%})"
            if static.slo_attainment < slo_target
            else (
                f"{1 - best.cost_usd / static.cost_usd:.1%} below static-for-peak"
                if static.cost_usd > 0
                else "cheapest"
            )
        )
        return best, f"Cheapest setting meeting {slo}: {best.policy}, {best.setting} ({why}; bound {bound:.1%})."
    # Nothing swept meets the SLO, static-for-peak included (its window lets bursts queue): size
    # static for the instantaneous peak, which never queues.
    instant = simulate(trace, service, StaticPeak(window_s=0.0, target_utilization=1.0), prices, slo_ms=slo_ms)
    if instant.slo_attainment >= slo_target:
        return instant, (
            f"No swept setting meets {slo} (static-for-peak {static.slo_attainment:.2%}: bursts shorter than its "
            f"{StaticPeak().window_s:g} s window queue); static sized for the instantaneous peak never queues and meets it."
        )
    return None, (
        f"No setting meets {slo}: even static for the instantaneous peak, which never queues, reaches only "
        f"{instant.slo_attainment:.2%}; the service time alone is beyond the SLO. Raise --slo-ms or lower the service time."
    )


def _cold_s(results: list[PolicyResult]) -> float:
    return max((r.extra.get("cold_start_s", 0.0) for r in results), default=0.0)


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
