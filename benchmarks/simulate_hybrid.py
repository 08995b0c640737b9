"""Hybrid histogram policy vs fixed keep-alive on the Azure Functions 2019 sample (not shipped).

Shahrad et al. (ATC 2020, "Serverless in the Wild", fig. 15) compare policies by the cold-start
percentage of the third-quartile application against the wasted memory time (an instance loaded
but not executing), normalised to a fixed 10-minute keep-alive. This prints the same two figures
for fixed keep-alive 10/20/60/120 min and the hybrid policy, measured in one run on the
Azure Functions 2019 sample from vHive's invitro repository (1,200 functions, one day, 18.2 M
invocations; each function is its own application in this sample), and whether the hybrid lies
strictly below the fixed-policy curve (fewer Q3 cold starts than the fixed curve interpolated at
its memory). Prints, no pass/fail.

The sample is not shipped: it is read from ``$GPUPLANE_REFERENCE_DATA/traces/`` or
``../shared/reference-data/traces/`` (``benchmarks/reference_common.py`` says where to get it);
without it the script prints one line naming its source and exits 0.

The service model follows the paper's simulation: one instance per application (concurrency far
above any minute's count), a short load time (1 s, the paper treats loading as instant) and a
1 s execution. Usage: python -m benchmarks.simulate_hybrid [--trace PATH] [--top N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reference_common import missing, trace_path
from gpuplane.simulate import ColdStart, HistogramKeepAlive, KnativeKeepAlive, ServiceModel, simulate
from gpuplane.simulate.engine import PolicyResult
from gpuplane.simulate.traffic import read_azure_functions

DEFAULT_TRACE = trace_path("azure_functions_2019_invitro_sample_1200_inv.csv")


def fixed(minutes: float) -> KnativeKeepAlive:
    """A fixed keep-alive of ``minutes`` after the last request (Knative's knobs summed)."""
    return KnativeKeepAlive(
        stable_window_s=60.0, scale_to_zero_grace_s=0.0, scale_down_delay_s=minutes * 60.0 - 60.0, cold_phases="pod"
    )


def below_curve(fixed_pts: list[tuple[float, float]], mem: float, q3: float) -> tuple[bool, float]:
    """Is (mem, q3) strictly below the piecewise-linear fixed curve (memory ascending)? Returns the
    verdict and the curve's Q3 at that memory (the end points extend flat)."""
    pts = sorted(fixed_pts)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    curve = float(np.interp(mem, xs, ys))
    return q3 < curve and mem <= xs[-1], curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    ap.add_argument("--top", type=int, default=None, help="keep only the N busiest applications")
    ap.add_argument("--head", type=int, default=None, help="read only the trace's first N functions (smoke runs)")
    args = ap.parse_args()
    if not args.trace.is_file():
        print(missing(args.trace, "benchmarks/simulate_hybrid.py"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trace = args.trace.resolve()
        if args.head is not None:
            lines = trace.read_text().splitlines(keepends=True)
            trace = Path(tmp) / trace.name
            trace.write_text("".join(lines[: args.head + 1]))
        tr = read_azure_functions(trace, group_by="app", top=args.top, seed=0)
    svc = ServiceModel(service_time_s=1.0, concurrency=100_000, cold_start=ColdStart(model_load_s=1.0))
    print(f"trace: {tr.n_requests:,} invocations, {tr.n_endpoints} applications, {tr.duration_s / 3600:g} h")
    rows: list[tuple[str, PolicyResult, float]] = []
    for m in (10, 20, 60, 120):
        t = time.perf_counter()
        rows.append((f"fixed keep-alive {m} min", simulate(tr, svc, fixed(m)), time.perf_counter() - t))
    hybrids = [
        ("hybrid (fallback 10 min)", HistogramKeepAlive(cold_phases="pod", fallback_keep_alive_s=600.0)),
        ("hybrid (fallback 4 h = range)", HistogramKeepAlive(cold_phases="pod", fallback_keep_alive_s=4 * 3600.0)),
    ]
    for label, pol in hybrids:
        t = time.perf_counter()
        rows.append((label, simulate(tr, svc, pol), time.perf_counter() - t))
    base = rows[0][1]
    print(
        f"{'policy':<32} {'app cold Q3':>11} {'app median':>10} {'req cold':>9} {'wasted GB-h':>11} "
        f"{'wasted / fixed-10':>17} {'s':>6}"
    )
    for label, r, secs in rows:
        print(
            f"{label:<32} {r.app_cold_start_q3:>10.2%} {r.app_cold_start_median:>10.2%} {r.cold_start_fraction:>9.3%} "
            f"{r.idle_gpu_hours:>11.1f} {r.idle_gpu_hours / base.idle_gpu_hours:>17.3f} {secs:>6.1f}"
        )
    fixed_pts = [(r.idle_gpu_hours / base.idle_gpu_hours, r.app_cold_start_q3) for _, r, _ in rows[:4]]
    print("wasted memory: replica-hours loaded while serving nothing (one instance = one unit of memory)")
    for label, r, _ in rows[4:]:
        mem = r.idle_gpu_hours / base.idle_gpu_hours
        ok, curve = below_curve(fixed_pts, mem, r.app_cold_start_q3)
        print(
            f"{label}: Q3 {r.app_cold_start_q3:.2%} at {mem:.3f}x fixed-10 memory; the fixed curve there gives "
            f"{curve:.2%} -> {'strictly below the fixed curve' if ok else 'NOT below the fixed curve'}"
        )


if __name__ == "__main__":
    main()
