"""Reliability policies: spot preemption handling, GPU taints, endpoint readiness.

- ``spot-checkpointing``: training on spot has a checkpoint location, and a termination grace
  period that fits inside the cloud's preemption notice (catalog: AWS 120 s, GCP 30 s) — a
  longer grace period is cut short by the cloud and the checkpoint is lost. Applies to
  SpotTrainingCluster and TrainingJob summaries, and to Kubernetes workloads not made by a
  gpuplane component that select spot nodes.
- ``gpu-pool-tainted``: GPU nodes carry a NoSchedule/NoExecute taint, so CPU pods never take
  (and keep awake) a GPU node. GKE taints GPU node pools itself.
- ``endpoint-readiness``: inference endpoints have a readiness probe, and request/progress
  timeouts at least as long as their cold-start budget (node start + image pull + weight load),
  the known failure of scale-from-zero GPU serving (knative/serving#13208, kserve/kserve#1247).
"""

from __future__ import annotations

from typing import Any

from components.catalog import load_catalog
from policies.framework import Config, ResourceRule
from policies.resources import (
    SPOT_SELECTORS,
    ResourceView,
    dig,
    duration_seconds,
    endpoint_facts,
    first,
    fmt,
    gpu_requests,
    label,
    number,
    pod_specs,
)


def _spot_pools(view: ResourceView) -> bool:
    s = view.summary
    if view.component == "SpotTrainingCluster":
        return any(isinstance(p, dict) and p.get("capacityType") == "spot" for p in s.get("pools") or []) or "spot" in (
            s.get("capacityFallback") or []
        )
    return s.get("capacityType") == "spot" or "spot" in (s.get("capacityFallback") or [])


def _spot_selector(spec: dict[str, Any]) -> tuple[bool, str | None]:
    sel = spec.get("nodeSelector") or {}
    for key, (value, cloud) in SPOT_SELECTORS.items():
        if isinstance(sel, dict) and str(sel.get(key, "")).lower() == value.lower():
            return True, cloud
    return False, None


def check_spot_checkpointing(view: ResourceView, cfg: Config) -> list[str]:
    catalog = load_catalog()
    margin = float(cfg.get("marginSeconds", 0))
    out: list[str] = []
    if view.component in ("SpotTrainingCluster", "TrainingJob"):
        if not _spot_pools(view):
            return []
        s = view.summary
        ckpt = first(s, "checkpointUrl", "checkpointBucket")
        if isinstance(ckpt, dict):
            ckpt = ckpt.get("url")
        if not ckpt:
            out.append(
                f"{label(view)} trains on spot without a checkpoint location. Give it a checkpoint bucket (checkpointUrl s3://... or gs://...) so a preempted run resumes instead of restarting."
            )
        cloud = s.get("cloud")
        grace = number(s.get("terminationGracePeriodSeconds"))
        if cloud in catalog.clouds and grace is not None:
            notice = catalog.notice_seconds(cloud) - margin
            if grace > notice:
                out.append(
                    f"{label(view)} has terminationGracePeriodSeconds={fmt(grace)}, longer than the {cloud} spot notice of {fmt(notice)} s: the node is gone before the checkpoint is written. Set it to {fmt(notice)} s or less."
                )
            elif grace <= 0:
                out.append(
                    f"{label(view)} has terminationGracePeriodSeconds={fmt(grace)}: no time to checkpoint on preemption. Set it to a value up to {fmt(notice)} s."
                )
        return out
    if view.managed:
        return []
    for path, spec in pod_specs(view):
        spot, cloud = _spot_selector(spec)
        if not spot:
            continue
        notice = (catalog.notice_seconds(cloud) if cloud else float(cfg.get("defaultNoticeSeconds", 30))) - margin
        grace = number(spec.get("terminationGracePeriodSeconds"))
        grace = 30.0 if grace is None else grace  # Kubernetes default
        if grace > notice:
            out.append(
                f"{label(view)} runs on spot nodes with {path}.terminationGracePeriodSeconds={fmt(grace)}, longer than the {cloud or 'assumed'} spot notice of {fmt(notice)} s. Set it to {fmt(notice)} s or less."
            )
    return out


SPOT_CHECKPOINTING = ResourceRule(
    name="spot-checkpointing",
    description="Checks whether spot training has a checkpoint bucket and a termination grace period inside the cloud's preemption notice.",
    check=check_spot_checkpointing,
    schema={
        "marginSeconds": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "Seconds the grace period must leave unused inside the notice.",
        },
        "defaultNoticeSeconds": {
            "type": "number",
            "minimum": 1,
            "default": 30,
            "description": "Notice assumed for spot pods whose cloud cannot be told (the shortest: GCP's 30 s).",
        },
    },
)

