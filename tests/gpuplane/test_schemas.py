"""Custom resources and Helm values in plans against the upstream schemas in gpuplane/schemas/."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import Any

import pytest

from gpuplane.engine.plan import available_stacks, plan_stack
from gpuplane.engine.schemas import (
    SCHEMA_ROOT,
    custom_resource_problems,
    helm_values_problems,
    load_index,
    validate_schemas,
)

KSVC: dict[str, Any] = {
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "recs", "namespace": "inference"},
    "spec": {
        "template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "0"}},
            "spec": {
                "containerConcurrency": 8,
                "timeoutSeconds": 600,
                "containers": [{"image": "ghcr.io/x/serving:1", "ports": [{"containerPort": 8080}]}],
            },
        },
    },
}


def test_every_indexed_schema_file_exists_and_names_its_kind() -> None:
    index = load_index()
    assert len(index.crds) >= 10 and len(index.charts) >= 8
    for gvk, path in index.crds.items():
        data = json.loads(path.read_text())
        assert f"{data['group']}/{data['version']}/{data['kind']}" == gvk, path
        assert data["openAPIV3Schema"]["type"] == "object", path
    for chart in index.charts:
        assert chart.template_paths, chart.folder
        assert isinstance(chart.values, dict), chart.folder  # parsed lazily: parse each once here
    readme = (SCHEMA_ROOT / "README.md").read_text()
    for folder in {p.parent.name for p in SCHEMA_ROOT.glob("*/index.json")}:
        assert f"| {folder} |" in readme, f"{folder} has no provenance row in gpuplane/schemas/README.md"


def test_a_valid_knative_service_passes() -> None:
    assert custom_resource_problems(copy.deepcopy(KSVC)) == []


def test_a_field_the_api_server_would_prune_is_reported() -> None:
    obj = copy.deepcopy(KSVC)
    obj["spec"]["template"]["spec"]["containerConcurency"] = 8  # misspelled
    problems = custom_resource_problems(obj)
    assert problems is not None and len(problems) == 1
    assert "spec.template.spec" in problems[0] and "containerConcurency" in problems[0] and "prune" in problems[0]


def test_a_wrong_type_is_reported_with_its_path() -> None:
    obj = copy.deepcopy(KSVC)
    obj["spec"]["template"]["spec"]["timeoutSeconds"] = "ten minutes"
    problems = custom_resource_problems(obj)
    assert problems and "spec.template.spec.timeoutSeconds" in problems[0]


def test_int_or_string_fields_take_both() -> None:
    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                    "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                }
            },
            "limits": {"nvidia.com/gpu": 8, "cpu": "1000"},
        },
    }
    assert custom_resource_problems(pool) == []
    pool["spec"]["limits"]["cpu"] = [1]
    assert custom_resource_problems(pool)


def test_a_kind_without_a_schema_is_unchecked_not_valid() -> None:
    assert custom_resource_problems({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}) is None
    r = SimpleNamespace(type="kubernetes:example.com/v1:Widget", urn="urn:w", inputs={"spec": {}})
    report = validate_schemas([r])
    assert report.custom_resources_checked == 0 and report.unchecked == ["example.com/v1/Widget"]


def test_core_objects_and_providers_are_left_to_the_core_validator() -> None:
    rs = [
        SimpleNamespace(type="kubernetes:apps/v1:Deployment", urn="urn:d", inputs={}),
        SimpleNamespace(type="kubernetes:networking.k8s.io/v1:NetworkPolicy", urn="urn:n", inputs={}),
        SimpleNamespace(type="pulumi:providers:kubernetes", urn="urn:p", inputs={}),
    ]
    report = validate_schemas(rs)
    assert (report.custom_resources_checked, report.unchecked, report.problems) == (0, [], [])


def _chart(name: str, version: str) -> Any:
    chart = load_index().chart(name, version)
    assert chart is not None, f"{name} {version}"
    return chart


def test_helm_values_read_by_the_chart_pass() -> None:
    chart = _chart("dcgm-exporter", "4.4.1")
    values = {"serviceMonitor": {"enabled": True}, "nodeSelector": {"a": "b"}, "tolerations": [{"key": "x"}]}
    assert helm_values_problems(chart, values) == []


def test_a_helm_values_key_the_chart_ignores_is_reported() -> None:
    chart = _chart("dcgm-exporter", "4.4.1")
    problems = helm_values_problems(chart, {"serviceMonitor": {"enabld": True}})
    assert len(problems) == 1
    assert "'serviceMonitor.enabld'" in problems[0] and "the chart knows 'serviceMonitor'" in problems[0]


def test_charts_are_found_by_oci_reference_and_v_prefixed_versions() -> None:
    assert _chart("oci://registry.k8s.io/kueue/charts/kueue", "0.19.2").names[-1] == "kueue"
    assert _chart("aws-efa-k8s-device-plugin", "0.5.7") is _chart("aws-efa-k8s-device-plugin", "v0.5.7")
    assert load_index().chart("kueue", "0.18.0") is None


def test_a_release_of_an_unknown_chart_is_unchecked() -> None:
    r = SimpleNamespace(type="kubernetes:helm.sh/v3:Release", urn="urn:r", inputs={"chart": "mystery", "version": "1.0.0", "values": {"x": 1}})
    report = validate_schemas([r])
    assert report.helm_releases_checked == 0 and report.unchecked == ["chart mystery 1.0.0"]


@pytest.mark.parametrize("stack", available_stacks())
def test_every_reference_stack_emits_schema_valid_custom_resources_and_values(stack: str) -> None:
    plan = plan_stack(stack)
    report = plan.schemas
    assert report is not None
    assert report.problems == [], "\n".join(report.problems)
    assert report.custom_resources_checked + report.helm_releases_checked > 0
    assert plan.to_json()["validation"]["custom_resources_checked"] == report.custom_resources_checked
