"""SpotTrainingCluster and TrainingJob under the mock runtime: children, parents, providers, inputs.

One program run per implementation (module-scoped): an existing cluster, EKS with Karpenter,
EKS with managed node groups (Cluster Autoscaler), GKE.
"""

from __future__ import annotations

import json

import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.training import SpotTrainingCluster
from components.training_job import TrainingJob
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run, validate_all_core_objects

STC = "gpuplane:index:SpotTrainingCluster"
TJ = "gpuplane:index:TrainingJob"
JOBSET = "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _aws(autoscaler: str):
    def program() -> None:
        cluster = KubernetesCluster("eks", {"cloud": "aws", "region": "us-east-1", "autoscaler": autoscaler, "tags": {"team": "ml"}})
        tc = SpotTrainingCluster(
            "train",
            {
                "cluster": cluster,
                "pools": [{"name": "a10g", "accelerator": "A10G", "max_nodes": 4}],
                "checkpoint_bucket": {"retention_days": 14},
                "teams": [{"name": "recs", "gpu_quota": {"a10g": 2}}, {"name": "ads"}],
            },
        )
        TrainingJob("gpt", {"training_cluster": tc, "team": "recs", "image": "ghcr.io/acme/train:1", "nodes": 2})

    return program


def _gcp() -> None:
    cluster = KubernetesCluster("gke", {"cloud": "gcp", "region": "us-central1", "project": "acme-ml"})
    tc = SpotTrainingCluster("train", {"cluster": cluster, "pools": [{"name": "l4", "accelerator": "L4", "max_nodes": 2}], "checkpoint_bucket": {}, "teams": [{"name": "recs"}]})
    TrainingJob("gpt", {"training_cluster": tc, "team": "recs", "image": "img", "nodes": 2})


def _existing() -> None:
    cluster = KubernetesCluster("lab", {"cloud": "existing"})
    tc = SpotTrainingCluster(
        "train",
        {
            "cluster": cluster,
            "pools": [{"name": "gpu", "accelerator": "L4", "node_vcpus": 16, "node_memory_gib": 64, "max_nodes": 2}],
            "checkpoint_bucket": {"url": "gs://lab-ckpts"},
            "install_jobset": False,
            "service_account_annotations": {"iam.gke.io/gcp-service-account": "trainer@lab.iam.gserviceaccount.com"},
        },
    )
    TrainingJob("gpt", {"training_cluster": tc, "team": "training", "image": "img", "nodes": 2, "max_restarts": 3})


PROGRAMS = {"existing": _existing, "karpenter": _aws("karpenter"), "managed": _aws("cluster-autoscaler"), "gke": _gcp}


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {}


@pytest.fixture(params=sorted(PROGRAMS))
def program_run(request, runs) -> tuple[str, ProgramRun]:
    if request.param not in runs:
        runs[request.param] = run(PROGRAMS[request.param])
    return request.param, runs[request.param]


def _get(runs: dict[str, ProgramRun], key: str) -> ProgramRun:
    if key not in runs:
        runs[key] = run(PROGRAMS[key])
    return runs[key]


def test_children_are_parented_named_and_use_the_cluster_provider(program_run):
    kind, r = program_run
    stc, job = r.one(STC, "train"), r.one(TJ, "gpt")
    cluster_provider = next(x for x in r.resources if x.type == "pulumi:providers:kubernetes")
    for child in r.children_of(stc.urn) + r.children_of(job.urn):
        owner = "train" if child.parent == stc.urn else "gpt"
        assert child.name.startswith(f"{owner}-"), child.urn
        if child.type.startswith("kubernetes:"):
            assert child.provider and f"::{cluster_provider.name}::" in child.provider, child.urn
    types = {c.type for c in r.children_of(stc.urn)}
    assert {"gpuplane:index:GpuNodePool", "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor", "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue",
            "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue", "kubernetes:core/v1:Namespace", "kubernetes:core/v1:ServiceAccount", RELEASE} <= types, kind
    assert {c.type for c in r.children_of(job.urn)} == {JOBSET, "kubernetes:core/v1:Service"}
    assert validate_all_core_objects(r) >= 3


