"""EdgeDeployment under the mock runtime: what each backend registers, with the upstream API shapes checked.

Upstream files the custom resources follow (fields checked here by hand, and the whole bodies against the
CRD schemas held in gpuplane/schemas, taken from the same commits):
- KubeEdge ``EdgeApplication`` apps.kubeedge.io/v1alpha1: kubeedge/kubeedge
  ``build/crds/apps/apps_v1alpha1_edgeapplication.yaml`` and
  ``staging/src/github.com/kubeedge/api/apis/apps/v1alpha1/edgeapplication_types.go`` (commit 16cd8548eedb);
  the env overrider's replace-by-name in ``cloud/pkg/controllermanager/edgeapplication/overridemanager/envoverrider.go``.
- OpenYurt ``YurtAppSet`` apps.openyurt.io/v1beta1: openyurtio/openyurt ``pkg/apis/apps/v1beta1/yurtappset_types.go``
  and ``charts/yurt-manager/crds/apps.openyurt.io_yurtappsets.yaml`` (commit fbefb6baca66).
- Fleet ``Bundle`` fleet.cattle.io/v1alpha1: rancher/fleet ``pkg/apis/fleet.cattle.io/v1alpha1/bundle_types.go``
  (RolloutStrategy, Partition, BundleTarget), ``bundledeployment_types.go`` (YAMLOptions.Overlays) and
  ``charts/fleet-crd/templates/crds.yaml``, commit 3b2c622ce176.
- Greengrass v2: ``pulumi_aws_native.greengrassv2`` (Deployment, ComponentVersion); pulumi-aws 7.51 has no greengrassv2 module.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pulumi
import pytest
import yaml

from components.catalog import Catalog, CatalogError
from components.catalog.records import DATA_DIR
from components.edge import EdgeDeployment, plan_edge_deployment
from components.edge.fleet import bundle
from components.edge.greengrass import job_configuration, recipe
from components.edge.kubeedge import edge_application
from components.edge.kubernetes_sites import site_objects
from components.edge.manifests import MODEL_DIGEST_ANNOTATION
from components.edge.openyurt import yurt_app_set
from components.edge.spec import ENV_KEYS
from tests.components.edge.fleet import args
from tests.helpers import run, validate_all_core_objects, validate_k8s


def _children(run_: Any, kind: str) -> list[Any]:
    return [r for r in run_.resources if r.type == kind]


def test_kubernetes_sites_get_a_provider_and_their_own_objects_with_the_model_digest() -> None:
    a = args()
    a["rollout"]["promoted_waves"] = 1
    result = run(lambda: EdgeDeployment("recs", a))
    top = next(r for r in result.resources if r.type == "gpuplane:index:EdgeDeployment")
    providers = [r for r in _children(result, "pulumi:providers:kubernetes") if r.parent == top.urn]
    assert {p.name for p in providers} == {"recs-a-line-1-provider", "recs-a-line-2-provider", "recs-kubeedge-0-provider"}
    assert {p.inputs["kubeconfig"] for p in providers} == {"KUBECONFIG-A1", "KUBECONFIG-A2", "KUBECONFIG-B"}
    deps = {r.name: r for r in _children(result, "kubernetes:apps/v1:Deployment")}
    assert set(deps) == {"recs-a-line-1-server", "recs-a-line-2-server"}
    for r in deps.values():
        assert r.parent == top.urn, r.urn
        assert r.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", r.urn
    by_site = {r.name: r.inputs["spec"]["template"]["metadata"]["annotations"][MODEL_DIGEST_ANNOTATION] for r in deps.values()}
    assert by_site == {"recs-a-line-2-server": a["model"]["digest"], "recs-a-line-1-server": a["previous_model"]["digest"]}
    provider_of = {p.urn: p.inputs["kubeconfig"] for p in providers}
    assert provider_of[deps["recs-a-line-1-server"].provider.rsplit("::", 1)[0]] == "KUBECONFIG-A1"
    assert validate_all_core_objects(result) >= 10


def test_site_objects_are_valid_kubernetes_and_carry_the_contract() -> None:
    plan = plan_edge_deployment("recs", args())
    objects = site_objects(plan, plan.site("a-line-1"))
    assert [o["kind"] for o in objects] == ["Namespace", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"]
    for o in objects:
        validate_k8s(o)
    cm, dep = objects[1], objects[3]
    assert list(cm["data"]) == list(ENV_KEYS)
    assert cm["data"]["EDGE_RUNTIME"] == "tensorrt"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"] == plan.tensorrt_image.ref
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_a_first_rollout_puts_nothing_on_unpromoted_sites() -> None:
    a = args()
    del a["previous_model"]
    a["rollout"]["promoted_waves"] = 0
    plan = plan_edge_deployment("recs", a)
    assert all(site_objects(plan, s) == [] for s in plan.sites)
    a["rollout"]["promoted_waves"] = 1
    plan = plan_edge_deployment("recs", a)
    assert [s.name for s in plan.sites if site_objects(plan, s)] == ["a-line-2"]
    assert any("nothing to roll back to" in n for n in plan.notes)


def test_kubeedge_edge_application_has_one_target_node_group_per_site_with_env_and_resources_overriders() -> None:
    plan = plan_edge_deployment("recs", args())
    sites = [plan.site("b-line-1"), plan.site("b-line-2")]
    app = edge_application(plan, sites, "onnxruntime")
    assert (app["apiVersion"], app["kind"]) == ("apps.kubeedge.io/v1alpha1", "EdgeApplication")
    assert set(app["spec"]) == {"workloadTemplate", "workloadScope"}  # CRD spec properties; workloadScope is required
    (template,) = app["spec"]["workloadTemplate"]["manifests"]
    validate_k8s({**template, "metadata": {**template["metadata"]}})
    groups = app["spec"]["workloadScope"]["targetNodeGroups"]
    assert [g["name"] for g in groups] == ["line-1", "line-2"]
    for g, site in zip(groups, sites, strict=True):
        assert set(g["overriders"]) <= {"replicas", "imageOverriders", "envOverriders", "commandOverriders", "argsOverriders", "resourcesOverriders"}
        (env,) = g["overriders"]["envOverriders"]
        assert env["operator"] in ("add", "remove", "replace") and env["containerName"] == "edge-server"
        assert {e["name"]: e["value"] for e in env["value"]} == plan.site_env(site)
        (res,) = g["overriders"]["resourcesOverriders"]
        assert set(res) == {"containerName", "value"} and set(res["value"]) <= {"claims", "limits", "requests"}


def test_openyurt_yurt_app_set_tweaks_each_pool_with_json_patches_only() -> None:
    a = args()
    for s in a["groups"][1]["sites"]:
        s["kind"] = "openyurt"
    plan = plan_edge_deployment("recs", a)
    app = yurt_app_set(plan, [plan.site("b-line-1"), plan.site("b-line-2")], "onnxruntime")
    assert (app["apiVersion"], app["kind"]) == ("apps.openyurt.io/v1beta1", "YurtAppSet")
    assert set(app["spec"]) <= {"workload", "nodepoolSelector", "pools", "revisionHistoryLimit"} and app["spec"]["pools"] == ["line-1", "line-2"]
    workload = app["spec"]["workload"]
    assert set(workload) == {"workloadTemplate", "workloadTweaks"}
    dep = workload["workloadTemplate"]["deploymentTemplate"]
    validate_k8s({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", **dep["metadata"]}, "spec": dep["spec"]})
    env_names = [e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]]
    for tweak, site in zip(workload["workloadTweaks"], [plan.site("b-line-1"), plan.site("b-line-2")], strict=True):
        assert tweak["pools"] == [site.node_group]
        assert set(tweak["tweaks"]) == {"patches"}  # "Only one of its members may be specified"
        patched = {env_names[int(p["path"].split("/")[-2])]: p["value"] for p in tweak["tweaks"]["patches"] if "/env/" in p["path"]}
        assert patched == plan.site_env(site)
        assert all(p["operation"] in ("add", "remove", "replace") for p in tweak["tweaks"]["patches"])


def test_fleet_bundle_targets_each_cluster_with_its_overlay_and_partitions_in_wave_order() -> None:
    a = args()
    for i, s in enumerate(a["groups"][0]["sites"] + a["groups"][1]["sites"]):
        s.update(kind="fleet", kubeconfig="FLEET-MGMT", cluster=f"downstream-{i}")
        s.pop("node_group", None)
    plan = plan_edge_deployment("recs", a)
    b = bundle(plan, list(plan.sites))
    assert (b["apiVersion"], b["kind"], b["metadata"]["namespace"]) == ("fleet.cattle.io/v1alpha1", "Bundle", "fleet-default")
    spec = b["spec"]
    assert {t["clusterName"]: t["yaml"]["overlays"] for t in spec["targets"]} == {s.cluster: [s.name] for s in plan.sites}
    names = [r["name"] for r in spec["resources"]]
    assert "deployment.yaml" in names and "overlays/a-line-1/deployment.yaml" in names  # overlays/<name>/<base path> replaces the base file
    overlay = yaml.safe_load(next(r["content"] for r in spec["resources"] if r["name"] == "overlays/a-line-1/configmap.yaml"))
    assert overlay["data"]["EDGE_SITE"] == "a-line-1"
    parts = spec["rolloutStrategy"]["partitions"]
    assert [p["name"] for p in parts] == ["canary-a-line-2", "wave-2-a-line-1", "wave-3-b-line-1", "wave-3-b-line-2"]
    assert all(set(p) <= {"name", "maxUnavailable", "clusterName", "clusterSelector", "clusterGroup", "clusterGroupSelector"} for p in parts)
    assert spec["rolloutStrategy"]["maxUnavailable"] == "25%"


def test_greengrass_sites_get_a_component_version_per_model_and_a_deployment_with_rollout_abort_and_rollback() -> None:
    a = args(runtime="onnxruntime")
    for key in ("model", "previous_model"):
        a[key]["uri"] = f"s3://edge-models/recommender-{a[key]['digest'][7:15]}.onnx"
    a["source_cloud"], a["source_region"] = "aws", "us-east-1"
    a["groups"].append({"name": "line-c", "sites": [
        {"name": "c-1", "kind": "greengrass", "thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thinggroup/c-1", "bandwidth_mbps": 2, "devices": 40},
    ]})
    a["rollout"]["waves"][-1] = {"percent": 100}
    a["rollout"]["promoted_waves"] = 2
    result = run(lambda: EdgeDeployment("recs", a))
    (dep,) = _children(result, "aws-native:greengrassv2:Deployment")
    versions = _children(result, "aws-native:greengrassv2:ComponentVersion")
    assert {v.name for v in versions} == {"recs-gg-previous"}  # the only Greengrass site is in wave 3, not promoted: no version of the new model yet
    inputs = dep.inputs
    assert inputs["targetArn"] == "arn:aws:iot:us-east-1:123456789012:thinggroup/c-1"
    (spec,) = inputs["components"].values()
    config = json.loads(spec["configurationUpdate"]["merge"])
    assert config["EDGE_MODEL_DIGEST"] == a["previous_model"]["digest"]  # wave 3 not promoted
    assert config["EDGE_PRESTAGE_MODEL_URI"] == ""  # Greengrass cannot pre-stage
    job = inputs["iotJobConfiguration"]
    assert job["jobExecutionsRolloutConfig"]["exponentialRate"] == {"baseRatePerMinute": 10, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfSucceededThings": 10}}
    assert job["abortConfig"]["criteriaList"] == [{"action": "CANCEL", "failureType": "FAILED", "minNumberOfExecutedThings": 10, "thresholdPercentage": 25}]
    assert inputs["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    plan = plan_edge_deployment("recs", a)
    r = recipe(plan, plan.model)
    assert r["RecipeFormatVersion"] == "2020-01-25" and r["Manifests"][0]["Artifacts"][1]["Uri"] == plan.model.uri
    assert job_configuration(plan, plan.site("c-1"))["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 40


def test_promoting_wave_two_changes_only_the_wave_two_site() -> None:
    def deployments(promoted: int) -> dict[str, Any]:
        a = args()
        a["rollout"]["promoted_waves"] = promoted
        return {r.name: r.inputs for r in run(lambda: EdgeDeployment("recs", a)).resources
                if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:ConfigMap", "kubernetes:apps.kubeedge.io/v1alpha1:EdgeApplication")}

    before, after = deployments(1), deployments(2)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"recs-a-line-1-server", "recs-a-line-1-config"}


def test_bad_input_registers_nothing() -> None:
    a = args()
    a["groups"][0]["sites"][0]["bandwidth_mbps"] = 0
    registered: list[str] = []

    def program() -> None:
        try:
            EdgeDeployment("recs", a)
        except pulumi.RunError as e:
            registered.append(str(e))

    result = run(program)
    assert registered and "bandwidth_mbps = 0" in registered[0]
    assert [r for r in result.resources if not r.type.startswith("pulumi:pulumi:Stack")] == []


def _as_kind(kind: str) -> dict[str, Any]:
    a = args(runtime="onnxruntime")
    for i, s in enumerate(a["groups"][0]["sites"] + a["groups"][1]["sites"]):
        s.update(kind=kind, kubeconfig="ONE-CLUSTER")
        s.pop("cluster", None)
        s.pop("node_group", None)
        if kind == "fleet":
            s["cluster"] = f"downstream-{i}"
        else:
            s["node_group"] = f"group-{i}"
    return a


def test_node_group_kinds_make_one_object_per_cluster_and_fleet_one_bundle() -> None:
    for kind, token in (("kubeedge", "kubernetes:apps.kubeedge.io/v1alpha1:EdgeApplication"),
                        ("openyurt", "kubernetes:apps.openyurt.io/v1beta1:YurtAppSet"),
                        ("fleet", "kubernetes:fleet.cattle.io/v1alpha1:Bundle")):
        result = run(lambda kind=kind: EdgeDeployment("recs", _as_kind(kind)))
        made = [r for r in result.resources if r.type == token]
        assert len(made) == 1, (kind, [r.type for r in result.resources])
        assert len(_children(result, "pulumi:providers:kubernetes")) == 1, kind
        assert not _children(result, "kubernetes:apps/v1:Deployment"), kind  # the controllers make them
        assert made[0].inputs["metadata"]["namespace"] == ("fleet-default" if kind == "fleet" else "edge-inference")


def test_edge_gpu_rows_without_tensorrt_must_say_why(tmp_path) -> None:
    shutil.copytree(DATA_DIR, tmp_path / "data")
    path = tmp_path / "data" / "edge_gpus.csv"
    path.write_text(path.read_text() + "jetson-tk1,Kepler,3.2,false,,some source,2026-12-06\n")
    with pytest.raises(CatalogError, match=r"edge_gpus.csv:\d+: column 'note' is blank on a GPU without TensorRT"):
        Catalog(tmp_path / "data")


def test_the_custom_resources_pass_their_upstream_crd_schemas_and_a_misspelt_field_does_not() -> None:
    """gpuplane/schemas/{kubeedge,openyurt,fleet}-*: the CRDs at the commits named in the module docstring."""
    from gpuplane.engine.schemas import custom_resource_problems

    plan = plan_edge_deployment("recs", args())
    app = edge_application(plan, [plan.site("b-line-1"), plan.site("b-line-2")], "onnxruntime")
    assert custom_resource_problems(app) == []
    yurt_plan = plan_edge_deployment("recs", _as_kind("openyurt"))
    yurt = yurt_app_set(yurt_plan, list(yurt_plan.sites), "onnxruntime")
    assert custom_resource_problems(yurt) == []
    fleet_plan = plan_edge_deployment("recs", _as_kind("fleet"))
    assert custom_resource_problems(bundle(fleet_plan, list(fleet_plan.sites))) == []
    app["spec"]["workloadScope"]["targetNodeGroups"][0]["overriders"]["envOverrides"] = []
    problems = custom_resource_problems(app)
    assert problems and "envOverrides" in " ".join(problems), problems
