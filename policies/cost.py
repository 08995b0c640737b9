"""Cost policies: the stack's budget, spot for training, scale to zero, idle timeouts.

- ``stack-budget`` (stack): the cost model (policies/costmodel.py) prices the whole graph with
  the usage profile from the policy config; the chosen hourly and monthly figures must stay
  under ``maxHourlyUsd`` / ``maxMonthlyUsd``. A resource whose price is unknown makes the
  budget uncheckable and is reported (unless ``allowUnknownPrices``), never counted as $0.
- ``training-on-spot``: training capacity is spot. A SpotTrainingCluster's first pool must be
  spot and on-demand pools may only follow as fallback (``allowOnDemandFallback``); a training
  pool elsewhere (``role: training`` or a ``gpuplane.dev/role: training`` label, or EFA /
  compact placement, which only multi-node training asks for) must be spot.
- ``endpoint-scale-to-zero``: GPU inference endpoints keep at most ``maxMinReplicas`` replicas
  when idle (default 0).
- ``idle-timeout-bounds``: how long idle capacity is kept (endpoint scale-down delay, Knative
  scale-to-zero retention, Karpenter ``consolidateAfter``) stays within bounds: long enough to
  avoid paying a GPU cold start per request burst, short enough not to pay for idle GPUs.
- ``two-tier-steady-bounded``: a TwoTierEndpoint's steady tier (exempt from
  ``endpoint-scale-to-zero`` with a reason) keeps at most ``maxSteadyReplicas`` replicas always
  on, and its burst tier scales to zero. The burst tier itself is an InferenceEndpoint, so
  ``endpoint-scale-to-zero``, ``endpoint-private-or-authenticated`` and ``stack-budget`` check it
  like any other endpoint.
"""

from __future__ import annotations

from typing import Any

from components.catalog import load_catalog
from policies.costmodel import Usage, UsageError, price_resources
from policies.framework import Config, ResourceRule, StackRule
from policies.gpuroutes import unpriced_compute
from policies.resources import (
    ResourceView,
    dig,
    duration_seconds,
    endpoint_facts,
    fmt,
    gpu_requests,
    label,
    number,
    role_of,
)

_FIGURES = ["min", "expected", "max"]