def test_node_pools_follow_the_fallback_with_karpenter_weights(runs):
    r = _get(runs, "karpenter")
    pools = {p.name: p.inputs["gpuplane"] for p in r.by_type("gpuplane:index:GpuNodePool") if p.name.startswith("train-")}
    assert {n: (s["capacityType"], s["labels"]["gpuplane.dev/training-pool"]) for n, s in pools.items()} == {
        "train-a10g-spot": ("spot", "a10g"), "train-a10g-on-demand": ("on_demand", "a10g")}
    weights = {np.name: np.inputs["spec"]["weight"] for np in r.by_type("kubernetes:karpenter.sh/v1:NodePool") if np.name.startswith("train-")}
    assert weights["train-a10g-spot-node-pool"] > weights["train-a10g-on-demand-node-pool"]
    # Karpenter's interruption queue belongs to the cluster; no termination handler is installed.
    assert not [x for x in r.by_type(RELEASE) if "termination" in x.name]
    assert r.one(STC).inputs["gpuplane"]["interruptionHandling"] == "karpenter-interruption-queue"


def test_managed_node_groups_get_the_termination_handler_on_spot_nodes(runs):
    r = _get(runs, "managed")
    nth = r.named("train-node-termination-handler")
    assert nth.inputs["chart"].startswith("oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler") and nth.inputs["version"]
    values = nth.inputs["values"]
    assert values["daemonsetNodeSelector"] == {"gpuplane.dev/capacity-type": "spot"}
    assert values["enableSpotInterruptionDraining"] is True and values["podTerminationGracePeriod"] == -1


