"""Observability objects for one cluster: kube-prometheus-stack, monitors, alert rules, dashboards.

The pure builders (``stack_values``, ``pod_monitors``, ``alert_rule``, ``dashboards``) turn an
``ObservabilityPlan`` into plain manifests; ``create_observability`` registers them as children of
the ``Observability`` component. Contract of each piece:

- kube-prometheus-stack ``88.5.3`` (prometheus-community/helm-charts, Prometheus Operator
  v0.93.1; its CRDs and values are under gpuplane/schemas/kube-prometheus-stack-88.5.3/). The
  ``*SelectorNilUsesHelmValues: false`` values make Prometheus select every PodMonitor,
  ServiceMonitor and PrometheusRule in the cluster, so the monitors here need no release label.
  Managed control planes (EKS, GKE) hide the scheduler, controller manager and etcd: their
  monitors are turned off there.
- Metric names come from the code that exports them: workloads/serving/metrics.py
  (``gpuplane_serving_*``), workloads/serving/activator.py (``gpuplane_activator_*``),
  workloads/serving/router.py (``gpuplane_router_*``), workloads/training/metrics.py
  (``gpuplane_training_*``), the DCGM exporter's default counters (``DCGM_FI_DEV_*``) and
  kube-state-metrics (``kube_pod_container_status_restarts_total``); the tests check every name
  used against those registries and lists. Pod labels become series labels through
  ``podTargetLabels`` (``gpuplane.dev/endpoint`` -> ``gpuplane_dev_endpoint``, ``gpuplane.dev/job``
  -> ``gpuplane_dev_job``).
- Dashboards are JSON files in components/observability/dashboards/ (Grafana's dashboard model, a
  ``${datasource}`` variable for the Prometheus data source); the plan's GPU-hour price and idle
  threshold are written into their constant variables. Each goes into a ConfigMap labelled
  ``grafana_dashboard: "1"``, the label the chart's Grafana sidecar watches in every namespace.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.inference import METRICS_PATH
from components.kubernetes.charts import chart_args

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.observability.spec import ObservabilityPlan

KPS_REPO = "https://prometheus-community.github.io/helm-charts"
KPS_CHART = "kube-prometheus-stack"
KPS_VERSION = "88.5.3"
RELEASE_NAME = "kube-prometheus-stack"
MONITORING_API = "monitoring.coreos.com/v1"
DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
DASHBOARD_FILES = ("endpoints.json", "training.json", "gpus.json")
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
GRAFANA_SECRET = "grafana-admin"
MANAGED = {"app.kubernetes.io/managed-by": "gpuplane"}
# GPU metrics: the DCGM exporter chart each GpuNodePool installs on EKS / existing clusters
# (components/kubernetes/device_plugin.py), and GKE's managed exporter (cluster monitoring_config DCGM).
DCGM_NAMESPACES = ("nvidia-device-plugin", "gke-managed-system")
DCGM_APP_LABELS = ("dcgm-exporter", "gke-managed-dcgm-exporter")
DCGM_PORT = "metrics"
# Knative revision pods (Knative sets serving.knative.dev/revision; the endpoint sets gpuplane.dev/endpoint)
# and the port names Knative gives the user container and the queue-proxy's request metrics.
KNATIVE_REVISION_PODS = {"matchExpressions": [{"key": "gpuplane.dev/endpoint", "operator": "Exists"},
                                              {"key": "serving.knative.dev/revision", "operator": "Exists"}]}
KNATIVE_USER_PORT = "user-port"
KNATIVE_USER_METRICS_PORT = "http-usermetric"
ACTIVATOR_METRICS_PATH = "/activator/metrics"
ROUTER_METRICS_PATH = "/router/metrics"


def stack_values(plan: ObservabilityPlan) -> dict[str, Any]:
    """Helm values of the kube-prometheus-stack release."""
    managed_control_plane = plan.cloud in ("aws", "gcp")
    values: dict[str, Any] = {
        "crds": {"enabled": True},
        "prometheus": {"prometheusSpec": {
            "retention": f"{plan.retention_days}d",
            "scrapeInterval": f"{plan.scrape_interval_seconds}s",
            "podMonitorSelectorNilUsesHelmValues": False,
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
        }},
        "alertmanager": {"enabled": True},
        "grafana": {"enabled": plan.grafana},
    }
    if plan.grafana:
        values["grafana"].update({
            "admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                                       "searchNamespace": "ALL"}},
        })
    if managed_control_plane:  # not reachable on EKS / GKE: their monitors would only ever be down
        for part in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"):
            values[part] = {"enabled": False}
    return values


def _pod_monitor(plan: ObservabilityPlan, name: str, selector: dict[str, Any], endpoint: dict[str, Any],
                 *, namespaces: tuple[str, ...] | None = None, target_labels: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": selector,
        "namespaceSelector": {"matchNames": list(namespaces)} if namespaces else {"any": True},
        "podMetricsEndpoints": [{"interval": f"{plan.scrape_interval_seconds}s", **endpoint}],
    }
    if target_labels:
        spec["podTargetLabels"] = list(target_labels)
    return {"apiVersion": MONITORING_API, "kind": "PodMonitor",
            "metadata": {"name": name, "namespace": plan.namespace, "labels": dict(MANAGED)}, "spec": spec}


def pod_monitors(plan: ObservabilityPlan) -> dict[str, dict[str, Any]]:
    """Role -> PodMonitor manifest, for GPUs, model servers, training pods, activators and routers."""
    exists = "Exists"
    return {
        "gpu": _pod_monitor(
            plan, "gpuplane-gpus",
            {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": list(DCGM_APP_LABELS)}]},
            # honorLabels: DCGM's own namespace/pod labels name the workload using the GPU, not the exporter.
            {"port": DCGM_PORT, "path": "/metrics", "honorLabels": True}, namespaces=DCGM_NAMESPACES),
        # Knative revision pods only (routers carry gpuplane.dev/endpoint too, and have their own
        # monitor). The user container's port is named "user-port" whatever its number
        # (pkg/apis/serving/v1/revision_helpers.go, knative-v1.23.0): 8080 for the reference
        # server, 8000 for vLLM, both serving /metrics there.
        "serving": _pod_monitor(
            plan, "gpuplane-serving", KNATIVE_REVISION_PODS,
            {"port": KNATIVE_USER_PORT, "path": METRICS_PATH}, target_labels=("gpuplane.dev/endpoint",)),
        # The queue-proxy beside each of them: Knative 1.23's request metrics on http-usermetric (9091).
        "knative": _pod_monitor(
            plan, "gpuplane-knative-revisions", KNATIVE_REVISION_PODS,
            {"port": KNATIVE_USER_METRICS_PORT, "path": "/metrics"},
            target_labels=("gpuplane.dev/endpoint", "serving.knative.dev/service", "serving.knative.dev/revision")),
        "training": _pod_monitor(
            plan, "gpuplane-training",
            {"matchExpressions": [{"key": "gpuplane.dev/job", "operator": exists}]},
            {"portNumber": plan.training_metrics_port, "path": "/metrics"},
            target_labels=("gpuplane.dev/job", "gpuplane.dev/team")),
        "activator": _pod_monitor(
            plan, "gpuplane-activators", {"matchLabels": {"gpuplane.dev/component": "activator"}},
            {"port": "http", "path": ACTIVATOR_METRICS_PATH}, target_labels=("gpuplane.dev/endpoint",)),
        "router": _pod_monitor(
            plan, "gpuplane-routers", {"matchLabels": {"gpuplane.dev/component": "router"}},
            {"port": "http", "path": ROUTER_METRICS_PATH}, target_labels=("gpuplane.dev/endpoint",)),
    }


def _seconds(value: float) -> str:
    return f"{value:g}"


def alert_rule(plan: ObservabilityPlan) -> dict[str, Any]:
    """The PrometheusRule: cold-start SLO breach, idle GPUs, training preemption loops."""
    slo = _seconds(plan.cold_start_slo_seconds)
    window = f"{plan.preemption_loop_window_hours}h"
    job = "namespace, gpuplane_dev_job"
    restarts = (f"count by ({job}) (count_over_time(gpuplane_training_step[{window}])) - 1 "
                f">= {plan.preemption_loop_restarts}")
    progress = (f"max by ({job}) (max_over_time(gpuplane_training_step[{window}])) - "
                f"min by ({job}) (min_over_time(gpuplane_training_step[{window}])) < {plan.preemption_loop_min_steps}")
    rules = [
        {"alert": "GpuplaneColdStartSloBreach",
         "expr": f'max by (namespace, pod, gpuplane_dev_endpoint) (gpuplane_serving_cold_start_phase_seconds{{phase="total"}}) > {slo}',
         "for": "0m", "labels": {"severity": "warning"},
         "annotations": {"summary": "A model server's cold start took longer than the {slo}s SLO.".replace("{slo}", slo),
                         "description": "Replica {{ $labels.pod }} of endpoint {{ $labels.gpuplane_dev_endpoint }} took "
                                        "{{ $value | humanizeDuration }} from process start to ready; the endpoints "
                                        "dashboard's cold-start panel shows which phase grew."}},
        {"alert": "GpuplaneHeldRequestsSloBreach",
         "expr": f"histogram_quantile(0.99, sum by (le, namespace, pod) (rate(gpuplane_activator_hold_seconds_bucket[15m]))) > {slo}",
         "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": f"Requests held during cold starts waited longer than the {slo}s SLO (p99, 15 min).",
                         "description": "Activator {{ $labels.pod }}: p99 hold {{ $value | humanizeDuration }}."}},
        {"alert": "GpuplaneIdleGpu",
         "expr": f"max_over_time(DCGM_FI_DEV_GPU_UTIL[{plan.idle_gpu_minutes}m]) < {plan.idle_gpu_utilization_percent:g}",
         "for": "5m", "labels": {"severity": "info"},
         "annotations": {"summary": f"A GPU has stayed below {plan.idle_gpu_utilization_percent:g}% utilisation for "
                                    f"{plan.idle_gpu_minutes} minutes.",
                         "description": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} ({{ $labels.modelName }}) is "
                                        "idle and still billed; scale its pool down or to zero."}},
        {"alert": "GpuplaneTrainingPreemptionLoop",
         "expr": f"({restarts}) and on ({job}) ({progress})",
         "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": f"A training job restarted at least {plan.preemption_loop_restarts} times in "
                                    f"{window} and advanced fewer than {plan.preemption_loop_min_steps} steps.",
                         "description": "Job {{ $labels.gpuplane_dev_job }} in {{ $labels.namespace }} is stuck in a "
                                        "preemption loop: checkpoint more often, or let its queue fall back to "
                                        "on-demand capacity."}},
    ]
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule",
            "metadata": {"name": "gpuplane-alerts", "namespace": plan.namespace, "labels": dict(MANAGED)},
            "spec": {"groups": [{"name": "gpuplane", "rules": rules}]}}


@functools.cache
def _dashboard_file(file: str) -> dict[str, Any]:
    return json.loads((DASHBOARD_DIR / file).read_text())


def dashboards(plan: ObservabilityPlan) -> dict[str, dict[str, Any]]:
    """uid -> Grafana dashboard model, with the plan's constants written into their variables."""
    constants = {"gpu_hour_usd": f"{plan.gpu_hour_usd:g}", "idle_util": f"{plan.idle_gpu_utilization_percent:g}"}
    out: dict[str, dict[str, Any]] = {}
    for file in DASHBOARD_FILES:
        model = copy.deepcopy(_dashboard_file(file))
        for var in model.get("templating", {}).get("list", []):
            if var.get("type") == "constant" and var.get("name") in constants:
                value = constants[var["name"]]
                var["query"] = value
                var["current"] = {"text": value, "value": value}
        out[model["uid"]] = model
    return out


