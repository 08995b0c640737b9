"""Serving throughput with dynamic batching against batch size 1, latency at half load, and the
activator's added latency on a warm server.

    python -m benchmarks.serving_throughput [--duration 5] [--concurrency 64] [--device cpu]
        [--models tiny,realistic] [--load-generator auto|wrk|python]

Two models, each measured alike and printed on its own rows (figures and ratios, no pass/fail):

- ``tiny``: the "tiny" preset's shape (1000 items, n_embd 64, 2 layers, block 32); requests send
  16-item histories. Inference costs about as much as the HTTP and JSON handling around it.
- ``realistic``: what a recommender really serves (30 000 items, n_embd 256, 4 layers, 4 heads,
  block 64, about 43 MB of weights); requests send 32-item histories. At batch 1 the item
  embedding (the tied output head) is streamed from memory for every single request.

For each model, same model and machine:

1. saturation: a closed loop of ``--concurrency`` keep-alive connections for ``--duration``
   seconds against ``--max-batch-size 64 --max-batch-delay-ms 2`` and against
   ``--max-batch-size 1`` (both servers up, windows alternated ``--repeats`` times, medians);
   requests/s and their ratio (goal >= 4x), with the mean batch and the server's CPU
   time per request (user + system, all threads, from /proc): on a shared machine the wall
   figures follow the CPU share the scheduler grants, the CPU per request much less so;
2. latency p50/p99 under an open loop (Poisson arrivals) at half of each one's saturation rate;
3. the model alone, in process: rows/s at batch 1 and at batch 64 (what batching can give
   before HTTP and JSON costs, which are per request and do not batch).

Then, on the tiny model, the activator overhead: sequential requests to a warm server directly
and through the activator, alternated, ``--activator-requests`` pairs; added p50 (goal <= 2 ms),
and the activator's own CPU time per forwarded request.

The load generator is ``wrk`` when installed (C, one thread, pinned with taskset to the last
CPU), else a minimal asyncio HTTP/1.1 client in this process; the open loop and the activator
pairs always use the asyncio client. The 1-minute load average is printed on every row: on a
machine others are using, every wall-clock figure is inflated by their work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.serving_common import (
    INFER_PATH,
    PYTHON,
    ROOT,
    Connection,
    env,
    free_port,
    generator_cpu,
    http_get,
    infer_bodies,
    loadavg,
    make_model,
    median,
    percentile,
    process_cpu_seconds,
    run_async,
    run_wrk,
    spawn_server,
    stop,
    wait_ready,
    wrk_available,
)

DYNAMIC = ["--max-batch-size", "64", "--max-batch-delay-ms", "2"]
BATCH_ONE = ["--max-batch-size", "1", "--max-batch-delay-ms", "0"]


@dataclass(frozen=True)
class ModelShape:
    name: str
    description: str
    num_items: int
    n_embd: int
    n_layer: int
    n_head: int
    block_size: int
    history: int
    """Items per request row."""


MODELS = {
    "tiny": ModelShape("tiny", "tiny preset shape: inference about as costly as HTTP", 1000, 64, 2, 2, 32, 16),
    "realistic": ModelShape("realistic", "a recommender's size: 30k items, n_embd 256, 4 layers, block 64",
                            30_000, 256, 4, 4, 64, 32),
}


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


def saturate(port: int, pid: int, bodies: list[bytes], concurrency: int, duration: float,
             use_wrk: bool) -> dict[str, object]:
    """Closed-loop throughput, status codes, and the server's CPU seconds per request."""
    if use_wrk:
        run_wrk(port, bodies, concurrency, 1, generator_cpu())  # warm-up: connections, allocator, caches
        cpu_before = process_cpu_seconds(pid)
        result = run_wrk(port, bodies, concurrency, duration, generator_cpu())
        cpu = process_cpu_seconds(pid) - cpu_before
        requests = int(result["requests"])  # type: ignore[call-overload]
        return {"throughput": result["req_s"], "codes": result["codes"], "cpu_per_request": cpu / max(requests, 1)}
    cpu_before = process_cpu_seconds(pid)  # includes the closed loop's warm-up second
    throughput, codes = run_async(closed_loop(port, bodies, concurrency, duration))  # type: ignore[misc]
    cpu = process_cpu_seconds(pid) - cpu_before
    return {"throughput": throughput, "codes": codes,
            "cpu_per_request": cpu / max(throughput * (duration + min(1.0, duration / 5)), 1)}


def batch_totals(port: int) -> tuple[float, float]:
    """(rows, batches) the server has run so far, from its batch-size histogram."""
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith(("gpuplane_serving_batch_size_sum ", "gpuplane_serving_batch_size_count "))}
    return values.get("gpuplane_serving_batch_size_sum", 0.0), values.get("gpuplane_serving_batch_size_count", 0.0)


