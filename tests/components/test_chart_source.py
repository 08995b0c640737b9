"""A cluster's ``chart_source``: every Helm release on it takes its chart from there (air-gapped clusters,
the engine lane's ../shared/charts), and ``gpuplane plan`` still checks those releases' values."""

from __future__ import annotations

import pytest

from components.kubernetes.charts import chart_args, chart_name
from gpuplane.engine.plan import plan_stack, read_stack_config
from gpuplane.engine.schemas import chart_short_name
from stacks.recipes import PROJECT_DIR, chart_source


def test_upstream_by_default() -> None:
    args = chart_args(None, "nvidia-device-plugin", "0.17.4", "https://nvidia.github.io/k8s-device-plugin")
    assert args["chart"] == "nvidia-device-plugin" and args["version"] == "0.17.4"
    assert args["repository_opts"].repo == "https://nvidia.github.io/k8s-device-plugin"
    assert chart_args(None, "oci://registry.k8s.io/kueue/charts/kueue", "0.19.2") == {
        "chart": "oci://registry.k8s.io/kueue/charts/kueue", "version": "0.19.2"}


@pytest.mark.parametrize(("source", "chart", "repo"), [
    ("/srv/charts", "/srv/charts/kueue-0.19.2.tgz", None),
    ("/srv/charts/", "/srv/charts/kueue-0.19.2.tgz", None),
    ("https://mirror.internal/helm", "kueue", "https://mirror.internal/helm"),
    ("oci://mirror.internal/charts", "oci://mirror.internal/charts/kueue", None),
])
def test_a_chart_source_replaces_every_upstream(source: str, chart: str, repo: str | None) -> None:
    args = chart_args(source, "oci://registry.k8s.io/kueue/charts/kueue", "0.19.2")
    assert args["chart"] == chart and args["version"] == "0.19.2"
    assert (args["repository_opts"].repo if "repository_opts" in args else None) == repo


def test_archive_names_keep_the_pinned_version_spelling() -> None:
    assert chart_args("/c", "knative-operator", "v1.23.0", "https://x")["chart"] == "/c/knative-operator-v1.23.0.tgz"
    assert chart_name("https://x/y/mlflow") == "mlflow"
    assert chart_short_name("/c/knative-operator-v1.23.0.tgz", "v1.23.0") == "knative-operator"
    assert chart_short_name("/c/aws-efa-k8s-device-plugin-v0.5.7.tgz", "v0.5.7") == "aws-efa-k8s-device-plugin"


def test_stack_config_folders_are_resolved_against_the_project() -> None:
    assert chart_source("../shared/charts") == str((PROJECT_DIR / "../shared/charts").resolve())
    assert chart_source("https://mirror.internal/helm") == "https://mirror.internal/helm"


def test_every_release_of_a_stack_follows_the_clusters_chart_source() -> None:
    config = read_stack_config("multicloud")  # one EKS cluster with Karpenter, Kueue, Knative, GPU pools
    config["gpuplane:cluster"] = {**config["gpuplane:cluster"], "chartSource": "/srv/charts"}
    plan = plan_stack("multicloud", config=config)
    releases = [r for r in plan.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    assert len(releases) >= 8 and all(
        r.inputs["chart"].startswith("/srv/charts/") and r.inputs["chart"].endswith(".tgz") and "repositoryOpts" not in r.inputs
        for r in releases), [r.inputs["chart"] for r in releases]
    assert plan.validation_problems == [] and plan.schemas.unchecked == []
