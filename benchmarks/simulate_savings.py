"""Savings vs static-for-peak per policy as peak/mean grows, next to the bound 1 − mean/peak.

For each configured diurnal peak/mean the table shows the nominal bound, the realised bound
(1 − mean/peak of the in-flight load at the 60 s resolution static provisioning uses), the
oracle, and each policy's GPU-hour savings with the share of requests that waited for a cold
start. Static is sized at each policy's own utilisation target (70 % for Knative and the
histogram policy, 100 % for serverless). Prints, no pass/fail.
"""

from __future__ import annotations

import argparse

import numpy as np

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
from gpuplane.simulate.engine import _windowed_peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mean-rps", type=float, default=4.0)
    ap.add_argument("--cv", type=float, default=1.0)
    ap.add_argument("--days", type=float, default=2.0)
    args = ap.parse_args()
    svc = ServiceModel(service_time_s=4.0, concurrency=2)
    policies = [
        ("knative 90 s", KnativeKeepAlive()),
        ("knative 390 s", KnativeKeepAlive(scale_down_delay_s=300)),
        ("serverless 60 s", ServerlessPerRequest(idle_timeout_s=60)),
        ("histogram", HistogramKeepAlive()),
    ]
    head = f"{'peak/mean':>9} {'bound':>6} {'realised':>8} {'oracle':>7} " + " ".join(f"{n:>24}" for n, _ in policies)
    print(
        f"{args.days:g}-day traces, {args.mean_rps:g} req/s, CV {args.cv:g}, {svc.service_time_s} s per request, concurrency {svc.concurrency}"
    )
    print("cells: GPU-hour savings vs static-for-peak (cold-start waits)")
    print(head)
    for pm in (1.0, 1.43, 1.75, 2.0, 2.25, 2.5):
        tr = synthetic_trace(
            TrafficSpec(mean_rps=args.mean_rps, peak_to_mean=pm, cv=args.cv, duration_s=args.days * 86_400, seed=21)
        )
        st = np.full(tr.n_requests, svc.service_time_s)
        peak = _windowed_peak(tr.times_s, tr.endpoint.astype(np.int64), st, 1, 60.0)[0]
        realised = 1 - st.sum() / tr.duration_s / peak
        static70 = simulate(tr, svc, StaticPeak(target_utilization=0.7))
        static100 = simulate(tr, svc, StaticPeak(target_utilization=1.0))
        oracle = simulate(tr, svc, Oracle())
        cells = []
        for _, pol in policies:
            base = static100 if isinstance(pol, ServerlessPerRequest) else static70
            r = simulate(tr, svc, pol)
            cells.append(f"{1 - r.gpu_hours / base.gpu_hours:>7.1%} ({r.cold_start_fraction:>6.2%} cold)")
        print(
            f"{pm:>9.2f} {1 - 1 / pm:>6.1%} {realised:>8.1%} {1 - oracle.gpu_hours / static100.gpu_hours:>7.1%} "
            + " ".join(f"{c:>24}" for c in cells)
        )


if __name__ == "__main__":
    main()
