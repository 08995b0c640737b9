"""The demo's two-tier leg: the traffic day again, through the router (workloads/serving/router.py).

A steady model server (always up) and a burst tier (a second server behind the scale-to-zero
activator, which holds requests while it starts) behind ``python -m workloads.serving.router
--mode overflow``: a request goes to the burst tier while ``TWO_TIER_THRESHOLD`` requests are in
flight on the steady one. The day is replayed faster than the serving step (at most
``TWO_TIER_WALL_SECONDS``), so its bursts overlap and spill. The step fails on any reply but 200
and when either tier served nothing; it reports the tier split, each tier's p50/p99 and 5xx
(from ``/router/status``) and the burst tier's cold starts and scale-downs.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np

from gpuplane.demo.procs import free_port
from gpuplane.demo.steps import (
    MODEL_NAME,
    Context,
    Skip,
    StepFailed,
    _wait_listening,
    activator_metrics,
    have,
    python,
)
from gpuplane.demo.traffic import compress_day, held_out_examples, pick_examples, replay, traffic_day

TWO_TIER_THRESHOLD = 2
"""Steady-tier in-flight requests at which the router spills (small, so the demo's bursts reach it)."""
TWO_TIER_WALL_SECONDS = 30.0
"""Longest wall time of the two-tier replay (the quick demo's day is shorter already)."""


def step_two_tier(ctx: Context) -> str:
    if not have("torch"):
        raise Skip("torch is not installed: no model to serve")
    ctx.need("training", "serving")
    cfg = ctx.cfg
    block_size = int(json.loads((ctx.model_dir / "config.json").read_text())["block_size"])
    trace = traffic_day(cfg.day)
    schedule = compress_day(trace, min(cfg.day_wall_seconds, TWO_TIER_WALL_SECONDS))
    examples = pick_examples(held_out_examples(ctx.data_dir, block_size), trace.n_requests, cfg.seed + 2)
    server = ["-m", "workloads.serving", "--model-dir", str(ctx.model_dir), "--model-name", MODEL_NAME,
              "--host", "127.0.0.1", "--torch-threads", str(cfg.serving_threads)]
    steady_port, burst_port, router_port = free_port(), free_port(), free_port()
    steady_log, burst_log, router_log = (ctx.logs / f"two-tier-{n}.log" for n in ("steady", "burst", "router"))
    steady = ctx.procs.spawn(python(*server, "--port", str(steady_port)), steady_log)
    burst = ctx.procs.spawn(python("-m", "workloads.serving.activator", "--host", "127.0.0.1", "--port",
                                   str(burst_port), "--idle-seconds", str(cfg.idle_seconds), "--ready-timeout-seconds",
                                   "120", "--stop-timeout-seconds", "10", "--", *python(*server, "--port", "{port}")),
                            burst_log)
    router = ctx.procs.spawn(python("-m", "workloads.serving.router", "--host", "127.0.0.1", "--port", str(router_port),
                                    "--backend", f"steady=http://127.0.0.1:{steady_port}",
                                    "--backend", f"burst=http://127.0.0.1:{burst_port}", "--mode", "overflow",
                                    "--overflow-threshold", str(TWO_TIER_THRESHOLD), "--log-level", "warning"),
                             router_log)
    base = f"http://127.0.0.1:{router_port}"
    try:
        _wait_listening(f"http://127.0.0.1:{steady_port}/v2/health/ready", steady, 120.0, steady_log)
        _wait_listening(f"http://127.0.0.1:{burst_port}/activator/status", burst, 30.0, burst_log)
        _wait_listening(f"{base}/router/status", router, 30.0, router_log)
        httpx.post(f"{base}/router/reset", timeout=10.0)  # the figures below are the replay's only
        ctx.say(f"two tiers behind the router on {base}: steady server always up, burst server behind the activator "
                f"(scale-to-zero after {cfg.idle_seconds:g} s); spill at {TWO_TIER_THRESHOLD} in flight; the day in "
                f"{schedule.wall_seconds:.0f} s")

        def progress(wall: float, sent: int, total: int, state: str) -> None:
            ctx.progress(f"two-tier replay: {schedule.clock(wall)} of the day, {sent}/{total} requests sent")

        # replay() polls {base}/activator/status for the serving step's timeline; through the router that GET goes
        # to the steady tier (GETs never spill), so poll rarely and take the polls out of the steady count below
        result = asyncio.run(replay(base, MODEL_NAME, schedule, examples, progress=progress, poll_interval_s=3600.0))
        status = httpx.get(f"{base}/router/status", timeout=10.0).json()
        burst_metrics = activator_metrics(httpx.get(f"http://127.0.0.1:{burst_port}/activator/metrics",
                                                    timeout=10.0).text)
    finally:
        ctx.progress("stopping the router and both tiers")
        codes = [ctx.procs.stop(p, timeout_s=20.0) for p in (router, burst, steady)]
    tiers = status["backends"]
    bad = int(np.sum(result.status != 200))
    if bad or any(t["errors_5xx"] for t in tiers.values()):
        raise StepFailed(f"{bad} of {result.status.size} requests through the router got no 200 "
                         f"(5xx: steady {tiers['steady']['errors_5xx']}, burst {tiers['burst']['errors_5xx']}); first "
                         "errors: " + "; ".join(result.errors[:3]) + f"; see {router_log}")
    if tiers["steady"]["requests"] <= len(result.obs_t) or not tiers["burst"]["requests"]:
        raise StepFailed(f"one tier served nothing (steady {tiers['steady']['requests'] - len(result.obs_t)}, burst "
                         f"{tiers['burst']['requests']}); see {router_log}")
    if any(code != 0 for code in codes):
        raise StepFailed(f"router / activator / steady server exited {codes} on SIGTERM (expected 0); see {ctx.logs}")
    steady_n, burst_n = tiers["steady"]["requests"] - len(result.obs_t), tiers["burst"]["requests"]
    total = steady_n + burst_n
    cold = int(burst_metrics.get("gpuplane_activator_cold_starts_total", 0.0))
    downs = int(burst_metrics.get("gpuplane_activator_scale_downs_total", 0.0))
    return (f"{total} requests through the router, all 200 (0 5xx): steady {steady_n} "
            f"(p50 {tiers['steady']['latency_ms']['p50']:.0f} ms, p99 {tiers['steady']['latency_ms']['p99']:.0f} ms), "
            f"burst {burst_n} = {burst_n / total:.0%} "
            f"(p50 {tiers['burst']['latency_ms']['p50']:.0f} ms, p99 {tiers['burst']['latency_ms']['p99']:,.0f} ms); "
            f"burst tier: {cold} cold starts, {downs} scale-downs")
