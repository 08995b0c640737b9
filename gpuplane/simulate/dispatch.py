"""Multi-cluster dispatch simulator: replay a job trace against MultiKueue dispatch policies with spot interruptions.

Event-driven (submit, finish, preemption, Incremental rounds, patience expiry). Workers have a GPU
quota per flavor, a $/GPU-hour per flavor, a cloud, a region and a preemption notice (the
``TrainingFederation`` plan's facts); jobs have a flavor, GPUs, hours of work, and optionally
their data's region and size. Policies (what Kueue v0.19.2 does, pkg/controller/workloaddispatcher
and admissionchecks/multikueue):

- ``all_at_once``: every worker is nominated; the first worker (MultiKueueConfig order) with free
  quota admits the job;
- ``incremental``: ``step`` workers (sorted by name) are nominated, ``step`` more every 5 minutes
  (``incrementalDispatcherRoundTimeout``) while none admits;
- ``cost_aware``: gpuplane's dispatcher (``gpuplane.dispatch.rank``) nominates the single best
  worker; a nominee without room after ``patience_s`` is replaced by the next best.

Queues are best-effort FIFO (a job that does not fit does not block smaller ones behind it). A
spot job is preempted at ``preemptions_per_hour`` per running hour (seeded, the same draws for
every policy); it loses half a Young/Daly checkpoint interval of work when the worker's notice is
shorter than ``checkpoint_s`` (as ``simulate training`` models), pays ``restart_h``, and goes back
to dispatch with the rest of its work. A job placed away from its data pays the catalog's egress
and holds its GPUs while the data copies. Reports cost (compute + egress), wait (submit to first
start) and completion time (submit to finish) per policy.
"""

from __future__ import annotations

import csv
import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpuplane.dispatch.ranking import JobRequest, Residency, WorkerState, rank
from gpuplane.simulate.training import young_daly_interval

POLICIES = ("all_at_once", "incremental", "cost_aware")
INCREMENTAL_ROUND_S = 300.0
"""Kueue's incrementalDispatcherRoundTimeout (5 minutes)."""
TRACE_COLUMNS = ("job_id", "submit_s", "flavor", "gpus", "hours", "capacity", "data_region", "data_gib")


class DispatchSimError(ValueError):
    """Bad simulator input; the message names the field, the value and the fix."""


@dataclass(frozen=True)
class SimWorker:
    name: str
    cloud: str
    region: str
    notice_s: int
    quota: dict[str, int]
    """Flavor -> GPUs."""
    usd_per_gpu_hour: dict[str, float]


@dataclass(frozen=True)
class SimJob:
    job_id: str
    submit_s: float
    flavor: str
    gpus: int
    hours: float
    capacity: str = "spot"
    data_cloud: str | None = None
    data_region: str | None = None
    data_gib: float = 0.0


@dataclass
class _State:
    job: SimJob
    remaining_h: float
    first_start: float | None = None
    finish: float | None = None
    nominated: list[str] = field(default_factory=list)
    nominated_at: float = 0.0
    rounds: int = 0
    worker: str | None = None
    run_start: float = 0.0
    run_token: int = 0
    cost_usd: float = 0.0
    egress_usd: float = 0.0
    preemptions: int = 0
    placements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    jobs: int
    completed: int
    cost_usd: float
    compute_usd: float
    egress_usd: float
    wait_mean_h: float
    wait_p95_h: float
    completion_mean_h: float
    completion_p95_h: float
    preemptions: int
    moves: int
    """Jobs placed on more than one worker over their life (requeued after preemption or moved)."""
    per_worker_gpu_hours: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def synthetic_jobs(
    days: float = 7.0,
    jobs_per_day: float = 300.0,
    flavors: tuple[str, ...] = ("l4-spot", "h100-spot"),
    data_regions: tuple[str, ...] = ("aws/us-east-1",),
    seed: int = 0,
) -> list[SimJob]:
    """A seeded job trace: diurnal Poisson arrivals, GPU counts and log-normal durations.

    No public GPU job trace ships with gpuplane (reference-data/traces holds request traces
    only); the shape follows what the published cluster traces report: most jobs use one GPU,
    durations are heavy-tailed (Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters
    for DNN Training Workloads", ATC 2019, Microsoft Philly). Parameters here are assumptions:
    GPUs {1: 60%, 2: 15%, 4: 15%, 8: 10%}, hours log-normal with median 1 h (sigma 1.2, capped at
    48 h), data 0-200 GiB uniform. Pass a CSV (``read_jobs``) to replay a real trace.
    """
    rng = np.random.default_rng(seed)
    out: list[SimJob] = []
    t, horizon = 0.0, days * 86_400.0
    peak = 2 * jobs_per_day / 86_400.0  # thinning against a diurnal rate with mean jobs_per_day
    while True:
        t += rng.exponential(1 / peak)
        if t >= horizon:
            break
        if rng.random() > 0.5 * (1 + math.sin(2 * math.pi * t / 86_400.0)):
            continue
        gpus = int(rng.choice([1, 2, 4, 8], p=[0.6, 0.15, 0.15, 0.1]))
        hours = float(min(48.0, rng.lognormal(0.0, 1.2)))
        cloud, _, region = str(rng.choice(data_regions)).partition("/")
        flavor = str(rng.choice(flavors))
        capacity = "spot" if flavor.endswith("spot") else "on_demand"
        out.append(SimJob(f"job-{len(out):05d}", t, flavor, gpus, hours, capacity, cloud, region, float(rng.uniform(0, 200))))
    return out


