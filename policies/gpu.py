"""GPU policies: which GPU types a stack or team may use, and how many.

- ``gpu-types-allowed``: every GPU request (pools, training clusters, endpoints, and raw node
  groups / node pools / EC2 and GCE instances / Cloud Run services / SageMaker variants, and the
  routes of policies/gpuroutes.py: launch templates and configurations, spot requests,
  autoscaling groups, fleets, Karpenter NodePools of any API version, GKE default / inline pools
  and auto-provisioning, instance templates — not made by a gpuplane component) names an
  accelerator allowed for the stack, and for the resource's ``team`` tag. A GPU-family type the
  catalog does not know is reported, never passed.
- ``gpu-pool-max-nodes``: no GPU pool may grow past ``maxNodesPerPool`` nodes.
- ``gpu-total-max`` (stack): the GPUs the stack can hold at once, summed over pools and managed
  endpoints at their maximum size, stay under ``maxTotalGpus``.

Resources made by a gpuplane component are judged through the component's summary (portable
across clouds), so one problem is reported once.
"""

from __future__ import annotations

from components.catalog import load_catalog
from policies.framework import Config, ResourceRule, StackRule
from policies.gpuroutes import UNKNOWN_PREFIX
from policies.resources import (
    GpuRequest,
    ResourceView,
    descends_from,
    endpoint_facts,
    fmt,
    gpu_requests,
    label,
    tags_of,
)

_CATALOG_GPUS = sorted(load_catalog().accelerators)


def _requests(view: ResourceView) -> list[GpuRequest]:
    if view.managed and not view.component:
        return []
    return gpu_requests(view, load_catalog())


def check_gpu_types(view: ResourceView, cfg: Config) -> list[str]:
    allowed = list(cfg.get("allowedGpus") or [])
    team = tags_of(view).get("team")
    team_allowed = (cfg.get("teamGpus") or {}).get(team) if isinstance(team, str) else None
    out: list[str] = []
    for acc in dict.fromkeys(r.accelerator for r in _requests(view)):
        if acc.startswith(UNKNOWN_PREFIX):
            out.append(
                f"{label(view)} asks for {acc.removeprefix(UNKNOWN_PREFIX)}, a GPU type the catalog does not know, so it cannot be checked against allowedGpus. Use a catalog instance type, or add it to the catalog."
            )
        elif acc not in allowed:
            out.append(
                f"{label(view)} asks for {acc}, which this stack does not allow (allowedGpus: {', '.join(allowed) or 'none'}). Use one of those, or add {acc} to allowedGpus in the stack's policy config."
            )
        elif team_allowed is not None and acc not in team_allowed:
            out.append(
                f"{label(view)} asks for {acc}, which team '{team}' may not use (teamGpus.{team}: {', '.join(team_allowed) or 'none'}). Use one of those, or add {acc} to teamGpus.{team}."
            )
    return out


GPU_TYPES_ALLOWED = ResourceRule(
    name="gpu-types-allowed",
    description="Checks whether every GPU a resource asks for is a type allowed for the stack and for the resource's team.",
    check=check_gpu_types,
    schema={
        "allowedGpus": {
            "type": "array",
            "items": {"type": "string", "enum": _CATALOG_GPUS},
            "default": _CATALOG_GPUS,
            "description": "Accelerators the stack may use (catalog names).",
        },
        "teamGpus": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "default": {},
            "description": "Per team (the 'team' tag): accelerators that team may use.",
        },
    },
)


def check_pool_max_nodes(view: ResourceView, cfg: Config) -> list[str]:
    limit = float(cfg.get("maxNodesPerPool", 16))
    out: list[str] = []
    if view.component in ("InferenceEndpoint", "TrainingJob", "BatchJob"):
        return out  # replicas / tasks, not pool nodes
    for r in _requests(view):
        if view.type.startswith("gcp:cloudrunv2") or view.type.startswith("aws:sagemaker"):
            continue
        if r.max_nodes is not None and r.max_nodes > limit:
            where = f" (pool {r.instance_type})" if view.component == "SpotTrainingCluster" else ""
            out.append(
                f"{label(view)}{where} may grow to {fmt(r.max_nodes)} nodes, over the limit of {fmt(limit)} per GPU pool. Lower maxNodes to {fmt(limit)} or less, or raise maxNodesPerPool in the stack's policy config."
            )
    return out


GPU_POOL_MAX_NODES = ResourceRule(
    name="gpu-pool-max-nodes",
    description="Checks whether every GPU node pool stays within the maximum node count per pool.",
    check=check_pool_max_nodes,
    schema={
        "maxNodesPerPool": {
            "type": "integer",
            "minimum": 1,
            "default": 16,
            "description": "Most nodes one GPU pool may grow to.",
        }
    },
)


def _has_pool_children(views: list[ResourceView], cluster: ResourceView) -> bool:
    return any(v.component == "GpuNodePool" and descends_from(views, v, cluster.urn) for v in views)


def check_total_gpus(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    limit = float(cfg.get("maxTotalGpus", 64))
    contributions: list[tuple[float, ResourceView]] = []
    for v in views:
        if v.component == "TrainingJob" or (
            v.component == "InferenceEndpoint" and endpoint_facts(v.summary)["platform"] == "knative"
        ) or (v.component == "BatchJob" and v.summary.get("platform") == "kueue"):
            continue  # these run on pools that are counted already
        if v.component == "SpotTrainingCluster" and _has_pool_children(views, v):
            continue
        gpus = sum((r.max_nodes or 0.0) * r.gpus_per_node for r in _requests(v))
        if gpus:
            contributions.append((gpus, v))
    total = sum(g for g, _ in contributions)
    if total <= limit:
        return []
    top = ", ".join(f"{label(v)} {fmt(g)}" for g, v in sorted(contributions, key=lambda x: -x[0])[:3])
    return [
        (
            None,
            f"The stack can hold {fmt(total)} GPUs at once (pools and endpoints at their maximum size), over the limit of {fmt(limit)}. Largest: {top}. Lower their maxNodes / maxReplicas, or raise maxTotalGpus in the stack's policy config.",
        )
    ]


GPU_TOTAL_MAX = StackRule(
    name="gpu-total-max",
    description="Checks whether the GPUs the stack can hold at once stay within the stack's maximum.",
    check=check_total_gpus,
    schema={
        "maxTotalGpus": {
            "type": "integer",
            "minimum": 0,
            "default": 64,
            "description": "Most GPUs the stack may hold at once (sum of max nodes x GPUs per node).",
        }
    },
)
