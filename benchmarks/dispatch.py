"""Dispatcher decision time and dispatch-simulator speed.

Prints, no pass/fail, with the load average before and after (timings on a shared machine move
with it; compare runs made under similar load):

- the cost-aware dispatcher's decision (``gpuplane.dispatch.rank``: score every worker, exclude by
  residency, sort) per workload, for ``--workloads`` pending workloads (default 1,000) across
  ``--clusters`` workers (default 20): median and p95 per workload over ``--runs`` passes, and one
  whole pass;
- ``gpuplane simulate dispatch`` on a ``--days``-long synthetic trace (default a week) over the
  reference federation's four workers: wall time per policy (median of ``--runs``) and jobs/s.

Usage: python -m benchmarks.dispatch [--workloads 1000] [--clusters 20] [--days 7] [--jobs-per-day 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from components.catalog import load_catalog
from gpuplane.dispatch.ranking import JobRequest, Residency, WorkerState, rank
from gpuplane.simulate.dispatch import POLICIES, reference_workers, simulate_dispatch, synthetic_jobs


def _workers(n: int, cat, rng) -> list[WorkerState]:
    regions = [("aws", r) for r in cat.region_names("aws")] + [("gcp", r) for r in cat.region_names("gcp")]
    out = []
    for i in range(n):
        cloud, region = regions[i % len(regions)]
        prices = {"l4-spot": float(rng.uniform(0.25, 0.5)), "h100-spot": float(rng.uniform(1.5, 4.0))}
        out.append(WorkerState(f"w{i:02d}", cloud, region, cat.notice_seconds(cloud), prices, {"l4-spot": int(rng.integers(0, 32)), "h100-spot": int(rng.integers(0, 16))}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--jobs-per-day", type=float, default=100.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cat = load_catalog()
    rng = np.random.default_rng(0)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    workers = _workers(args.clusters, cat, rng)
    residency = Residency(("*",), ("us", "eu"), "benchmark")
    jobs = [
        JobRequest(f"ns/wl-{i}", str(rng.choice(["l4-spot", "h100-spot"])), int(rng.choice([1, 2, 4, 8])), "spot", float(rng.lognormal(0, 1)),
                   "aws", "us-east-1", float(rng.uniform(0, 200)))
        for i in range(args.workloads)
    ]
    per: list[float] = []
    passes: list[float] = []
    for _ in range(args.runs):
        t_pass = time.perf_counter()
        for job in jobs:
            t = time.perf_counter()
            rank(job, workers, residency, cat)
            per.append(time.perf_counter() - t)
        passes.append(time.perf_counter() - t_pass)
    per_us = sorted(x * 1e6 for x in per)
    print(f"decision: {args.workloads:,} pending workloads x {args.clusters} clusters, {args.runs} passes")
    print(f"  per workload: median {statistics.median(per_us):,.1f} us, p95 {per_us[int(0.95 * (len(per_us) - 1))]:,.1f} us")
    print(f"  whole pass:   median {statistics.median(passes) * 1e3:,.1f} ms")
    t0 = time.perf_counter()
    trace = synthetic_jobs(args.days, args.jobs_per_day, ("l4-spot", "h100-spot"), seed=1)
    sim_workers = reference_workers(cat)
    print(f"simulator: {len(trace):,} jobs over {args.days:g} days on {len(sim_workers)} workers (trace generated in {time.perf_counter() - t0:.2f} s)")
    print(f"  {'policy':<12} {'median s':>9} {'min s':>7} {'jobs/s':>9} {'cost $':>9}")
    for policy in POLICIES:
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            r = simulate_dispatch(trace, sim_workers, policy, cat)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"  {policy:<12} {med:>9.3f} {min(times):>7.3f} {len(trace) / med:>9,.0f} {r.cost_usd:>9,.0f}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
