"""Typed configuration of a training run: presets, command-line flags, validation.

A run is described by one frozen ``RunConfig`` built from a named preset (``TRAIN_PRESETS``,
plain data, never ``exec``) and the command line. ``parse_args`` collects every problem and
raises ``UsageError`` once; the entry point turns that into exit code 2.

Environment variables stand in for a few flags so that an orchestrator can set them without
touching the command line: ``GPUPLANE_NOTICE_KIND``, ``GPUPLANE_NOTICE_URL`` and
``GPUPLANE_STORAGE_ENDPOINT_URL``. A flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace

from workloads.model import PRESETS, ModelConfig
from workloads.training.exit_codes import EXIT_OK, EXIT_PREEMPTED, EXIT_USAGE  # noqa: F401 (re-exported)

NOTICE_KINDS = ("none", "aws", "gce")
DEFAULT_NOTICE_URLS = {
    # IMDS answers 404 until a spot interruption is scheduled, then JSON {"action", "time"}.
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
    "aws": "http://169.254.169.254/latest/meta-data/spot/instance-action",
    # "TRUE" once the VM is being preempted.
    # https://cloud.google.com/compute/docs/instances/spot#detecting_if_a_vm_was_preempted
    "gce": "http://metadata.google.internal/computeMetadata/v1/instance/preempted",
}

# Dense bf16 peak (TFLOP/s) per accelerator, matched against torch.cuda.get_device_name().
# First match wins, so more specific names come first. Vendor data sheets (dense, no sparsity).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
)


class UsageError(ValueError):
    """The command line or the data does not describe a valid run (exit code 2)."""


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up and cosine decay (nanoGPT's schedule)."""

    lr: float = 3e-3
    """Peak learning rate."""
    min_lr: float = 3e-4
    """Learning rate at the end of the decay and after it."""
    warmup_steps: int = 20
    decay_steps: int | None = None
    """Steps over which the rate decays to ``min_lr``; None: ``max_steps``."""
    weight_decay: float = 0.1
    """Applied to matrices and embeddings, not to LayerNorm gains."""
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    """Clip the global gradient norm to this; 0 turns clipping off."""


@dataclass(frozen=True)
class TrainConfig:
    """The loop: batch, steps, seed, logging, evaluation."""

    batch_size: int = 64
    """Global batch in sequences per optimizer step, summed over ranks and accumulation steps."""
    grad_accum: int = 1
    """Micro-steps per optimizer step; the per-rank micro-batch is batch_size / (world_size * grad_accum)."""
    max_steps: int = 300
    seed: int = 0
    log_every: int = 10
    """Print loss, tokens/s and MFU every this many steps."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu" or "cuda"."""
    eval_fraction: float = 0.1
    """Share of users held out from training and used for evaluation."""
    eval_positions: int = 5
    """Next-item predictions scored per held-out user (the last ones of the user's history)."""
    peak_tflops: float | None = None
    """Accelerator bf16 peak for MFU; None: look the device name up in PEAK_BF16_TFLOPS."""
    threads: int | None = None
    """CPU intra-op threads (torch.set_num_threads); None: torch's default. CPU results are
    bit-reproducible for a fixed seed, world size and thread count."""


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often to checkpoint."""

    location: str | None = None
    """Local directory or s3:// / gs:// URL; None: no checkpoints (a preempted run restarts from scratch)."""
    every_steps: int = 100
    """Save every this many steps (0: only at the end and on preemption)."""
    keep_last: int = 3
    """Complete checkpoints kept; older ones are deleted after a new one commits."""
    async_save: bool = False
    """Write periodic checkpoints in the background (dcp.async_save); preemption saves are always synchronous."""
    staging_dir: str | None = None
    """Local directory for URL checkpoints before upload and after download; None: a temporary one."""
    endpoint_url: str | None = None
    """Object-store endpoint (S3-compatible servers, emulators); None: the SDK default."""
    writer_threads: int = 2
    """Threads (and files) each rank writes its shard with."""


