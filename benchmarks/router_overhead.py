"""The two-tier router's added latency over direct forwarding, beside the activator's, in one run.

    python -m benchmarks.router_overhead [--requests 2000] [--model-dir DIR]

One warm model server (the "tiny" preset's shape, batching off so each request is its own batch)
and, in front of it, the router (``--mode overflow``, threshold above anything sequential
requests reach, so every request takes the steady tier) and the activator (as
benchmarks/serving_throughput.py measures it). Sequential keep-alive requests go in rotation
direct / router / activator (order rotated each round), the first 10% discarded as warm-up;
printed: the p50 and p99 of each path, the added p50 of the router and of the activator over
direct (goal for the router: <= 1 ms), the median of paired differences, and each proxy's own
CPU time per forwarded request (from /proc). The 1-minute load average is printed: on a shared
machine every wall figure is inflated by others' work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
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
    loadavg,
    make_model,
    median,
    percentile,
    process_cpu_seconds,
    run_async,
    spawn_server,
    stop,
    wait_ready,
)

NUM_ITEMS = 1000


async def rotate(ports: dict[str, int], bodies: list[bytes], count: int) -> dict[str, list[float]]:
    conns = {name: Connection("127.0.0.1", port) for name, port in ports.items()}
    names = list(ports)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(count):
        body = bodies[i % len(bodies)]
        order = names[i % len(names):] + names[:i % len(names)]
        round_: dict[str, float] = {}
        for name in order:
            status, seconds = await conns[name].post(INFER_PATH, body)
            if status == 200:
                round_[name] = seconds
        if len(round_) == len(names) and i >= count // 10:
            for name in names:
                out[name].append(round_[name])
    for conn in conns.values():
        await conn.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="rounds of three requests (default: %(default)s)")
    p.add_argument("--model-dir", type=Path, help="an export to serve (default: a generated tiny one)")
    args = p.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="gpuplane-router-bench-") as tmp:
        model_dir = args.model_dir or Path(tmp) / "model"
        if args.model_dir is None:
            make_model(model_dir, num_items=NUM_ITEMS, n_embd=64, n_layer=2, n_head=2, block_size=32)
        server_args = ["--max-batch-delay-ms", "0", "--torch-threads", "1"]
        try:
            server_port, router_port, activator_port = free_port(), free_port(), free_port()
            server = spawn_server(model_dir, server_port, server_args)
            procs.append(server)
            wait_ready(f"http://127.0.0.1:{server_port}")
            router = subprocess.Popen(
                [PYTHON, "-m", "workloads.serving.router", "--port", str(router_port), "--log-level", "warning",
                 "--backend", f"steady=http://127.0.0.1:{server_port}",
                 "--backend", f"burst=http://127.0.0.1:{server_port}", "--mode", "overflow",
                 "--overflow-threshold", "1000"], cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT)
            procs.append(router)
            activator = subprocess.Popen(
                [PYTHON, "-m", "workloads.serving.activator", "--port", str(activator_port), "--idle-seconds", "600",
                 "--log-level", "warning", "--", PYTHON, "-m", "workloads.serving", "--model-dir", str(model_dir),
                 "--port", "{port}", "--log-level", "warning", *server_args],
                cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            procs.append(activator)
            deadline = time.monotonic() + 120
            while http_get(f"http://127.0.0.1:{router_port}/router/status")[0] != 200 or \
                    http_get(f"http://127.0.0.1:{activator_port}/v2/health/ready", timeout=60)[0] != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError("router or activator not ready")
                time.sleep(0.05)
            # the activator forwards to a server of its own; "direct" is measured against each proxy's own server
            activator_server = json.loads(http_get(f"http://127.0.0.1:{activator_port}/activator/status")[1])["port"]
            bodies = infer_bodies(256, NUM_ITEMS, seq_len=16)
            load = loadavg()
            cpu = {"router": process_cpu_seconds(router.pid), "activator": process_cpu_seconds(activator.pid)}
            lat = run_async(rotate({"direct": server_port, "router": router_port, "direct_a": activator_server,
                                    "activator": activator_port}, bodies, args.requests))
            cpu = {k: (process_cpu_seconds(pr.pid) - cpu[k]) / args.requests
                   for k, pr in (("router", router), ("activator", activator))}
        finally:
            for proc in reversed(procs):
                stop(proc)
    assert isinstance(lat, dict)
    rows = len(lat["direct"])
    print(f"router overhead: {rows} rounds of sequential requests (tiny model, batching off), load {load:.1f}")
    for name in ("direct", "router", "direct_a", "activator"):
        print(f"  {name:10s} p50 {median(lat[name]) * 1e3:7.3f} ms   p99 {percentile(lat[name], 99) * 1e3:7.3f} ms")
    for proxy, base in (("router", "direct"), ("activator", "direct_a")):
        added = median(lat[proxy]) - median(lat[base])
        paired = statistics.median(v - d for d, v in zip(lat[base], lat[proxy], strict=True))
        goal = " (goal <= 1 ms)" if proxy == "router" else ""
        print(f"  {proxy} added p50: {added * 1e3:.3f} ms{goal}; median of paired differences {paired * 1e3:.3f} ms; "
              f"{proxy} CPU {cpu[proxy] * 1e3:.3f} ms/request")
    ratio = (median(lat["router"]) - median(lat["direct"])) / max(1e-9, median(lat["activator"]) - median(lat["direct_a"]))
    print(f"  router added / activator added: {ratio:.2f}x")


if __name__ == "__main__":
    main()
