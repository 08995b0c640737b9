"""feature_store.yaml as the component renders it: golden files per target, same text as the workload's renderer.

Golden files live in tests/components/feature_store/golden/ and are rewritten only with
GPUPLANE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cluster import ClusterFacts, KubernetesCluster
from components.feature_store import plan_feature_store, render_feature_store_yaml
from tests.helpers import golden
from workloads.features.render import render_feature_store_yaml as workload_render

GOLDEN = Path(__file__).parent / "golden"


class _FakeCluster(KubernetesCluster):
    def __init__(self, cloud: str, region: str | None = None, project: str | None = None) -> None:  # plan-time facts only
        self.facts = ClusterFacts(cloud=cloud, name="ml", region=region, zones=(), autoscaler="none")  # type: ignore[arg-type]
        self.project = project


EKS, GKE, EXISTING = _FakeCluster("aws", "us-east-1"), _FakeCluster("gcp", "us-central1", "acme-ml"), _FakeCluster("kubernetes")
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "local": ({"target": "local", "project": "gpuplane"}, ""),
    "kubernetes-eks": ({"target": "kubernetes", "cluster": EKS, "image": "i"}, "s3://fs-bucket-1a2b"),
    "kubernetes-existing-endpoint": (
        {"target": "kubernetes", "cluster": EXISTING, "image": "i", "offline_bucket": "s3://acme-features",
         "redis": {"endpoint": "redis.data.internal:6380", "password": "p", "tls": True}},
        "s3://acme-features",
    ),
    "aws-file": ({"target": "aws", "cluster": EKS, "image": "i"}, "s3://fs-bucket-1a2b"),
    "aws-athena": ({"target": "aws", "cluster": EKS, "image": "i", "offline_store": "athena"}, "s3://fs-bucket-1a2b"),
    "gcp-datastore": ({"target": "gcp", "cluster": GKE, "image": "i"}, "gs://fs-bucket-1a2b"),
    "gcp-bigtable": ({"target": "gcp", "cluster": GKE, "image": "i", "online_store": "bigtable"}, "gs://fs-bucket-1a2b"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_feature_store_yaml_matches_its_golden_file(case: str) -> None:
    args, bucket_url = CASES[case]
    plan = plan_feature_store("fs", args)  # type: ignore[arg-type]
    text = plan.render_yaml(bucket_url)
    assert text is not None
    golden(GOLDEN / f"{case}.yaml", text)
    parsed = yaml.safe_load(text)
    assert parsed["project"] == plan.project
    if bucket_url:
        assert parsed["registry"]["path"] == f"{bucket_url}/feast/registry.pb"
    assert "password=" not in text or "${FEAST_REDIS_PASSWORD}" in text  # never a secret value


@pytest.mark.parametrize("case", sorted(CASES))
def test_component_and_workload_render_the_same_text(case: str) -> None:
    args, bucket_url = CASES[case]
    plan = plan_feature_store("fs", args)  # type: ignore[arg-type]
    params = {k: v.replace("{bucket}", bucket_url) if isinstance(v, str) else v for k, v in plan.yaml_params.items()}
    assert render_feature_store_yaml(plan.target, params) == workload_render(plan.target, **params)


def test_managed_engines_render_no_feast_yaml() -> None:
    plan = plan_feature_store("fs", {"target": "aws", "engine": "managed", "region": "us-east-1"})
    assert plan.render_yaml("s3://b") is None


def test_rendering_rejects_parameters_the_templates_do_not_accept() -> None:
    with pytest.raises(ValueError, match="region='mars' does not match"):
        render_feature_store_yaml("aws", {"registry": "s3://b/r.pb", "region": "mars"})
