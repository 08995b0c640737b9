"""The cost-aware dispatcher's decision, as a pure function: which worker clusters a pending job goes to, and why.

``rank(job, workers, residency, catalog)`` scores every worker that may take the job, in dollars
for the whole job, from catalog facts only:

- compute: the worker's $/GPU-hour for the flavor the manager assigned x GPUs x expected hours;
- preemption risk (spot flavors): expected preemptions (rate x hours) x what each costs — the
  restart, plus half a checkpoint interval of lost work when the cloud's notice is too short for
  an emergency checkpoint (AWS 120 s vs GCP 30 s, catalog) — at the same $/h
  (the Young/Daly interval sqrt(2·C/λ), as ``gpuplane simulate training`` models it);
- data distance: egress of the job's data from its region to the worker's (catalog egress.csv)
  plus the transfer time, valued at the job's own $/h (its GPUs wait for the data);
- free quota: a worker whose ClusterQueue cannot admit the job now ranks after every worker
  that can (it stays a fallback; its cost gets the expected queue wait at the job's $/h).

Residency rules (the policy pack's ``allowed-regions`` config: region globs and jurisdictions)
and unreachable workers exclude clusters outright, as does a worker that does not offer the
flavor. When nothing is left, ``Decision.error`` says why, once, with the fix. The Kubernetes
loop around this function is ``controller.py``; ``gpuplane simulate dispatch`` replays traces
through it.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SPOT_PREEMPTIONS_PER_HOUR = 0.05
"""Spot preemption rate assumed per running hour (one every 20 h), as ``gpuplane simulate training``'s default."""
DEFAULT_CHECKPOINT_SECONDS = 60.0
"""Time to write an emergency checkpoint; a notice shorter than this loses work."""
DEFAULT_RESTART_HOURS = 0.1
DEFAULT_QUEUE_WAIT_HOURS = 1.0
"""Expected wait for quota on a worker that cannot admit the job now (it ranks after those that can)."""


@dataclass(frozen=True)
class WorkerState:
    """What the dispatcher knows about one worker cluster (MultiKueueCluster annotations + its ClusterQueue status)."""

    name: str
    cloud: str
    region: str
    notice_seconds: int
    usd_per_gpu_hour: dict[str, float]
    """Flavor -> $ per GPU-hour, for the flavors the worker offers."""
    free_gpus: dict[str, int]
    """Flavor -> GPUs of quota not reserved now (nominal minus reserved, in the federation's ClusterQueue)."""
    reachable: bool = True
    unreachable_reason: str = ""


@dataclass(frozen=True)
class JobRequest:
    """A pending workload as the dispatcher sees it."""

    key: str
    """``namespace/name`` of the Workload."""
    flavor: str
    """The flavor the manager's ClusterQueue assigned at quota reservation."""
    gpus: int
    capacity: str = "on_demand"
    """``spot`` / ``on_demand`` / ``reserved``: spot adds the preemption risk."""
    hours: float = 1.0
    """Expected GPU runtime in hours (annotation ``gpuplane.dev/expected-hours``; default 1)."""
    data_cloud: str | None = None
    data_region: str | None = None
    data_gib: float = 0.0


@dataclass(frozen=True)
class Residency:
    """Where jobs may run: the ``allowed-regions`` policy's config (glob patterns and jurisdictions)."""

    allowed_regions: tuple[str, ...] = ("*",)
    allowed_jurisdictions: tuple[str, ...] = ()
    source: str = "default (no residency rule)"

    @classmethod
    def from_policy_config(cls, config: dict[str, Any], source: str) -> Residency:
        rule = config.get("allowed-regions") or {}
        if isinstance(rule, str):  # just an enforcement level
            rule = {}
        return cls(tuple(rule.get("allowedRegions") or ["*"]), tuple(rule.get("allowedJurisdictions") or []), source)

    def excludes(self, catalog: Any, cloud: str, region: str) -> str | None:
        """Why a region is excluded, or None when jobs may run there."""
        if not any(fnmatch.fnmatchcase(region, p) for p in self.allowed_regions):
            return f"region {region} is outside allowedRegions {list(self.allowed_regions)}"
        if self.allowed_jurisdictions:
            r = catalog.region(cloud, region)
            juris = r.jurisdiction if r is not None else None
            if juris not in self.allowed_jurisdictions:
                return f"region {region} ({juris or 'unknown jurisdiction'}) is outside allowedJurisdictions {list(self.allowed_jurisdictions)}"
        return None


@dataclass(frozen=True)
class Score:
    worker: str
    has_capacity: bool
    compute_usd: float
    preemption_usd: float
    egress_usd: float
    transfer_hours: float
    wait_usd: float
    usd_per_gpu_hour: float
    notice_seconds: int

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.preemption_usd + self.egress_usd + self.wait_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "totalUsd": round(self.total_usd, 4),
            "computeUsd": round(self.compute_usd, 4),
            "preemptionUsd": round(self.preemption_usd, 4),
            "egressUsd": round(self.egress_usd, 4),
            "transferHours": round(self.transfer_hours, 4),
            "waitUsd": round(self.wait_usd, 4),
            "hasCapacity": self.has_capacity,
            "usdPerGpuHour": self.usd_per_gpu_hour,
            "noticeSeconds": self.notice_seconds,
        }


