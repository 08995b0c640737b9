"""Cold start of the model server against its floor, and (on a GPU) weight-load bandwidth.

    python -m benchmarks.serving_coldstart [--model-mb 80] [--repeats 5] [--device cpu] [--gpu-bandwidth]

Measures, side by side, medians over ``--repeats`` interleaved runs (page cache warm for both):

- server: spawn ``python -m workloads.serving`` → first 200 from POST /infer, with the phases
  the server exports (interpreter, server_start, imports, weights, warmup, total);
- floor: spawn a process that only imports the same libraries (torch, safetensors, starlette,
  uvicorn, prometheus_client) and reads the same weight bytes, → its "done" line.
The goal is server ≤ 1.5 × floor. With ``--gpu-bandwidth`` (default: when CUDA is available)
it also compares safetensors weight loading straight to the GPU with the host-to-device copy
bandwidth measured on the same machine (goal ≥ 0.5 of pinned). Prints figures; no pass/fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.serving_common import (
    INFER_PATH,
    PYTHON,
    ROOT,
    env,
    free_port,
    http_get,
    infer_bodies,
    make_model,
    median,
    metric_values,
    spawn_server,
    stop,
)

FLOOR = """
import sys, time
t0 = time.perf_counter()
import torch, safetensors.torch, starlette.applications, uvicorn, prometheus_client
t1 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    data = f.read()
t2 = time.perf_counter()
print(f"done {t1 - t0:.4f} {t2 - t1:.4f} {len(data)}", flush=True)
"""


def model_shape_for(target_mb: float, n_embd: int = 256, n_layer: int = 4) -> int:
    """num_items giving about ``target_mb`` of fp32 weights (item embedding dominates)."""
    block_params = n_layer * 12 * n_embd * n_embd
    return max(1000, int((target_mb * 1e6 / 4 - block_params) / n_embd))


def run_floor(weights: Path) -> tuple[float, float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-c", FLOOR, str(weights)], stdout=subprocess.PIPE, cwd=ROOT, env=env())
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    elapsed = time.perf_counter() - started
    proc.wait()
    return elapsed, float(line[1]), float(line[2])


def run_server(model_dir: Path, extra: list[str], body: bytes) -> tuple[float, dict[str, float]]:
    import urllib.error
    import urllib.request

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = spawn_server(model_dir, port, extra)
    try:
        while True:
            request = urllib.request.Request(f"{url}{INFER_PATH}", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass  # not listening yet, or 503 while loading
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        phases = metric_values(http_get(f"{url}/metrics")[1], "gpuplane_serving_cold_start_phase_seconds")
        return elapsed, phases
    finally:
        stop(proc)


def gpu_weight_load_bandwidth(weights: Path, repeats: int = 5) -> dict[str, float] | None:
    """Weight-load bandwidth straight to the GPU vs measured host-to-device bandwidth (GB/s)."""
    import torch
    from safetensors.torch import load_file

    if not torch.cuda.is_available():
        return None
    size = weights.stat().st_size
    torch.cuda.init()
    torch.empty(1, device="cuda")

    def timed(fn: object) -> float:
        samples = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            result = fn()  # type: ignore[operator]
            torch.cuda.synchronize()
            samples.append(time.perf_counter() - t0)
            del result
        return median(samples)

    host_pinned = torch.empty(size, dtype=torch.uint8).pin_memory()
    host_pageable = torch.empty(size, dtype=torch.uint8)
    pinned_s = timed(lambda: host_pinned.to("cuda", non_blocking=True))
    pageable_s = timed(lambda: host_pageable.to("cuda"))
    load_s = timed(lambda: load_file(str(weights), device="cuda"))
    return {"bytes": size, "pinned_gbps": size / pinned_s / 1e9, "pageable_gbps": size / pageable_s / 1e9,
            "load_gbps": size / load_s / 1e9}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-mb", type=float, default=80.0, help="approximate weight size (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu", help="server --device (default: %(default)s)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="server --torch-threads (default: %(default)s; 0 keeps torch's default, one per core)")
    p.add_argument("--gpu-bandwidth", action=argparse.BooleanOptionalAction, default=None,
                   help="measure weight-load vs host-to-device bandwidth (default: when CUDA is available)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpuplane-coldstart-") as tmp:
        model_dir = Path(tmp) / "model"
        num_items = model_shape_for(args.model_mb)
        size = make_model(model_dir, num_items=num_items, n_embd=256, n_layer=4, n_head=4, block_size=32)
        weights = model_dir / "model.safetensors"
        body = infer_bodies(1, num_items)[0]
        server_args = ["--device", args.device, *(["--torch-threads", str(args.torch_threads)] if args.torch_threads else [])]
        run_floor(weights)  # page cache and import caches warm for both sides
        floors, floor_imports, floor_reads, servers, phases = [], [], [], [], []
        for _ in range(args.repeats):
            total, imports, read = run_floor(weights)
            floors.append(total)
            floor_imports.append(imports)
            floor_reads.append(read)
            elapsed, server_phases = run_server(model_dir, server_args, body)
            servers.append(elapsed)
            phases.append(server_phases)

        print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' work inflates every figure)")
        print(f"cold start: model {size / 1e6:.1f} MB (num_items={num_items}, n_embd=256, n_layer=4), "
              f"device {args.device}, torch threads {args.torch_threads or 'default'}, {args.repeats} interleaved runs, "
              "medians")
        print(f"  {'floor: imports + read weights, spawn -> done':48s} {median(floors):7.3f} s"
              f"   (imports {median(floor_imports):.3f}, read {median(floor_reads):.3f})")
        print(f"  {'server: spawn -> first 200 from /infer':48s} {median(servers):7.3f} s")
        print(f"  {'ratio server / floor (goal <= 1.5)':48s} {median(servers) / median(floors):7.2f}")
        names = ["interpreter", "server_start", "imports", "weights", "warmup", "total"]
        print("  server phases: " + "  ".join(f"{n} {median([ph.get(n, float('nan')) for ph in phases]):.3f}"
                                              for n in names))

    if args.gpu_bandwidth is not False:
        import torch

        if not torch.cuda.is_available():
            print("gpu weight-load bandwidth: skipped (CUDA not available)")
            return
        with tempfile.TemporaryDirectory(prefix="gpuplane-gpubw-") as tmp:
            weights = Path(tmp) / "model"  # large enough that per-call overheads do not dominate
            make_model(weights, num_items=model_shape_for(max(args.model_mb, 500)), n_embd=256, n_layer=4,
                       n_head=4, block_size=32)
            bw = gpu_weight_load_bandwidth(weights / "model.safetensors")
        if bw is not None:
            print(f"gpu weight-load bandwidth ({bw['bytes'] / 1e6:.0f} MB, medians): "
                  f"safetensors load_file(device='cuda') {bw['load_gbps']:.2f} GB/s, "
                  f"host-to-device pinned {bw['pinned_gbps']:.2f} GB/s, pageable {bw['pageable_gbps']:.2f} GB/s; "
                  f"ratio to pinned {bw['load_gbps'] / bw['pinned_gbps']:.2f} (goal >= 0.5), "
                  f"to pageable {bw['load_gbps'] / bw['pageable_gbps']:.2f}")


if __name__ == "__main__":
    main()
