"""The local model loop: time from new data landing to the new model serving 100 %, by stage, and
request latency / 5xx during the switch against a steady period, measured in the same runs.

    python -m benchmarks.pipeline_loop [--repeats 3] [--steady-seconds 8] [--rate 15] [--full]

Each repeat runs ``gpuplane pipeline`` (the tiny size by default, without the drills) into a
temporary folder: day-1 champion, then a day of events lands and the loop fine-tunes, evaluates,
registers in MLflow, gates, starts the challenger (cold start), canaries it through the router
and promotes it to 100 %. Requests flow through the router at ``--rate`` per second the whole
time. Printed: the median seconds of each stage from landing to 100 %, and p50 / p99 / 5xx of the
requests sent during the steady period (champion only, nothing else running) and during the
switch (challenger start, canary, promotion, draining the old server), with the ratio of the two.
Figures only; no pass/fail. On a shared 2-core machine the training stage competes with the
model servers for CPU, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any


def one_run(out: Path, full: bool, steady_seconds: float, rate: float) -> dict[str, Any]:
    from rich.console import Console

    from gpuplane.pipeline import FULL, TINY, run_loop

    cfg = replace(FULL if full else TINY, worse_drill=False, fault_drill=False, steady_seconds=steady_seconds,
                  request_rate_per_s=rate)
    report = run_loop(out, cfg, console=Console(quiet=True))
    if report.error:
        raise SystemExit(f"the loop failed: {report.error}")
    day2 = next(rd for rd in report.rounds if rd.key == "day-2")
    if day2.outcome != "serving 100%":
        raise SystemExit(f"day-2's model did not reach 100% ({day2.outcome}); nothing to time")
    steady = next(t for n, t in report.traffic.items() if n.startswith("steady"))
    switch = report.traffic["switch: day-2 fine-tune"]
    return {"stages": dict(day2.stage_seconds), "total": day2.new_data_to_100_seconds, "steady": steady,
            "switch": switch}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="loop runs; medians are printed (default 3)")
    p.add_argument("--steady-seconds", type=float, default=8.0, help="steady period before new data lands")
    p.add_argument("--rate", type=float, default=15.0, help="requests per second through the router")
    p.add_argument("--full", action="store_true", help="the full loop size (1,000 users, 60-step fine-tune, Feast)")
    a = p.parse_args(argv)
    runs = []
    for i in range(a.repeats):
        with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
            runs.append(one_run(Path(tmp), a.full, a.steady_seconds, a.rate))
        r = runs[-1]
        print(f"run {i + 1}/{a.repeats}: new data → 100% in {r['total']:.1f} s; steady p99 {r['steady']['p99_ms']} ms, "
              f"switch p99 {r['switch']['p99_ms']} ms, switch 5xx {r['switch']['errors_5xx']}", flush=True)

    def med(values: list[float | None]) -> float:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else float("nan")

    print(f"\nNew data to 100% ({'full' if a.full else 'tiny'} loop, medians of {a.repeats} runs)")
    stages = list(runs[0]["stages"])
    for name in stages:
        print(f"  {name:<14} {med([r['stages'].get(name) for r in runs]):7.1f} s")
    total = med([r["total"] for r in runs])
    print(f"  {'landing → 100%':<14} {total:7.1f} s  (everything after the data stage)")
    print("\nRequests through the router (medians of per-run figures)")
    print(f"  {'period':<8} {'requests':>8} {'5xx':>5} {'no reply':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for period in ("steady", "switch"):
        rows = [r[period] for r in runs]
        print(f"  {period:<8} {med([x['requests'] for x in rows]):8.0f} {sum(x['errors_5xx'] for x in rows):5d} "
              f"{sum(x['no_reply'] for x in rows):9d} {med([x['p50_ms'] for x in rows]):8.1f} "
              f"{med([x['p99_ms'] for x in rows]):8.1f}")
    sp50, sp99 = med([r["steady"]["p50_ms"] for r in runs]), med([r["steady"]["p99_ms"] for r in runs])
    wp50, wp99 = med([r["switch"]["p50_ms"] for r in runs]), med([r["switch"]["p99_ms"] for r in runs])
    print(f"  switch / steady: p50 {wp50 / sp50:.2f}x, p99 {wp99 / sp99:.2f}x (5xx summed over runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