def compare(model_dir: Path, configs: dict[str, list[str]], bodies: list[bytes], concurrency: int,
            duration: float, use_wrk: bool, repeats: int) -> dict[str, dict[str, object]]:
    """Both servers up at once; their saturation windows interleaved ``repeats`` times (medians),
    then each one's latency at half its median saturation rate."""
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in configs}
    out: dict[str, dict[str, object]] = {}
    try:
        for name, extra in configs.items():
            port = free_port()
            procs[name] = (spawn_server(model_dir, port, extra), port)
        for _, port in procs.values():
            wait_ready(f"http://127.0.0.1:{port}")
        for _ in range(repeats):
            for name, (proc, port) in procs.items():
                load = loadavg()
                rows0, batches0 = batch_totals(port)
                result = saturate(port, proc.pid, bodies, concurrency, duration, use_wrk)
                rows1, batches1 = batch_totals(port)
                samples[name].append({**result, "load": load, "mean_batch": (rows1 - rows0) / max(batches1 - batches0, 1)})
        for name, (_, port) in procs.items():
            runs = samples[name]
            codes: Counter[int] = Counter()
            for r in runs:
                codes.update(r["codes"])  # type: ignore[arg-type]
            throughput = median([float(r["throughput"]) for r in runs])  # type: ignore[arg-type]
            latencies, half_codes = run_async(open_loop(port, bodies, throughput / 2, duration))  # type: ignore[misc]
            out[name] = {"throughput": throughput, "codes": codes,
                         "cpu_per_request": median([float(r["cpu_per_request"]) for r in runs]),  # type: ignore[arg-type]
                         "mean_batch": median([float(r["mean_batch"]) for r in runs]),  # type: ignore[arg-type]
                         "load": median([float(r["load"]) for r in runs]),  # type: ignore[arg-type]
                         "spread": (min(float(r["throughput"]) for r in runs),  # type: ignore[arg-type]
                                    max(float(r["throughput"]) for r in runs)),  # type: ignore[arg-type]
                         "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "half_codes": half_codes}
    finally:
        for proc, _ in procs.values():
            stop(proc)
    return out


def engine_rows_per_second(model_dir: Path, shape: ModelShape, batch: int, device: str, seconds: float = 2.0) -> float:
    from workloads.serving.model_runner import ModelRunner, PredictJob

    runner = ModelRunner(model_dir, device=device)
    runner.load()
    rng = random.Random(0)
    jobs = [PredictJob((tuple(rng.randint(1, shape.num_items) for _ in range(shape.history)),), 10)
            for _ in range(batch)]
    runner.predict(jobs)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < 3 * batch:
        runner.predict(jobs)
        done += batch
    return done / (time.perf_counter() - start)


async def alternate(direct_port: int, via_port: int, bodies: list[bytes], count: int) -> tuple[list[float], list[float]]:
    direct, via = Connection("127.0.0.1", direct_port), Connection("127.0.0.1", via_port)
    direct_s, via_s = [], []
    for i in range(count):
        body = bodies[i % len(bodies)]
        pair: dict[str, float] = {}
        for name, conn in (("direct", direct), ("via", via)) if i % 2 else (("via", via), ("direct", direct)):
            status, seconds = await conn.post(INFER_PATH, body)
            if status == 200:
                pair[name] = seconds
        if len(pair) == 2 and i >= count // 10:  # first 10% warm the connections
            direct_s.append(pair["direct"])
            via_s.append(pair["via"])
    await direct.close()
    await via.close()
    return direct_s, via_s


def activator_overhead(model_dir: Path, bodies: list[bytes], server_args: list[str], count: int) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "workloads.serving.activator", "--port", str(port), "--idle-seconds", "600",
         "--log-level", "warning", "--", PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir),
         "--port", "{port}", "--log-level", "warning", "--max-batch-delay-ms", "0", *server_args],
        cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while http_get(f"{url}/v2/health/ready", timeout=60)[0] != 200:  # cold start through the activator
            if time.monotonic() > deadline:
                raise TimeoutError("activator's server never became ready")
            time.sleep(0.05)
        upstream = json.loads(http_get(f"{url}/activator/status")[1])["port"]
        load = loadavg()
        cpu_before = process_cpu_seconds(proc.pid)
        direct_s, via_s = run_async(alternate(upstream, port, bodies, count))  # type: ignore[misc]
        activator_cpu = (process_cpu_seconds(proc.pid) - cpu_before) / count
    finally:
        stop(proc)
    return {"direct": median(direct_s), "via": median(via_s), "load": load, "pairs": len(via_s),
            "paired": statistics.median(v - d for d, v in zip(direct_s, via_s, strict=True)),
            "activator_cpu": activator_cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=64, help="closed-loop connections (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="server --torch-threads on CPU (default: %(default)s; 0 keeps torch's default)")
    p.add_argument("--models", default="tiny,realistic", help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto",
                   help="closed-loop generator (default: wrk when installed)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved saturation windows per configuration, medians printed (default: %(default)s)")
    p.add_argument("--activator-requests", type=int, default=2000, help="sequential pairs (default: %(default)s; 0 skips)")
    args = p.parse_args()
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.load_generator == "wrk" and not wrk_available():
        p.error("--load-generator wrk: wrk is not installed (apt-get install wrk)")
    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and wrk_available())
    threads = ["--torch-threads", str(args.torch_threads)] if args.torch_threads else []
    device = ["--device", args.device]
    generator = (f"wrk, 1 thread pinned to CPU {generator_cpu()}" if use_wrk
                 else "asyncio client in this process (install wrk for a cheaper one)")

    print(f"load average {loadavg():.1f} on {os.cpu_count()} CPUs at start (others' work inflates every wall figure)")
    print(f"device {args.device}, torch threads {args.torch_threads or 'default'}, {args.concurrency} connections, "
          f"{args.duration:.0f} s per window, {args.repeats} interleaved windows per configuration (medians, "
          f"min..max), closed loop: {generator}; open loop at half load: asyncio client in this process; "
          "each request: 1 row, k=10")
    if args.device == "cpu":
        import torch

        torch.set_num_threads(max(args.torch_threads, 1))
    with tempfile.TemporaryDirectory(prefix="gpuplane-throughput-") as tmp:
        tiny_dir = None
        for name in args.models.split(","):
            shape = MODELS[name]
            model_dir = Path(tmp) / name
            size = make_model(model_dir, num_items=shape.num_items, n_embd=shape.n_embd, n_layer=shape.n_layer,
                              n_head=shape.n_head, block_size=shape.block_size)
            tiny_dir = model_dir if name == "tiny" else tiny_dir
            bodies = infer_bodies(512, shape.num_items, seq_len=shape.history)
            print(f"[{name}] {shape.description}: {size / 1e6:.1f} MB, histories of {shape.history} items")
            configs = {"dynamic batching (max 64, 2 ms)": [*DYNAMIC, *threads, *device],
                       "batch size 1": [*BATCH_ONE, *threads, *device]}
            results = compare(model_dir, configs, bodies, args.concurrency, args.duration, use_wrk, args.repeats)
            for label, r in results.items():
                low, high = r["spread"]  # type: ignore[misc]
                print(f"  [{name}] {label:32s} {r['throughput']:7.0f} req/s at saturation ({low:.0f}..{high:.0f}), "
                      f"server CPU {r['cpu_per_request'] * 1e3:.2f} ms/request, mean batch {r['mean_batch']:.1f}, "
                      f"load {r['load']:.1f}, codes {dict(r['codes'])};  at half load: p50 {r['p50'] * 1e3:.1f} ms, "
                      f"p99 {r['p99'] * 1e3:.1f} ms (codes {dict(r['half_codes'])})")
            dyn, one = results.values()
            print(f"  [{name}] ratio dynamic / batch 1 (goal >= 4): throughput "
                  f"{dyn['throughput'] / one['throughput']:.2f}x;  "  # type: ignore[operator]
                  f"server CPU per request {one['cpu_per_request'] / dyn['cpu_per_request']:.2f}x less")  # type: ignore[operator]
            single = engine_rows_per_second(model_dir, shape, 1, args.device)
            batched = engine_rows_per_second(model_dir, shape, 64, args.device)
            print(f"  [{name}] model alone, in process: batch 1 {single:.0f} rows/s, batch 64 {batched:.0f} rows/s, "
                  f"ratio {batched / single:.1f}x")

        if args.activator_requests and tiny_dir is not None:
            bodies = infer_bodies(512, MODELS["tiny"].num_items, seq_len=MODELS["tiny"].history)
            a = activator_overhead(tiny_dir, bodies, threads + device, args.activator_requests)
            print(f"[tiny] activator on a warm server, {a['pairs']:.0f} sequential pairs, load {a['load']:.1f}, p50: "
                  f"direct {a['direct'] * 1e3:.2f} ms, through activator {a['via'] * 1e3:.2f} ms, "
                  f"added {(a['via'] - a['direct']) * 1e3:.2f} ms (goal <= 2 ms; median of paired differences "
                  f"{a['paired'] * 1e3:.2f} ms); activator CPU {a['activator_cpu'] * 1e3:.3f} ms/request")


if __name__ == "__main__":
    main()