_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def check_tainted(view: ResourceView, cfg: Config) -> list[str]:
    effects = list(cfg.get("requiredEffects") or ["NoSchedule", "NoExecute"])
    taints: Any = None
    if view.component == "GpuNodePool":
        if view.summary.get("createsNodes") is False:
            return []
        taints = view.summary.get("taints") or []
    elif view.managed:
        return []
    elif view.type == "aws:eks/nodeGroup:NodeGroup":
        if not gpu_requests(view, load_catalog()):
            return []
        taints = view.props.get("taints") or []
    elif view.type == "kubernetes:karpenter.sh/v1:NodePool":
        reqs = dig(view.props, "spec.template.spec.requirements") or []
        if not any(isinstance(r, dict) and "gpu" in str(r.get("key", "")).lower() for r in reqs):
            return []
        taints = dig(view.props, "spec.template.spec.taints") or []
    else:
        return []  # GKE taints GPU node pools with nvidia.com/gpu=present:NoSchedule itself
    got = [_EFFECTS.get(str(t.get("effect")), str(t.get("effect"))) for t in taints if isinstance(t, dict)]
    if not any(e in effects for e in got):
        return [
            f"{label(view)} makes GPU nodes without a {' or '.join(effects)} taint, so any pod can land on (and keep awake) a GPU node. Add the taint nvidia.com/gpu=present:NoSchedule."
        ]
    return []


GPU_POOL_TAINTED = ResourceRule(
    name="gpu-pool-tainted",
    description="Checks whether GPU node pools are tainted so that only GPU workloads schedule onto them.",
    check=check_tainted,
    schema={
        "requiredEffects": {
            "type": "array",
            "items": {"type": "string", "enum": ["NoSchedule", "NoExecute", "PreferNoSchedule"]},
            "default": ["NoSchedule", "NoExecute"],
            "description": "Taint effects that count.",
        }
    },
)


def check_readiness(view: ResourceView, cfg: Config) -> list[str]:
    default_budget = float(cfg.get("coldStartBudgetSeconds", 300))
    out: list[str] = []
    if view.component == "InferenceEndpoint":
        e = endpoint_facts(view.summary)
        if not e["readiness"]:
            out.append(
                f"{label(view)} has no readiness probe: traffic reaches replicas before the model is loaded. Give it a readiness probe on /v2/health/ready."
            )
        budget, timeout = e["coldStartBudgetSeconds"], e["requestTimeoutSeconds"]
        if budget is not None and timeout is not None and timeout < budget:
            out.append(
                f"{label(view)} has requestTimeoutSeconds={fmt(timeout)}, shorter than its cold-start budget of {fmt(budget)} s: a request that wakes it from zero times out. Set requestTimeoutSeconds to at least {fmt(budget)}."
            )
        progress = e["progressDeadlineSeconds"]
        if budget is not None and progress is not None and progress < budget:
            out.append(
                f"{label(view)} has progressDeadlineSeconds={fmt(progress)}, shorter than its cold-start budget of {fmt(budget)} s: a revision starting from zero is marked failed. Set it to at least {fmt(budget)}."
            )
        return out
    if view.managed:
        return out
    p = view.props
    if view.type == "kubernetes:serving.knative.dev/v1:Service":
        containers = dig(p, "spec.template.spec.containers") or []
        if not any(isinstance(c, dict) and c.get("readinessProbe") for c in containers):
            out.append(
                f"{label(view)} has no readiness probe on its containers. Add one (e.g. httpGet /v2/health/ready)."
            )
        timeout = number(dig(p, "spec.template.spec.timeoutSeconds"))
        if timeout is not None and timeout < default_budget:
            out.append(
                f"{label(view)} has spec.template.spec.timeoutSeconds={fmt(timeout)}, shorter than the cold-start budget of {fmt(default_budget)} s. Raise it to at least {fmt(default_budget)}."
            )
        deadline = (dig(p, "spec.template.metadata.annotations") or {}).get("serving.knative.dev/progress-deadline")
        d = duration_seconds(deadline)
        if d is not None and d < default_budget:
            out.append(
                f"{label(view)} has progress-deadline {deadline}, shorter than the cold-start budget of {fmt(default_budget)} s. Raise it to at least {fmt(default_budget)} s."
            )
    elif view.type == "gcp:cloudrunv2/service:Service" and gpu_requests(view, load_catalog()):
        containers = dig(p, "template.containers") or []
        if not any(isinstance(c, dict) and (c.get("startupProbe") or c.get("readinessProbe")) for c in containers):
            out.append(
                f"{label(view)} has no startup probe: Cloud Run sends traffic before the model is loaded. Add template.containers[].startupProbe."
            )
        t = duration_seconds(dig(p, "template.timeout"))
        if t is not None and t < default_budget:
            out.append(
                f"{label(view)} has template.timeout={dig(p, 'template.timeout')}, shorter than the cold-start budget of {fmt(default_budget)} s. Raise it to at least {fmt(default_budget)} s."
            )
    return out


ENDPOINT_READINESS = ResourceRule(
    name="endpoint-readiness",
    description="Checks whether inference endpoints have readiness probes and timeouts consistent with their cold-start budget.",
    check=check_readiness,
    schema={
        "coldStartBudgetSeconds": {
            "type": "number",
            "minimum": 0,
            "default": 300,
            "description": "Cold-start budget assumed for endpoints that do not state their own (raw Knative / Cloud Run).",
        }
    },
)
