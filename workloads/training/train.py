"""The training loop: data, model, DDP, checkpoints, preemption, evaluation and export.

One process per rank (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; a
plain ``python -m workloads.training`` is one rank). The loop, per optimizer step:

1. All ranks all-reduce (MAX) two flags: "stop requested" (SIGTERM, SIGINT, metadata notice) and
   "my background checkpoint write is still running". One small collective per step means every
   rank takes the same decision at the same step: no rank saves alone, none deadlocks.
2. If a background save has finished everywhere, it is committed (marker last).
3. If a stop was agreed: finish any pending save, write a checkpoint of the current step
   synchronously, return exit code 75.
4. Otherwise one optimizer step over ``grad_accum`` micro-batches (DDP ``no_sync`` on all but
   the last), bf16 autocast on CUDA, gradient clipping, AdamW with warm-up + cosine LR.

Determinism: on CPU a run is a pure function of (config, data, world size). The loss of a step
is the sum of token losses over the global batch divided by the global count of valid targets,
which every rank computes from the same global batch, so DDP's gradient average equals the
one-process gradient up to floating-point summation order. A checkpoint holds model, optimizer,
step, the sampler position and each rank's RNG state, so a resumed run continues bit for bit.
No checkpoint is written at step 0: nothing would be gained, and initialising AdamW state early
would change the run.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from workloads.model import ModelConfig, NextItemModel
from workloads.training.checkpoint import Checkpointer
from workloads.training.config import (
    EXIT_OK,
    EXIT_PREEMPTED,
    OptimConfig,
    RunConfig,
    UsageError,
    peak_tflops_for,
    validate,
)
from workloads.training.data import IGNORE_INDEX, BatchSampler, load_dataset, split_batch
from workloads.training.evaluate import evaluate
from workloads.training.export import export_model
from workloads.training.metrics import TrainingMetrics
from workloads.training.preemption import NoticePoller, StopFlag, install_signal_handlers


@dataclass
class TrainResult:
    """What a run did; ``exit_code`` is the process exit code."""

    exit_code: int
    step: int
    loss: float | None = None
    tokens_per_second: float | None = None
    """Global input tokens per second after the first step (which carries warm-up and compile)."""
    mfu: float | None = None
    resumed_from: int | None = None
    metrics: dict[str, Any] | None = None
    stop_to_checkpoint_seconds: float | None = None
    """From the stop flag being set to the preemption checkpoint being committed."""


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    checkpoint_group: dist.ProcessGroup | None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_pref: str) -> DistEnv:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL + gloo on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device=cuda but torch.cuda.is_available() is False; use --device cpu")
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    group = None
    if world_size > 1:
        # CPU collectives (async checkpoint writes) need gloo even on GPU machines.
        backend = "cuda:nccl,cpu:gloo" if use_cuda else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, device_id=device if use_cuda else None)
        group = dist.new_group(backend="gloo")  # checkpoint traffic, apart from training collectives
    return DistEnv(rank, world_size, local_rank, device, group)


def lr_at(step: int, o: OptimConfig, max_steps: int) -> float:
    """Linear warm-up to ``lr``, cosine decay to ``min_lr`` over ``decay_steps`` (nanoGPT)."""
    decay = o.decay_steps or max_steps
    if step < o.warmup_steps:
        return o.lr * (step + 1) / (o.warmup_steps + 1)
    if step >= decay:
        return o.min_lr
    ratio = (step - o.warmup_steps) / max(1, decay - o.warmup_steps)
    return o.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (o.lr - o.min_lr)


def configure_optimizer(model: torch.nn.Module, o: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; matrices and embeddings decay, LayerNorm gains do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": o.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=device.type == "cuda")


def training_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, sampler: BatchSampler, step: int, env: DistEnv
) -> dict[str, Any]:
    """The checkpointed state; tensors are shared with the live objects where possible."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    trainer: dict[str, Any] = {
        "step": torch.tensor(step, dtype=torch.int64),
        "samples_seen": torch.tensor(sampler.samples_seen, dtype=torch.int64),
        "num_windows": torch.tensor(sampler.num_windows, dtype=torch.int64),
        f"rng_cpu_rank{env.rank}": torch.get_rng_state(),
    }
    if env.device.type == "cuda":
        trainer[f"rng_cuda_rank{env.rank}"] = torch.cuda.get_rng_state(env.device)
    return {"model": model_sd, "optim": optim_sd, "trainer": trainer}


