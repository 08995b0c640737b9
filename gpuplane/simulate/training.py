"""Spot training model: expected completion time and cost of a checkpointed job under preemptions.

A job needs ``W`` hours of work on ``gpus`` GPUs. Preemptions arrive as a Poisson process of rate
``λ`` per hour of running time. Every ``τ`` hours of work the job writes a checkpoint costing
``C`` hours. After a preemption the job restarts after ``R`` hours (reschedule, node start,
checkpoint load; no preemption can hit during it). A preemption notice of ``notice_s`` seconds
lets the job write an emergency checkpoint when ``C`` fits inside it (``notice_save_success``,
default: 1 if it fits, else 0): then nothing is lost; otherwise the work since the last periodic
checkpoint is lost.

Analytic model (exponential failures, failure-free restart, e.g. Daly 2006): a segment of
``L = τ + C`` hours under lossy preemptions at rate ``λ_l = (1 - q)·λ`` takes
``E[T] = (1/λ_l + R)·(exp(λ_l·L) - 1)`` hours; the segments (the last one shorter) add up.
Lossless preemptions at rate ``λ_s = q·λ`` add ``C + R`` each per hour exposed. With ``q = 0`` the formula is exact; with ``q = 1`` it does
not credit an emergency save that replaces the periodic checkpoint it interrupted (under 0.5 %
in the tests); in between it is a first-order mix. :func:`monte_carlo` checks it.
The Young/Daly interval is ``τ* ≈ sqrt(2·C·MTBF)``, ``MTBF = 1/λ``. Cost bills every hour of the
job (restarts included: a conservative upper bound). On-demand runs the same work with no
preemptions and, by default, no periodic checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from components.checkpointing import young_daly_interval as _young_daly


class TrainingModelError(ValueError):
    """A training-model parameter is out of range; the message names it and the fix."""


@dataclass(frozen=True)
class SpotJob:
    """A checkpointed training job on spot capacity. Times in hours unless the name says otherwise."""

    work_hours: float = 100.0
    """Failure-free compute time W the job needs."""
    preemptions_per_hour: float = 0.05
    """Preemption rate λ per running hour (0.05 = one every 20 h on average)."""
    checkpoint_hours: float = 0.05
    """Time C to write one checkpoint (3 min = 0.05 h)."""
    interval_hours: float | None = None
    """Work τ between periodic checkpoints; None = the Young/Daly interval sqrt(2·C/λ)."""
    restart_hours: float = 0.1
    """Restart overhead R after a preemption: reschedule, node start, checkpoint load."""
    notice_s: float = 120.0
    """Preemption notice in seconds (AWS 120, GCP 30)."""
    notice_save_success: float | None = None
    """Probability an emergency checkpoint completes in the notice; None = 1 if C fits in it, else 0."""
    gpus: int = 8
    """GPUs the job holds."""
    spot_usd_per_gpu_hour: float = 1.0
    """Spot price per GPU-hour."""
    on_demand_usd_per_gpu_hour: float = 3.0
    """On-demand price per GPU-hour."""

    def validate(self) -> None:
        p = []
        for k in (
            "work_hours",
            "checkpoint_hours",
            "restart_hours",
            "notice_s",
            "spot_usd_per_gpu_hour",
            "on_demand_usd_per_gpu_hour",
        ):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                p.append(f"{k}={v} must be finite and ≥ 0")
        if not self.work_hours > 0:
            p.append(f"work_hours={self.work_hours} must be > 0")
        if not (math.isfinite(self.preemptions_per_hour) and self.preemptions_per_hour >= 0):
            p.append(f"preemptions_per_hour={self.preemptions_per_hour} must be ≥ 0")
        if self.interval_hours is not None and not self.interval_hours > 0:
            p.append(f"interval_hours={self.interval_hours} must be > 0 (or None for Young/Daly)")
        if self.notice_save_success is not None and not 0 <= self.notice_save_success <= 1:
            p.append(f"notice_save_success={self.notice_save_success} must be in [0, 1]")
        if self.gpus < 1:
            p.append(f"gpus={self.gpus} must be ≥ 1")
        if p:
            raise TrainingModelError("SpotJob: " + "; ".join(p))

    @property
    def save_success(self) -> float:
        if self.notice_save_success is not None:
            return self.notice_save_success
        return 1.0 if self.checkpoint_hours * 3600.0 <= self.notice_s else 0.0

    @property
    def interval(self) -> float:
        """The checkpoint interval τ in force (hours of work)."""
        if self.interval_hours is not None:
            return self.interval_hours
        if self.preemptions_per_hour <= 0 or self.checkpoint_hours <= 0:
            return self.work_hours
        return min(young_daly_interval(self.checkpoint_hours, 1.0 / self.preemptions_per_hour), self.work_hours)


def young_daly_interval(checkpoint_hours: float, mtbf_hours: float) -> float:
    """Young/Daly first-order optimal work between checkpoints: sqrt(2·C·MTBF) (components.checkpointing)."""
    if checkpoint_hours < 0 or mtbf_hours <= 0:
        raise TrainingModelError(
            f"young_daly_interval: need checkpoint_hours ≥ 0 and mtbf_hours > 0 (got {checkpoint_hours}, {mtbf_hours})"
        )
    return _young_daly(checkpoint_hours, mtbf_hours)


def _segments(work: float, tau: float) -> tuple[int, float]:
    n_full = math.floor(work / tau + 1e-12)
    last = work - n_full * tau
    if last <= 1e-12:
        last = 0.0
    return n_full, last


def expected_hours(job: SpotJob, interval_hours: float | None = None) -> float:
    """Expected wall-clock hours to finish ``job`` (analytic; see the module docstring)."""
    job.validate()
    tau = interval_hours if interval_hours is not None else job.interval
    lam, c, r, q = job.preemptions_per_hour, job.checkpoint_hours, job.restart_hours, job.save_success
    lam_l, lam_s = (1.0 - q) * lam, q * lam
    n_full, last = _segments(job.work_hours, tau)
    lengths = [tau + c] * n_full + ([last + c] if last > 0 else [])

    def seg(length: float) -> float:
        if lam_l <= 0:
            return length
        return (1.0 / lam_l + r) * math.expm1(lam_l * length)

    lossy = sum(seg(length) for length in lengths)
    return lossy * (1.0 + lam_s * (c + r))


@dataclass(frozen=True)
class TrainingEstimate:
    """Spot vs on-demand for one job."""

    interval_hours: float
    young_daly_hours: float | None
    spot_hours: float
    spot_cost_usd: float
    on_demand_hours: float
    on_demand_cost_usd: float
    savings: float
    """1 − spot cost / on-demand cost."""
    expected_preemptions: float
    save_success: float
    monte_carlo_hours: float | None = None
    monte_carlo_stderr_hours: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(job: SpotJob, *, monte_carlo_runs: int = 0, seed: int = 0) -> TrainingEstimate:
    """Expected time and cost on spot and on on-demand; optional Monte-Carlo check of the time."""
    job.validate()
    tau = job.interval
    hours = expected_hours(job, tau)
    od_hours = job.work_hours
    spot_cost = hours * job.gpus * job.spot_usd_per_gpu_hour
    od_cost = od_hours * job.gpus * job.on_demand_usd_per_gpu_hour
    yd = (
        young_daly_interval(job.checkpoint_hours, 1.0 / job.preemptions_per_hour)
        if job.preemptions_per_hour > 0
        else None
    )
    mc_mean = mc_err = None
    if monte_carlo_runs > 0:
        samples = monte_carlo(job, runs=monte_carlo_runs, seed=seed, interval_hours=tau)
        mc_mean = float(samples.mean())
        mc_err = float(samples.std(ddof=1) / math.sqrt(samples.size)) if samples.size > 1 else 0.0
    running = job.work_hours + math.ceil(job.work_hours / tau - 1e-12) * job.checkpoint_hours
    return TrainingEstimate(
        interval_hours=tau,
        young_daly_hours=yd,
        spot_hours=hours,
        spot_cost_usd=spot_cost,
        on_demand_hours=od_hours,
        on_demand_cost_usd=od_cost,
        savings=1.0 - spot_cost / od_cost if od_cost > 0 else 0.0,
        expected_preemptions=job.preemptions_per_hour * running,
        save_success=job.save_success,
        monte_carlo_hours=mc_mean,
        monte_carlo_stderr_hours=mc_err,
    )


def monte_carlo(
    job: SpotJob, *, runs: int = 2000, seed: int = 0, interval_hours: float | None = None, max_steps: int = 1_000_000
) -> np.ndarray:
    """Completion times (hours) of ``runs`` simulated jobs, vectorised across runs.

    Each step draws the running time to the next preemption for every unfinished run; a run
    either finishes, or is preempted and then (with the save-success probability) keeps its
    progress to the preemption point or falls back to its last periodic checkpoint.
    """
    job.validate()
    if runs < 1:
        raise TrainingModelError(f"monte_carlo: runs={runs} must be ≥ 1")
    rng = np.random.default_rng(seed)
    tau = interval_hours if interval_hours is not None else job.interval
    lam, c, r, q, w = (
        job.preemptions_per_hour,
        job.checkpoint_hours,
        job.restart_hours,
        job.save_success,
        job.work_hours,
    )
    done = np.zeros(runs)  # saved work
    clock = np.zeros(runs)
    active = np.ones(runs, bool)
    n_total = math.ceil(w / tau - 1e-12)  # periodic checkpoints at every τ of work, the last at W
    for _ in range(max_steps):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        p = done[idx]
        k0 = np.floor(p / tau + 1e-12)
        base = k0 * tau  # the periodic schedule continues after an emergency save
        off = p - base
        finish = (w - p) + (n_total - k0) * c
        x = rng.exponential(1.0 / lam, idx.size) if lam > 0 else np.full(idx.size, np.inf)
        fin = x >= finish
        clock[idx[fin]] += finish[fin]
        active[idx[fin]] = False
        q_idx = idx[~fin]
        xs = x[~fin] + off[~fin]  # as if the current segment had started at ``base``
        k = np.floor(xs / (tau + c))  # whole segments (work + checkpoint) completed
        into = xs - k * (tau + c)
        saved = rng.random(q_idx.size) < q
        new = np.where(saved, base[~fin] + k * tau + np.minimum(into, tau), np.maximum(p[~fin], base[~fin] + k * tau))
        done[q_idx] = np.minimum(new, w)
        clock[q_idx] += x[~fin] + r + np.where(saved, c, 0.0)
    else:  # pragma: no cover - only with absurd parameters
        raise TrainingModelError(
            "monte_carlo: jobs did not finish; λ·(τ + C) is too large for the job to make progress"
        )
    return clock
