"""Simulator speed: a 7-day trace with millions of requests, wall time per policy (median of runs).

Prints, no pass/fail, with the load average before and after (timings on a shared machine move
with it; compare runs made under similar load). Usage:
python -m benchmarks.simulate_speed [--mean-rps 8] [--endpoints 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from gpuplane.simulate import (
    HistogramKeepAlive,
    KnativeKeepAlive,
    Oracle,
    ServerlessPerRequest,
    ServiceModel,
    StaticPeak,
    TrafficSpec,
    simulate,
    synthetic_trace,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mean-rps", type=float, default=8.0)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--endpoints", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tr = synthetic_trace(
        TrafficSpec(
            mean_rps=args.mean_rps,
            peak_to_mean=2.0,
            cv=2.0,
            duration_s=args.days * 86_400,
            endpoints=args.endpoints,
            bursts_per_day=2,
            seed=1,
        )
    )
    gen_s = time.perf_counter() - t0
    svc = ServiceModel(service_time_s=0.5, concurrency=4)
    print(
        f"trace: {tr.n_requests:,} requests, {tr.n_endpoints} endpoints, {args.days:g} days; generated in {gen_s:.2f} s"
    )
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'policy':<58} {'median s':>9} {'min s':>7} {'requests/s':>12}")
    policies = [
        Oracle(),
        StaticPeak(),
        KnativeKeepAlive(),
        KnativeKeepAlive(scale_down_delay_s=600, min_scale=1),
        ServerlessPerRequest(),
        HistogramKeepAlive(),
    ]
    for pol in policies:
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            r = simulate(tr, svc, pol)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"{pol.name + ' (' + r.setting + ')':<58} {med:>9.2f} {min(times):>7.2f} {tr.n_requests / med:>12,.0f}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