@dataclass(frozen=True)
class Decision:
    job: str
    nominated: tuple[str, ...]
    scores: tuple[Score, ...]
    """Eligible workers, best first."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Worker -> why it may not take the job."""
    error: str | None = None
    """Set when no worker may take the job: what is wrong and the fix."""

    def explain(self) -> dict[str, Any]:
        """The record kept on the Workload (annotation) and in the event."""
        out: dict[str, Any] = {"nominated": list(self.nominated), "scores": [s.to_dict() for s in self.scores]}
        if self.excluded:
            out["excluded"] = dict(sorted(self.excluded.items()))
        if self.error:
            out["error"] = self.error
        return out


def _preemption_usd(job: JobRequest, usd_per_hour: float, notice_seconds: int, rate: float, checkpoint_seconds: float, restart_hours: float) -> float:
    if job.capacity != "spot" or rate <= 0:
        return 0.0
    c_hours = checkpoint_seconds / 3600.0
    interval = math.sqrt(2 * c_hours / rate)  # Young/Daly
    lost = 0.0 if notice_seconds >= checkpoint_seconds else interval / 2
    return rate * job.hours * (restart_hours + lost) * usd_per_hour


def rank(
    job: JobRequest,
    workers: list[WorkerState],
    residency: Residency,
    catalog: Any,
    *,
    nominate: int = 1,
    preemptions_per_hour: float = DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
    checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
    restart_hours: float = DEFAULT_RESTART_HOURS,
    queue_wait_hours: float = DEFAULT_QUEUE_WAIT_HOURS,
) -> Decision:
    """Score the workers for one job and nominate the best ``nominate`` of them (see the module docstring)."""
    excluded: dict[str, str] = {}
    scores: list[Score] = []
    for w in workers:
        if not w.reachable:
            excluded[w.name] = f"unreachable: {w.unreachable_reason}"
            continue
        why = residency.excludes(catalog, w.cloud, w.region)
        if why is not None:
            excluded[w.name] = f"residency: {why} ({residency.source})"
            continue
        price = w.usd_per_gpu_hour.get(job.flavor)
        if price is None:
            excluded[w.name] = f"does not offer flavor {job.flavor!r} (offers {sorted(w.usd_per_gpu_hour)})"
            continue
        usd_per_hour = price * job.gpus
        egress_usd, transfer_h = 0.0, 0.0
        if job.data_gib > 0 and job.data_cloud:
            e = catalog.egress(job.data_cloud, job.data_region, w.cloud, w.region)
            egress_usd = job.data_gib * e.usd_per_gib
            transfer_h = e.transfer_seconds(job.data_gib) / 3600.0
        has_capacity = w.free_gpus.get(job.flavor, 0) >= job.gpus
        wait_h = transfer_h + (0.0 if has_capacity else queue_wait_hours)
        scores.append(
            Score(
                worker=w.name,
                has_capacity=has_capacity,
                compute_usd=usd_per_hour * job.hours,
                preemption_usd=_preemption_usd(job, usd_per_hour, w.notice_seconds, preemptions_per_hour, checkpoint_seconds, restart_hours),
                egress_usd=egress_usd,
                transfer_hours=transfer_h,
                wait_usd=usd_per_hour * wait_h,
                usd_per_gpu_hour=price,
                notice_seconds=w.notice_seconds,
            )
        )
    scores.sort(key=lambda s: (not s.has_capacity, s.total_usd, s.worker))
    error = None if scores else _no_worker_error(job, workers, excluded, residency)
    return Decision(job.key, tuple(s.worker for s in scores[:nominate]), tuple(scores), excluded, error)


def _no_worker_error(job: JobRequest, workers: list[WorkerState], excluded: dict[str, str], residency: Residency) -> str:
    if not workers:
        return f"{job.key}: the federation has no worker clusters. To fix: add workers to the TrainingFederation."
    reasons = list(excluded.values())
    if all(r.startswith("unreachable") for r in reasons):
        detail = "; ".join(f"{k}: {v.removeprefix('unreachable: ')}" for k, v in excluded.items())
        return f"{job.key}: every worker cluster is unreachable ({detail}). To fix: check each MultiKueueCluster's kubeconfig Secret and that its API server is up."
    if all(r.startswith("residency") for r in reasons):
        where = ", ".join(f"{w.name} ({w.cloud} {w.region})" for w in workers)
        return (
            f"{job.key}: the residency rule excludes every worker ({where}): allowedRegions {list(residency.allowed_regions)}, "
            f"allowedJurisdictions {list(residency.allowed_jurisdictions) or 'any'} ({residency.source}). "
            "To fix: add a worker in an allowed region, or widen allowed-regions in the policy config."
        )
    offered = sorted({f for w in workers for f in w.usd_per_gpu_hour})
    if all("does not offer flavor" in r for r in reasons):
        return f"{job.key}: no worker offers flavor {job.flavor!r} (offered: {offered}). To fix: offer it on a worker (TrainingFederation workers[*].flavors), or submit the job to a flavor a worker offers."
    detail = "; ".join(f"{k}: {v}" for k, v in sorted(excluded.items()))
    return f"{job.key}: no worker may take the job ({detail}). To fix: see each worker's reason."
