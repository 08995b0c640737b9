"""Table tests for the pure SpotTrainingCluster / TrainingJob planners (no runtime)."""

from __future__ import annotations

import pytest

from components.cluster import ClusterFacts
from components.errors import ComponentInputError
from components.training import (
    LABEL_CAPACITY,
    LABEL_TRAINING_POOL,
    default_grace_seconds,
    plan_training_cluster,
)
from components.training_job import plan_training_job

AWS = ClusterFacts(cloud="aws", name="eks", region="us-east-1", zones=("us-east-1a", "us-east-1b"), autoscaler="cluster-autoscaler", tags={"team": "ml"})
KARPENTER = ClusterFacts(cloud="aws", name="eks", region="us-east-1", zones=("us-east-1a", "us-east-1b"), autoscaler="karpenter")
GKE = ClusterFacts(cloud="gcp", name="gke", region="us-central1", zones=("us-central1-a", "us-central1-b"), autoscaler="gke")
EXISTING = ClusterFacts(cloud="kubernetes", name="lab", region=None, zones=(), autoscaler="none")

A10G = {"name": "a10g", "accelerator": "A10G", "max_nodes": 4}
L4 = {"name": "l4", "accelerator": "L4", "max_nodes": 2}
EXISTING_L4 = {"name": "gpu", "accelerator": "L4", "node_vcpus": 16, "node_memory_gib": 64.0, "max_nodes": 2}


def problems(excinfo: pytest.ExceptionInfo[ComponentInputError]) -> dict[str, str]:
    found: dict[str, str] = {}
    for p in excinfo.value.problems:
        found[p.path] = f"{found[p.path]} | {p.render()}" if p.path in found else p.render()
    return found


# -- grace period derived from the catalog's notice --------------------------------------------


@pytest.mark.parametrize(("notice", "grace"), [(120, 110), (30, 25), (10, 5), (600, 550)])
def test_default_grace_keeps_a_margin_of_the_notice(notice, grace):
    assert default_grace_seconds(notice) == grace


@pytest.mark.parametrize(("facts", "pool", "notice", "grace", "handling"), [
    (AWS, A10G, 120, 110, "aws-node-termination-handler"),
    (KARPENTER, A10G, 120, 110, "karpenter-interruption-queue"),
    (GKE, L4, 30, 25, "gke-graceful-node-shutdown"),
])
def test_cloud_plans_size_grace_and_interruption_handling(facts, pool, notice, grace, handling):
    plan = plan_training_cluster("train", {"cluster": None, "pools": [pool], "checkpoint_bucket": {}}, facts)  # type: ignore[typeddict-item]
    assert (plan.notice_seconds, plan.termination_grace_period_seconds, plan.interruption_handling) == (notice, grace, handling)


# -- capacity fallback, consistent at node and queue level ---------------------------------------


@pytest.mark.parametrize(("facts", "fallback", "capacities", "priorities"), [
    (KARPENTER, ["spot", "on_demand"], ["spot", "on_demand"], [20, 10]),
    (KARPENTER, ["on_demand", "spot"], ["on_demand", "spot"], [20, 10]),
    (AWS, ["spot", "on_demand"], ["spot", "on_demand"], [20, 10]),
    (GKE, ["spot"], ["spot"], [10]),
    (GKE, ["on_demand"], ["on_demand"], [10]),
])
def test_fallback_order_becomes_node_pools_priorities_and_flavors(facts, fallback, capacities, priorities):
    pool = A10G if facts.cloud == "aws" else L4
    plan = plan_training_cluster("train", {"cluster": None, "pools": [pool], "capacity_fallback": fallback, "checkpoint_bucket": {}}, facts)  # type: ignore[typeddict-item]
    caps = plan.pools[0].capacities
    assert [c.capacity for c in caps] == capacities
    assert [c.priority for c in caps] == priorities
    assert [c.node_pool_name for c in caps] == [f"train-{pool['name']}-{c.replace('_', '-')}" for c in capacities]
    for c in caps:
        assert c.node_plan.capacity_type == c.capacity
        assert c.node_plan.labels[LABEL_TRAINING_POOL] == pool["name"]
        assert c.node_plan.labels[LABEL_CAPACITY] == c.capacity.replace("_", "-")
        assert c.node_plan.priority == c.priority