def restore(
    ckpt: Checkpointer,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: BatchSampler,
    env: DistEnv,
    log: Callable[[str], None],
) -> int:
    """Load checkpoint ``step`` into the live objects; return the step to continue from."""
    state = training_state(model, optimizer, sampler, 0, env)
    stored = ckpt.metadata_keys(step)
    rng_keys = [k for k in state["trainer"] if k.startswith("rng_")]
    for key in rng_keys:
        if f"trainer.{key}" not in stored:  # a different world size or device wrote it
            del state["trainer"][key]
            log(f"checkpoint step {step}: no {key}; this rank continues with a fresh RNG state")
    ckpt.load(step, state)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    trainer = state["trainer"]
    sampler.load_state_dict({
        "samples_seen": int(trainer["samples_seen"]),
        "num_windows": int(trainer["num_windows"]),
        "global_batch": sampler.global_batch,
    })
    if f"rng_cpu_rank{env.rank}" in trainer:
        torch.set_rng_state(trainer[f"rng_cpu_rank{env.rank}"])
    if f"rng_cuda_rank{env.rank}" in trainer:
        torch.cuda.set_rng_state(trainer[f"rng_cuda_rank{env.rank}"], env.device)
    return int(trainer["step"])


def init_from_export(model: torch.nn.Module, export_dir: str, model_cfg: ModelConfig) -> None:
    """Load an export's weights into ``model``; ``UsageError`` when its shape or vocabulary differs."""
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(export_dir)
    missing = [f for f in ("config.json", "model.safetensors") if not (root / f).is_file()]
    if missing:
        raise UsageError(f"--init-from={export_dir}: missing {', '.join(missing)}; point it at a training export")
    exported = ModelConfig.from_json((root / "config.json").read_text())
    if exported != model_cfg:
        diff = ", ".join(f"{k} {getattr(exported, k)} vs {getattr(model_cfg, k)}" for k in vars(model_cfg)
                         if getattr(exported, k) != getattr(model_cfg, k))
        raise UsageError(f"--init-from={export_dir}: the export's model differs from this run's ({diff}); "
                         "fine-tuning needs the same shape and item vocabulary, so train from scratch")
    with torch.no_grad():
        model.load_state_dict(load_file(str(root / "model.safetensors"), device="cpu"), strict=True)


