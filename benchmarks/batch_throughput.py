"""Batch inference against the model server's dynamic batching on the same model and the same users, and
the cost of the exactly-once manifest.

    python -m benchmarks.batch_throughput [--users 3000] [--model tiny] [--repeats 3] [--concurrency 64]
        [--objects 40] [--device cpu]

Same model, same machine, one run, alternated ``--repeats`` times (medians, min..max):

1. batch: one batch task (``workloads.batch.task.run_task``, 64 items per model call, torch on
   one thread) over the event log's users, end to end: plan and claims, model load, Parquet
   read, inference, every chunk committed (fsync'd write + rename), the shard assembled;
2. server: the same users' histories (one row per request, k=10, as the batch computes) sent
   over ``--concurrency`` keep-alive connections to ``python -m workloads.serving`` with
   dynamic batching (max batch 64, 2 ms delay, one torch thread), already warm;

items/s of each and their ratio. 3. The manifest: the event log split into ``--objects``
Parquet objects, one batch task over all of them; the wall time spent in the manifest (plan,
per-object claims, done markers; ``TaskResult.manifest_seconds``) per item, and items/s with and
without it. Nothing here passes or fails; the 1-minute load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.serving_common import (
    INFER_PATH,
    Connection,
    free_port,
    loadavg,
    make_model,
    median,
    run_async,
    spawn_server,
    stop,
    wait_ready,
)

MODELS = {  # the serving benchmark's two shapes (benchmarks/serving_throughput.py)
    "tiny": {"num_items": 1000, "n_embd": 64, "n_layer": 2, "n_head": 2, "block_size": 32},
    "realistic": {"num_items": 30_000, "n_embd": 256, "n_layer": 4, "n_head": 4, "block_size": 64},
}
SERVER_ARGS = ["--max-batch-size", "64", "--max-batch-delay-ms", "2", "--torch-threads", "1"]


def batch_run(data: Path, model_dir: Path, output: Path, run_id: str, device: str) -> tuple[int, float, float]:
    """(items, wall seconds, manifest seconds) of one task over everything under ``data``."""
    from workloads.batch.task import TaskArgs, run_task
    from workloads.batch.taskenv import TaskIdentity

    args = TaskArgs(data=str(data), output=str(output), model_dir=model_dir, model_version="bench", chunk_items=64,
                    device=device)
    t = time.perf_counter()
    result = run_task(args, TaskIdentity(0, 1, run_id, "flags"), log=lambda _: None)
    seconds = time.perf_counter() - t
    if result.code != 0:
        raise RuntimeError(f"batch task exited {result.code}")
    return result.items, seconds, result.manifest_seconds


def request_bodies(data: Path, block_size: int) -> list[bytes]:
    """One OIP v2 request per user: the history the batch task would score."""
    from workloads.batch.dataset import count_items, list_objects, read_items

    bodies = []
    for obj in list_objects(str(data)):
        for item in read_items(obj.uri, block_size, 0, count_items(obj.uri)):
            bodies.append(json.dumps({"inputs": [
                {"name": "item_ids", "datatype": "INT64", "shape": [1, len(item.history)], "data": [list(item.history)]},
                {"name": "k", "datatype": "INT64", "shape": [1], "data": [10]}]}).encode())
    return bodies


async def send_all(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, dict[int, int]]:
    """Seconds to get an answer to every body over ``concurrency`` connections, and the status codes."""
    codes: dict[int, int] = {}
    queue = list(reversed(bodies))

    async def worker() -> None:
        conn = Connection("127.0.0.1", port)
        while queue:
            status, _ = await conn.post(INFER_PATH, queue.pop())
            codes[status] = codes.get(status, 0) + 1
        await conn.close()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t, codes


def split_objects(data: Path, out: Path, objects: int) -> None:
    """The event log as ``objects`` Parquet files, users split by id range."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(data / "events.parquet")
    users = table["user_id"]
    top = pc.max(users).as_py() + 1
    out.mkdir(parents=True)
    for i in range(objects):
        lo, hi = top * i // objects, top * (i + 1) // objects
        part = table.filter(pc.and_(pc.greater_equal(users, lo), pc.less(users, hi)))
        pq.write_table(part, out / f"part-{i:04d}.parquet")


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}..{max(values):.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=3000, help="users in the event log = items of the batch (default: %(default)s)")
    p.add_argument("--items", type=int, default=0, help="catalogue size (default: the model's, 1000 or 30000)")
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--model", choices=sorted(MODELS), default="tiny")
    p.add_argument("--repeats", type=int, default=3, help="alternated measurements of each (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=64, help="connections to the server (default: %(default)s)")
    p.add_argument("--objects", type=int, default=40, help="objects for the manifest measurement (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    for name in ("users", "days", "repeats", "concurrency", "objects"):
        if getattr(args, name) < 1:
            p.error(f"--{name} {getattr(args, name)}: must be at least 1")
    if args.items < 0:
        p.error(f"--items {args.items}: must be 0 (the model's catalogue) or more")

    import torch

    from workloads.data.generate import GenerateConfig, generate

    torch.set_num_threads(1)
    shape = {**MODELS[args.model], **({"num_items": args.items} if args.items > 0 else {})}
    print(f"load average {loadavg():.1f} on {os.cpu_count()} CPUs at start (others' work inflates every wall figure)")
    with tempfile.TemporaryDirectory(prefix="gpuplane-batch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "data", GenerateConfig(users=args.users, items=shape["num_items"], days=args.days, seed=0))
        size = make_model(tmp / "model", **shape)
        bodies = request_bodies(tmp / "data", shape["block_size"])
        print(f"[{args.model}] {size / 1e6:.1f} MB of weights, {len(bodies)} users with events (the items), "
              f"device {args.device}, torch 1 thread; batch: 64 items per model call, every chunk committed; "
              f"server: dynamic batching (max 64, 2 ms), {args.concurrency} connections, 1 row per request")
        port = free_port()
        server = spawn_server(tmp / "model", port, [*SERVER_ARGS, "--device", args.device])
        batch_rates, server_rates, loads = [], [], []
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            run_async(send_all(port, bodies[:256], args.concurrency))  # warm the connections and the server
            for r in range(args.repeats):
                loads.append(loadavg())
                items, seconds, _ = batch_run(tmp / "data", tmp / "model", tmp / f"out-{r}", f"r{r}", args.device)
                batch_rates.append(items / seconds)
                elapsed, codes = run_async(send_all(port, bodies, args.concurrency))  # type: ignore[misc]
                if set(codes) != {200}:
                    raise RuntimeError(f"the server answered {codes}")
                server_rates.append(len(bodies) / elapsed)
        finally:
            stop(server)
        b, s = median(batch_rates), median(server_rates)
        print(f"  [{args.model}] batch task          {b:8.0f} items/s ({spread(batch_rates)}), end to end")
        print(f"  [{args.model}] server, dyn. batch  {s:8.0f} items/s ({spread(server_rates)}), load {median(loads):.1f}")
        print(f"  [{args.model}] ratio batch / server: {b / s:.2f}x")

        split_objects(tmp / "data", tmp / "objects", args.objects)
        with_rates, without_rates, per_item = [], [], []
        for r in range(args.repeats):
            items, seconds, manifest = batch_run(tmp / "objects", tmp / "model", tmp / f"m-{r}", f"m{r}", args.device)
            with_rates.append(items / seconds)
            without_rates.append(items / (seconds - manifest))
            per_item.append(manifest / items)
        w, wo = median(with_rates), median(without_rates)
        print(f"  [{args.model}] exactly-once manifest over {args.objects} objects ({items} items): "
              f"{median(per_item) * 1e6:.1f} us per item ({median(per_item) * items / args.objects * 1e3:.2f} ms per object); items/s with {w:.0f}, without {wo:.0f} "
              f"({100 * (wo - w) / wo:.1f}% of the run), load {loadavg():.1f}")


if __name__ == "__main__":
    main()