def test_s3_bucket_is_encrypted_private_versioned_and_expires_checkpoints(runs):
    r = _get(runs, "karpenter")
    enc = r.named("train-checkpoints-encryption").inputs["rules"][0]
    assert enc["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert enc["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:") and enc["bucketKeyEnabled"] is True
    assert r.named("train-checkpoint-key").inputs["enableKeyRotation"] is True
    block = r.named("train-checkpoints-public-access").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert r.named("train-checkpoints-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    assert r.named("train-checkpoints-ownership").inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    rules = {x["id"]: x for x in r.named("train-checkpoints-lifecycle").inputs["rules"]}
    assert rules["expire-old-checkpoints"]["expiration"]["days"] == 14
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 7
    assert "abortIncompleteMultipartUpload" in rules["abort-incomplete-uploads"]
    policy = json.loads(r.named("train-checkpoints-policy").inputs["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    summary = r.one(STC).inputs["gpuplane"]["checkpointBucket"]
    assert (summary["created"], summary["encrypted"], summary["encryption"], summary["public"]) == (True, True, "aws:kms", False)


def test_each_team_gets_an_irsa_role_scoped_to_its_prefix(runs):
    r = _get(runs, "karpenter")
    for team in ("recs", "ads"):
        trust = json.loads(r.named(f"train-{team}-irsa").inputs["assumeRolePolicy"])
        subs = [v for s in trust["Statement"] for k, v in s["Condition"]["StringEquals"].items() if k.endswith(":sub")]
        assert subs == [f"system:serviceaccount:{team}:trainer"]
        policy = json.loads(r.named(f"train-{team}-irsa-policy").inputs["policy"])
        objects = next(s for s in policy["Statement"] if s["Sid"] == "TeamObjects")
        assert objects["Resource"] == [f"arn:aws:s3:::train-checkpoints/{team}/*"]
        sa = r.named(f"train-{team}-sa").inputs["metadata"]
        assert sa["namespace"] == team and sa["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"role/train-{team}-irsa")


def test_gcs_bucket_and_workload_identity(runs):
    r = _get(runs, "gke")
    b = r.named("train-checkpoints").inputs
    assert b["uniformBucketLevelAccess"] is True and b["publicAccessPrevention"] == "enforced" and b["versioning"]["enabled"] is True
    actions = [(x["action"]["type"], x["condition"]) for x in b["lifecycleRules"]]
    assert ("Delete", {"age": 30, "withState": "LIVE"}) in actions
    assert ("Delete", {"daysSinceNoncurrentTime": 7, "withState": "ARCHIVED"}) in actions
    wi = r.named("train-recs-wi").inputs
    assert wi["role"] == "roles/iam.workloadIdentityUser" and wi["member"].endswith("[recs/trainer]")
    grant = r.named("train-recs-checkpoints-access").inputs
    assert grant["role"] == "roles/storage.objectUser"
    assert 'startsWith("projects/_/buckets/train-checkpoints/objects/recs/")' in grant["condition"]["expression"]
    sa = r.named("train-recs-sa").inputs["metadata"]
    assert sa["annotations"]["iam.gke.io/gcp-service-account"].endswith("@acme-ml.iam.gserviceaccount.com")
    s = r.one(STC).inputs["gpuplane"]
    assert (s["terminationGracePeriodSeconds"], s["noticeSeconds"], s["interruptionHandling"]) == (25, 30, "gke-graceful-node-shutdown")
    assert not [x for x in r.by_type(RELEASE) if "termination" in x.name]


def test_training_job_is_queued_with_the_checkpoint_and_identity_wired_in(program_run):
    kind, r = program_run
    js = r.one(JOBSET)
    assert js.inputs["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "train"
    pod = js.inputs["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    summary = r.one(TJ).inputs["gpuplane"]
    cmd = pod["containers"][0]["args"]
    assert cmd[cmd.index("--checkpoint-dir") + 1] == summary["checkpointUrl"]
    expected_url = {"existing": "gs://lab-ckpts/training/gpt", "gke": "gs://train-checkpoints/recs/gpt"}.get(kind, "s3://train-checkpoints/recs/gpt")
    assert summary["checkpointUrl"] == expected_url
    assert pod["serviceAccountName"] == summary["serviceAccount"] == "trainer"
    assert pod["terminationGracePeriodSeconds"] == summary["terminationGracePeriodSeconds"] == (110 if kind in ("karpenter", "managed") else 25)
    assert {k: summary[k] for k in ("nodes", "gpusPerNode", "queue", "image")} == {"nodes": 2, "gpusPerNode": 1, "queue": "train", "image": summary["image"]}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert ("AWS_REGION" in env) is (kind in ("karpenter", "managed"))
    svc = r.named("gpt-rendezvous").inputs
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["name"] == js.inputs["spec"]["network"]["subdomain"]


def test_existing_cluster_installs_only_what_is_missing_and_creates_no_cloud_resources(runs):
    r = _get(runs, "existing")
    assert [x.name for x in r.by_type(RELEASE) if x.name.startswith("train-") and x.name in ("train-kueue", "train-jobset")] == ["train-kueue"]
    assert not [x for x in r.resources if x.type.startswith(("aws:", "gcp:"))]
    sa = r.named("train-training-sa").inputs["metadata"]
    assert sa["annotations"] == {"iam.gke.io/gcp-service-account": "trainer@lab.iam.gserviceaccount.com"}
    assert r.one(JOBSET).inputs["spec"]["failurePolicy"]["maxRestarts"] == 3


def test_bad_input_is_rejected_before_any_training_child_exists():
    def program() -> None:
        cluster = KubernetesCluster("eks", {"cloud": "aws", "region": "us-east-1", "autoscaler": "karpenter"})
        try:
            SpotTrainingCluster("train", {"cluster": cluster, "pools": [{"name": "a10g", "accelerator": "A10G"}], "termination_grace_period_seconds": 300})
        except ComponentInputError as err:
            message = str(err)
            assert "checkpoint_bucket = None: is required with spot capacity" in message
            assert "termination_grace_period_seconds = 300: is longer than the aws preemption notice of 120 s" in message
        else:
            raise AssertionError("SpotTrainingCluster accepted a spot pool without a bucket")

    r = run(program)
    assert not [x for x in r.resources if x.type == STC or x.name.startswith("train")]