def test_pool_capacity_is_sized_from_the_catalog_instance():
    plan = plan_training_cluster("train", {"cluster": None, "pools": [A10G], "checkpoint_bucket": {}}, AWS)  # type: ignore[typeddict-item]
    pool = plan.pools[0]
    assert (pool.instance_type, pool.gpus_per_node, pool.vcpus_per_node, pool.memory_gib_per_node) == ("g5.xlarge", 1, 4, 16.0)
    assert [(c.gpus, c.vcpus, c.memory_gib) for c in pool.capacities] == [(4, 16, 64.0), (4, 16, 64.0)]
    assert pool.node_selector == {LABEL_TRAINING_POOL: "a10g"}


def test_existing_cluster_defaults_to_on_demand_and_takes_node_shape_from_args():
    plan = plan_training_cluster("train", {"cluster": None, "pools": [EXISTING_L4]}, EXISTING)  # type: ignore[typeddict-item]
    assert plan.capacity_fallback == ("on_demand",)
    assert plan.bucket is None and plan.interruption_handling == "none"
    pool = plan.pools[0]
    assert (pool.vcpus_per_node, pool.memory_gib_per_node, pool.instance_type) == (16, 64.0, None)
    assert pool.node_selector == {"nvidia.com/gpu.present": "true"}


# -- teams and quotas -----------------------------------------------------------------------------


@pytest.mark.parametrize(("teams", "per_team", "cluster_queues", "shared"), [
    (None, False, {"training": "train"}, None),
    ([{"name": "recs"}, {"name": "ads", "namespace": "ads-ml"}], False, {"recs": "train", "ads": "train"}, None),
    ([{"name": "recs", "gpu_quota": {"a10g": 2}}, {"name": "ads"}], True, {"recs": "train-recs", "ads": "train-ads"}, "train-shared"),
    ([{"name": "recs", "gpu_quota": {"a10g": 2}}, {"name": "ads", "gpu_quota": {"a10g": 2}}], True, {"recs": "train-recs", "ads": "train-ads"}, None),
])
def test_teams_get_local_queues_and_quota_teams_get_cohort_queues(teams, per_team, cluster_queues, shared):
    args = {"cluster": None, "pools": [A10G], "checkpoint_bucket": {}}
    if teams is not None:
        args["teams"] = teams
    plan = plan_training_cluster("train", args, KARPENTER)  # type: ignore[arg-type]
    assert plan.per_team_queues is per_team
    assert {t.name: t.cluster_queue for t in plan.teams} == cluster_queues
    assert all(t.local_queue == "train" for t in plan.teams)
    assert plan.shared_queue == shared
    assert plan.cohort == ("train" if per_team else None)


# -- checkpoint bucket ------------------------------------------------------------------------------


@pytest.mark.parametrize(("facts", "bucket", "create", "url", "encryption"), [
    (AWS, {}, True, None, "aws:kms"),
    (AWS, {"encryption": "managed"}, True, None, "AES256"),
    (AWS, {"url": "s3://team-ckpts/"}, False, "s3://team-ckpts", None),
    (GKE, {}, True, None, "google-managed"),
    (GKE, {"encryption": "kms", "kms_key": "projects/p/locations/us/keyRings/r/cryptoKeys/k"}, True, None, "cmek"),
    (EXISTING, {"url": "gs://lab-ckpts"}, False, "gs://lab-ckpts", None),
])
def test_bucket_plans(facts, bucket, create, url, encryption):
    pool = {"aws": A10G, "gcp": L4}.get(facts.cloud, EXISTING_L4)
    plan = plan_training_cluster("train", {"cluster": None, "pools": [pool], "checkpoint_bucket": bucket}, facts)  # type: ignore[typeddict-item]
    assert plan.bucket is not None
    assert (plan.bucket.create, plan.bucket.url, plan.bucket.encryption) == (create, url, encryption)
    summary = plan.summary()["checkpointBucket"]
    # A created bucket is named by its Pulumi resource (its physical name is random-suffixed at creation).
    assert summary["url"] == (url or f"{'s3' if facts.cloud == 'aws' else 'gs'}://train-checkpoints")
    assert summary["public"] is (False if create else None)
    assert summary["encrypted"] is (True if create else None)