def read_jobs(path: Path) -> list[SimJob]:
    """A job trace CSV: ``job_id,submit_s,flavor,gpus,hours,capacity,data_region,data_gib`` (data_region ``cloud/region`` or empty)."""
    jobs: list[SimJob] = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DispatchSimError(f"{path}: missing columns {missing}. To fix: give the header {','.join(TRACE_COLUMNS)}.")
            for line, r in enumerate(reader, start=2):
                try:
                    cloud, _, region = (r["data_region"] or "").partition("/")
                    jobs.append(SimJob(r["job_id"], float(r["submit_s"]), r["flavor"], int(r["gpus"]), float(r["hours"]), r["capacity"] or "spot", cloud or None, region or None, float(r["data_gib"] or 0)))
                except ValueError as e:
                    raise DispatchSimError(f"{path}:{line}: {e}. To fix: submit_s, hours and data_gib are numbers, gpus a whole number.") from None
    except OSError as e:
        raise DispatchSimError(f"{path}: {e.strerror}. To fix: pass an existing CSV file.") from None
    return sorted(jobs, key=lambda j: j.submit_s)


def write_jobs(path: Path, jobs: list[SimJob]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        for j in jobs:
            w.writerow([j.job_id, f"{j.submit_s:.1f}", j.flavor, j.gpus, f"{j.hours:.4f}", j.capacity, f"{j.data_cloud}/{j.data_region}" if j.data_cloud else "", f"{j.data_gib:.1f}"])


def check_inputs(jobs: list[SimJob], workers: list[SimWorker], residency: Residency, catalog: Any) -> None:
    """Bad input up front, one message each: a flavor no worker offers, residency excluding every worker."""
    offered = {f for w in workers for f in w.quota}
    missing = sorted({j.flavor for j in jobs} - offered)
    if missing:
        n = sum(1 for j in jobs if j.flavor in missing)
        raise DispatchSimError(f"{n} jobs ask for flavors no worker offers: {missing} (offered: {sorted(offered)}). To fix: add the flavor to a worker, or map the trace's flavors to offered ones.")
    allowed = [w for w in workers if residency.excludes(catalog, w.cloud, w.region) is None]
    if not allowed:
        where = ", ".join(f"{w.name} ({w.cloud} {w.region})" for w in workers)
        raise DispatchSimError(f"the residency rule excludes every worker ({where}) ({residency.source}). To fix: add a worker in an allowed region, or widen allowed-regions.")


def simulate_dispatch(
    jobs: list[SimJob],
    workers: list[SimWorker],
    policy: str,
    catalog: Any,
    *,
    residency: Residency | None = None,
    incremental_step: int = 3,
    patience_s: float = 30.0,
    preemptions_per_hour: float = 0.05,
    checkpoint_s: float = 60.0,
    restart_h: float = 0.1,
    seed: int = 0,
) -> PolicyResult:
    if policy not in POLICIES:
        raise DispatchSimError(f"policy {policy!r} is not a dispatch policy. To fix: use one of {list(POLICIES)}.")
    residency = residency or Residency()
    check_inputs(jobs, workers, residency, catalog)
    allowed = [w for w in workers if residency.excludes(catalog, w.cloud, w.region) is None]
    by_name = {w.name: w for w in allowed}
    free = {w.name: dict(w.quota) for w in allowed}
    rng = np.random.default_rng(seed)
    # The same preemption draws for every policy: one exponential clock per (job, placement).
    draws: list[list[float]] = rng.exponential(1.0, size=(len(jobs), 64)).tolist()
    states = [_State(j, j.hours) for j in jobs]
    gpu_hours: dict[str, float] = {w.name: 0.0 for w in allowed}
    events: list[tuple[float, int, str, int, int]] = []
    seq = 0

    def push(t: float, kind: str, i: int, token: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, i, token))

    for i, j in enumerate(jobs):
        push(j.submit_s, "submit", i)
    pending: list[int] = []
    lost_h = 0.5 * young_daly_interval(checkpoint_s / 3600.0, 1.0 / preemptions_per_hour) if preemptions_per_hour > 0 else 0.0

    def worker_states() -> list[WorkerState]:
        return [WorkerState(w.name, w.cloud, w.region, w.notice_s, w.usd_per_gpu_hour, free[w.name]) for w in allowed]

    def start(i: int, wname: str, now: float) -> None:
        s, w = states[i], by_name[wname]
        j = s.job
        free[wname][j.flavor] -= j.gpus
        transfer_h = 0.0
        moved = not s.placements or s.placements[-1] != wname  # a restart on the same worker finds its data there
        if j.data_gib > 0 and j.data_cloud and moved:
            e = catalog.egress(j.data_cloud, j.data_region, w.cloud, w.region)
            s.egress_usd += j.data_gib * e.usd_per_gib
            transfer_h = e.transfer_seconds(j.data_gib) / 3600.0
        s.worker, s.run_start = wname, now
        s.first_start = now if s.first_start is None else s.first_start
        s.placements.append(wname)
        s.run_token += 1
        run_h = transfer_h + s.remaining_h
        s.remaining_h = run_h  # the copy holds the GPUs too
        if j.capacity == "spot" and preemptions_per_hour > 0:
            k = min(s.preemptions, len(draws[i]) - 1)
            t_pre = draws[i][k] / preemptions_per_hour
            if t_pre < run_h:
                push(now + t_pre * 3600.0, "preempt", i, s.run_token)
                return
        push(now + run_h * 3600.0, "finish", i, s.run_token)

    def stop(i: int, now: float) -> float:
        s = states[i]
        ran_h = (now - s.run_start) / 3600.0
        w = by_name[s.worker]  # type: ignore[index]
        s.cost_usd += ran_h * s.job.gpus * w.usd_per_gpu_hour[s.job.flavor]
        gpu_hours[w.name] += ran_h * s.job.gpus
        free[w.name][s.job.flavor] += s.job.gpus
        return ran_h

    def candidates(j: SimJob) -> list[str]:
        return [n for n in (w.name for w in allowed) if j.flavor in by_name[n].quota]

    def schedule(now: float) -> None:
        still: list[int] = []
        for i in pending:
            s, j = states[i], states[i].job
            choice = None
            if policy == "all_at_once":
                choice = next((n for n in candidates(j) if free[n][j.flavor] >= j.gpus), None)
            elif policy == "incremental":
                cands = sorted(candidates(j))
                nominated = cands[: incremental_step * max(1, s.rounds)]
                if s.rounds == 0:
                    s.rounds, s.nominated_at = 1, now
                    push(now + INCREMENTAL_ROUND_S, "round", i, s.run_token)
                choice = next((n for n in nominated if free[n][j.flavor] >= j.gpus), None)
            else:
                nominee = s.nominated[0] if s.nominated else None
                if nominee is None or (free[nominee][j.flavor] < j.gpus and now - s.nominated_at >= patience_s):
                    req = JobRequest(j.job_id, j.flavor, j.gpus, j.capacity, s.remaining_h, j.data_cloud, j.data_region, j.data_gib)
                    d = rank(req, worker_states(), Residency(), catalog, preemptions_per_hour=preemptions_per_hour, checkpoint_seconds=checkpoint_s, restart_hours=restart_h)
                    if d.nominated and d.nominated[0] != nominee:
                        s.nominated, s.nominated_at = list(d.nominated), now
                        push(now + patience_s, "tick", i, s.run_token)
                    nominee = s.nominated[0] if s.nominated else None
                if nominee is not None and free[nominee][j.flavor] >= j.gpus:
                    choice = nominee
            if choice is None:
                still.append(i)
            else:
                s.nominated, s.rounds = [], 0
                start(i, choice, now)
        pending[:] = still

    while events:
        now, _, kind, i, token = heapq.heappop(events)
        s = states[i]
        if kind == "submit":
            pending.append(i)
        elif kind == "finish":
            if token != s.run_token:
                continue
            stop(i, now)
            s.remaining_h, s.finish, s.worker = 0.0, now, None
        elif kind == "preempt":
            if token != s.run_token:
                continue
            ran = stop(i, now)
            w = by_name[s.worker]  # type: ignore[index]
            loss = lost_h if w.notice_s < checkpoint_s else 0.0
            s.remaining_h = max(0.0, s.remaining_h - ran) + min(loss, ran) + restart_h
            s.preemptions += 1
            s.worker = None
            s.run_token += 1
            pending.append(i)
        elif kind == "round":
            if token != s.run_token or i not in pending:
                continue
            s.rounds += 1
            push(now + INCREMENTAL_ROUND_S, "round", i, token)
        elif kind == "tick" and (token != s.run_token or i not in pending):
            continue
        if kind in ("submit", "finish", "preempt", "round", "tick"):
            pending.sort(key=lambda k: states[k].job.submit_s)
            schedule(now)
    done = [s for s in states if s.finish is not None]
    waits = np.array([(s.first_start - s.job.submit_s) / 3600.0 for s in states if s.first_start is not None] or [0.0])
    jct = np.array([(s.finish - s.job.submit_s) / 3600.0 for s in done] or [0.0])  # type: ignore[operator]
    compute = sum(s.cost_usd for s in states)
    egress = sum(s.egress_usd for s in states)
    return PolicyResult(
        policy=policy,
        jobs=len(jobs),
        completed=len(done),
        cost_usd=compute + egress,
        compute_usd=compute,
        egress_usd=egress,
        wait_mean_h=float(waits.mean()),
        wait_p95_h=float(np.percentile(waits, 95)),
        completion_mean_h=float(jct.mean()),
        completion_p95_h=float(np.percentile(jct, 95)),
        preemptions=sum(s.preemptions for s in states),
        moves=sum(1 for s in states if len(set(s.placements)) > 1),
        per_worker_gpu_hours={k: round(v, 2) for k, v in gpu_hours.items()},
    )


