"""The Kueue and JobSet objects have their upstream shapes.

Small structural schemas, written from the upstream API types and CRDs at the pinned versions:
kubernetes-sigs/kueue v0.19.2 ``apis/kueue/v1beta2`` + ``config/components/crd/bases`` and
kubernetes-sigs/jobset v0.12.0 ``api/jobset/v1alpha2/jobset_types.go``. They list required
fields, types, enums, size limits and the CEL rules we can express, and forbid unknown keys at
every level they describe (a misspelt field would otherwise be pruned silently by the API
server). The Job template inside the JobSet is checked as a real ``batch/v1`` Job against the
Kubernetes OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from components.cluster import ClusterFacts
from components.training import KUEUE_API, plan_training_cluster
from components.training.kueue import cluster_queues, kueue_values, local_queue, resource_flavor
from components.training_job import plan_training_job
from components.training_job.jobset import headless_service, jobset_manifest
from tests.helpers import validate_k8s

QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|m)?$"}]}
DNS_SUBDOMAIN = {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
DNS_LABEL = {"type": "string", "maxLength": 63, "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"}


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


METADATA = {"type": "object", "required": ["name"], "properties": {"name": DNS_SUBDOMAIN, "namespace": DNS_LABEL, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}
TOLERATION = obj({"key": {"type": "string"}, "operator": {"enum": ["Equal", "Exists"]}, "value": {"type": "string"}, "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}, "tolerationSeconds": {"type": "integer"}})
LABEL_SELECTOR = obj({
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array", "items": obj({"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}, "values": {"type": "array", "items": {"type": "string"}}}, ("key", "operator"))},
})

RESOURCE_FLAVOR = obj({
    "apiVersion": {"const": "kueue.x-k8s.io/v1beta2"},
    "kind": {"const": "ResourceFlavor"},
    "metadata": METADATA,
    "spec": obj({
        "nodeLabels": {"type": "object", "maxProperties": 8, "additionalProperties": {"type": "string"}},
        "nodeTaints": {"type": "array", "maxItems": 8},
        "tolerations": {"type": "array", "maxItems": 8, "items": TOLERATION},
        "topologyName": {"type": "string"},
    }),
}, ("apiVersion", "kind", "metadata", "spec"))

RESOURCE_QUOTA = obj({"name": {"type": "string"}, "nominalQuota": QUANTITY, "borrowingLimit": QUANTITY, "lendingLimit": QUANTITY}, ("name", "nominalQuota"))
FLAVOR_QUOTAS = obj({"name": DNS_SUBDOMAIN, "resources": {"type": "array", "minItems": 1, "maxItems": 64, "items": RESOURCE_QUOTA}}, ("name", "resources"))
CLUSTER_QUEUE = obj({
    "apiVersion": {"const": "kueue.x-k8s.io/v1beta2"},
    "kind": {"const": "ClusterQueue"},
    "metadata": METADATA,
    "spec": obj({
        "cohortName": DNS_SUBDOMAIN,
        "namespaceSelector": LABEL_SELECTOR,
        "queueingStrategy": {"enum": ["StrictFIFO", "BestEffortFIFO"]},
        "resourceGroups": {
            "type": "array",
            "maxItems": 16,
            "items": obj({
                "coveredResources": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "string"}},
                "flavors": {"type": "array", "minItems": 1, "maxItems": 64, "items": FLAVOR_QUOTAS},
            }, ("coveredResources", "flavors")),
        },
        "flavorFungibility": obj({
            "whenCanBorrow": {"enum": ["MayStopSearch", "TryNextFlavor"]},
            "whenCanPreempt": {"enum": ["MayStopSearch", "TryNextFlavor"]},
            "preference": {"enum": ["BorrowingOverPreemption", "PreemptionOverBorrowing"]},
        }),
        "preemption": obj({
            "reclaimWithinCohort": {"enum": ["Never", "LowerPriority", "Any"]},
            "withinClusterQueue": {"enum": ["Never", "LowerPriority", "LowerOrNewerEqualPriority"]},
            "borrowWithinCohort": {"type": "object"},
        }),
        "stopPolicy": {"enum": ["None", "Hold", "HoldAndDrain"]},
    }),
}, ("apiVersion", "kind", "metadata", "spec"))

LOCAL_QUEUE = obj({
    "apiVersion": {"const": "kueue.x-k8s.io/v1beta2"},
    "kind": {"const": "LocalQueue"},
    "metadata": {**METADATA, "required": ["name", "namespace"]},
    "spec": obj({"clusterQueue": DNS_SUBDOMAIN, "stopPolicy": {"enum": ["None", "Hold", "HoldAndDrain"]}}, ("clusterQueue",)),
}, ("apiVersion", "kind", "metadata", "spec"))

JOBSET = obj({
    "apiVersion": {"const": "jobset.x-k8s.io/v1alpha2"},
    "kind": {"const": "JobSet"},
    "metadata": {**METADATA, "required": ["name", "namespace"]},
    "spec": obj({
        "replicatedJobs": {"type": "array", "minItems": 1, "items": obj({
            "name": DNS_LABEL, "groupName": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1},
            "template": obj({"metadata": {"type": "object"}, "spec": {"type": "object"}}, ("spec",)),
            "dependsOn": {"type": "array"},
        }, ("name", "template"))},
        "network": obj({"enableDNSHostnames": {"type": "boolean"}, "subdomain": DNS_LABEL, "publishNotReadyAddresses": {"type": "boolean"}}),
        "successPolicy": obj({"operator": {"enum": ["All", "Any"]}, "targetReplicatedJobs": {"type": "array"}}, ("operator",)),
        "failurePolicy": obj({
            "maxRestarts": {"type": "integer", "minimum": 0},
            "restartStrategy": {"enum": ["Recreate", "BlockingRecreate", "InPlaceRestart"]},
            "rules": {"type": "array", "items": obj({
                "name": {"type": "string", "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                "action": {"enum": ["FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts", "RestartJob", "RestartJobAndIgnoreMaxRestarts"]},
                "onJobFailureReasons": {"type": "array", "uniqueItems": True, "items": {"enum": ["BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy", "MaxFailedIndexesExceeded", "FailedIndexes"]}},
                "onJobFailureMessagePatterns": {"type": "array", "uniqueItems": True},
                "targetReplicatedJobs": {"type": "array"},
            }, ("name", "action"))},
        }),
        "startupPolicy": obj({"startupPolicyOrder": {"enum": ["AnyOrder", "InOrder"]}}, ("startupPolicyOrder",)),
        "suspend": {"type": "boolean"},
        "coordinator": {"type": "object"},
        "managedBy": {"type": "string"},
        "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
    }),
}, ("apiVersion", "kind", "metadata", "spec"))

SCHEMAS = {"ResourceFlavor": RESOURCE_FLAVOR, "ClusterQueue": CLUSTER_QUEUE, "LocalQueue": LOCAL_QUEUE, "JobSet": JOBSET}


def check(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, SCHEMAS[manifest["kind"]])
    if manifest["kind"] == "ClusterQueue":
        for group in manifest["spec"]["resourceGroups"]:
            for flavor in group["flavors"]:
                # Kueue: each flavor lists the covered resources, in the same order (CEL rule and webhook).
                assert [r["name"] for r in flavor["resources"]] == group["coveredResources"], manifest["metadata"]["name"]
        if "cohortName" not in manifest["spec"]:
            assert all("borrowingLimit" not in r for g in manifest["spec"]["resourceGroups"] for f in g["flavors"] for r in f["resources"])


KARPENTER = ClusterFacts(cloud="aws", name="eks", region="us-east-1", zones=("us-east-1a", "us-east-1b"), autoscaler="karpenter")
GKE = ClusterFacts(cloud="gcp", name="gke", region="us-central1", zones=("us-central1-a",), autoscaler="gke")
A10G = {"name": "a10g", "accelerator": "A10G", "max_nodes": 4}
BIG = {"name": "big", "accelerator": "A10G", "accelerators_per_node": 4, "max_nodes": 2}

PLANS = {
    "shared": (KARPENTER, {"pools": [A10G], "checkpoint_bucket": {}, "teams": [{"name": "recs"}, {"name": "ads"}]}),
    "cohort": (KARPENTER, {"pools": [A10G, BIG], "checkpoint_bucket": {}, "teams": [{"name": "recs", "gpu_quota": {"a10g": 2, "big": 4}}, {"name": "ads", "gpu_quota": {"a10g": 1}}]}),
    "gke-spot-only": (GKE, {"pools": [{"name": "l4", "accelerator": "L4", "max_nodes": 3}], "capacity_fallback": ["spot"], "checkpoint_bucket": {}}),
}


@pytest.fixture(scope="module", params=sorted(PLANS))
def cluster_plan(request):
    facts, args = PLANS[request.param]
    return plan_training_cluster("train", {"cluster": None, **args}, facts)  # type: ignore[arg-type]


def test_resource_flavors_match_the_upstream_shape_and_select_pool_and_capacity(cluster_plan):
    for pool in cluster_plan.pools:
        for c in pool.capacities:
            rf = resource_flavor(cluster_plan, pool.name, c.capacity)
            check(rf)
            assert rf["spec"]["nodeLabels"] == {"gpuplane.dev/training-pool": pool.name, "gpuplane.dev/capacity-type": c.capacity.replace("_", "-")}
            assert rf["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}]


def test_cluster_queues_match_the_upstream_shape_with_flavors_in_fallback_order(cluster_plan):
    queues = cluster_queues(cluster_plan)
    for q in queues:
        check(q)
        spec = q["spec"]
        assert spec["flavorFungibility"] == {"whenCanBorrow": "MayStopSearch", "whenCanPreempt": "TryNextFlavor"}
        group = spec["resourceGroups"][0]
        assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
        expected = [c.flavor for cap in cluster_plan.capacity_fallback for p in cluster_plan.pools for c in p.capacities if c.capacity == cap]
        assert [f["name"] for f in group["flavors"]] == expected, q["metadata"]["name"]


def test_quota_teams_share_a_cohort_and_the_rest_is_lendable():
    facts, args = PLANS["cohort"]
    plan = plan_training_cluster("train", {"cluster": None, **args}, facts)  # type: ignore[arg-type]
    queues = {q["metadata"]["name"]: q for q in cluster_queues(plan)}
    assert set(queues) == {"train-recs", "train-ads", "train-shared"}
    assert {q["spec"]["cohortName"] for q in queues.values()} == {"train"}

    def gpus(qname: str) -> dict[str, int]:
        return {f["name"]: f["resources"][2]["nominalQuota"] for f in queues[qname]["spec"]["resourceGroups"][0]["flavors"]}

    assert gpus("train-recs") == {"train-a10g-spot": 2, "train-big-spot": 4, "train-a10g-on-demand": 2, "train-big-on-demand": 4}
    assert gpus("train-ads") == {"train-a10g-spot": 1, "train-big-spot": 0, "train-a10g-on-demand": 1, "train-big-on-demand": 0}
    # a10g: 4 GPUs - 3 claimed; big: 8 GPUs - 4 claimed. The shared queue admits nothing itself.
    assert gpus("train-shared") == {"train-a10g-spot": 1, "train-big-spot": 4, "train-a10g-on-demand": 1, "train-big-on-demand": 4}
    assert queues["train-shared"]["spec"]["namespaceSelector"] == {"matchLabels": {"gpuplane.dev/no-namespace": "true"}}
    assert queues["train-recs"]["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "recs"}}
    assert queues["train-recs"]["spec"]["preemption"]["reclaimWithinCohort"] == "Any"


def test_local_queues_match_the_upstream_shape(cluster_plan):
    for team in cluster_plan.teams:
        lq = local_queue(cluster_plan, team)
        check(lq)
        assert (lq["metadata"]["namespace"], lq["spec"]["clusterQueue"]) == (team.namespace, team.cluster_queue)


def test_kueue_configuration_turns_on_wait_for_pods_ready():
    import yaml

    config = yaml.safe_load(kueue_values()["managerConfig"]["controllerManagerConfigYaml"])
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2" and config["kind"] == "Configuration"
    # v1beta2 has no "enable" field: the block's presence enables it; timeout is required.
    assert re.match(r"^[0-9]+[smh]$", config["waitForPodsReady"]["timeout"])
    assert config["waitForPodsReady"]["blockAdmission"] is True
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]
    assert KUEUE_API == "kueue.x-k8s.io/v1beta2"


@pytest.fixture(scope="module")
def job_plan():
    facts, args = PLANS["cohort"]
    plan = plan_training_cluster("train", {"cluster": None, **args}, facts)  # type: ignore[arg-type]
    return plan_training_job(
        "gpt",
        {"training_cluster": None, "team": "recs", "image": "img", "pool": "big", "nodes": 2, "data_command": ["python", "-m", "workloads.data.generate", "--out", "/data"], "ttl_seconds_after_finished": 3600},  # type: ignore[typeddict-item]
        plan,
    )


def test_jobset_matches_the_upstream_shape(job_plan):
    js = jobset_manifest(job_plan, "img:1", "s3://bucket/recs/gpt", extra_env={"AWS_REGION": "us-east-1"})
    check(js)
    assert js["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "train"
    assert js["spec"]["network"] == {"enableDNSHostnames": True, "subdomain": "gpt", "publishNotReadyAddresses": True}
    rules = js["spec"]["failurePolicy"]["rules"]
    assert [(r["action"], r["onJobFailureReasons"]) for r in rules] == [
        ("RestartJobSetAndIgnoreMaxRestarts", ["PodFailurePolicy"]), ("FailJobSet", ["PodFailurePolicy"]), ("RestartJobSet", ["BackoffLimitExceeded"])]
    # Only a disrupted pod's failure message matches the first rule; an exit-2 failure falls through to FailJobSet.
    assert rules[0]["onJobFailureMessagePatterns"] == ["has condition DisruptionTarget"]
    assert re.search(rules[0]["onJobFailureMessagePatterns"][0], "Pod recs/gpt-worker-0-1-x has condition DisruptionTarget matching FailJob rule at index 1")
    assert not re.search(rules[0]["onJobFailureMessagePatterns"][0], "Container trainer for pod recs/gpt-worker-0-0-x failed with exit code 2 matching FailJob rule at index 2")


def test_a_disrupted_pod_fails_the_job_so_the_jobset_restarts_the_whole_gang(job_plan):
    js = jobset_manifest(job_plan, "img:1", "s3://bucket/recs/gpt")
    rules = js["spec"]["replicatedJobs"][0]["template"]["spec"]["podFailurePolicy"]["rules"]
    assert rules[1] == {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[2]["action"] == "FailJob" and rules[2]["onExitCodes"]["values"] == [2]


def test_jobset_job_template_is_a_valid_batch_job_with_exit_75_ignored(job_plan):
    js = jobset_manifest(job_plan, "img:1", "s3://bucket/recs/gpt")
    rjob = js["spec"]["replicatedJobs"][0]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "gpt-worker-0", "namespace": "recs"}, "spec": rjob["template"]["spec"]}
    validate_k8s(job)
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["completionMode"], spec["backoffLimit"]) == (2, 2, "Indexed", 0)
    ignore_75 = spec["podFailurePolicy"]["rules"][0]
    assert ignore_75 == {"action": "Ignore", "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [75]}}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] == 110 and pod["serviceAccountName"] == "trainer"
    assert pod["nodeSelector"] == {"gpuplane.dev/training-pool": "big"}
    c = pod["containers"][0]
    assert c["resources"]["limits"] == {"cpu": "40", "memory": "153Gi", "nvidia.com/gpu": "4"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "38Gi"}} in pod["volumes"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MASTER_ADDR"] == "gpt-worker-0-0.gpt" and env["MASTER_PORT"] == "29500" and env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == "105"
    assert "command" not in c  # the image's ENTRYPOINT: torchrun that keeps exit codes 75 and 2
    cmd = c["args"]
    assert cmd[:3] == ["--nnodes=2", "--nproc-per-node=4", "--node-rank=$(NODE_RANK)"]
    workload = cmd[cmd.index("-m") + 1:]
    assert workload[:3] == ["workloads.training", "--preset", "tiny"]
    assert workload[workload.index("--checkpoint-dir") + 1] == "s3://bucket/recs/gpt"
    assert pod["initContainers"][0]["command"][-2:] == ["--out", "/data"]


def test_headless_service_is_the_jobset_subdomain(job_plan):
    svc = headless_service(job_plan)
    validate_k8s({"apiVersion": "v1", "kind": "Service", **svc})
    assert svc["metadata"]["name"] == job_plan.subdomain
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["selector"] == {"jobset.sigs.k8s.io/jobset-name": "gpt"}


def test_the_structural_check_rejects_a_v1beta1_field_name(cluster_plan):
    queue = cluster_queues(cluster_plan)[0]
    queue["spec"]["cohort"] = "train"  # v1beta1's name; v1beta2 calls it cohortName
    with pytest.raises(jsonschema.ValidationError, match="cohort"):
        check(queue)


def test_command_overrides_the_image_entrypoint_only_when_given(job_plan):
    import dataclasses

    plan = dataclasses.replace(job_plan, command=("python", "-m", "workloads.training.launch"))
    container = jobset_manifest(plan, "img", "s3://b/recs/gpt")["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "workloads.training.launch"]
    assert container["args"][0] == "--nnodes=2"
