"""Observability: the pure planner (table tests), the component under the mock runtime (children,
names, parents, provider, chart values against the pinned chart, CRs against their upstream CRD
schemas), and the dashboards and alert rules (shape, PromQL parsed by a real parser, and every
metric name one that something really exports)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.observability import Observability, ObservabilityArgs, plan_observability
from components.observability import prometheus as obs
from gpuplane.engine import promql
from gpuplane.engine.schemas import custom_resource_problems, helm_values_problems, load_index, validate_schemas
from tests.helpers import run, validate_all_core_objects

TOKEN = "gpuplane:index:Observability"
RELEASE = "kubernetes:helm.sh/v3:Release"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

# DCGM exporter's default counters (NVIDIA/dcgm-exporter etc/default-counters.csv at 00d6d344ea4a,
# the uncommented rows: what the chart's exporter serves) and the kube-state-metrics series used.
DCGM_DEFAULT_COUNTERS = frozenset({
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE",
})
KUBE_STATE_METRICS = frozenset({"kube_pod_container_status_restarts_total"})  # docs/metrics/workload/pod-metrics.md


def exported_names() -> set[str]:
    """Every series name the workloads' own registries can export (from the collectors, not a list)."""
    from workloads.serving.activator import ActivatorMetrics
    from workloads.serving.metrics import ServingMetrics
    from workloads.serving.router import RouterMetrics
    from workloads.training.metrics import TrainingMetrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for registry in (ServingMetrics().registry, ActivatorMetrics().registry, RouterMetrics().registry,
                     TrainingMetrics(True).registry):
        for family in registry.collect():
            names.update(family.name + s for s in suffixes[family.type])
    return names


def plan(**args: Any) -> Any:
    return plan_observability("obs", args, "aws")  # type: ignore[arg-type]


# --- the planner ---------------------------------------------------------------------------------


def test_defaults() -> None:
    p = plan()
    assert (p.namespace, p.retention_days, p.grafana, p.cold_start_slo_seconds, p.idle_gpu_minutes) == \
        ("monitoring", 15, True, 120.0, 30)
    assert (p.preemption_loop_restarts, p.preemption_loop_window_hours, p.training_metrics_port) == (3, 2, 9090)


@pytest.mark.parametrize(("args", "path", "fragment"), [
    ({"retention_days": 0}, "retention_days", "at least 1"),
    ({"retention_days": 2.5}, "retention_days", "whole number"),
    ({"cold_start_slo_seconds": -1}, "cold_start_slo_seconds", "at least 0.001"),
    ({"idle_gpu_utilization_percent": 150}, "idle_gpu_utilization_percent", "between 0.001 and 100"),
    ({"gpu_hour_usd": -0.5}, "gpu_hour_usd", "at least 0"),
    ({"training_metrics_port": 70000}, "training_metrics_port", "between 1 and 65535"),
    ({"grafana": "yes"}, "grafana", "true or false"),
    ({"namespace": "Monitoring"}, "namespace", "not a valid Kubernetes namespace"),
    ({"prometheus": "thanos"}, "prometheus", "not a Prometheus choice"),
    ({"retention": 15}, "retention", "not an argument of Observability"),
])
def test_bad_input_is_one_error_naming_the_field(args: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ComponentInputError) as err:
        plan(**args)
    message = str(err.value)
    assert path in message and fragment in message, message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ComponentInputError) as err:
        plan(retention_days=0, idle_gpu_minutes=0, namespace="")
    message = str(err.value)
    assert all(p in message for p in ("retention_days", "idle_gpu_minutes", "namespace")), message


def test_managed_prometheus_is_declared_with_its_reason() -> None:
    with pytest.raises(ComponentInputError, match=r"kube-prometheus-stack does not support managed-prometheus: "
                                                  r"Amazon Managed Service for Prometheus needs"):
        plan(prometheus="managed")


# --- manifests: values against the pinned chart, CRs against their CRDs ------------------------------


@pytest.mark.parametrize("cloud", ["aws", "gcp", "kubernetes"])
def test_stack_values_are_keys_the_pinned_chart_reads(cloud: str) -> None:
    chart = load_index().chart(obs.KPS_CHART, obs.KPS_VERSION)
    assert chart is not None, "gpuplane/schemas/kube-prometheus-stack-88.5.3 is indexed"
    values = obs.stack_values(plan_observability("obs", {}, cloud))  # type: ignore[typeddict-item]
    assert helm_values_problems(chart, values) == []
    assert ("kubeEtcd" in values) == (cloud != "kubernetes"), "managed control planes hide etcd"