@dataclass(frozen=True)
class Created:
    grafana_service: pulumi.Output[str | None]
    dashboard_uids: list[str]
    alert_names: list[str]


def _custom(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)


def create_observability(component: pulumi.ComponentResource, name: str, plan: ObservabilityPlan,
                         cluster: KubernetesCluster) -> Created:
    """Register the namespace, Grafana's admin secret, the chart, monitors, rules and dashboards."""
    opts = pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider)
    namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
        name=plan.namespace, labels=dict(MANAGED)), opts=opts)
    in_namespace = pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider, depends_on=[namespace])
    chart_deps: list[pulumi.Resource] = [namespace]
    if plan.grafana:
        password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False,
                                         opts=pulumi.ResourceOptions(parent=component))
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_SECRET, namespace=plan.namespace, labels=dict(MANAGED)),
            type="Opaque", string_data={"admin-user": "admin", "admin-password": password.result}, opts=in_namespace)
        chart_deps.append(secret)
    release = k8s.helm.v3.Release(
        f"{name}-kube-prometheus-stack",
        k8s.helm.v3.ReleaseArgs(
            name=RELEASE_NAME, **chart_args(cluster.chart_source, KPS_CHART, KPS_VERSION, KPS_REPO),
            namespace=plan.namespace, create_namespace=False, values=stack_values(plan),
        ),
        opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider, depends_on=chart_deps),
    )
    after_crds = pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider, depends_on=[release])
    for role, manifest in pod_monitors(plan).items():
        _custom(f"{name}-{role}-monitor", manifest, after_crds)
    rule = alert_rule(plan)
    _custom(f"{name}-alerts", rule, after_crds)
    models = dashboards(plan)
    for uid, model in models.items():
        short = uid.removeprefix("gpuplane-")
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard-{short}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"gpuplane-dashboard-{short}", namespace=plan.namespace,
                                                labels={**DASHBOARD_LABEL, **MANAGED}),
            data={f"{uid}.json": json.dumps(model, indent=1, sort_keys=True)}, opts=in_namespace)
    grafana = pulumi.Output.from_input(f"{plan.namespace}/{RELEASE_NAME}-grafana" if plan.grafana else None)
    return Created(grafana_service=grafana, dashboard_uids=sorted(models),
                   alert_names=[r["alert"] for r in rule["spec"]["groups"][0]["rules"]])
