"""Benchmark: checkpoint throughput, training stall (async vs sync) and notice-to-durable time.

Prints, side by side in one run (medians of --repeats):

1. Save bandwidth: a sharded, atomically committed checkpoint (``Checkpointer.save``: DCP write,
   fsync, rename, marker) of a model + AdamW state, against a plain sequential write + fsync of
   the same number of bytes to one file. Goal: ratio >= 0.5.
2. Training stall: how long the training loop is blocked by a synchronous save versus by an
   asynchronous one (``dcp.async_save``: copy to CPU memory, then write in a thread). Goal:
   async / sync <= 0.2.
3. Notice to durable checkpoint: a real training run (tiny and small presets, on this machine's
   device) gets SIGTERM right after a step; the time from the signal to the committed
   checkpoint. Goal: well inside 30 s (GCP's spot notice). A notice that lands mid-step waits
   for the step to end as well, so the step time is printed beside it.

    python benchmarks/training_checkpoint.py [--repeats 3] [--skip-small]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MID = dict(num_items=20_000, block_size=64, n_layer=4, n_head=8, n_embd=512)
"""A ~23M-parameter model: large enough to measure bandwidth, small enough for a laptop."""


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain_write(nbytes: int, path: Path) -> float:
    """Seconds to write ``nbytes`` sequentially to one file and fsync it."""
    chunk = os.urandom(1 << 20) * 64  # 64 MiB
    t = time.perf_counter()
    with open(path, "wb") as f:
        left = nbytes
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - t
    path.unlink()
    return elapsed


def trained_state():
    """A model and optimizer after one step (so AdamW state exists), and its checkpoint state dict."""
    import torch

    from workloads.model import ModelConfig, NextItemModel
    from workloads.training.config import OptimConfig
    from workloads.training.data import BatchSampler
    from workloads.training.train import DistEnv, configure_optimizer, training_state

    cfg = ModelConfig(**MID)
    model = NextItemModel(cfg)
    opt = configure_optimizer(model, OptimConfig(), torch.device("cpu"))
    model(torch.randint(1, cfg.num_items, (2, cfg.block_size))).sum().backward()
    opt.step()
    env = DistEnv(0, 1, 0, torch.device("cpu"), None)
    return lambda step: training_state(model, opt, BatchSampler(10, 2, 0), step, env)


def bandwidth_and_stall(repeats: int) -> dict[str, float]:
    from workloads.training.checkpoint import Checkpointer, step_name
    from workloads.training.config import CheckpointConfig

    state_at = trained_state()
    saves, plains, sync_stalls, async_stalls, async_totals = [], [], [], [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        ck = Checkpointer(CheckpointConfig(location=f"{tmp}/ckpt", keep_last=1, async_save=True))
        step = 0
        for _ in range(repeats):
            step += 1
            t = time.perf_counter()
            ck.save(step, state_at(step), blocking=True)
            sync_stalls.append(time.perf_counter() - t)
            nbytes = dir_bytes(Path(tmp) / "ckpt" / step_name(step))
            saves.append(nbytes / sync_stalls[-1])
            plains.append(nbytes / plain_write(nbytes, Path(tmp) / "plain.bin"))

            step += 1
            t = time.perf_counter()
            ck.save(step, state_at(step), blocking=False)
            async_stalls.append(time.perf_counter() - t)
            ck.wait()
            async_totals.append(time.perf_counter() - t)
        ck.close()
    return {
        "checkpoint_bytes": float(nbytes),
        "save_bytes_per_s": statistics.median(saves),
        "plain_write_bytes_per_s": statistics.median(plains),
        "save_vs_plain": statistics.median(saves) / statistics.median(plains),
        "sync_stall_s": statistics.median(sync_stalls),
        "async_stall_s": statistics.median(async_stalls),
        "async_total_s": statistics.median(async_totals),
        "async_vs_sync_stall": statistics.median(async_stalls) / statistics.median(sync_stalls),
    }


def notice_to_checkpoint(preset: str, items: int, batch_size: int, signal_at: int) -> dict[str, float]:
    """SIGTERM this process right after step ``signal_at``; time until the checkpoint commits."""
    from workloads.data.generate import GenerateConfig, generate
    from workloads.training.config import parse_args
    from workloads.training.train import run

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        generate(f"{tmp}/data", GenerateConfig(users=400, items=items, days=3, seed=0))
        step_times: list[float] = []
        last = [time.perf_counter()]

        def log(line: str) -> None:
            if line.startswith("step "):
                now = time.perf_counter()
                step_times.append(now - last[0])
                last[0] = now
                if line.startswith(f"step {signal_at}/"):
                    os.kill(os.getpid(), signal.SIGTERM)

        cfg = parse_args(["--preset", preset, "--data", f"{tmp}/data", "--checkpoint-dir", f"{tmp}/ckpt",
                          "--batch-size", str(batch_size), "--max-steps", "1000", "--log-every", "1",
                          "--checkpoint-every", "0"])
        result = run(cfg, log=log)
        ckpt_bytes = dir_bytes(Path(tmp) / "ckpt")
    if result.exit_code != 75 or result.stop_to_checkpoint_seconds is None:
        raise RuntimeError(f"{preset}: expected a preempted run, got exit code {result.exit_code}")
    return {"notice_to_durable_s": result.stop_to_checkpoint_seconds,
            "step_s": statistics.median(step_times[1:]) if len(step_times) > 1 else step_times[0],
            "checkpoint_bytes": float(ckpt_bytes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-small", action="store_true", help="skip the 124M-parameter notice run")
    args = ap.parse_args()

    bw = bandwidth_and_stall(args.repeats)
    mb = 1e6
    print(f"== checkpoint save vs plain write ({bw['checkpoint_bytes'] / mb:.0f} MB model + AdamW state, "
          f"median of {args.repeats})")
    print(f"{'checkpoint save (DCP, fsync, rename, marker)':<48}{bw['save_bytes_per_s'] / mb:>10.0f} MB/s")
    print(f"{'plain sequential write + fsync':<48}{bw['plain_write_bytes_per_s'] / mb:>10.0f} MB/s")
    print(f"{'ratio (goal >= 0.5)':<48}{bw['save_vs_plain']:>10.2f}")
    print("\n== training stall per save")
    print(f"{'synchronous save':<48}{bw['sync_stall_s']:>10.3f} s")
    print(f"{'asynchronous save (call returns)':<48}{bw['async_stall_s']:>10.3f} s")
    print(f"{'asynchronous save (until committed)':<48}{bw['async_total_s']:>10.3f} s")
    print(f"{'async / sync stall (goal <= 0.2)':<48}{bw['async_vs_sync_stall']:>10.2f}")

    print("\n== preemption notice (SIGTERM) to durable checkpoint, goal well inside 30 s")
    print(f"{'preset':<8}{'checkpoint MB':>14}{'notice->durable s':>19}{'step s':>9}")
    notices = {"tiny": notice_to_checkpoint("tiny", items=1000, batch_size=64, signal_at=5)}
    if not args.skip_small:
        notices["small"] = notice_to_checkpoint("small", items=50_000, batch_size=1, signal_at=2)
    for preset, n in notices.items():
        print(f"{preset:<8}{n['checkpoint_bytes'] / mb:>14.1f}{n['notice_to_durable_s']:>19.3f}{n['step_s']:>9.3f}")
    print(json.dumps({"bandwidth": bw, "notice": notices}))


if __name__ == "__main__":
    main()