def test_summary_has_what_policies_read():
    plan = plan_training_cluster("train", {"cluster": None, "pools": [A10G], "checkpoint_bucket": {}, "teams": [{"name": "recs", "gpu_quota": {"a10g": 2}}]}, KARPENTER)  # type: ignore[typeddict-item]
    s = plan.summary()
    assert {"cloud", "region", "pools", "checkpointBucket", "terminationGracePeriodSeconds", "noticeSeconds", "teams", "capacityFallback"} <= set(s)
    assert [(p["capacityType"], p["accelerator"], p["instanceType"]) for p in s["pools"]] == [("spot", "A10G", "g5.xlarge"), ("on_demand", "A10G", "g5.xlarge")]
    assert s["teams"] == [{"name": "recs", "namespace": "recs", "queue": "train", "clusterQueue": "train-recs", "gpuQuota": {"a10g": 2}, "serviceAccount": "trainer"}]
    assert (s["terminationGracePeriodSeconds"], s["noticeSeconds"]) == (110, 120)


# -- rejected inputs, with the messages ----------------------------------------------------------


def test_spot_without_checkpoint_bucket_is_rejected():
    with pytest.raises(ComponentInputError) as e:
        plan_training_cluster("train", {"cluster": None, "pools": [A10G]}, KARPENTER)  # type: ignore[typeddict-item]
    msg = problems(e)["checkpoint_bucket"]
    assert "required with spot capacity" in msg and "checkpoint_bucket={}" in msg


def test_grace_period_longer_than_the_notice_is_rejected():
    with pytest.raises(ComponentInputError) as e:
        plan_training_cluster("train", {"cluster": None, "pools": [L4], "checkpoint_bucket": {}, "termination_grace_period_seconds": 45}, GKE)  # type: ignore[typeddict-item]
    msg = problems(e)["termination_grace_period_seconds"]
    assert "longer than the gcp preemption notice of 30 s" in msg and "at most 30" in msg


def test_every_problem_is_reported_at_once():
    args = {
        "cluster": None,
        "pools": [{"name": "A10G!", "accelerator": "A10G"}, {"name": "h", "accelerator": "NOPE"}],
        "capacity_fallback": ["spot", "spot", "cheap"],
        "teams": [{"name": "recs", "gpu_quota": {"missing": 8}}, {"name": "recs"}],
        "termination_grace_period_seconds": 500,
        "extra": 1,
    }
    with pytest.raises(ComponentInputError) as e:
        plan_training_cluster("train", args, KARPENTER)  # type: ignore[arg-type]
    found = problems(e)
    for path in ("extra", "capacity_fallback[1]", "capacity_fallback[2]", "checkpoint_bucket", "termination_grace_period_seconds",
                 "pools[0].name", "pools[1].accelerator", "teams[0].gpu_quota.missing", "teams[1].name"):
        assert path in found, (path, sorted(found))
    assert str(e.value).startswith("SpotTrainingCluster 'train' has ")