def run(cfg: RunConfig, log: Callable[[str], None] | None = None, stop: StopFlag | None = None) -> TrainResult:
    """Train, checkpoint, evaluate and export as ``cfg`` says; never calls sys.exit.

    ``stop``: a flag whose SIGTERM / SIGINT handlers the caller installed at process start (the
    entry point does, before torch loads); without it the run installs its own for its duration.
    A flag already set when the loop begins ends the run at once with exit code 75.
    """
    env = setup_distributed(cfg.train.device)
    try:
        return _run(cfg, env, log, stop)
    finally:
        if env.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _run(cfg: RunConfig, env: DistEnv, log_fn: Callable[[str], None] | None, stop: StopFlag | None) -> TrainResult:
    t_cfg = cfg.train
    validate(cfg, env.world_size)
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)

    def log(msg: str) -> None:
        if env.rank == 0:
            (log_fn or (lambda m: print(m, flush=True)))(msg)

    data = load_dataset(cfg.data_dir, cfg.model.block_size, t_cfg.eval_fraction, t_cfg.eval_positions)
    model_cfg = replace(cfg.model, num_items=data.num_items)
    windows = data.windows.to(env.device)
    sampler = BatchSampler(windows.shape[0], t_cfg.batch_size, t_cfg.seed)

    torch.manual_seed(t_cfg.seed)  # identical initial weights on every rank
    model = NextItemModel(model_cfg).to(env.device)
    torch.manual_seed(t_cfg.seed + 1 + env.rank)  # per-rank stream (dropout)
    optimizer = configure_optimizer(model, cfg.optim, env.device)

    ckpt = Checkpointer(cfg.checkpoint, rank=env.rank, world_size=env.world_size, group=env.checkpoint_group) \
        if cfg.checkpoint.location else None
    step = 0
    resumed_from = None
    if ckpt is not None:
        latest = ckpt.latest_step(log=log)
        if latest is not None:
            step = restore(ckpt, latest, model, optimizer, sampler, env, log)
            resumed_from = latest
            log(f"resumed from checkpoint step {latest} at {cfg.checkpoint.location}")
    if resumed_from is None and cfg.init_from:
        init_from_export(model, cfg.init_from, model_cfg)
        log(f"initialised from the export at {cfg.init_from} (fine-tuning; fresh optimizer and schedule)")
    last_saved = step
    prom = TrainingMetrics.from_env(env.rank)  # Prometheus on $GPUPLANE_METRICS_PORT (rank 0), else inert
    prom.started(step, resumed_from)

    def save(kind: str, blocking: bool) -> None:
        t0 = time.perf_counter()
        ckpt.save(step, training_state(model, optimizer, sampler, step, env), blocking=blocking)  # type: ignore[union-attr]
        prom.checkpointed(kind, time.perf_counter() - t0)

    forward_model: torch.nn.Module = model
    if t_cfg.compile:
        forward_model = torch.compile(forward_model)
    if env.distributed:
        forward_model = DDP(forward_model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if env.device.type == "cuda" else contextlib.nullcontext()
    )
    if env.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    peak = t_cfg.peak_tflops
    if peak is None and env.device.type == "cuda":
        peak = peak_tflops_for(torch.cuda.get_device_name(env.device))
    flops_per_token = model_cfg.flops_per_token()
    tokens_per_step = t_cfg.batch_size * model_cfg.block_size

    restore_signals: Callable[[], None] = lambda: None  # noqa: E731
    if stop is None:
        stop = StopFlag()
        if threading.current_thread() is threading.main_thread():
            restore_signals = install_signal_handlers(stop, log=log)
    poller = None
    if cfg.preemption.notice_kind != "none" and env.local_rank == 0:
        poller = NoticePoller(cfg.preemption, stop, log=print)
        poller.start()

    def agree(*flags: bool) -> list[bool]:
        """Element-wise OR of flags over all ranks (one all-reduce)."""
        if not env.distributed:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=env.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def mfu_of(tokens_per_second: float) -> float | None:
        return flops_per_token * tokens_per_second / (peak * 1e12 * env.world_size) if peak else None

    result = TrainResult(exit_code=EXIT_OK, step=step, resumed_from=resumed_from)
    t_window, tokens_window = time.perf_counter(), 0
    t_warm: float | None = None
    tokens_warm = 0
    loss_value: float | None = None
    try:
        while True:
            stop_now, writing = agree(stop.is_set(), ckpt is not None and not ckpt.pending_written())
            if ckpt is not None and ckpt.has_pending() and not writing:
                ckpt.commit_pending()
            if step >= t_cfg.max_steps:
                break
            if stop_now:
                if t_warm is not None and tokens_warm:  # throughput up to the notice
                    if env.device.type == "cuda":
                        torch.cuda.synchronize(env.device)
                    result.tokens_per_second = tokens_warm / (time.perf_counter() - t_warm)
                    result.mfu = mfu_of(result.tokens_per_second)
                reason = stop.reason or "another rank"
                prom.preempted()
                if ckpt is not None:
                    ckpt.wait()
                    if step > last_saved:
                        save("preemption", blocking=True)
                        last_saved = step
                    if stop.set_at is not None:
                        result.stop_to_checkpoint_seconds = time.monotonic() - stop.set_at
                    saved = f"checkpoint step {last_saved} is complete" if last_saved else \
                        "no checkpoint yet (nothing is saved at step 0; a restart starts afresh)"
                    log(f"preempted ({reason}) at step {step}; {saved}; exiting {EXIT_PREEMPTED}")
                else:
                    log(f"preempted ({reason}) at step {step}; no --checkpoint-dir, progress is lost; "
                        f"exiting {EXIT_PREEMPTED}")
                result.exit_code, result.step, result.loss = EXIT_PREEMPTED, step, loss_value
                return result

            # ---- one optimizer step ----
            lr = lr_at(step, cfg.optim, t_cfg.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            micro, n_valid = split_batch(windows, sampler.next_indices(), t_cfg.grad_accum, env.world_size, env.rank)
            scale = env.world_size / n_valid.clamp(min=1)  # DDP averages over ranks; undo it, then mean over tokens
            loss_sum = torch.zeros((), device=env.device)
            for m, (x, y) in enumerate(micro):
                sync = m == len(micro) - 1
                no_sync = forward_model.no_sync() if env.distributed and not sync else contextlib.nullcontext()
                with no_sync:
                    with autocast:
                        logits = forward_model(x)  # (b, T, V)
                    token_loss = F.cross_entropy(
                        logits.float().view(-1, logits.size(-1)), y.reshape(-1),
                        ignore_index=IGNORE_INDEX, reduction="sum",
                    )
                    (token_loss * scale).backward()
                loss_sum += token_loss.detach()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            prom.stepped(step)
            tokens_window += tokens_per_step
            if t_warm is None:
                if env.device.type == "cuda":
                    torch.cuda.synchronize(env.device)
                t_warm = time.perf_counter()
            else:
                tokens_warm += tokens_per_step

            if step % t_cfg.log_every == 0 or step == t_cfg.max_steps:
                if env.distributed:
                    dist.all_reduce(loss_sum)
                loss_value = (loss_sum / n_valid.clamp(min=1)).item()  # global mean token loss
                now = time.perf_counter()
                tps = tokens_window / (now - t_window)
                mfu = mfu_of(tps)
                prom.logged(loss_value, tps)
                log(f"step {step}/{t_cfg.max_steps} loss {loss_value:.4f} lr {lr:.2e} tokens/s {tps:,.0f} "
                    f"mfu {'n/a' if mfu is None else f'{100 * mfu:.1f}%'}")
                t_window, tokens_window = now, 0

            every = cfg.checkpoint.every_steps
            if ckpt is not None and every and step % every == 0 and step < t_cfg.max_steps:
                save("periodic", blocking=not cfg.checkpoint.async_save)
                last_saved = step

        if ckpt is not None:
            ckpt.wait()
            if step > last_saved:
                save("final", blocking=True)
                last_saved = step
        if t_warm is not None and tokens_warm:
            result.tokens_per_second = tokens_warm / (time.perf_counter() - t_warm)
            result.mfu = mfu_of(result.tokens_per_second)
    finally:
        restore_signals()
        if poller is not None:
            poller.close()
        if ckpt is not None:
            ckpt.close()

    result.step, result.loss = step, loss_value
    if env.rank == 0:
        metrics = evaluate(model, data.eval_histories, data.eval_targets, data.item_counts)
        metrics.update({
            "steps": step,
            "loss": loss_value,
            "tokens_per_second": result.tokens_per_second,
            "mfu": result.mfu,
            "world_size": env.world_size,
            "preset": cfg.preset,
            "train_users": data.train_users,
            "eval_users": data.eval_users,
            "train_windows": int(windows.shape[0]),
        })
        result.metrics = metrics
        log(f"eval: hit_rate@10 {metrics['hit_rate_at_10']:.4f} (popularity {metrics['popularity_hit_rate_at_10']:.4f})"
            f", ndcg@10 {metrics['ndcg_at_10']:.4f} (popularity {metrics['popularity_ndcg_at_10']:.4f})")
        if cfg.export_dir:
            export_model(model, cfg.export_dir, data.item_ids, metrics)
            log(f"exported model.safetensors, config.json, items.json, metrics.json to {cfg.export_dir}")
    if env.distributed:
        dist.barrier()
    return result
