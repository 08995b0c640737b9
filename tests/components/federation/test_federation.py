"""TrainingFederation: the pure planner and mirror check (table tests), then the component under the mock runtime."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError
from components.federation import (
    ANNOTATION_PRICES,
    TrainingFederation,
    manager_objects,
    mirror_mismatches,
    plan_federation,
    worker_objects,
)
from tests.helpers import run, validate_all_core_objects


def _cluster(name: str, cloud: str, region: str | None, kubeconfig_known: bool = True) -> KubernetesCluster:
    """A KubernetesCluster handle with plan-time facts only (the planner reads nothing else)."""
    c = object.__new__(KubernetesCluster)
    c.facts = ClusterFacts(cloud=cloud, name=name, region=region, zones=(), autoscaler="none", kubeconfig_known=kubeconfig_known)  # type: ignore[arg-type]
    return c


def _args(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "manager": _cluster("hub", "aws", "us-east-1"),
        "flavors": [
            {"name": "h100-spot", "accelerator": "H100", "capacity": "spot"},
            {"name": "l4-od", "accelerator": "L4"},
        ],
        "workers": [
            {"name": "aws-use1", "cluster": _cluster("eks", "aws", "us-east-1"), "flavors": [{"name": "h100-spot", "gpus": 16}, {"name": "l4-od", "gpus": 4}]},
            {"name": "gcp-usc1", "cluster": _cluster("gke", "gcp", "us-central1"), "flavors": [{"name": "h100-spot", "gpus": 8}]},
        ],
        "teams": [{"name": "recs"}],
    }
    args.update(over)
    return args


def _problems(args: dict[str, Any]) -> list[str]:
    with pytest.raises(ComponentInputError) as err:
        plan_federation("fed", args)  # type: ignore[arg-type]
    return [p.render() for p in err.value.problems]


def test_manager_quota_is_the_sum_of_the_workers_and_prices_come_from_the_catalog():
    plan = plan_federation("fed", _args())  # type: ignore[arg-type]
    assert plan.manager_quota("h100-spot")[0] == 24
    assert plan.manager_quota("l4-od")[0] == 4
    aws, gcp = plan.workers
    # p5.48xlarge spot 21.1543 / 8 in us-east-1; a3-highgpu-1g spot 3.35377 in us-central1 (catalog)
    assert aws.flavor("h100-spot").usd_per_gpu_hour == pytest.approx(21.1543 / 8, rel=1e-4)
    assert gcp.flavor("h100-spot").usd_per_gpu_hour == pytest.approx(3.35377, rel=1e-4)
    assert (aws.notice_seconds, gcp.notice_seconds) == (120, 30)
    assert json.loads(aws.annotations()[ANNOTATION_PRICES]) == {"h100-spot": pytest.approx(2.64429, rel=1e-4), "l4-od": pytest.approx(0.8048)}


def test_manager_objects_are_multikueue_shaped():
    plan = plan_federation("fed", _args())  # type: ignore[arg-type]
    objs = {(o["kind"], o["metadata"]["name"]): o for o in manager_objects(plan)}
    ac = objs[("AdmissionCheck", "fed-multikueue")]["spec"]
    assert ac == {"controllerName": "kueue.x-k8s.io/multikueue", "parameters": {"apiGroup": "kueue.x-k8s.io", "kind": "MultiKueueConfig", "name": "fed"}}
    assert objs[("MultiKueueConfig", "fed")]["spec"] == {"clusters": ["aws-use1", "gcp-usc1"]}
    assert objs[("MultiKueueCluster", "gcp-usc1")]["spec"] == {"clusterSource": {"kubeConfig": {"location": "fed-gcp-usc1-kubeconfig", "locationType": "Secret"}}}
    cq = objs[("ClusterQueue", "fed")]["spec"]
    assert cq["admissionChecksStrategy"] == {"admissionChecks": [{"name": "fed-multikueue"}]}
    gpus = {f["name"]: f["resources"][2]["nominalQuota"] for f in cq["resourceGroups"][0]["flavors"]}
    assert gpus == {"h100-spot": 24, "l4-od": 4}
    assert objs[("ResourceFlavor", "h100-spot")]["spec"] == {}  # quota only: nothing runs on the manager
    assert objs[("LocalQueue", "fed")]["metadata"]["namespace"] == "recs"
    assert plan.multikueue_section() == {"dispatcherName": "gpuplane.dev/cost-aware-dispatcher"}
    # External dispatch needs Kueue to clear nominatedClusterNames it did not write (engine lane finding).
    assert plan.feature_gates() == {"WorkloadRequestUseMergePatch": True}
    assert plan_federation("fed", _args(dispatcher="all_at_once")).feature_gates() == {}  # type: ignore[arg-type]


def test_emitted_workers_mirror_the_manager_with_their_own_quotas():
    plan = plan_federation("fed", _args())  # type: ignore[arg-type]
    manager = manager_objects(plan)
    for w in plan.workers:
        objs = worker_objects(plan, w)
        assert mirror_mismatches(manager, objs) == []
    gcp = {(o["kind"], o["metadata"]["name"]): o for o in worker_objects(plan, plan.workers[1])}
    assert ("ResourceFlavor", "l4-od") not in gcp  # it offers only h100-spot
    assert gcp[("ResourceFlavor", "h100-spot")]["spec"]["nodeLabels"] == {"gpuplane.dev/accelerator": "H100", "gpuplane.dev/capacity-type": "spot"}
    assert "admissionChecksStrategy" not in gcp[("ClusterQueue", "fed")]["spec"]


def test_incremental_dispatcher_sets_the_step_in_kueue_config():
    plan = plan_federation("fed", _args(dispatcher="incremental", incremental_step=2))  # type: ignore[arg-type]
    assert plan.multikueue_section() == {"dispatcherName": "kueue.x-k8s.io/multikueue-dispatcher-incremental", "incrementalDispatcherConfig": {"stepSize": 2}}


def test_worker_managed_elsewhere_is_reported_once_per_mismatch():
    args = _args()
    args["workers"][1]["existing_queues"] = {"namespaces": ["ads"], "local_queue": "fed", "cluster_queue": "gpus", "flavors": ["h100-spot", "a100"]}
    msgs = _problems(args)
    assert len(msgs) == 3, msgs
    assert any("workers[1].existing_queues.namespaces = 'recs'" in m and "namespace 'recs' exists on the manager but not on the worker" in m for m in msgs)
    assert any("existing_queues.cluster_queue" in m and "ClusterQueue 'fed' exists on the manager but not on the worker" in m for m in msgs)
    assert any("existing_queues.flavors = 'a100'" in m and "does not define" in m for m in msgs)


def test_worker_managed_elsewhere_that_mirrors_passes():
    args = _args()
    args["workers"][1]["existing_queues"] = {"namespaces": ["recs"], "local_queue": "fed", "cluster_queue": "fed", "flavors": ["h100-spot"]}
    plan = plan_federation("fed", args)  # type: ignore[arg-type]
    assert plan.workers[1].existing is not None


def test_local_queue_named_differently_is_one_message():
    args = _args()
    args["workers"][1]["existing_queues"] = {"namespaces": ["recs"], "local_queue": "training", "cluster_queue": "fed", "flavors": ["h100-spot"]}
    msgs = _problems(args)
    assert len(msgs) == 1 and "namespace 'recs' has no LocalQueue 'fed' on the worker" in msgs[0] and "name the worker's LocalQueue 'fed'" in msgs[0]


def test_worker_offering_an_unknown_flavor_is_reported():
    args = _args()
    args["workers"][0]["flavors"].append({"name": "a100-spot", "gpus": 8, "vcpus": 8, "memory_gib": 64, "usd_per_gpu_hour": 1.0})
    msgs = _problems(args)
    assert len(msgs) == 1 and "offers flavor 'a100-spot', which the manager does not define" in msgs[0]


def test_unreachable_worker_is_reported_with_the_fix():
    args = _args()
    args["workers"][1]["cluster"] = _cluster("lab", "kubernetes", None, kubeconfig_known=False)
    args["workers"][1]["cloud"] = "gcp"
    args["workers"][1]["region"] = "us-central1"
    msgs = _problems(args)
    assert len(msgs) == 1
    assert "workers[1].kubeconfig_secret = None" in msgs[0] and "unreachable from the manager" in msgs[0] and "kubeconfig_secret" in msgs[0].split("To fix:")[1]
    args["workers"][1]["kubeconfig_secret"] = "lab-kubeconfig"
    assert plan_federation("fed", args).workers[1].create_secret is False  # type: ignore[arg-type]


def test_flavor_no_worker_offers_is_reported():
    args = _args()
    args["flavors"].append({"name": "a100-od", "accelerator": "A100-80GB"})
    msgs = _problems(args)
    assert len(msgs) == 1 and "flavor 'a100-od' is offered by no worker" in msgs[0]


def test_flavor_the_workers_region_does_not_sell_names_the_fix():
    args = _args()
    args["workers"][1]["flavors"].append({"name": "l4-od", "gpus": 2})
    args["workers"][1]["region"] = "asia-northeast1"
    args["flavors"][1]["accelerator"] = "A10G"  # no A10G on GCP at all
    msgs = _problems(args)
    assert any("workers[1].flavors[1]" in m and "A10G" in m for m in msgs), msgs


def _program() -> None:
    hub = KubernetesCluster("hub", {"cloud": "existing", "kubeconfig": "apiVersion: v1\nkind: Config\n"})
    w1 = KubernetesCluster("w1", {"cloud": "existing", "kubeconfig": "apiVersion: v1\nkind: Config\n"})
    w2 = KubernetesCluster("w2", {"cloud": "existing", "kubeconfig": "apiVersion: v1\nkind: Config\n"})
    TrainingFederation(
        "fed",
        {
            "manager": hub,
            "flavors": [{"name": "l4-od", "accelerator": "L4"}],
            "workers": [
                {"name": "aws-use1", "cluster": w1, "cloud": "aws", "region": "us-east-1", "flavors": [{"name": "l4-od", "gpus": 2}]},
                {"name": "gcp-euw4", "cluster": w2, "cloud": "gcp", "region": "europe-west4", "flavors": [{"name": "l4-od", "gpus": 2}], "kubeconfig_secret": "given"},
            ],
            "teams": [{"name": "recs"}],
        },
    )


@pytest.fixture(scope="module")
def program_run():
    return run(_program)


def test_component_creates_the_manager_and_worker_objects_on_their_providers(program_run):
    res = program_run.resources
    fed = next(r for r in res if r.type == "gpuplane:index:TrainingFederation")
    by_name = {r.name: r for r in res}
    for n in ("fed-kueue", "fed-aws-use1-kueue", "fed-gcp-euw4-kueue", "fed-admission-check", "fed-multikueue-config", "fed-aws-use1-cluster", "fed-cq",
              "fed-recs-local-queue", "fed-aws-use1-cq", "fed-aws-use1-flavor-l4-od", "fed-gcp-euw4-recs-local-queue", "fed-aws-use1-kubeconfig"):
        assert n in by_name, f"{n} missing; have {sorted(by_name)}"
        assert by_name[n].parent == fed.urn, f"{by_name[n].urn} is not parented to the federation"
    assert "fed-gcp-euw4-kubeconfig" not in by_name  # given Secret
    assert "hub-provider" in (by_name["fed-cq"].provider or "") or by_name["fed-cq"].provider != by_name["fed-aws-use1-cq"].provider
    values = by_name["fed-kueue"].inputs["values"]["managerConfig"]["controllerManagerConfigYaml"]
    assert "dispatcherName: gpuplane.dev/cost-aware-dispatcher" in values and "WorkloadRequestUseMergePatch: true" in values
    assert "multiKueue" not in by_name["fed-aws-use1-kueue"].inputs["values"]["managerConfig"]["controllerManagerConfigYaml"]
    assert validate_all_core_objects(program_run) >= 3


def test_every_kueue_object_passes_the_upstream_crd_schema():
    from gpuplane.engine.schemas import custom_resource_problems

    plan = plan_federation("fed", _args())  # type: ignore[arg-type]
    objs = manager_objects(plan) + [o for w in plan.workers for o in worker_objects(plan, w)]
    checked = 0
    for o in objs:
        if o["apiVersion"] == "v1":
            continue
        problems = custom_resource_problems(o)
        assert problems is not None, f"no schema for {o['kind']}"
        assert problems == [], f"{o['kind']} {o['metadata']['name']}: {problems}"
        checked += 1
    assert checked >= 10
    bad = dict(manager_objects(plan)[2])  # an AdmissionCheck with a misspelt field is caught
    assert bad["kind"] == "AdmissionCheck"
    bad["spec"] = {**bad["spec"], "controller": "x"}
    assert custom_resource_problems(bad)
