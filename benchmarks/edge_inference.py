"""Benchmark: per-request latency and throughput on one CPU core, PyTorch vs ONNX Runtime fp32 vs int8.

    python -m benchmarks.edge_inference [--requests 500] [--repeats 5] [--models tiny,realistic]
        [--model-dir DIR]

What an edge site pays per request (one history, batch 1) for the same model in three runtimes,
measured side by side in one process pinned to one CPU (``sched_setaffinity``), with
``torch.set_num_threads(1)`` and onnxruntime ``intra_op_num_threads=1``:

- ``pytorch``: ``NextItemModel.recommend`` (eager, ``torch.no_grad``), the cloud model;
- ``onnx-fp32``: the ``--format onnx`` export under onnxruntime, top-k taken from its scores;
- ``onnx-int8``: the same after dynamic int8 quantization (``--quantize int8``).

Each repeat runs every runtime on the same ``--requests`` histories (random lengths, left-padded),
runtimes in turn, after a warm-up; per repeat p50 and p99 of the per-request time, requests/s
(requests over their summed time) and CPU ms per request (this thread's CPU time: on a shared
machine the wall figures follow the CPU share the scheduler grants, the CPU figure much less). Printed: medians over repeats, ratios to PyTorch, model bytes
(safetensors, ONNX fp32, ONNX int8) and the int8 model's top-10 agreement with PyTorch on those
histories (on a random model it is a lower bound: a trained model's scores are farther apart).
Models: ``tiny`` (the tiny preset: 1000 items, n_embd 64, 2 layers, block 32) and ``realistic``
(30 000 items, n_embd 256, 4 layers, block 64), randomly initialised, or a trained export with
``--model-dir``. The 1-minute load average is printed: others' work inflates every wall figure.
No pass/fail: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving_common import loadavg, make_model  # noqa: E402

SHAPES = {
    "tiny": {"num_items": 1000, "n_embd": 64, "n_layer": 2, "n_head": 2, "block_size": 32},
    "realistic": {"num_items": 30_000, "n_embd": 256, "n_layer": 4, "n_head": 4, "block_size": 64},
}


def one_core() -> str:
    """Pin this process to one CPU (the last it may use); return what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def histories(n: int, block: int, num_items: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, block), dtype=np.int64)  # (n, T), left-padded
    for i, length in enumerate(rng.integers(1, block + 1, n)):
        x[i, block - length:] = rng.integers(1, num_items + 1, length)
    return x


def time_requests(call: Callable[[np.ndarray], object], x: np.ndarray) -> tuple[list[float], float]:
    """Wall ms of each request, and CPU ms per request of this thread (less sensitive to others' load)."""
    out = []
    cpu = time.thread_time()
    for i in range(x.shape[0]):
        row = x[i : i + 1]  # (1, T): one request
        t = time.perf_counter()
        call(row)
        out.append((time.perf_counter() - t) * 1000)
    return out, (time.thread_time() - cpu) * 1000 / x.shape[0]


