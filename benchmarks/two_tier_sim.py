"""Two-tier vs static-for-peak vs Knative-only vs serverless-only on a generated bursty day, one run.

    python -m benchmarks.two_tier_sim [--mean-rps 4] [--bursts-per-day 6] [--slo-ms 2000] [--seed 1]

The trace: one endpoint, a diurnal day (peak/mean 2) with Gamma gaps (CV 1.5) and bursts of 4x
the rate lasting 10 minutes. Every policy runs through gpuplane.simulate on that same trace and
service model (0.5 s per request, 4 in flight per replica); the two-tier search covers steady
replicas 1..static-peak and spill thresholds at 50/75/100 % of the steady tier's capacity.
Printed: cost and p99 per policy, SLO attainment, the two-tier recommendation (cheapest meeting
the SLO target) with its TwoTierEndpoint args, each baseline's cost relative to it, and the
simulation wall time.
"""

from __future__ import annotations

import argparse
import time

from gpuplane.simulate import PriceSpec, ServiceModel, TrafficSpec, synthetic_trace
from gpuplane.simulate.two_tier import compare, endpoint_args


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mean-rps", type=float, default=4.0)
    p.add_argument("--bursts-per-day", type=float, default=6.0)
    p.add_argument("--burst-multiplier", type=float, default=4.0)
    p.add_argument("--slo-ms", type=float, default=2000.0)
    p.add_argument("--slo-target", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    trace = synthetic_trace(TrafficSpec(mean_rps=args.mean_rps, peak_to_mean=2.0, cv=1.5,
                                        bursts_per_day=args.bursts_per_day, burst_duration_s=600.0,
                                        burst_multiplier=args.burst_multiplier, seed=args.seed))
    service = ServiceModel(service_time_s=0.5, concurrency=4)
    prices = PriceSpec()
    started = time.perf_counter()
    c = compare(trace, service, prices, slo_ms=args.slo_ms, slo_target=args.slo_target)
    wall = time.perf_counter() - started
    print(f"bursty day: {trace.n_requests:,} requests, {args.bursts_per_day:g} bursts of {args.burst_multiplier:g}x, "
          f"SLO {args.slo_ms:g} ms for {args.slo_target:.0%}; GPU ${prices.usd_per_gpu_hour}/h; simulated in {wall:.1f} s")
    rec = c.recommended
    rows = [*c.baselines.items(), *((("two-tier" + (" (recommended)" if r is rec else "")), r) for r in c.two_tier)]
    for name, r in rows:
        spilled = r.extra.get("spilled_fraction")
        print(f"  {name:24s} {r.setting:26s} cost ${r.cost_usd:8.2f}  p99 {r.p99_ms:8.0f} ms  SLO met {r.slo_attainment:7.3%}"
              + (f"  spilled {spilled:.1%}" if spilled is not None else ""))
    if rec is None:
        print("no two-tier setting meets the SLO target")
        return
    print(f"recommended two-tier: {rec.setting}: ${rec.cost_usd:.2f} (steady ${rec.extra['steady_usd']:.2f} + burst "
          f"${rec.extra['burst_usd']:.2f}), p99 {rec.p99_ms:.0f} ms; TwoTierEndpoint args {endpoint_args(rec, service)}")
    for name, r in c.baselines.items():
        meets = "meets" if r.slo_attainment >= args.slo_target else "misses"
        print(f"  {name}: {r.cost_usd / rec.cost_usd:.2f}x the two-tier cost, p99 {r.p99_ms:.0f} ms ({meets} the SLO)")


if __name__ == "__main__":
    main()