def test_a_misspelt_values_key_is_caught_by_the_same_check() -> None:
    chart = load_index().chart(obs.KPS_CHART, obs.KPS_VERSION)
    assert chart is not None
    values = obs.stack_values(plan())
    values["prometheus"]["prometheusSpec"]["retentionDays"] = "15"
    assert [p for p in helm_values_problems(chart, values) if "retentionDays" in p]


def test_monitors_and_rule_validate_against_the_upstream_crd_schemas() -> None:
    manifests = [*obs.pod_monitors(plan()).values(), obs.alert_rule(plan())]
    for manifest in manifests:
        assert custom_resource_problems(manifest) == [], manifest["metadata"]["name"]
    broken = obs.alert_rule(plan())
    broken["spec"]["groups"][0]["rules"][0]["severity"] = "page"  # not a rule field: pruned by the API server
    assert custom_resource_problems(broken)


def test_gpu_monitor_keeps_the_workload_labels_and_covers_both_dcgm_exporters() -> None:
    gpu = obs.pod_monitors(plan())["gpu"]["spec"]
    assert gpu["podMetricsEndpoints"][0]["honorLabels"] is True
    assert gpu["namespaceSelector"] == {"matchNames": ["nvidia-device-plugin", "gke-managed-system"]}
    assert gpu["selector"]["matchExpressions"][0]["values"] == ["dcgm-exporter", "gke-managed-dcgm-exporter"]


def test_alert_thresholds_come_from_the_plan() -> None:
    rules = {r["alert"]: r for r in obs.alert_rule(plan(cold_start_slo_seconds=45, idle_gpu_minutes=20,
                                                            idle_gpu_utilization_percent=2.5,
                                                            preemption_loop_restarts=4))["spec"]["groups"][0]["rules"]}
    assert rules["GpuplaneColdStartSloBreach"]["expr"].endswith("> 45")
    assert rules["GpuplaneIdleGpu"]["expr"] == "max_over_time(DCGM_FI_DEV_GPU_UTIL[20m]) < 2.5"
    assert "- 1 >= 4" in rules["GpuplaneTrainingPreemptionLoop"]["expr"]


# --- dashboards and rules: shape, PromQL, metric names -------------------------------------------------


def all_exprs() -> list[tuple[str, str]]:
    out = [(f"rule {r['alert']}", r["expr"]) for r in obs.alert_rule(plan())["spec"]["groups"][0]["rules"]]
    for uid, model in obs.dashboards(plan()).items():
        out += [(f"{uid} {p['title']!r}", t["expr"]) for p in promql.panels(model) for t in p.get("targets", [])]
        out += [(f"{uid} variable {v['name']}", v["definition"]) for v in model["templating"]["list"]
                if v.get("type") == "query"]
    return out


def test_dashboards_have_the_grafana_model_shape_and_every_query_parses() -> None:
    models = obs.dashboards(plan())
    assert sorted(models) == ["gpuplane-endpoints", "gpuplane-gpus", "gpuplane-training"]
    for uid, model in models.items():
        assert promql.dashboard_problems(model) == [], uid


def test_every_rule_and_panel_expression_parses_and_uses_only_exported_metrics() -> None:
    known = exported_names() | DCGM_DEFAULT_COUNTERS | KUBE_STATE_METRICS
    used: set[str] = set()
    for where, expr in all_exprs():
        if expr.startswith("label_values("):  # Grafana's variable query: label_values(<selector>, <label>)
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        names = promql.check(expr)
        assert names, f"{where}: {expr!r} selects no metric"
        unknown = names - known
        assert not unknown, f"{where}: {sorted(unknown)} are exported by nothing gpuplane scrapes"
        used |= names
    # The dashboards cover what the issue names: endpoints, training and GPUs.
    for needed in ("gpuplane_serving_latency_seconds_bucket", "gpuplane_serving_cold_start_phase_seconds",
                   "gpuplane_serving_queue_depth", "gpuplane_router_requests_total", "gpuplane_training_steps_total",
                   "gpuplane_training_checkpoints_total", "gpuplane_training_preemptions_total",
                   "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"):
        assert needed in used, needed


def test_the_parser_rejects_what_prometheus_would() -> None:
    with pytest.raises(promql.PromQLError, match="does not parse"):
        promql.check("sum by (le) (rate(gpuplane_serving_latency_seconds_bucket[5m])")
    with pytest.raises(promql.PromQLError):
        promql.check("rate(gpuplane_serving_requests_total)")  # rate needs a range vector
    broken = obs.dashboards(plan())["gpuplane-gpus"]
    broken["panels"][1]["targets"][0]["expr"] = "avg(DCGM_FI_DEV_GPU_UTIL{Hostname=~\"$host\"})"
    assert any("undefined variables ['host']" in p for p in promql.dashboard_problems(broken))


