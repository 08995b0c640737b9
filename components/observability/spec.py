"""Observability's spec: args, the frozen ``ObservabilityPlan``, declared features and the pure planner
``plan_observability``.

Creates nothing. The backend is ``prometheus.py`` (kube-prometheus-stack, monitors, alert rules,
dashboards from ``dashboards/*.json``); component.py's module docstring describes what it makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:Observability"

FEATURES = FeatureSupport(
    "kube-prometheus-stack",
    supported=frozenset({Feature.GPU_METRICS}),
    missing={
        Feature.MANAGED_PROMETHEUS: (
            "Amazon Managed Service for Prometheus needs an in-cluster collector remote-writing through IRSA "
            "and a separate Amazon Managed Grafana, and GKE's Managed Service for Prometheus reads its own "
            "PodMonitoring/Rules resources (monitoring.googleapis.com), not the Prometheus Operator resources "
            "and dashboards made here; gpuplane runs kube-prometheus-stack in the cluster on every cloud "
            "(GKE's managed collection of system and DCGM metrics stays on beside it)"
        ),
    },
)


class ObservabilityArgs(TypedDict, total=False):
    """Arguments of ``Observability``."""

    cluster: Required[KubernetesCluster]
    """The cluster to observe (EKS, GKE or existing). Required."""
    prometheus: NotRequired[Literal["in-cluster", "managed"]]
    """``in-cluster``: kube-prometheus-stack in the cluster. ``managed`` (the cloud's managed Prometheus) is
    declared but not offered; asking for it fails with the reason. Default ``in-cluster``."""
    namespace: NotRequired[str]
    """Namespace of the stack, its monitors, rules and dashboards. Default ``monitoring``."""
    retention_days: NotRequired[int]
    """Days of samples Prometheus keeps (on its pod's disk). Default 15."""
    scrape_interval_seconds: NotRequired[int]
    """Scrape interval of every monitor made here, in seconds. Default 15."""
    grafana: NotRequired[bool]
    """Install Grafana with the dashboards. Default True."""
    cold_start_slo_seconds: NotRequired[float]
    """Cold-start SLO, in seconds: a replica whose measured cold start (process start to ready) exceeds it,
    or an activator whose held requests' p99 over 15 minutes exceeds it, fires ``GpuplaneColdStartSloBreach``.
    Default 120."""
    idle_gpu_utilization_percent: NotRequired[float]
    """A GPU below this utilisation (DCGM_FI_DEV_GPU_UTIL, %) counts as idle. Default 5."""
    idle_gpu_minutes: NotRequired[int]
    """Minutes a GPU must stay idle before ``GpuplaneIdleGpu`` fires. Default 30."""
    gpu_hour_usd: NotRequired[float]
    """Price of one GPU-hour, in USD, for the GPU dashboard's idle-cost panel (a recipe passes the catalog
    price of the cluster's GPU pool). Default 0 (the panel then shows $0; the idle GPU-hours stay right)."""
    preemption_loop_restarts: NotRequired[int]
    """Training restarts within ``preemption_loop_window_hours`` that, without progress, fire
    ``GpuplaneTrainingPreemptionLoop``. Default 3."""
    preemption_loop_window_hours: NotRequired[int]
    """Window of the preemption-loop alert, in hours. Default 2."""
    preemption_loop_min_steps: NotRequired[int]
    """Fewer training steps than this over the window counts as no progress. Default 100."""
    training_metrics_port: NotRequired[int]
    """Port training pods serve Prometheus metrics on (``--metrics-port`` of workloads/training). Default 9090."""


@dataclass(frozen=True)
class ObservabilityPlan:
    name: str
    cloud: str
    """``aws``, ``gcp`` or ``kubernetes`` (the cluster's facts)."""
    namespace: str
    retention_days: int
    scrape_interval_seconds: int
    grafana: bool
    cold_start_slo_seconds: float
    idle_gpu_utilization_percent: float
    idle_gpu_minutes: int
    gpu_hour_usd: float
    preemption_loop_restarts: int
    preemption_loop_window_hours: int
    preemption_loop_min_steps: int
    training_metrics_port: int
    tags: dict[str, str] = field(default_factory=dict)
    """The cluster's tags (what tagging policies read; Kubernetes objects carry no cloud tags)."""

    def summary(self) -> dict[str, object]:
        """The plan as the component's registered ``gpuplane`` input."""
        return {
            "implementation": FEATURES.implementation,
            "cloud": self.cloud,
            "namespace": self.namespace,
            "retentionDays": self.retention_days,
            "grafana": self.grafana,
            "coldStartSloSeconds": self.cold_start_slo_seconds,
            "idleGpuUtilizationPercent": self.idle_gpu_utilization_percent,
            "idleGpuMinutes": self.idle_gpu_minutes,
            "tags": dict(self.tags),
        }


_KNOWN_KEYS = set(ObservabilityArgs.__annotations__)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DEFAULTS: dict[str, object] = {
    "namespace": "monitoring", "retention_days": 15, "scrape_interval_seconds": 15, "grafana": True,
    "cold_start_slo_seconds": 120.0, "idle_gpu_utilization_percent": 5.0, "idle_gpu_minutes": 30,
    "gpu_hour_usd": 0.0, "preemption_loop_restarts": 3, "preemption_loop_window_hours": 2,
    "preemption_loop_min_steps": 100, "training_metrics_port": 9090,
}
# (field, smallest allowed, largest allowed or None, integral)
_RANGES: tuple[tuple[str, float, float | None, bool], ...] = (
    ("retention_days", 1, None, True), ("scrape_interval_seconds", 1, 3600, True),
    ("cold_start_slo_seconds", 0.001, None, False), ("idle_gpu_utilization_percent", 0.001, 100, False),
    ("idle_gpu_minutes", 1, None, True), ("gpu_hour_usd", 0, None, False),
    ("preemption_loop_restarts", 1, None, True), ("preemption_loop_window_hours", 1, None, True),
    ("preemption_loop_min_steps", 1, None, True), ("training_metrics_port", 1, 65535, True),
)


def plan_observability(name: str, args: ObservabilityArgs, cloud: str,
                       tags: dict[str, str] | None = None) -> ObservabilityPlan:
    """Validate the args (all problems at once) and fill in the defaults. Pure."""
    problems = Problems("Observability", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        problems.add(key, args[key], "is not an argument of Observability.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    prometheus = args.get("prometheus", "in-cluster")
    if prometheus == "managed":
        problems.extend(FEATURES.check([(Feature.MANAGED_PROMETHEUS, "prometheus", prometheus)]))
    elif prometheus != "in-cluster":
        problems.add("prometheus", prometheus, "is not a Prometheus choice.", "set it to 'in-cluster'.")
    values: dict[str, Any] = {**_DEFAULTS, **{k: v for k, v in args.items() if k in _DEFAULTS}}
    for key, low, high, integral in _RANGES:
        value = values[key]
        ok_type = isinstance(value, int) if integral else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            problems.add(key, value, f"must be {'a whole number' if integral else 'a number'}.",
                         f"set it to {'an integer' if integral else 'a number'} of at least {low:g}.")
        elif value < low or (high is not None and value > high):
            within = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            problems.add(key, value, f"is out of range; it must be {within}.", f"set it {within}.")
    namespace = values["namespace"]
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        problems.add("namespace", namespace, "is not a valid Kubernetes namespace name.",
                     "use lower-case letters, digits and '-', at most 63 characters.")
    if not isinstance(values["grafana"], bool):
        problems.add("grafana", values["grafana"], "must be true or false.", "set it to True or False.")
    problems.raise_if_any()
    return ObservabilityPlan(
        name=name, cloud=cloud, namespace=str(namespace), retention_days=int(values["retention_days"]),
        scrape_interval_seconds=int(values["scrape_interval_seconds"]),
        grafana=bool(values["grafana"]), cold_start_slo_seconds=float(values["cold_start_slo_seconds"]),
        idle_gpu_utilization_percent=float(values["idle_gpu_utilization_percent"]),
        idle_gpu_minutes=int(values["idle_gpu_minutes"]), gpu_hour_usd=float(values["gpu_hour_usd"]),
        preemption_loop_restarts=int(values["preemption_loop_restarts"]),
        preemption_loop_window_hours=int(values["preemption_loop_window_hours"]),
        preemption_loop_min_steps=int(values["preemption_loop_min_steps"]),
        training_metrics_port=int(values["training_metrics_port"]), tags=dict(tags or {}),
    )
