"""Serving throughput with dynamic batching against batch size 1, latency at half load, and the
activator's added latency on a warm server.

    python -m benchmarks.serving_throughput [--duration 5] [--concurrency 64] [--device cpu]

Same model, same machine, side by side (figures and ratios, no pass/fail):

1. saturation: a closed loop of ``--concurrency`` keep-alive connections for ``--duration``
   seconds against ``--max-batch-size 64 --max-batch-delay-ms 2`` and against
   ``--max-batch-size 1``; requests/s and the ratio (goal ≥ 4×);
2. latency p50/p99 under an open loop (Poisson arrivals) at half of each one's saturation rate;
3. the model alone, in process: rows/s at batch 1 and at batch 64 (what batching can give
   before HTTP and JSON costs, which are per request and do not batch);
4. activator overhead: sequential requests to a warm server directly and through the activator,
   alternated; added p50 (goal ≤ 2 ms).

The load generator is a minimal asyncio HTTP/1.1 client in this process, so on a small machine
it shares the CPU with the server; both configurations pay that alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.serving_common import (
    INFER_PATH,
    PYTHON,
    ROOT,
    Connection,
    env,
    free_port,
    http_get,
    infer_bodies,
    make_model,
    median,
    percentile,
    run_async,
    spawn_server,
    stop,
    wait_ready,
)

NUM_ITEMS = 1000  # the "tiny" preset's shape: the regime where per-call overheads dominate
DYNAMIC = ["--max-batch-size", "64", "--max-batch-delay-ms", "2"]
BATCH_ONE = ["--max-batch-size", "1", "--max-batch-delay-ms", "0"]


async def closed_loop(port: int, bodies: list[bytes], concurrency: int, duration: float) -> tuple[float, Counter[int]]:
    """Requests/s over ``duration`` after a short warm-up, and the status codes seen."""
    codes: Counter[int] = Counter()
    counted = 0
    start = time.perf_counter()
    measure_from = start + min(1.0, duration / 5)
    stop_at = measure_from + duration

    async def worker(n: int) -> None:
        nonlocal counted
        conn = Connection("127.0.0.1", port)
        i = n
        while (now := time.perf_counter()) < stop_at:
            status, _ = await conn.post(INFER_PATH, bodies[i % len(bodies)])
            i += concurrency
            if now >= measure_from:
                codes[status] += 1
                counted += 1
        await conn.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return counted / duration, codes


async def open_loop(port: int, bodies: list[bytes], rate: float, duration: float) -> tuple[list[float], Counter[int]]:
    """Latencies of Poisson arrivals at ``rate`` requests/s for ``duration`` seconds."""
    rng = random.Random(1)
    idle: list[Connection] = []
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    tasks = []

    async def one(body: bytes) -> None:
        conn = idle.pop() if idle else Connection("127.0.0.1", port)
        status, seconds = await conn.post(INFER_PATH, body)
        codes[status] += 1
        latencies.append(seconds)
        idle.append(conn)

    start = time.perf_counter()
    next_at, i = start, 0
    while next_at < start + duration:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(bodies[i % len(bodies)])))
        i += 1
        next_at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    for conn in idle:
        await conn.close()
    return latencies, codes


def serve_and_measure(model_dir: Path, extra: list[str], bodies: list[bytes], concurrency: int,
                      duration: float) -> dict[str, object]:
    port = free_port()
    proc = spawn_server(model_dir, port, extra)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        throughput, codes = run_async(closed_loop(port, bodies, concurrency, duration))  # type: ignore[misc]
        latencies, half_codes = run_async(open_loop(port, bodies, throughput / 2, duration))  # type: ignore[misc]
        batches = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    finally:
        stop(proc)
    rows = [line for line in batches.splitlines() if line.startswith("gpuplane_serving_batch_size_")]
    summed = {line.split()[0].rsplit("_", 1)[1]: float(line.split()[1]) for line in rows
              if line.split()[0].endswith(("_sum", "_count"))}
    return {"throughput": throughput, "codes": codes, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "half_codes": half_codes,
            "mean_batch": summed.get("sum", 0) / max(summed.get("count", 1), 1)}


def engine_rows_per_second(model_dir: Path, batch: int, device: str, seconds: float = 2.0) -> float:
    from workloads.serving.model_runner import ModelRunner, PredictJob

    runner = ModelRunner(model_dir, device=device, torch_threads=1 if device == "cpu" else None)
    runner.load()
    rng = random.Random(0)
    jobs = [PredictJob((tuple(rng.randint(1, NUM_ITEMS) for _ in range(16)),), 10) for _ in range(batch)]
    runner.predict(jobs)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runner.predict(jobs)
        done += batch
    return done / (time.perf_counter() - start)


async def alternate(direct_port: int, via_port: int, bodies: list[bytes], count: int) -> tuple[list[float], list[float]]:
    direct, via = Connection("127.0.0.1", direct_port), Connection("127.0.0.1", via_port)
    direct_s, via_s = [], []
    for i in range(count):
        body = bodies[i % len(bodies)]
        for conn, out in ((direct, direct_s), (via, via_s)) if i % 2 else ((via, via_s), (direct, direct_s)):
            status, seconds = await conn.post(INFER_PATH, body)
            if status == 200 and i >= count // 10:  # first 10% warm the connections
                out.append(seconds)
    await direct.close()
    await via.close()
    return direct_s, via_s


def activator_overhead(model_dir: Path, bodies: list[bytes], threads: list[str], count: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "workloads.serving.activator", "--port", str(port), "--idle-seconds", "600",
         "--log-level", "warning", "--", PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir),
         "--port", "{port}", "--log-level", "warning", "--max-batch-delay-ms", "0", *threads],
        cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while http_get(f"{url}/v2/health/ready", timeout=60)[0] != 200:  # cold start through the activator
            if time.monotonic() > deadline:
                raise TimeoutError("activator's server never became ready")
            time.sleep(0.05)
        import json

        upstream = json.loads(http_get(f"{url}/activator/status")[1])["port"]
        direct_s, via_s = run_async(alternate(upstream, port, bodies, count))  # type: ignore[misc]
    finally:
        stop(proc)
    return median(direct_s), median(via_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=64, help="closed-loop connections (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="server --torch-threads on CPU (default: %(default)s; 0 keeps torch's default)")
    p.add_argument("--activator-requests", type=int, default=400)
    args = p.parse_args()
    threads = ["--torch-threads", str(args.torch_threads)] if args.torch_threads else []
    device = ["--device", args.device]

    with tempfile.TemporaryDirectory(prefix="gpuplane-throughput-") as tmp:
        model_dir = Path(tmp) / "model"
        size = make_model(model_dir, num_items=NUM_ITEMS, n_embd=64, n_layer=2, n_head=2, block_size=32)
        bodies = infer_bodies(512, NUM_ITEMS)
        print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' work inflates every figure)")
        print(f"model {size / 1e6:.2f} MB (tiny preset shape), device {args.device}, torch threads "
              f"{args.torch_threads or 'default'}, {args.concurrency} connections, {args.duration:.0f} s per point; "
              "each request: 1 row of 16 items, k=10")
        results = {}
        for name, extra in (("dynamic batching (max 64, 2 ms)", DYNAMIC), ("batch size 1", BATCH_ONE)):
            results[name] = r = serve_and_measure(model_dir, [*extra, *threads, *device], bodies, args.concurrency,
                                                  args.duration)
            print(f"  {name:34s} {r['throughput']:8.0f} req/s at saturation (mean batch {r['mean_batch']:.1f}, "
                  f"codes {dict(r['codes'])});  at half load: p50 {r['p50'] * 1e3:.2f} ms, "
                  f"p99 {r['p99'] * 1e3:.2f} ms (codes {dict(r['half_codes'])})")
        dyn, one = results.values()
        print(f"  {'throughput ratio (goal >= 4)':34s} {dyn['throughput'] / one['throughput']:8.2f}x")  # type: ignore[operator]

        import torch

        if args.device == "cpu":
            torch.set_num_threads(max(args.torch_threads, 1))
        single = engine_rows_per_second(model_dir, 1, args.device)
        batched = engine_rows_per_second(model_dir, 64, args.device)
        print(f"  model alone, in process: batch 1 {single:.0f} rows/s, batch 64 {batched:.0f} rows/s, "
              f"ratio {batched / single:.1f}x")

        direct, via = activator_overhead(model_dir, bodies, threads + device, args.activator_requests)
        print(f"  activator on a warm server, sequential, p50: direct {direct * 1e3:.2f} ms, through activator "
              f"{via * 1e3:.2f} ms, added {(via - direct) * 1e3:.2f} ms (goal <= 2 ms)")


if __name__ == "__main__":
    main()