def test_grafana_variables_become_values_of_the_right_kind() -> None:
    expr = 'sum(rate(x{ns=~"$namespace"}[$__rate_interval])) * $gpu_hour_usd + count_over_time(y[$__range:1m])'
    assert promql.grafana_to_promql(expr) == 'sum(rate(x{ns=~"x"}[5m])) * 1 + count_over_time(y[1d:1m])'


def test_constants_of_the_plan_are_written_into_the_gpu_dashboard() -> None:
    gpus = obs.dashboards(plan(gpu_hour_usd=4.1, idle_gpu_utilization_percent=3))["gpuplane-gpus"]
    variables = {v["name"]: v for v in gpus["templating"]["list"]}
    assert variables["gpu_hour_usd"]["query"] == "4.1" and variables["idle_util"]["current"]["value"] == "3"
    raw = json.loads((obs.DASHBOARD_DIR / "gpus.json").read_text())
    assert {v["name"]: v for v in raw["templating"]["list"]}["gpu_hour_usd"]["query"] == "0", "the file is untouched"


# --- the component under the mock runtime ---------------------------------------------------------------


def program(cloud: str, **args: Any) -> Any:
    cluster_args: dict[str, Any] = {"cloud": cloud}
    if cloud == "aws":
        cluster_args["region"] = "us-east-1"
    if cloud == "gcp":
        cluster_args.update(region="us-central1", project="acme-ml")

    def body() -> None:
        cluster = KubernetesCluster("c", cluster_args)  # type: ignore[arg-type]
        Observability("obs", ObservabilityArgs(cluster=cluster, **args))  # type: ignore[typeddict-item]

    return body


@pytest.fixture(scope="module")
def existing() -> Any:
    return run(program("existing", gpu_hour_usd=2.0))


def test_children_are_named_parented_and_use_the_cluster_provider(existing: Any) -> None:
    r = existing
    component = r.one(TOKEN)
    children = r.children_of(component.urn)
    assert sorted((c.type, c.name) for c in children) == sorted([
        ("kubernetes:core/v1:Namespace", "obs-namespace"),
        ("random:index/randomPassword:RandomPassword", "obs-grafana-password"),
        ("kubernetes:core/v1:Secret", "obs-grafana-admin"),
        (RELEASE, "obs-kube-prometheus-stack"),
        *[(POD_MONITOR, f"obs-{role}-monitor") for role in ("gpu", "serving", "knative", "training", "activator", "router")],
        (RULE, "obs-alerts"),
        *[(CONFIG_MAP, f"obs-dashboard-{d}") for d in ("endpoints", "training", "gpus")],
    ])
    provider = next(x for x in r.resources if x.type == "pulumi:providers:kubernetes")
    for child in children:
        if child.type.startswith("kubernetes:"):
            assert child.provider and f"::{provider.name}::" in child.provider, child.urn
    release = r.one(RELEASE, "obs-kube-prometheus-stack").inputs
    assert (release["chart"], release["version"], release["namespace"]) == ("kube-prometheus-stack", "88.5.3", "monitoring")
    assert release["values"]["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    for cm in r.by_type(CONFIG_MAP):
        assert cm.inputs["metadata"]["labels"]["grafana_dashboard"] == "1", cm.urn
        (model,) = [json.loads(v) for v in cm.inputs["data"].values()]
        assert promql.dashboard_problems(model) == [], cm.urn
    assert component.inputs["gpuplane"]["implementation"] == "kube-prometheus-stack"


def test_every_object_passes_the_plan_engines_schema_checks(existing: Any) -> None:
    report = validate_schemas(existing.resources)
    assert report.problems == [], report.problems
    assert report.custom_resources_checked == 7 and report.helm_releases_checked == 1
    assert validate_all_core_objects(existing) >= 5


def test_without_grafana_there_is_no_secret_and_no_grafana_service() -> None:
    r = run(program("existing", grafana=False))
    assert not r.by_type("kubernetes:core/v1:Secret") and not r.by_type("random:index/randomPassword:RandomPassword")
    assert r.one(RELEASE).inputs["values"]["grafana"] == {"enabled": False}


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_managed_clusters_turn_off_the_control_plane_monitors(cloud: str) -> None:
    r = run(program(cloud))
    values = r.one(RELEASE, "obs-kube-prometheus-stack").inputs["values"]
    assert values["kubeScheduler"] == {"enabled": False} and values["kubeEtcd"] == {"enabled": False}
    assert validate_schemas(r.resources).problems == []


def test_bad_args_fail_before_anything_is_registered() -> None:
    with pytest.raises(ComponentInputError, match="retention_days"):
        run(program("existing", retention_days=0))
