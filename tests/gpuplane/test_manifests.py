"""gpuplane.engine.manifests: the objects a plan sends to an API server (the engine lane's input)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from gpuplane.engine import manifests


def _res(type_: str, name: str, inputs: dict) -> SimpleNamespace:
    return SimpleNamespace(type=type_, name=name, urn=f"urn:pulumi:s::p::{type_}::{name}", inputs=inputs)


def test_type_tokens_map_to_api_versions_and_helpers_are_skipped() -> None:
    assert manifests.api_version_of("kubernetes:core/v1:ConfigMap") == ("v1", "ConfigMap")
    assert manifests.api_version_of("kubernetes:apps/v1:Deployment") == ("apps/v1", "Deployment")
    assert manifests.api_version_of("kubernetes:karpenter.sh/v1:NodePool") == ("karpenter.sh/v1", "NodePool")
    for skipped in ("kubernetes:helm.sh/v3:Release", "kubernetes:core/v1:ConfigMapPatch", "kubernetes:core/v1:PodList",
                    "kubernetes:yaml/v2:ConfigGroup", "pulumi:providers:kubernetes", "aws:s3/bucket:Bucket"):
        assert manifests.api_version_of(skipped) is None, skipped


def test_recorded_objects_are_autonamed_and_integers_come_back() -> None:
    r = _res("kubernetes:apps/v1:Deployment", "web", {"metadata": {"namespace": "a"}, "spec": {"replicas": 2.0}})
    [obj] = manifests.recorded_objects([r])
    assert obj.body["apiVersion"] == "apps/v1" and obj.body["kind"] == "Deployment"
    assert obj.body["spec"]["replicas"] == 2 and isinstance(obj.body["spec"]["replicas"], int)
    assert obj.name.startswith("web-") and len(obj.name) == len("web-") + 8
    assert obj.name == manifests.recorded_objects([r])[0].name  # repeatable
    named = _res("kubernetes:core/v1:Namespace", "ns", {"metadata": {"name": "team-a"}})
    assert manifests.recorded_objects([named])[0].name == "team-a"


def test_chart_archives_are_found_with_or_without_a_v(tmp_path: Path) -> None:
    (tmp_path / "knative-operator-v1.23.0.tgz").write_bytes(b"")
    (tmp_path / "kueue-0.19.2.tgz").write_bytes(b"")
    assert manifests.chart_archive("knative-operator", "v1.23.0", tmp_path).name == "knative-operator-v1.23.0.tgz"
    assert manifests.chart_archive("knative-operator", "1.23.0", tmp_path).name == "knative-operator-v1.23.0.tgz"
    assert manifests.chart_archive("oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", tmp_path).name == "kueue-0.19.2.tgz"
    assert manifests.chart_archive("kueue", "0.19.3", tmp_path) is None


def test_pinned_crds_cover_what_no_chart_carries() -> None:
    crds = {c["metadata"]["name"]: c for c in manifests.pinned_crds()}
    assert "services.serving.knative.dev" in crds and "workflowtemplates.argoproj.io" in crds
    assert not any(n.endswith(".argoproj.io") and "event" in n for n in crds)  # JSON schemas, not CRD schemas
    svc = crds["services.serving.knative.dev"]["spec"]
    assert svc["names"]["kind"] == "Service" and svc["versions"][0]["name"] == "v1"


def test_a_conversion_webhook_is_switched_off_in_a_copy() -> None:
    crd = {"spec": {"conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {}}}}}
    assert manifests.without_conversion_webhook(crd)["spec"]["conversion"] == {"strategy": "None"}
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"


def test_dropped_fields_finds_what_the_server_left_out() -> None:
    sent = {"kind": "JobSet", "metadata": {"name": "j", "labels": {"gpuplane.dev/pool": "a"}},
            "spec": {"replicatedJobs": [{"name": "w", "replicas": 2, "typo": 1}], "suspend": False, "x": ""}}
    returned = {"kind": "JobSet", "metadata": {"name": "j", "labels": {"gpuplane.dev/pool": "a"}, "uid": "u"},
                "spec": {"replicatedJobs": [{"name": "w", "replicas": 2}]}}
    assert manifests.dropped_fields(sent, returned) == ["spec.replicatedJobs[0].typo"]
    returned["metadata"]["labels"] = {}
    assert manifests.dropped_fields(sent, returned) == ["metadata.labels.gpuplane.dev/pool", "spec.replicatedJobs[0].typo"]


def test_secret_string_data_is_write_only_not_pruned() -> None:
    sent = {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    assert manifests.dropped_fields(sent, {"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}}) == []