def check_budget(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    try:
        usage = Usage.from_dict(cfg.get("usage") or {})
    except UsageError as e:
        return [(None, f"The stack-budget policy config is wrong: {e}")]
    report = price_resources(views, usage, load_catalog())
    out: list[tuple[str | None, str]] = []
    hourly_fig, monthly_fig = str(cfg.get("hourlyFigure", "max")), str(cfg.get("monthlyFigure", "expected"))
    max_h, max_m = number(cfg.get("maxHourlyUsd")), number(cfg.get("maxMonthlyUsd"))
    ranked = sorted(report.priced, key=lambda i: -(i.hourly.max if i.hourly else 0.0))[:3]
    top = ", ".join(f"{i.name}{f' ({i.part})' if i.part else ''} ${i.hourly.max:,.2f}/h" for i in ranked if i.hourly)
    h = getattr(report.hourly, hourly_fig)
    if max_h is not None and h > max_h:
        out.append(
            (
                None,
                f"The stack's {hourly_fig} hourly cost is ${h:,.2f}/h, over the budget of ${max_h:,.2f}/h (maxHourlyUsd). Dearest: {top}. Lower their maxNodes / maxReplicas, use spot, or raise maxHourlyUsd.",
            )
        )
    m = getattr(report.monthly, monthly_fig)
    if max_m is not None and m > max_m:
        out.append(
            (
                None,
                f"The stack's {monthly_fig} monthly cost is ${m:,.0f}, over the budget of ${max_m:,.0f} (maxMonthlyUsd; usage {usage.to_json()}). Dearest: {top}. Scale pools to zero when idle, use spot, or raise maxMonthlyUsd.",
            )
        )
    if not cfg.get("allowUnknownPrices", False):
        for v, why in unpriced_compute(views):
            out.append(
                (
                    v.urn,
                    f"The budget cannot be checked: {label(v)} launches compute whose price is unknown ({why}); it counts as unknown, not $0. Use a priced route (a GpuNodePool, an EKS node group, a GKE node pool), or set allowUnknownPrices: true.",
                )
            )
        for item in report.unknown:
            part = f" ({item.part})" if item.part else ""
            out.append(
                (
                    item.urn,
                    f"The budget cannot be checked: the price of {item.type.rsplit(':', 1)[-1]} '{item.name}'{part} is unknown ({item.basis.rstrip('.')}). Add the price to the catalog, or set allowUnknownPrices: true.",
                )
            )
    return out


STACK_BUDGET = StackRule(
    name="stack-budget",
    description="Checks whether the stack's hourly and monthly cost, priced by the cost model from the catalog, stay within budget.",
    check=check_budget,
    schema={
        "maxHourlyUsd": {
            "type": "number",
            "minimum": 0,
            "default": 500,
            "description": "Budget in USD per hour for the hourlyFigure.",
        },
        "maxMonthlyUsd": {
            "type": "number",
            "minimum": 0,
            "default": 50000,
            "description": "Budget in USD per month (730 h) for the monthlyFigure.",
        },
        "hourlyFigure": {
            "type": "string",
            "enum": _FIGURES,
            "default": "max",
            "description": "Which hourly figure must fit the budget: every pool at its maximum by default.",
        },
        "monthlyFigure": {
            "type": "string",
            "enum": _FIGURES,
            "default": "expected",
            "description": "Which monthly figure must fit the budget.",
        },
        "allowUnknownPrices": {
            "type": "boolean",
            "default": False,
            "description": "Pass even when some resources have no catalog price.",
        },
        "usage": {
            "type": "object",
            "default": {},
            "description": "Usage profile (the stack's gpuplane:usage): trainingHoursPerMonth, endpointBusyHoursPerDay, storageGib, expectedNodeFraction.",
        },
    },
)


def check_training_on_spot(view: ResourceView, cfg: Config) -> list[str]:
    allow_fallback = bool(cfg.get("allowOnDemandFallback", True))
    allowed = list(cfg.get("allowedCapacityTypes") or ["spot"])
    if view.component == "SpotTrainingCluster":
        order = [c for c in view.summary.get("capacityFallback") or [] if isinstance(c, str)]
        if not order:
            order = [str(p.get("capacityType")) for p in view.summary.get("pools") or [] if isinstance(p, dict)]
        out: list[str] = []
        if order and order[0] not in allowed:
            out.append(
                f"{label(view)} tries {order[0]} capacity first (capacityFallback {order}). Put spot first; on-demand may only follow as fallback."
            )
        fallback = [c for c in order[1:] if c not in allowed]
        if fallback and not allow_fallback:
            out.append(
                f"{label(view)} falls back to {fallback} capacity, which this stack does not allow (allowOnDemandFallback: false). Set capacityFallback to {allowed}, or set allowOnDemandFallback: true."
            )
        return out
    if view.component == "ModelPipeline":
        training = view.summary.get("training")
        order = [c for c in (training.get("capacityFallback") or []) if isinstance(c, str)] if isinstance(training, dict) else []
        if order and order[0] not in allowed:
            return [
                f"{label(view)} trains on {order[0]} capacity first (its training cluster's capacityFallback {order}). Give the pipeline a SpotTrainingCluster that tries spot first."
            ]
        return []
    if view.managed and (not view.component or "SpotTrainingCluster" in view.component_ancestors):
        return []  # judged on the component / the SpotTrainingCluster as a whole
    if role_of(view) != "training":
        return []
    for r in gpu_requests(view, load_catalog()):
        if r.capacity and r.capacity not in allowed:
            return [
                f"{label(view)} is a training pool on {r.capacity.replace('_', '-')} capacity. Set capacityType to spot (use a SpotTrainingCluster for on-demand fallback), or exempt it with gpuplane/exempt: training-on-spot and a reason."
            ]
    return []


TRAINING_ON_SPOT = ResourceRule(
    name="training-on-spot",
    description="Checks whether training capacity (pools, training clusters and model pipelines' training steps) runs on spot, with on-demand only as a fallback.",
    check=check_training_on_spot,
    schema={
        "allowOnDemandFallback": {
            "type": "boolean",
            "default": True,
            "description": "Allow on-demand pools after the spot pools of a SpotTrainingCluster.",
        },
        "allowedCapacityTypes": {
            "type": "array",
            "items": {"type": "string", "enum": ["spot", "on_demand", "capacity_block"]},
            "default": ["spot"],
            "description": "Capacity types training pools may use (add capacity_block for reserved blocks).",
        },
    },
)


KNATIVE_MIN_SCALE = "autoscaling.knative.dev/min-scale"


def _endpoint_min_replicas(view: ResourceView) -> tuple[float | None, str] | None:
    """(min replicas, where it is set) for GPU endpoints, None when the resource is not one."""
    if view.component == "InferenceEndpoint":
        e = endpoint_facts(view.summary)
        if not e["gpus"]:
            return None  # CPU endpoints cost little when idle
        return e["minReplicas"], "minScale"
    if view.managed:
        return None
    t, p = view.type, view.props
    if t == "kubernetes:serving.knative.dev/v1:Service":
        containers = dig(p, "spec.template.spec.containers") or []
        gpu = any(isinstance(c, dict) and "nvidia.com/gpu" in (dig(c, "resources.limits") or {}) for c in containers)
        if not gpu:
            return None
        raw = (dig(p, "spec.template.metadata.annotations") or {}).get(KNATIVE_MIN_SCALE)
        # Knative's own default min-scale is 0 unless the cluster changes it.
        return (number(raw) if raw is not None else 0.0), f"spec.template.metadata.annotations['{KNATIVE_MIN_SCALE}']"
    if t in ("gcp:cloudrunv2/service:Service", "aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
        reqs = gpu_requests(view, load_catalog())
        if not reqs:
            return None
        where = (
            "template.scaling.minInstanceCount"
            if t.startswith("gcp")
            else "productionVariants[].managedInstanceScaling.minInstanceCount"
        )
        return max((r.min_nodes or 0.0) for r in reqs), where
    return None


def check_scale_to_zero(view: ResourceView, cfg: Config) -> list[str]:
    found = _endpoint_min_replicas(view)
    if found is None:
        return []
    mn, where = found
    limit = float(cfg.get("maxMinReplicas", 0))
    if mn is not None and mn > limit:
        return [
            f"{label(view)} keeps {fmt(mn)} GPU replica(s) when idle ({where}); at most {fmt(limit)} are allowed. Set {where} to {fmt(limit)} so it scales to zero, or exempt it with gpuplane/exempt: endpoint-scale-to-zero and a reason."
        ]
    return []


ENDPOINT_SCALE_TO_ZERO = ResourceRule(
    name="endpoint-scale-to-zero",
    description="Checks whether GPU inference endpoints scale to zero when idle.",
    check=check_scale_to_zero,
    schema={
        "maxMinReplicas": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Most replicas an idle GPU endpoint may keep.",
        }
    },
)


def _idle_settings(view: ResourceView) -> list[tuple[float | None, str]]:
    t, p = view.type, view.props
    if view.component == "InferenceEndpoint":
        v = endpoint_facts(view.summary)["scaleDownDelaySeconds"]
        return [] if v is None else [(v, "scaleDownDelaySeconds")]
    if view.managed:
        return []
    if t == "kubernetes:serving.knative.dev/v1:Service":
        ann = dig(p, "spec.template.metadata.annotations") or {}
        out = []
        for key in (
            "autoscaling.knative.dev/scale-down-delay",
            "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
        ):
            if key in ann:
                out.append((duration_seconds(ann[key]), f"annotation {key}"))
        return out
    if t == "kubernetes:karpenter.sh/v1:NodePool":
        raw = dig(p, "spec.disruption.consolidateAfter")
        if raw is None or raw == "Never":
            return []
        return [(duration_seconds(raw), "spec.disruption.consolidateAfter")]
    return []


def check_idle_timeouts(view: ResourceView, cfg: Config) -> list[str]:
    lo, hi = float(cfg.get("minIdleSeconds", 30)), float(cfg.get("maxIdleSeconds", 1800))
    out = []
    for seconds, where in _idle_settings(view):
        if seconds is None:
            continue
        if seconds > hi:
            out.append(
                f"{label(view)} keeps idle capacity for {fmt(seconds)} s ({where}), over the maximum of {fmt(hi)} s: idle GPUs are paid for. Set it to {fmt(hi)} s or less."
            )
        elif seconds < lo:
            out.append(
                f"{label(view)} releases idle capacity after {fmt(seconds)} s ({where}), under the minimum of {fmt(lo)} s: every short pause would cost a GPU cold start. Set it to at least {fmt(lo)} s."
            )
    return out


IDLE_TIMEOUT_BOUNDS = ResourceRule(
    name="idle-timeout-bounds",
    description="Checks whether idle timeouts (scale-down delays, consolidation delays) are within the allowed bounds.",
    check=check_idle_timeouts,
    schema={
        "minIdleSeconds": {
            "type": "number",
            "minimum": 0,
            "default": 30,
            "description": "Shortest idle timeout, seconds.",
        },
        "maxIdleSeconds": {
            "type": "number",
            "minimum": 0,
            "default": 1800,
            "description": "Longest idle timeout, seconds.",
        },
    },
)


def check_two_tier(view: ResourceView, cfg: Config) -> list[str]:
    """The steady tier's exemption from scale-to-zero holds only while it stays small and the burst tier scales to zero."""
    if view.component != "TwoTierEndpoint":
        return []
    s = view.summary
    raw_steady, raw_burst = s.get("steady"), s.get("burst")
    steady: dict[str, Any] = raw_steady if isinstance(raw_steady, dict) else {}
    burst: dict[str, Any] = raw_burst if isinstance(raw_burst, dict) else {}
    out = []
    limit = float(cfg.get("maxSteadyReplicas", 2))
    kept = number(steady.get("minScale"))
    if kept is not None and kept > limit:
        out.append(
            f"{label(view)} keeps {fmt(kept)} steady replica(s) always on; at most {fmt(limit)} are allowed (maxSteadyReplicas). Lower steady_replicas and let the burst tier take the surges, or raise maxSteadyReplicas."
        )
    burst_min = number(burst.get("minScale"))
    if burst_min is None or burst_min > 0:
        out.append(
            f"{label(view)}'s burst tier keeps {fmt(burst_min) if burst_min is not None else 'an unknown number of'} instance(s) when idle. Set the burst tier's min scale to 0: the steady tier is the only always-on capacity."
        )
    return out


TWO_TIER_STEADY_BOUNDED = ResourceRule(
    name="two-tier-steady-bounded",
    description="Checks whether a two-tier endpoint keeps its always-on steady tier within bounds and its burst tier scaling to zero.",
    check=check_two_tier,
    schema={
        "maxSteadyReplicas": {
            "type": "integer",
            "minimum": 0,
            "default": 2,
            "description": "Most always-on GPU replicas a two-tier endpoint's steady tier may keep (it is exempt from endpoint-scale-to-zero).",
        }
    },
)
