"""One prepared device check: MFU of the `small` preset with bf16 + torch.compile on one GPU.

On a CUDA machine it trains `small` (GPT-2-124M class, 50k items, 256-token histories) through
the full harness (``workloads.training.train.run``: sampler, stop-flag agreement, logging) with
bf16 autocast and torch.compile, then sends itself SIGTERM so the same run also measures the
preemption notice to a durable checkpoint of the 1.5 GB state. MFU is against the detected bf16
peak (989 TFLOP/s on H200; goal >= 40%) or --peak-tflops. The first step (compilation) is
excluded from tokens/s.

Without CUDA it runs the same script with `tiny`, fp32, no compile, and MFU "n/a", so the script
itself is tested on CPU. It prints one JSON object. Runtime target: under ~4 minutes on a GPU.

    python benchmarks/gpu_h200.py [--steps 60] [--batch-size 64] [--preset small] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    t_start = time.perf_counter()
    import torch

    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small" if cuda else "tiny")
    ap.add_argument("--steps", type=int, default=60 if cuda else 30, help="steps before the SIGTERM")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float)
    args = ap.parse_args()

    from workloads.data.generate import GenerateConfig, generate
    from workloads.training.config import parse_args
    from workloads.training.train import run

    items = 50_000 if args.preset == "small" else 1000
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        generate(f"{tmp}/data", GenerateConfig(users=4000, items=items, days=7, seed=0))
        argv = ["--preset", args.preset, "--data", f"{tmp}/data", "--checkpoint-dir", f"{tmp}/ckpt",
                "--batch-size", str(args.batch_size), "--max-steps", str(args.steps + 1000),
                "--log-every", "10", "--checkpoint-every", "0"]
        if cuda and not args.no_compile:
            argv.append("--compile")
        if args.peak_tflops:
            argv += ["--peak-tflops", str(args.peak_tflops)]
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            print(line, file=sys.stderr, flush=True)
            if line.startswith(f"step {args.steps}/"):
                os.kill(os.getpid(), signal.SIGTERM)  # the preemption notice

        cfg = parse_args(argv)
        result = run(cfg, log=log)
        ckpt_bytes = sum(p.stat().st_size for p in Path(f"{tmp}/ckpt").rglob("*") if p.is_file())

    report = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "preset": args.preset,
        "compile": cuda and not args.no_compile,
        "dtype": "bf16" if cuda else "fp32",
        "batch_size": args.batch_size,
        "tokens_per_step": args.batch_size * cfg.model.block_size,
        "steps": result.step,
        "tokens_per_s": result.tokens_per_second,
        "flops_per_token": replace(cfg.model, num_items=items).flops_per_token(),
        "mfu": result.mfu if result.mfu is not None else "n/a",
        "mfu_goal": 0.40 if cuda else "n/a",
        "exit_code": result.exit_code,
        "notice_to_durable_checkpoint_s": result.stop_to_checkpoint_seconds,
        "checkpoint_bytes": ckpt_bytes,
        "total_runtime_s": time.perf_counter() - t_start,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
