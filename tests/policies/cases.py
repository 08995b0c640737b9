"""The policy table: for each rule, a compliant resource and one mutation per case.

Each case is (id, rule, resources, config overrides); the expected messages live in
test_policy_rules.py so a reader sees the exact text each mutation produces.
"""

from __future__ import annotations

from typing import Any

from policies import batch, cost, edge, gpu, pack, placement, pods, reliability, security, storage, tagging
from policies.framework import Rule
from tests.policies.fixtures import (
    TAGS,
    cluster_summary,
    component,
    endpoint_summary,
    mutate,
    pod_template,
    pool_summary,
    training_cluster_summary,
    training_pool_summary,
    view,
)

NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
GCS = "gcp:storage/bucket:Bucket"
KSVC = "kubernetes:serving.knative.dev/v1:Service"
DEPLOY = "kubernetes:apps/v1:Deployment"
JOBSET = "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet"
RUN = "gcp:cloudrunv2/service:Service"

POOL = component("GpuNodePool", pool_summary(), "p")
TRAIN_POOL = component("GpuNodePool", training_pool_summary(capacityType="spot"), "train")
ENDPOINT = component("InferenceEndpoint", endpoint_summary(), "recs")
TRAINING = component("SpotTrainingCluster", training_cluster_summary(), "tc")
CLUSTER = component("KubernetesCluster", cluster_summary(), "k")
BATCH_SUMMARY = {"platform": "aws-batch", "cloud": "aws", "region": "us-east-1", "accelerator": "A10G", "gpus": 1, "spot": True,
                 "maxAttempts": 3, "taskTimeoutSeconds": 3600, "parallelism": 4, "tags": dict(TAGS)}