@dataclass(frozen=True)
class PreemptionConfig:
    """Where preemption notices come from besides SIGTERM / SIGINT."""

    notice_kind: str = "none"
    """"aws" (spot instance-action), "gce" (instance/preempted) or "none"."""
    notice_url: str | None = None
    """Metadata URL to poll; None: the cloud's default in DEFAULT_NOTICE_URLS."""
    poll_seconds: float = 5.0
    """Seconds between metadata polls (AWS asks for every 5 s)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs."""

    preset: str
    model: ModelConfig
    data_dir: str
    export_dir: str | None = None
    """Where model.safetensors, config.json, items.json and metrics.json go; None: no export."""
    init_from: str | None = None
    """Export directory whose weights start the run (fine-tuning a previous model on new data): its
    config.json must match this run's model shape and item vocabulary. A fresh optimizer and LR
    schedule; ignored when the run resumes from a checkpoint. None: random initialisation."""
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    preemption: PreemptionConfig = field(default_factory=PreemptionConfig)


@dataclass(frozen=True)
class Preset:
    """A named starting point: model shape plus loop and optimizer defaults."""

    model: ModelConfig
    train: TrainConfig
    optim: OptimConfig
    checkpoint_every: int


TRAIN_PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        model=PRESETS["tiny"],
        train=TrainConfig(batch_size=64, max_steps=300, log_every=10),
        optim=OptimConfig(lr=3e-3, min_lr=3e-4, warmup_steps=20),
        checkpoint_every=100,
    ),
    "small": Preset(
        model=PRESETS["small"],
        train=TrainConfig(batch_size=128, max_steps=5000, log_every=50),
        optim=OptimConfig(lr=6e-4, min_lr=6e-5, warmup_steps=200),
        checkpoint_every=500,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workloads.training",
        description="Train the next-item model (one process, or one per rank under torchrun).",
        epilog="Exit codes: 0 done, 75 preempted after a checkpoint (requeue), 2 usage error, 1 other failure.",
    )
    p.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="tiny", help="model and loop defaults")
    p.add_argument("--data", required=True, help="directory written by `python -m workloads.data.generate`")
    p.add_argument("--checkpoint-dir", help="local directory or s3:// / gs:// URL for checkpoints")
    p.add_argument("--export-dir", help="directory for model.safetensors, config.json, items.json, metrics.json")
    p.add_argument("--init-from", help="export directory to fine-tune from (same model shape and item vocabulary)")
    p.add_argument("--max-steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, help="save every N steps; 0 only at the end (default: preset)")
    p.add_argument("--keep-last", type=int, default=3, help="complete checkpoints to keep (default 3)")
    p.add_argument("--async-checkpoint", action="store_true", help="periodic saves in the background")
    p.add_argument("--staging-dir", help="local staging directory for URL checkpoints")
    p.add_argument("--storage-endpoint-url", default=os.environ.get("GPUPLANE_STORAGE_ENDPOINT_URL"),
                   help="object-store endpoint URL [env GPUPLANE_STORAGE_ENDPOINT_URL]")
    p.add_argument("--batch-size", type=int, help="global batch in sequences (default: preset)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-steps per optimizer step (default 1)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: preset)")
    p.add_argument("--warmup-steps", type=int, help="warm-up steps (default: preset)")
    p.add_argument("--lr-decay-steps", type=int, help="cosine decay length (default: max steps)")
    p.add_argument("--log-every", type=int, help="log every N steps (default: preset)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--peak-tflops", type=float, help="accelerator bf16 peak for MFU (default: detect)")
    p.add_argument("--threads", type=int, help="CPU intra-op threads (default: torch's choice)")
    p.add_argument("--eval-fraction", type=float, default=0.1, help="share of users held out (default 0.1)")
    p.add_argument("--notice-kind", choices=NOTICE_KINDS, default=os.environ.get("GPUPLANE_NOTICE_KIND", "none"),
                   help="metadata preemption notice to poll [env GPUPLANE_NOTICE_KIND]")
    p.add_argument("--notice-url", default=os.environ.get("GPUPLANE_NOTICE_URL"),
                   help="notice URL (default: the cloud's metadata URL) [env GPUPLANE_NOTICE_URL]")
    p.add_argument("--notice-poll-seconds", type=float, default=5.0, help="seconds between polls (default 5)")
    return p


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """Build a validated ``RunConfig`` from the command line; raise ``UsageError`` listing every problem."""
    a = build_parser().parse_args(argv)
    preset = TRAIN_PRESETS[a.preset]
    train = replace(
        preset.train,
        seed=a.seed,
        grad_accum=a.grad_accum,
        compile=a.compile,
        device=a.device,
        peak_tflops=a.peak_tflops,
        threads=a.threads,
        eval_fraction=a.eval_fraction,
        **{k: v for k, v in (("max_steps", a.max_steps), ("batch_size", a.batch_size), ("log_every", a.log_every))
           if v is not None},
    )
    optim = replace(
        preset.optim,
        decay_steps=a.lr_decay_steps,
        **{k: v for k, v in (("lr", a.lr), ("warmup_steps", a.warmup_steps)) if v is not None},
    )
    cfg = RunConfig(
        preset=a.preset,
        model=preset.model,
        data_dir=a.data,
        export_dir=a.export_dir,
        init_from=a.init_from,
        train=train,
        optim=optim,
        checkpoint=CheckpointConfig(
            location=a.checkpoint_dir,
            every_steps=preset.checkpoint_every if a.checkpoint_every is None else a.checkpoint_every,
            keep_last=a.keep_last,
            async_save=a.async_checkpoint,
            staging_dir=a.staging_dir,
            endpoint_url=a.storage_endpoint_url or None,
        ),
        preemption=PreemptionConfig(
            notice_kind=a.notice_kind, notice_url=a.notice_url or None, poll_seconds=a.notice_poll_seconds
        ),
    )
    validate(cfg)
    return cfg


def validate(cfg: RunConfig, world_size: int = 1) -> None:
    """Raise one ``UsageError`` naming every invalid field, its value and the fix."""
    t, o, c, p = cfg.train, cfg.optim, cfg.checkpoint, cfg.preemption
    problems: list[str] = []

    def need(ok: bool, msg: str) -> None:
        if not ok:
            problems.append(msg)

    need(t.max_steps >= 1, f"--max-steps={t.max_steps} must be at least 1")
    need(t.batch_size >= 1, f"--batch-size={t.batch_size} must be at least 1")
    need(t.grad_accum >= 1, f"--grad-accum={t.grad_accum} must be at least 1")
    need(
        t.batch_size % (world_size * max(t.grad_accum, 1)) == 0,
        f"--batch-size={t.batch_size} is not divisible by world_size*grad_accum={world_size}*{t.grad_accum}; "
        "choose a multiple of it",
    )
    need(t.seed >= 0, f"--seed={t.seed} must be non-negative")
    need(t.log_every >= 1, f"--log-every={t.log_every} must be at least 1")
    need(0.0 < t.eval_fraction < 1.0, f"--eval-fraction={t.eval_fraction} must be between 0 and 1 (exclusive)")
    need(t.threads is None or t.threads >= 1, f"--threads={t.threads} must be at least 1")
    need(t.peak_tflops is None or t.peak_tflops > 0, f"--peak-tflops={t.peak_tflops} must be positive")
    need(o.lr > 0 and o.min_lr >= 0, f"--lr={o.lr} must be positive")
    need(o.warmup_steps >= 0, f"--warmup-steps={o.warmup_steps} must be non-negative")
    need(o.decay_steps is None or o.decay_steps >= 1, f"--lr-decay-steps={o.decay_steps} must be at least 1")
    need(c.every_steps >= 0, f"--checkpoint-every={c.every_steps} must be non-negative (0: only at the end)")
    need(c.keep_last >= 1, f"--keep-last={c.keep_last} must be at least 1")
    if c.location and "://" in c.location:
        scheme = c.location.split("://", 1)[0]
        need(scheme in ("s3", "gs", "gcs", "file", "memory"),
             f"--checkpoint-dir={c.location!r}: scheme {scheme!r} is not supported; use a path, s3:// or gs://")
    need(p.notice_kind in NOTICE_KINDS, f"--notice-kind={p.notice_kind!r} must be one of {', '.join(NOTICE_KINDS)}")
    need(p.poll_seconds > 0, f"--notice-poll-seconds={p.poll_seconds} must be positive")
    if problems:
        raise UsageError("; ".join(problems))


def peak_tflops_for(device_name: str) -> float | None:
    """bf16 dense peak of a CUDA device by name, or None when the name is not in the table."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops
    return None