@pytest.mark.parametrize(("facts", "args", "path", "needle"), [
    (EXISTING, {"pools": [EXISTING_L4], "capacity_fallback": ["spot", "on_demand"], "checkpoint_bucket": {"url": "s3://b"}}, "capacity_fallback", "kubernetes does not support spot"),
    (EXISTING, {"pools": [EXISTING_L4], "checkpoint_bucket": {}}, "checkpoint_bucket", "does not support checkpoint-bucket"),
    (EXISTING, {"pools": [{"name": "gpu", "accelerator": "L4"}]}, "pools[0].node_vcpus", "required on an existing cluster"),
    (EXISTING, {"pools": [EXISTING_L4, {**EXISTING_L4, "name": "h100", "accelerator": "H100", "accelerators_per_node": 8}], "checkpoint_bucket": {"url": "s3://bucket"}},
     "pools[1].node_labels", "select the same nodes as pool 'gpu'"),
    (EXISTING, {"pools": [{**EXISTING_L4, "node_labels": ["l4"]}], "checkpoint_bucket": {"url": "s3://bucket"}}, "pools[0].node_labels", "must map label keys to values"),
    (KARPENTER, {"pools": [{**A10G, "node_labels": {"x": "y"}}], "checkpoint_bucket": {}}, "pools[0].node_labels", "applies only to an existing cluster"),
    (KARPENTER, {"pools": [A10G], "capacity_fallback": ["reserved", "spot"], "checkpoint_bucket": {}}, "capacity_fallback", "eks does not support reserved-capacity"),
    (AWS, {"pools": [A10G], "checkpoint_bucket": {"url": "gs://wrong-cloud"}}, "checkpoint_bucket.url", "cluster runs on aws"),
    (AWS, {"pools": [A10G], "checkpoint_bucket": {"url": "s3://b", "retention_days": 3}}, "checkpoint_bucket.retention_days", "only to a bucket gpuplane creates"),
    (GKE, {"pools": [L4], "checkpoint_bucket": {"encryption": "kms"}}, "checkpoint_bucket.kms_key", "required for CMEK"),
    (KARPENTER, {"pools": [A10G], "checkpoint_bucket": {}, "teams": [{"name": "recs", "gpu_quota": {"a10g": 3}}, {"name": "ads", "gpu_quota": {"a10g": 2}}]}, "teams[*].gpu_quota", "guarantee 5 GPUs of pool 'a10g', which holds only 4"),
    (KARPENTER, {"pools": [A10G], "checkpoint_bucket": {}, "teams": [{"name": "recs"}, {"name": "ads", "namespace": "recs"}]}, "teams[1].namespace", "already team 'recs'"),
    (KARPENTER, {"pools": [{**A10G, "accelerators_per_node": 3}], "checkpoint_bucket": {}}, "pools[0].accelerators_per_node", "not offered for A10G on aws"),
])
def test_bad_cluster_inputs_name_the_path_and_the_fix(facts, args, path, needle):
    with pytest.raises(ComponentInputError) as e:
        plan_training_cluster("train", {"cluster": None, **args}, facts)  # type: ignore[arg-type]
    found = problems(e)
    assert path in found, sorted(found)
    assert needle in found[path] and "To fix:" in found[path]


# -- TrainingJob ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_plan():
    return plan_training_cluster(
        "train",
        {"cluster": None, "pools": [A10G, {"name": "big", "accelerator": "A10G", "accelerators_per_node": 4, "max_nodes": 2}], "checkpoint_bucket": {}, "teams": [{"name": "recs"}]},  # type: ignore[typeddict-item]
        KARPENTER,
    )


@pytest.mark.parametrize(("args", "gpus", "cpu", "memory", "shm"), [
    ({"pool": "a10g", "nodes": 2}, 1, 3, 12, 3),  # g5.xlarge: 4 vCPU, 16 GiB
    ({"pool": "big", "nodes": 2}, 4, 40, 153, 38),  # g5.12xlarge: 48 vCPU, 192 GiB
    ({"pool": "big", "gpus_per_node": 2}, 2, 20, 76, 19),  # half the node
])
def test_job_pods_request_the_pool_share(aws_plan, args, gpus, cpu, memory, shm):
    job = plan_training_job("gpt", {"training_cluster": None, "team": "recs", "image": "img", **args}, aws_plan)  # type: ignore[typeddict-item]
    assert (job.gpus_per_node, job.cpu_per_pod, job.memory_gib_per_pod, job.shm_gib) == (gpus, cpu, memory, shm)
    assert job.termination_grace_period_seconds == 110
    assert job.master_addr == "gpt-worker-0-0.gpt"
    assert job.summary()["queue"] == "train"