def bench_model(name: str, model_dir: Path, work: Path, requests: int, repeats: int) -> dict[str, object]:
    import torch

    from workloads.training.onnx_export import (
        INPUT_NAME,
        OUTPUT_NAME,
        agreement,
        export_onnx,
        load_reference,
        onnx_top_k,
        reference_top_k,
        session,
        top_k,
    )

    fp32, int8 = export_onnx(model_dir, work / "onnx", quantize="int8")
    model = load_reference(model_dir)
    cfg = model.cfg
    x = histories(requests, cfg.block_size, cfg.num_items)
    sessions = {"onnx-fp32": session(work / "onnx" / fp32.file), "onnx-int8": session(work / "onnx" / int8.file)}

    def torch_call(row: np.ndarray) -> object:
        return model.recommend(torch.from_numpy(row), k=10)

    def ort_call(sess: object) -> Callable[[np.ndarray], object]:
        return lambda row: top_k(sess.run([OUTPUT_NAME], {INPUT_NAME: row})[0], 10)  # type: ignore[attr-defined]

    runtimes = {"pytorch": torch_call, **{k: ort_call(s) for k, s in sessions.items()}}
    for call in runtimes.values():
        time_requests(call, x[: min(50, requests)])  # warm-up
    per: dict[str, dict[str, list[float]]] = {k: {"p50": [], "p99": [], "rps": [], "cpu_ms": []} for k in runtimes}
    for _ in range(repeats):
        for rt, call in runtimes.items():
            ms, cpu_ms = time_requests(call, x)
            per[rt]["p50"].append(float(np.percentile(ms, 50)))
            per[rt]["p99"].append(float(np.percentile(ms, 99)))
            per[rt]["rps"].append(1000 * len(ms) / sum(ms))
            per[rt]["cpu_ms"].append(cpu_ms)
    med = {rt: {k: statistics.median(v) for k, v in figs.items()} for rt, figs in per.items()}
    want = reference_top_k(model, x, 10)
    agree = {rt: agreement(onnx_top_k(s, x, 10), want) for rt, s in sessions.items()}
    sizes = {"pytorch": (model_dir / "model.safetensors").stat().st_size, "onnx-fp32": fp32.size_bytes,
             "onnx-int8": int8.size_bytes}
    return {"model": name, "config": {k: getattr(cfg, k) for k in SHAPES["tiny"]}, "requests": requests,
            "repeats": repeats, "median": med, "bytes": sizes, "top10_agreement_with_pytorch": agree}


def print_result(r: dict) -> None:
    med, sizes, agree = r["median"], r["bytes"], r["top10_agreement_with_pytorch"]
    base = med["pytorch"]
    print(f"-- {r['model']} {r['config']}: {r['requests']} requests x {r['repeats']} repeats, batch 1, medians")
    print(f"{'runtime':<11}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'cpu ms':>9}{'x p50':>7}{'x req/s':>9}"
          f"{'x cpu':>7}{'bytes':>13}{'top-10 agr':>12}")
    for rt, m in med.items():
        print(f"{rt:<11}{m['p50']:>9.3f}{m['p99']:>9.3f}{m['rps']:>9.0f}{m['cpu_ms']:>9.3f}{base['p50'] / m['p50']:>7.2f}"
              f"{m['rps'] / base['rps']:>9.2f}{base['cpu_ms'] / m['cpu_ms']:>7.2f}{sizes[rt]:>13,}{agree.get(rt, 1.0):>12.4f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.edge_inference", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=500, help="timed requests per runtime per repeat (default 500)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; medians are printed (default 5)")
    p.add_argument("--models", default="tiny", help=f"comma-separated shapes: {', '.join(SHAPES)} (default tiny)")
    p.add_argument("--model-dir", type=Path, help="a trained export instead of the random shapes")
    a = p.parse_args(argv)
    unknown = [m for m in a.models.split(",") if m not in SHAPES]
    if unknown or a.requests < 1 or a.repeats < 1:
        p.error(f"--models: unknown {unknown} (use {', '.join(SHAPES)}); --requests and --repeats must be ≥ 1")

    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pinned = one_core()
    print(f"== edge inference on one CPU core ({pinned}; torch threads 1, onnxruntime intra-op 1), "
          f"load average {loadavg():.2f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        targets = [("trained", a.model_dir)] if a.model_dir else []
        for name in ([] if a.model_dir else a.models.split(",")):
            d = Path(tmp) / name / "model"
            make_model(d, **SHAPES[name])
            targets.append((name, d))
        for name, d in targets:
            work = Path(tmp) / f"{name}-work"
            results.append(bench_model(name, d, work, a.requests, a.repeats))
            print_result(results[-1])
    print(json.dumps({"benchmark": "edge_inference", "load_average": loadavg(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
