"""Benchmark: tokens/s of the full training harness against a bare PyTorch loop, side by side.

Same model (tiny preset unless --preset), same batch size, same optimizer, same device. The
harness is ``workloads.training.train.run`` (sampler, per-step stop-flag agreement, LR schedule,
logging, no checkpoints); the bare loop trains on one fixed batch with nothing else. Runs are
interleaved and repeated; the script prints medians and the overhead. Goal: overhead <= 5%.
No pass/fail: it prints figures.

    python benchmarks/training_overhead.py [--preset tiny] [--steps 100] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bare_loop(cfg, data, steps: int, batch_size: int) -> float:
    """Tokens/s of the plainest loop: fixed batch, forward, backward, clip, AdamW."""
    import torch
    from torch.nn import functional as F

    from workloads.model import NextItemModel
    from workloads.training.train import configure_optimizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = NextItemModel(replace(cfg.model, num_items=data.num_items)).to(device)
    opt = configure_optimizer(model, cfg.optim, device)
    batch = data.windows[:batch_size].to(device)
    x, y = batch[:, :-1], batch[:, 1:].clone()
    y[x == 0] = -1
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up, as the harness excludes its first step
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size * cfg.model.block_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both loops (default 1)")
    args = ap.parse_args()

    from workloads.data.generate import GenerateConfig, generate
    from workloads.training.config import parse_args
    from workloads.training.data import load_dataset
    from workloads.training.train import run

    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, GenerateConfig(users=2000, items=1000, days=7, seed=0))
        cfg = parse_args(["--preset", args.preset, "--data", tmp, "--max-steps", str(args.steps + 1),
                          "--batch-size", str(args.batch_size), "--log-every", str(10 * args.steps),
                          "--threads", str(args.threads)])
        data = load_dataset(tmp, cfg.model.block_size, cfg.train.eval_fraction, cfg.train.eval_positions)
        harness, bare = [], []
        for _ in range(args.repeats):
            result = run(cfg, log=lambda m: None)
            harness.append(result.tokens_per_second)
            bare.append(bare_loop(cfg, data, args.steps, args.batch_size))

    h, b = statistics.median(harness), statistics.median(bare)
    overhead = 1 - h / b
    paired = 1 - statistics.median(x / y for x, y in zip(harness, bare, strict=True))
    print(f"== training harness vs bare loop: preset {args.preset}, batch {args.batch_size}, "
          f"{args.steps} steps, median of {args.repeats}")
    print(f"{'':<10}{'tokens/s':>12}  runs")
    print(f"{'harness':<10}{h:>12,.0f}  {', '.join(f'{v:,.0f}' for v in harness)}")
    print(f"{'bare':<10}{b:>12,.0f}  {', '.join(f'{v:,.0f}' for v in bare)}")
    print(f"overhead {100 * overhead:.1f}% of medians, {100 * paired:.1f}% median of back-to-back pairs "
          "(goal <= 5%)")
    print(json.dumps({"preset": args.preset, "harness_tokens_per_s": h, "bare_tokens_per_s": b,
                      "overhead": overhead, "overhead_paired": paired, "goal_overhead_max": 0.05}))


if __name__ == "__main__":
    main()
