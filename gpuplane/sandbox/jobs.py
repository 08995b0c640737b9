"""What Kueue decided about each job: ``gpuplane sandbox jobs`` reads Kueue's Workloads and says, per job,
whether it is admitted (on which flavors), pending (with Kueue's reason), inadmissible (Kueue's message:
it can never fit), evicted or finished.

Contract: ``job_rows(workloads)`` is pure (Workload objects of ``kueue.x-k8s.io/v1beta2`` in, one ``JobRow``
per Workload out, Kueue's own condition messages quoted verbatim); ``format_rows`` renders them as a table.
``list_workloads`` is the one read from the sandbox. Nothing here changes the cluster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WORKLOADS = "/apis/kueue.x-k8s.io/v1beta2/workloads"
INADMISSIBLE_MARKERS = ("maximum capacity", "doesn't exist", "is inactive", "not found")
"""Phrases of Kueue's pending messages that no amount of waiting fixes (request beyond every flavor's
capacity, a missing or inactive queue)."""


@dataclass(frozen=True)
class JobRow:
    namespace: str
    job: str
    """The owning object, ``Kind/name`` (a TrainingJob's JobSet: ``JobSet/<name>``)."""
    workload: str
    queue: str
    cluster_queue: str
    state: str
    """``admitted``, ``pending``, ``inadmissible``, ``evicted``, ``quota-reserved`` or ``finished``."""
    flavors: dict[str, str]
    """Resource -> ResourceFlavor Kueue assigned (admitted workloads)."""
    reason: str
    message: str
    """Kueue's message for the state, verbatim."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conditions(wl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (wl.get("status") or {}).get("conditions", [])}


def _true(conds: dict[str, dict[str, Any]], kind: str) -> bool:
    return conds.get(kind, {}).get("status") == "True"


def job_row(wl: dict[str, Any]) -> JobRow:
    """One Workload as a row (pure)."""
    meta, status = wl.get("metadata") or {}, wl.get("status") or {}
    owner: dict[str, Any] = next(iter(meta.get("ownerReferences") or []), {})
    conds = _conditions(wl)
    flavors: dict[str, str] = {}
    for ps in (status.get("admission") or {}).get("podSetAssignments", []):
        flavors.update(ps.get("flavors") or {})
    if _true(conds, "Finished"):
        state, cond = "finished", conds["Finished"]
    elif _true(conds, "Admitted"):
        state, cond = "admitted", conds["Admitted"]
    elif _true(conds, "QuotaReserved"):
        state, cond = "quota-reserved", conds["QuotaReserved"]
    elif _true(conds, "Evicted"):
        state, cond = "evicted", conds["Evicted"]
    else:
        cond = conds.get("QuotaReserved", {})
        message = str(cond.get("message", ""))
        hopeless = cond.get("reason") == "Inadmissible" or any(m in message for m in INADMISSIBLE_MARKERS)
        state = "inadmissible" if hopeless else "pending"
    return JobRow(
        namespace=str(meta.get("namespace", "")),
        job=f"{owner.get('kind', '?')}/{owner.get('name', meta.get('name', '?'))}",
        workload=str(meta.get("name", "")),
        queue=str((wl.get("spec") or {}).get("queueName", "")),
        cluster_queue=str((status.get("admission") or {}).get("clusterQueue", "")),
        state=state,
        flavors=flavors,
        reason=str(cond.get("reason", "")),
        message=str(cond.get("message", "")),
    )


def job_rows(workloads: list[dict[str, Any]]) -> list[JobRow]:
    return sorted((job_row(w) for w in workloads), key=lambda r: (r.namespace, r.job))


def format_rows(rows: list[JobRow]) -> list[str]:
    """A table: job, queue, state, flavors; then Kueue's message for every job that is not admitted."""
    if not rows:
        return ["no Kueue workloads (no job was submitted to a queue)"]
    head = ("JOB", "QUEUE", "STATE", "FLAVORS")
    cells = [(f"{r.namespace}/{r.job}", r.queue, r.state, ",".join(sorted(set(r.flavors.values()))) or "-") for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *cells]]
    for r in rows:
        if r.state not in ("admitted", "finished") and r.message:
            lines.append(f"{r.namespace}/{r.job}: {r.state} ({r.reason}): {r.message}")
    return lines


def list_workloads(layout: Any, namespace: str | None = None) -> list[dict[str, Any]]:
    """Kueue's Workloads in the sandbox (all namespaces, or one)."""
    from gpuplane.sandbox.cluster import SandboxError, api

    path = f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}/workloads" if namespace else WORKLOADS
    code, body = api(layout, "GET", path, timeout=10)
    if code == 404:
        raise SandboxError(f"sandbox '{layout.name}' serves no Kueue Workloads: start it with "
                           f"`gpuplane sandbox up --controllers` (it runs Kueue)")
    if code != 200 or not isinstance(body, dict):
        raise SandboxError(f"listing Kueue workloads failed ({code}): {str(body)[:300]}")
    return list(body.get("items", []))