@pytest.mark.parametrize(("args", "path", "needle"), [
    ({"team": "nobody"}, "team", "not a team of SpotTrainingCluster 'train'"),
    ({"pool": "a10g", "gpus_per_node": 2}, "gpus_per_node", "whose nodes have 1 x A10G"),
    ({"pool": "big", "nodes": 3}, "nodes", "beyond pool 'big', which grows to 2 nodes (8 GPUs)"),
    ({}, "pool", "is required: the cluster has 2 pools"),
    ({"pool": "a10g", "termination_grace_period_seconds": 121}, "termination_grace_period_seconds", "longer than the aws preemption notice of 120 s"),
    ({"pool": "a10g", "env": {"MASTER_ADDR": "x"}}, "env.MASTER_ADDR", "set by the job itself"),
    ({"pool": "a10g", "image": ""}, "image", "is required"),
])
def test_bad_job_inputs_are_rejected_with_a_fix(aws_plan, args, path, needle):
    with pytest.raises(ComponentInputError) as e:
        plan_training_job("gpt", {"training_cluster": None, "team": "recs", "image": "img", **args}, aws_plan)  # type: ignore[typeddict-item]
    found = problems(e)
    assert path in found, sorted(found)
    assert needle in found[path] and "To fix:" in found[path]


def test_job_without_any_checkpoint_location_is_rejected():
    plan = plan_training_cluster("train", {"cluster": None, "pools": [EXISTING_L4]}, EXISTING)  # type: ignore[typeddict-item]
    with pytest.raises(ComponentInputError) as e:
        plan_training_job("gpt", {"training_cluster": None, "team": "training", "image": "img"}, plan)  # type: ignore[typeddict-item]
    assert "has no checkpoint bucket" in problems(e)["checkpoint_url"]
    ok = plan_training_job("gpt", {"training_cluster": None, "team": "training", "image": "img", "checkpoint_url": "s3://b/x"}, plan)  # type: ignore[typeddict-item]
    assert ok.uses_bucket is False and ok.termination_grace_period_seconds == 25


@pytest.mark.parametrize(("facts", "pool", "compact"), [
    (AWS, A10G, True),  # managed node groups: cluster placement group for a multi-node pool
    (AWS, {**A10G, "max_nodes": 1}, False),  # one node needs no placement group
    (AWS, {**A10G, "compact_placement": False}, False),  # an explicit choice wins
    (KARPENTER, A10G, False),  # Karpenter pools have no placement-group setting
    (GKE, L4, True),
])
def test_multi_node_pools_default_to_compact_placement_where_supported(facts, pool, compact):
    plan = plan_training_cluster("train", {"cluster": None, "pools": [pool], "checkpoint_bucket": {}}, facts)  # type: ignore[typeddict-item]
    assert [c.node_plan.compact_placement for c in plan.pools[0].capacities] == [compact, compact]
    assert all(len(c.node_plan.zones) == 1 for c in plan.pools[0].capacities) or not compact


def test_pools_of_an_existing_cluster_are_told_apart_by_their_node_labels():
    from components.training.kueue import resource_flavor

    l4 = {**EXISTING_L4, "node_labels": {"nvidia.com/gpu.product": "NVIDIA-L4"}}
    h100 = {**EXISTING_L4, "name": "h100", "accelerator": "H100", "accelerators_per_node": 8,
            "node_labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}
    plan = plan_training_cluster("train", {"cluster": None, "pools": [l4, h100], "checkpoint_bucket": {"url": "s3://bucket"}}, EXISTING)  # type: ignore[typeddict-item]
    selectors = {p.name: p.node_selector for p in plan.pools}
    assert selectors == {"gpu": {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.present": "true"},
                         "h100": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.present": "true"}}
    # The flavor Kueue admits a job on selects the same nodes as the job's pods and the pool's device plugin.
    for pool in plan.pools:
        assert resource_flavor(plan, pool.name, "on_demand")["spec"]["nodeLabels"] == pool.node_selector
        assert pool.capacities[0].node_plan.scheduling.node_selector == pool.node_selector