BATCH_JOB = component("BatchJob", BATCH_SUMMARY, "embed")
TWO_TIER_SUMMARY = {
    "implementation": "knative+cloud-run",
    "steady": {"endpoint": "tt-steady", "minScale": 1, "maxScale": 2},
    "burst": {"endpoint": "tt-burst", "platform": "cloud-run", "minScale": 0, "maxScale": 4, "public": False},
    "spillThreshold": 8,
    "tags": dict(TAGS),
}
TWO_TIER = component("TwoTierEndpoint", TWO_TIER_SUMMARY, "tt")
NODE_GROUP = {
    "instanceTypes": ["g6.xlarge"],
    "capacityType": "SPOT",
    "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 0},
    "amiType": "AL2023_x86_64_NVIDIA",
    "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
    "tags": dict(TAGS),
    "region": "us-east-1",
}
KNATIVE = {
    "metadata": {"name": "svc", "labels": {"networking.knative.dev/visibility": "cluster-local"}},
    "spec": {
        "template": {
            "metadata": {
                "annotations": {
                    "autoscaling.knative.dev/min-scale": "0",
                    "autoscaling.knative.dev/scale-down-delay": "5m",
                }
            },
            "spec": {
                "timeoutSeconds": 600,
                "containers": [
                    {
                        "image": "x",
                        "readinessProbe": {"httpGet": {"path": "/v2/health/ready"}},
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ],
            },
        }
    },
}
GCS_OK = {
    "name": "data",
    "location": "us-central1",
    "publicAccessPrevention": "enforced",
    "uniformBucketLevelAccess": True,
    "labels": {"team": "ml-platform", "cost-center": "cc-4711"},
}


def bucket_set(sse: dict[str, Any] | None = None, pab: dict[str, Any] | None = None, **bucket: Any) -> list:
    b = view(BUCKET, {"bucket": "ckpt", "region": "us-east-1", "tags": dict(TAGS), **bucket}, "ckpt")
    out = [b]
    if sse is not None:
        out.append(view(SSE, {"bucket": "ckpt", **sse}, "ckpt-sse", dependencies=(b.urn,)))
    if pab is not None:
        out.append(view(PAB, {"bucket": "ckpt", **pab}, "ckpt-pab", dependencies=(b.urn,)))
    return out


SSE_OK = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
PAB_OK = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


EDGE_DIGEST = "sha256:" + "a" * 64
CONFIG_MAP, DEPLOYMENT = "kubernetes:core/v1:ConfigMap", "kubernetes:apps/v1:Deployment"
EDGE_CONFIG = view(CONFIG_MAP, {"metadata": {"name": "recs"}, "data": {"EDGE_MODEL_URI": "oci://r/m", "EDGE_MODEL_DIGEST": EDGE_DIGEST, "EDGE_RUNTIME": "onnxruntime"}}, "cm")
EDGE_SERVER = view(DEPLOYMENT, {
    "metadata": {"name": "recs", "labels": {"gpuplane.dev/edge-site": "a"}},
    "spec": {"template": {"spec": {"containers": [{"name": "edge-server", "image": "r/edge@" + "sha256:" + "c" * 64,
                                                   "envFrom": [{"configMapRef": {"name": "recs"}}]}]}}},
}, "d")


def c(cls: str, summary: dict[str, Any], name: str, **kw: Any):
    return component(cls, summary, name, **kw)


# (id, rule, resources, config)
CASES: list[tuple[str, Rule, list, dict[str, Any]]] = [
    # -- cost ----------------------------------------------------------------------------------
    ("budget-ok", cost.STACK_BUDGET, [POOL, CLUSTER], {}),
    ("budget-hourly", cost.STACK_BUDGET, [POOL, CLUSTER], {"maxHourlyUsd": 1}),
    ("budget-monthly", cost.STACK_BUDGET, [POOL, CLUSTER], {"maxMonthlyUsd": 100}),
    (
        "budget-unknown",
        cost.STACK_BUDGET,
        [c("GpuNodePool", pool_summary(region="eu-central-1", instanceType="p5.48xlarge"), "p")],
        {},
    ),
    (
        "budget-unknown-allowed",
        cost.STACK_BUDGET,
        [c("GpuNodePool", pool_summary(region="eu-central-1", instanceType="p5.48xlarge"), "p")],
        {"allowUnknownPrices": True},
    ),
    ("budget-bad-usage", cost.STACK_BUDGET, [POOL], {"usage": {"trainingHours": 5}}),
    ("spot-ok", cost.TRAINING_ON_SPOT, [TRAIN_POOL, TRAINING], {}),
    (
        "spot-on-demand-pool",
        cost.TRAINING_ON_SPOT,
        [c("GpuNodePool", training_pool_summary(capacityType="on_demand"), "train")],
        {},
    ),
    (
        "spot-on-demand-first",
        cost.TRAINING_ON_SPOT,
        [c("SpotTrainingCluster", training_cluster_summary(capacityFallback=["on_demand", "spot"]), "tc")],
        {},
    ),
    ("spot-no-fallback", cost.TRAINING_ON_SPOT, [TRAINING], {"allowOnDemandFallback": False}),
    (
        "spot-raw-nodegroup",
        cost.TRAINING_ON_SPOT,
        [
            view(
                NG,
                mutate({**NODE_GROUP, "labels": {"gpuplane.dev/role": "training"}}, "capacityType", "ON_DEMAND"),
                "ng",
            )
        ],
        {},
    ),
    ("zero-ok", cost.ENDPOINT_SCALE_TO_ZERO, [ENDPOINT, view(KSVC, KNATIVE, "svc")], {}),
    ("batch-spot-ok", batch.BATCH_ON_SPOT, [BATCH_JOB], {}),
    ("batch-on-demand", batch.BATCH_ON_SPOT, [c("BatchJob", mutate(BATCH_SUMMARY, "spot", False), "embed")], {}),
    ("batch-timeout-ok", batch.BATCH_TIMEOUT_SET, [BATCH_JOB], {}),
    ("batch-timeout-missing", batch.BATCH_TIMEOUT_SET, [view("aws:batch/jobDefinition:JobDefinition", {"type": "container"}, "jd")], {}),
    ("two-tier-ok", cost.TWO_TIER_STEADY_BOUNDED, [TWO_TIER, ENDPOINT], {}),
    ("two-tier-steady-large", cost.TWO_TIER_STEADY_BOUNDED, [c("TwoTierEndpoint", mutate(TWO_TIER_SUMMARY, "steady.minScale", 3), "tt")], {}),
    ("two-tier-steady-allowed", cost.TWO_TIER_STEADY_BOUNDED, [c("TwoTierEndpoint", mutate(TWO_TIER_SUMMARY, "steady.minScale", 3), "tt")], {"maxSteadyReplicas": 3}),
    ("two-tier-burst-warm", cost.TWO_TIER_STEADY_BOUNDED, [c("TwoTierEndpoint", mutate(TWO_TIER_SUMMARY, "burst.minScale", 1), "tt")], {}),
    ("zero-endpoint", cost.ENDPOINT_SCALE_TO_ZERO, [c("InferenceEndpoint", endpoint_summary(minScale=1), "recs")], {}),
    (
        "zero-endpoint-allowed",
        cost.ENDPOINT_SCALE_TO_ZERO,
        [c("InferenceEndpoint", endpoint_summary(minScale=1), "recs")],
        {"maxMinReplicas": 1},
    ),
    (
        "zero-knative",
        cost.ENDPOINT_SCALE_TO_ZERO,
        [
            view(
                KSVC,
                mutate(KNATIVE, "spec.template.metadata.annotations", {"autoscaling.knative.dev/min-scale": "2"}),
                "svc",
            )
        ],
        {},
    ),
    (
        "zero-cloud-run",
        cost.ENDPOINT_SCALE_TO_ZERO,
        [
            view(
                RUN,
                {
                    "location": "us-central1",
                    "template": {
                        "nodeSelector": {"accelerator": "nvidia-l4"},
                        "scaling": {"minInstanceCount": 1, "maxInstanceCount": 3},
                        "containers": [
                            {
                                "image": "x",
                                "resources": {"limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
                            }
                        ],
                    },
                },
                "run",
            )
        ],
        {},
    ),
    ("idle-ok", cost.IDLE_TIMEOUT_BOUNDS, [ENDPOINT, view(KSVC, KNATIVE, "svc")], {}),
    (
        "idle-too-long",
        cost.IDLE_TIMEOUT_BOUNDS,
        [c("InferenceEndpoint", endpoint_summary(scaleDownDelaySeconds=7200), "recs")],
        {},
    ),
    (
        "idle-too-short",
        cost.IDLE_TIMEOUT_BOUNDS,
        [c("InferenceEndpoint", endpoint_summary(scaleDownDelaySeconds=5), "recs")],
        {},
    ),
    (
        "idle-karpenter",
        cost.IDLE_TIMEOUT_BOUNDS,
        [view("kubernetes:karpenter.sh/v1:NodePool", {"spec": {"disruption": {"consolidateAfter": "2h"}}}, "np")],
        {},
    ),
    (
        "idle-config",
        cost.IDLE_TIMEOUT_BOUNDS,
        [c("InferenceEndpoint", endpoint_summary(scaleDownDelaySeconds=300), "recs")],
        {"maxIdleSeconds": 120},
    ),
    # -- gpu -----------------------------------------------------------------------------------
    ("types-ok", gpu.GPU_TYPES_ALLOWED, [POOL, ENDPOINT, view(NG, NODE_GROUP, "ng")], {"allowedGpus": ["L4"]}),
    ("types-stack", gpu.GPU_TYPES_ALLOWED, [TRAIN_POOL], {"allowedGpus": ["L4"]}),
    ("types-team", gpu.GPU_TYPES_ALLOWED, [TRAIN_POOL], {"teamGpus": {"ml-platform": ["L4", "A10G"]}}),
    (
        "types-raw",
        gpu.GPU_TYPES_ALLOWED,
        [view(NG, {**NODE_GROUP, "instanceTypes": ["p4d.24xlarge"]}, "ng")],
        {"allowedGpus": ["L4"]},
    ),
    (
        "types-managed-child-skipped",
        gpu.GPU_TYPES_ALLOWED,
        [view(NG, {**NODE_GROUP, "instanceTypes": ["p4d.24xlarge"]}, "ng", parents=("gpuplane:index:GpuNodePool",))],
        {"allowedGpus": ["L4"]},
    ),
    ("pool-max-ok", gpu.GPU_POOL_MAX_NODES, [POOL, view(NG, NODE_GROUP, "ng")], {}),
    ("pool-max", gpu.GPU_POOL_MAX_NODES, [c("GpuNodePool", pool_summary(maxNodes=40), "p")], {}),
    (
        "pool-max-raw",
        gpu.GPU_POOL_MAX_NODES,
        [view(NG, mutate(NODE_GROUP, "scalingConfig.maxSize", 20.0), "ng")],
        {"maxNodesPerPool": 10},
    ),
    ("total-ok", gpu.GPU_TOTAL_MAX, [POOL, TRAIN_POOL, ENDPOINT], {}),
    ("total", gpu.GPU_TOTAL_MAX, [POOL, TRAIN_POOL, ENDPOINT], {"maxTotalGpus": 16}),
    # -- placement -----------------------------------------------------------------------------
    (
        "regions-ok",
        placement.ALLOWED_REGIONS,
        [POOL, view(GCS, GCS_OK, "data")],
        {"allowedRegions": ["us-*"], "allowedJurisdictions": ["us"]},
    ),
    (
        "regions-pattern",
        placement.ALLOWED_REGIONS,
        [c("GpuNodePool", pool_summary(region="eu-west-1"), "p")],
        {"allowedRegions": ["us-*"]},
    ),
    (
        "regions-jurisdiction",
        placement.ALLOWED_REGIONS,
        [view(GCS, {**GCS_OK, "location": "EU"}, "data")],
        {"allowedJurisdictions": ["us"]},
    ),
    (
        "regions-provider",
        placement.ALLOWED_REGIONS,
        [view(BUCKET, {"bucket": "b"}, "b", provider_props={"region": "eu-central-1"})],
        {"allowedRegions": ["us-*"]},
    ),
    ("colocated-ok", placement.TRAINING_DATA_COLOCATED, [TRAINING, *bucket_set()], {}),
    (
        "colocated",
        placement.TRAINING_DATA_COLOCATED,
        [c("SpotTrainingCluster", training_cluster_summary(dataUrl="s3://events/2026/"), "tc")],
        {"bucketRegions": {"events": "eu-west-1"}},
    ),
    (
        "colocated-unknown",
        placement.TRAINING_DATA_COLOCATED,
        [c("SpotTrainingCluster", training_cluster_summary(dataUrl="s3://events/"), "tc")],
        {"requireKnownBucketRegion": True},
    ),
    ("offered-ok", placement.GPU_OFFERED_IN_REGION, [POOL, ENDPOINT, view(NG, NODE_GROUP, "ng")], {}),
    (
        "offered-region",
        placement.GPU_OFFERED_IN_REGION,
        [c("GpuNodePool", pool_summary(instanceType="p5.48xlarge", region="eu-central-1", zones=[]), "p")],
        {},
    ),
    (
        "offered-zone",
        placement.GPU_OFFERED_IN_REGION,
        [c("GpuNodePool", pool_summary(instanceType="p5.48xlarge", zones=["us-east-1f"]), "p")],
        {},
    ),
    (
        "offered-cloud-run",
        placement.GPU_OFFERED_IN_REGION,
        [c("InferenceEndpoint", endpoint_summary(region="us-west1"), "recs")],
        {},
    ),
    ("compact-ok", placement.MULTINODE_COMPACT_PLACEMENT, [TRAIN_POOL, POOL], {}),
    (
        "compact-missing",
        placement.MULTINODE_COMPACT_PLACEMENT,
        [c("GpuNodePool", training_pool_summary(compactPlacement=False), "train")],
        {},
    ),
    (
        "compact-efa",
        placement.MULTINODE_COMPACT_PLACEMENT,
        [c("GpuNodePool", training_pool_summary(efa=False), "train")],
        {},
    ),
    (
        "compact-single-node",
        placement.MULTINODE_COMPACT_PLACEMENT,
        [c("GpuNodePool", training_pool_summary(efa=False, compactPlacement=False, maxNodes=1), "train")],
        {},
    ),
    # -- reliability ---------------------------------------------------------------------------
    ("ckpt-ok", reliability.SPOT_CHECKPOINTING, [TRAINING], {}),
    (
        "ckpt-missing",
        reliability.SPOT_CHECKPOINTING,
        [c("SpotTrainingCluster", training_cluster_summary(checkpointBucket=None), "tc")],
        {},
    ),
    (
        "ckpt-grace",
        reliability.SPOT_CHECKPOINTING,
        [c("SpotTrainingCluster", training_cluster_summary(terminationGracePeriodSeconds=300), "tc")],
        {},
    ),
    (
        "ckpt-grace-gcp",
        reliability.SPOT_CHECKPOINTING,
        [
            c(
                "SpotTrainingCluster",
                training_cluster_summary(cloud="gcp", region="us-central1", terminationGracePeriodSeconds=60),
                "tc",
            )
        ],
        {},
    ),
    (
        "ckpt-jobset",
        reliability.SPOT_CHECKPOINTING,
        [
            view(
                JOBSET,
                {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "template": {
                                    "spec": {
                                        "template": {
                                            "spec": {
                                                "nodeSelector": {"cloud.google.com/gke-spot": "true"},
                                                "terminationGracePeriodSeconds": 90,
                                                "containers": [],
                                            }
                                        }
                                    }
                                }
                            }
                        ]
                    }
                },
                "js",
            )
        ],
        {},
    ),
    ("taint-ok", reliability.GPU_POOL_TAINTED, [POOL, view(NG, NODE_GROUP, "ng")], {}),
    ("taint-pool", reliability.GPU_POOL_TAINTED, [c("GpuNodePool", pool_summary(taints=[]), "p")], {}),
    ("taint-raw", reliability.GPU_POOL_TAINTED, [view(NG, mutate(NODE_GROUP, "taints", []), "ng")], {}),
    ("ready-ok", reliability.ENDPOINT_READINESS, [ENDPOINT, view(KSVC, KNATIVE, "svc")], {}),
    (
        "ready-timeout",
        reliability.ENDPOINT_READINESS,
        [
            c(
                "InferenceEndpoint",
                endpoint_summary(timeouts={"requestTimeoutSeconds": 60, "progressDeadlineSeconds": 360}),
                "recs",
            )
        ],
        {},
    ),
    (
        "ready-progress",
        reliability.ENDPOINT_READINESS,
        [
            c(
                "InferenceEndpoint",
                endpoint_summary(timeouts={"requestTimeoutSeconds": 300, "progressDeadlineSeconds": 120}),
                "recs",
            )
        ],
        {},
    ),
    (
        "ready-probe",
        reliability.ENDPOINT_READINESS,
        [c("InferenceEndpoint", endpoint_summary(readinessPath=None), "recs")],
        {},
    ),
    (
        "ready-knative",
        reliability.ENDPOINT_READINESS,
        [view(KSVC, mutate(KNATIVE, "spec.template.spec.containers", [{"image": "x"}]), "svc")],
        {},
    ),
    # -- security ------------------------------------------------------------------------------
    ("enc-ok", storage.STORAGE_ENCRYPTED, [*bucket_set(SSE_OK, PAB_OK), view(GCS, GCS_OK, "data")], {}),
    ("enc-missing", storage.STORAGE_ENCRYPTED, bucket_set(None, PAB_OK), {}),
    (
        "enc-cmk",
        storage.STORAGE_ENCRYPTED,
        [*bucket_set(SSE_OK, PAB_OK), view(GCS, GCS_OK, "data")],
        {"requireCustomerManagedKeys": True},
    ),
    (
        "enc-feature-store",
        storage.STORAGE_ENCRYPTED,
        [c("FeatureStore", {"cloud": "aws", "encrypted": False, "tags": TAGS}, "fs")],
        {},
    ),
    ("public-ok", storage.STORAGE_NOT_PUBLIC, [*bucket_set(SSE_OK, PAB_OK), view(GCS, GCS_OK, "data")], {}),
    ("public-no-block", storage.STORAGE_NOT_PUBLIC, bucket_set(SSE_OK, None), {}),
    (
        "public-block-off",
        storage.STORAGE_NOT_PUBLIC,
        bucket_set(SSE_OK, {**PAB_OK, "restrictPublicBuckets": False}),
        {},
    ),
    (
        "public-account-block",
        storage.STORAGE_NOT_PUBLIC,
        [*bucket_set(SSE_OK, None), view("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", PAB_OK, "acct")],
        {},
    ),
    (
        "public-policy",
        storage.STORAGE_NOT_PUBLIC,
        [
            *bucket_set(SSE_OK, PAB_OK),
            view(
                "aws:s3/bucketPolicy:BucketPolicy",
                {
                    "bucket": "ckpt",
                    "policy": '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}',
                },
                "pol",
            ),
        ],
        {},
    ),
    (
        "public-gcs",
        storage.STORAGE_NOT_PUBLIC,
        [view(GCS, {**GCS_OK, "publicAccessPrevention": "inherited"}, "data")],
        {},
    ),
    (
        "public-gcs-iam",
        storage.STORAGE_NOT_PUBLIC,
        [
            view(
                "gcp:storage/bucketIAMMember:BucketIAMMember",
                {"bucket": "data", "role": "roles/storage.objectViewer", "member": "allUsers"},
                "m",
            )
        ],
        {},
    ),
    (
        "private-ok",
        security.ENDPOINT_PRIVATE,
        [
            ENDPOINT,
            view(KSVC, KNATIVE, "svc"),
            c("InferenceEndpoint", endpoint_summary(public=True, auth="bearer-token"), "pub"),
        ],
        {},
    ),
    (
        "private-endpoint",
        security.ENDPOINT_PRIVATE,
        [c("InferenceEndpoint", endpoint_summary(public=True, auth="none"), "recs")],
        {},
    ),
    (
        "private-cloud-run-iam",
        security.ENDPOINT_PRIVATE,
        [
            view(
                "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
                {"name": "recs", "role": "roles/run.invoker", "member": "allUsers"},
                "inv",
            )
        ],
        {},
    ),
    ("private-knative", security.ENDPOINT_PRIVATE, [view(KSVC, mutate(KNATIVE, "metadata.labels", {}), "svc")], {}),
    (
        "imds-ok",
        security.IMDSV2_REQUIRED,
        [view(LT, {"metadataOptions": {"httpTokens": "required"}}, "lt"), view(NG, NODE_GROUP, "ng")],
        {},
    ),
    ("imds-lt", security.IMDSV2_REQUIRED, [view(LT, {"metadataOptions": {"httpTokens": "optional"}}, "lt")], {}),
    ("imds-nodegroup", security.IMDSV2_REQUIRED, [view(NG, {**NODE_GROUP, "amiType": "AL2_x86_64_GPU"}, "ng")], {}),
    (
        "priv-ok",
        pods.NO_PRIVILEGED_PODS,
        [
            view(DEPLOY, pod_template(), "d"),
            view(DEPLOY, {**pod_template(hostNetwork=True), "metadata": {"namespace": "kube-system"}}, "sys"),
        ],
        {"exemptNamespaces": ["kube-system"]},
    ),
    (
        "priv-privileged",
        pods.NO_PRIVILEGED_PODS,
        [
            view(
                DEPLOY,
                mutate(pod_template(), "spec.template.spec.containers.0.securityContext", {"privileged": True}),
                "d",
            )
        ],
        {},
    ),
    (
        "priv-hostpath",
        pods.NO_PRIVILEGED_PODS,
        [view(DEPLOY, pod_template(volumes=[{"name": "dev", "hostPath": {"path": "/dev"}}]), "d")],
        {},
    ),
    (
        "priv-hostpath-allowed",
        pods.NO_PRIVILEGED_PODS,
        [view(DEPLOY, pod_template(volumes=[{"name": "dev", "hostPath": {"path": "/dev/nvidia0"}}]), "d")],
        {"allowedHostPaths": ["/dev"]},
    ),
    ("priv-hostnetwork", pods.NO_PRIVILEGED_PODS, [view(DEPLOY, pod_template(hostNetwork=True), "d")], {}),
    (
        "identity-ok",
        pods.WORKLOAD_IDENTITY,
        [view(DEPLOY, pod_template(), "d"), view("aws:iam/role:Role", {"tags": TAGS}, "role")],
        {},
    ),
    (
        "identity-access-key",
        pods.WORKLOAD_IDENTITY,
        [view("aws:iam/accessKey:AccessKey", {"user": "ci"}, "key")],
        {},
    ),
    (
        "identity-sa-key",
        pods.WORKLOAD_IDENTITY,
        [view("gcp:serviceaccount/key:Key", {"serviceAccountId": "sa"}, "key")],
        {},
    ),
    (
        "identity-env",
        pods.WORKLOAD_IDENTITY,
        [
            view(
                DEPLOY,
                mutate(
                    pod_template(),
                    "spec.template.spec.containers.0.env",
                    [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}],
                ),
                "d",
            )
        ],
        {},
    ),
    ("protect-ok-dev", security.DELETION_PROTECTION, [CLUSTER, *bucket_set()], {}),
    (
        "protect-ok-prod",
        security.DELETION_PROTECTION,
        [
            c("KubernetesCluster", cluster_summary(deletionProtection=True), "k"),
            view(BUCKET, {"bucket": "ckpt"}, "ckpt", protect=True),
        ],
        {"production": True},
    ),
    (
        "protect-cluster",
        security.DELETION_PROTECTION,
        [c("KubernetesCluster", cluster_summary(), "k", stack="prod")],
        {},
    ),
    (
        "protect-bucket",
        security.DELETION_PROTECTION,
        [view(BUCKET, {"bucket": "ckpt", "forceDestroy": True}, "ckpt")],
        {"production": True},
    ),
    (
        "protect-gke",
        security.DELETION_PROTECTION,
        [view("gcp:container/cluster:Cluster", {"deletionProtection": False}, "gke", stack="ml-prod")],
        {},
    ),
    # -- tagging -------------------------------------------------------------------------------
    (
        "tags-ok",
        tagging.REQUIRED_TAGS,
        [
            POOL,
            *bucket_set(),
            view(GCS, GCS_OK, "data"),
            view(DEPLOY, pod_template(), "d"),
            view(PAB, {"bucket": "ckpt"}, "pab"),
        ],
        {},
    ),
    ("tags-component", tagging.REQUIRED_TAGS, [c("GpuNodePool", pool_summary(tags={"team": "ml"}), "p")], {}),
    ("tags-aws", tagging.REQUIRED_TAGS, [view(BUCKET, {"bucket": "ckpt"}, "ckpt")], {}),
    (
        "tags-aws-provider-default",
        tagging.REQUIRED_TAGS,
        [view(BUCKET, {"bucket": "ckpt"}, "ckpt", provider_props={"defaultTags": {"tags": TAGS}})],
        {},
    ),
    ("tags-gcp", tagging.REQUIRED_TAGS, [view(GCS, {**GCS_OK, "labels": {}}, "data")], {}),
    (
        "tags-gke-node-pool",
        tagging.REQUIRED_TAGS,
        [view("gcp:container/nodePool:NodePool", {"nodeConfig": {"machineType": "g2-standard-4"}}, "np")],
        {},
    ),
    ("tags-kubernetes", tagging.REQUIRED_TAGS, [view(DEPLOY, pod_template(), "d")], {"includeKubernetes": True}),
    (
        "tags-config",
        tagging.REQUIRED_TAGS,
        [view(BUCKET, {"bucket": "ckpt", "tags": TAGS}, "ckpt")],
        {"requiredTags": ["team", "owner"]},
    ),
    (
        "exempt-valid-ok",
        pack.EXEMPTION_VALID,
        [
            view(
                BUCKET,
                {
                    "tags": {
                        **TAGS,
                        "gpuplane/exempt": "storage-encrypted",
                        "gpuplane/exempt-reason": "public dataset mirror",
                    }
                },
                "b",
            )
        ],
        {},
    ),
    (
        "exempt-no-reason",
        pack.EXEMPTION_VALID,
        [view(BUCKET, {"tags": {**TAGS, "gpuplane/exempt": "storage-encrypted"}}, "b")],
        {},
    ),
    (
        "exempt-unknown-policy",
        pack.EXEMPTION_VALID,
        [
            view(
                GCS,
                {
                    **GCS_OK,
                    "labels": {
                        "gpuplane-exempt": "storage-encrypted.no-such-policy",
                        "gpuplane-exempt-reason": "mirror",
                    },
                },
                "data",
            )
        ],
        {},
    ),
    # -- edge ------------------------------------------------------------------------------------
    ("edge-ok", edge.EDGE_ARTIFACTS_PINNED, [EDGE_CONFIG, EDGE_SERVER, c("EdgeDeployment", {"edge": True, "model": {"uri": "oci://r/m", "digest": EDGE_DIGEST}}, "recs")], {}),
    ("edge-unpinned-config", edge.EDGE_ARTIFACTS_PINNED, [view(CONFIG_MAP, mutate(EDGE_CONFIG.props, "data.EDGE_MODEL_DIGEST", ""), "cm")], {}),
    ("edge-unpinned-summary", edge.EDGE_ARTIFACTS_PINNED, [c("EdgeDeployment", {"edge": True, "model": {"uri": "s3://m/model.onnx"}}, "recs")], {}),
    ("edge-image-tag", edge.EDGE_ARTIFACTS_PINNED, [view(DEPLOYMENT, mutate(EDGE_SERVER.props, "spec.template.spec.containers.0.image", "r/edge:latest"), "d")], {}),
    ("edge-image-tag-allowed", edge.EDGE_ARTIFACTS_PINNED, [view(DEPLOYMENT, mutate(EDGE_SERVER.props, "spec.template.spec.containers.0.image", "r/edge:latest"), "d")], {"checkImages": False}),
    ("edge-tensorrt-no-gpu", edge.EDGE_ARTIFACTS_PINNED, [view(DEPLOYMENT, mutate(EDGE_SERVER.props, "spec.template.spec.containers.0.env", [
        {"name": "EDGE_RUNTIME", "value": "tensorrt"}, {"name": "EDGE_MODEL_URI", "value": "oci://r/m"}, {"name": "EDGE_MODEL_DIGEST", "value": EDGE_DIGEST}]), "d")], {}),
]