def reference_workers(catalog: Any) -> list[SimWorker]:
    """The reference federation's workers with catalog prices (what ``TrainingFederation`` would annotate):
    AWS us-east-1 (next to the data), GCP us-central1, GCP europe-west4, AWS us-west-2."""
    from components.federation import FlavorPlan, catalog_usd_per_gpu_hour

    flavors = {"l4-spot": FlavorPlan("l4-spot", "L4", "spot", {}, ()), "h100-spot": FlavorPlan("h100-spot", "H100", "spot", {}, ())}
    spec = [("aws-use1", "aws", "us-east-1", {"l4-spot": 16, "h100-spot": 16}), ("gcp-usc1", "gcp", "us-central1", {"l4-spot": 16, "h100-spot": 8}),
            ("gcp-euw4", "gcp", "europe-west4", {"l4-spot": 8, "h100-spot": 8}), ("aws-usw2", "aws", "us-west-2", {"l4-spot": 8, "h100-spot": 8})]
    out = []
    for name, cloud, region, quota in spec:
        prices = {f: p for f in quota if (p := catalog_usd_per_gpu_hour(catalog, cloud, region, flavors[f])) is not None}
        out.append(SimWorker(name, cloud, region, catalog.notice_seconds(cloud), {f: q for f, q in quota.items() if f in prices}, prices))
    return out
