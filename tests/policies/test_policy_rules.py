"""Every policy: a compliant fixture, then one mutation per case, asserting the exact messages.

The cases (resources and config overrides) are in tests/policies/cases.py; the rule's pure
check runs with the schema defaults overlaid by the case's config, exactly as the CrossGuard
wrapper calls it (tests/gpuplane/test_policy_engine.py covers the wrapper and the analyzer).
"""

from __future__ import annotations

import pytest

from policies.framework import StackRule, config_for
from tests.policies.cases import CASES

EXPECTED: dict[str, list[str]] = {
    "budget-ok": [],
    "budget-hourly": [
        "The stack's max hourly cost is $1.82/h, over the budget of $1.00/h (maxHourlyUsd). Dearest: p $1.53/h, k (system nodes) $0.19/h, k (control plane) $0.10/h. Lower their maxNodes / maxReplicas, use spot, or raise maxHourlyUsd."
    ],
    "budget-monthly": [
        "The stack's expected monthly cost is $492, over the budget of $100 (maxMonthlyUsd; usage {'trainingHoursPerMonth': 200.0, 'endpointBusyHoursPerDay': 6.0, 'storageGib': 500.0, 'expectedNodeFraction': 0.25, 'onlineReadsPerMonth': 10000000.0, 'onlineStorageGib': 5.0, 'rolloutsPerMonth': 4.0}). Dearest: p $1.53/h, k (system nodes) $0.19/h, k (control plane) $0.10/h. Scale pools to zero when idle, use spot, or raise maxMonthlyUsd."
    ],
    "budget-unknown": [
        "The budget cannot be checked: the price of GpuNodePool 'p' is unknown (p5.48xlarge is not offered in eu-central-1 in the catalog). Add the price to the catalog, or set allowUnknownPrices: true."
    ],
    "budget-unknown-allowed": [],
    "budget-bad-usage": [
        "The stack-budget policy config is wrong: usage profile: unknown key 'trainingHours'. Use one of ['endpointBusyHoursPerDay', 'expectedNodeFraction', 'onlineReadsPerMonth', 'onlineStorageGib', 'rolloutsPerMonth', 'storageGib', 'trainingHoursPerMonth']."
    ],
    "spot-ok": [],
    "spot-on-demand-pool": [
        "GpuNodePool 'train' is a training pool on on-demand capacity. Set capacityType to spot (use a SpotTrainingCluster for on-demand fallback), or exempt it with gpuplane/exempt: training-on-spot and a reason."
    ],
    "spot-on-demand-first": [
        "SpotTrainingCluster 'tc' tries on_demand capacity first (capacityFallback ['on_demand', 'spot']). Put spot first; on-demand may only follow as fallback."
    ],
    "spot-no-fallback": [
        "SpotTrainingCluster 'tc' falls back to ['on_demand'] capacity, which this stack does not allow (allowOnDemandFallback: false). Set capacityFallback to ['spot'], or set allowOnDemandFallback: true."
    ],
    "spot-raw-nodegroup": [
        "aws:eks/nodeGroup 'ng' is a training pool on on-demand capacity. Set capacityType to spot (use a SpotTrainingCluster for on-demand fallback), or exempt it with gpuplane/exempt: training-on-spot and a reason."
    ],
    "zero-ok": [],
    "zero-endpoint": [
        "InferenceEndpoint 'recs' keeps 1 GPU replica(s) when idle (minScale); at most 0 are allowed. Set minScale to 0 so it scales to zero, or exempt it with gpuplane/exempt: endpoint-scale-to-zero and a reason."
    ],
    "zero-endpoint-allowed": [],
    "two-tier-ok": [],
    "two-tier-steady-large": [
        "TwoTierEndpoint 'tt' keeps 3 steady replica(s) always on; at most 2 are allowed (maxSteadyReplicas). Lower steady_replicas and let the burst tier take the surges, or raise maxSteadyReplicas."
    ],
    "two-tier-steady-allowed": [],
    "two-tier-burst-warm": [
        "TwoTierEndpoint 'tt''s burst tier keeps 1 instance(s) when idle. Set the burst tier's min scale to 0: the steady tier is the only always-on capacity."
    ],
    "zero-knative": [
        "kubernetes:serving.knative.dev/v1:Service 'svc' keeps 2 GPU replica(s) when idle (spec.template.metadata.annotations['autoscaling.knative.dev/min-scale']); at most 0 are allowed. Set spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'] to 0 so it scales to zero, or exempt it with gpuplane/exempt: endpoint-scale-to-zero and a reason."
    ],
    "zero-cloud-run": [
        "gcp:cloudrunv2/service 'run' keeps 1 GPU replica(s) when idle (template.scaling.minInstanceCount); at most 0 are allowed. Set template.scaling.minInstanceCount to 0 so it scales to zero, or exempt it with gpuplane/exempt: endpoint-scale-to-zero and a reason."
    ],
    "idle-ok": [],
    "idle-too-long": [
        "InferenceEndpoint 'recs' keeps idle capacity for 7200 s (scaleDownDelaySeconds), over the maximum of 1800 s: idle GPUs are paid for. Set it to 1800 s or less."
    ],
    "idle-too-short": [
        "InferenceEndpoint 'recs' releases idle capacity after 5 s (scaleDownDelaySeconds), under the minimum of 30 s: every short pause would cost a GPU cold start. Set it to at least 30 s."
    ],
    "idle-karpenter": [
        "kubernetes:karpenter.sh/v1:NodePool 'np' keeps idle capacity for 7200 s (spec.disruption.consolidateAfter), over the maximum of 1800 s: idle GPUs are paid for. Set it to 1800 s or less."
    ],
    "idle-config": [
        "InferenceEndpoint 'recs' keeps idle capacity for 300 s (scaleDownDelaySeconds), over the maximum of 120 s: idle GPUs are paid for. Set it to 120 s or less."
    ],
    "types-ok": [],
    "types-stack": [
        "GpuNodePool 'train' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config."
    ],
    "types-team": [
        "GpuNodePool 'train' asks for H100, which team 'ml-platform' may not use (teamGpus.ml-platform: L4, A10G). Use one of those, or add H100 to teamGpus.ml-platform."
    ],
    "types-raw": [
        "aws:eks/nodeGroup 'ng' asks for A100-40GB, which this stack does not allow (allowedGpus: L4). Use one of those, or add A100-40GB to allowedGpus in the stack's policy config."
    ],
    "types-managed-child-skipped": [],
    "pool-max-ok": [],
    "pool-max": [
        "GpuNodePool 'p' may grow to 40 nodes, over the limit of 16 per GPU pool. Lower maxNodes to 16 or less, or raise maxNodesPerPool in the stack's policy config."
    ],
    "pool-max-raw": [
        "aws:eks/nodeGroup 'ng' may grow to 20 nodes, over the limit of 10 per GPU pool. Lower maxNodes to 10 or less, or raise maxNodesPerPool in the stack's policy config."
    ],
    "total-ok": [],
    "total": [
        "The stack can hold 22 GPUs at once (pools and endpoints at their maximum size), over the limit of 16. Largest: GpuNodePool 'train' 16, GpuNodePool 'p' 4, InferenceEndpoint 'recs' 2. Lower their maxNodes / maxReplicas, or raise maxTotalGpus in the stack's policy config."
    ],
    "regions-ok": [],
    "regions-pattern": [
        "GpuNodePool 'p' is in eu-west-1, outside the allowed regions ['us-*']. Move it to an allowed region, or change allowedRegions in the stack's policy config."
    ],
    "regions-jurisdiction": [
        "gcp:storage/bucket 'data' is in EU (eu), outside the allowed jurisdictions ['us'] (data residency). Move it to a region in ['us']."
    ],
    "regions-provider": [
        "aws:s3/bucket 'b' is in eu-central-1, outside the allowed regions ['us-*']. Move it to an allowed region, or change allowedRegions in the stack's policy config."
    ],
    "colocated-ok": [],
    "colocated": [
        "SpotTrainingCluster 'tc' trains in us-east-1 but its dataUrl bucket 'events' is in eu-west-1: cross-region reads are slow and billed as egress. Move the bucket or the training to the same region."
    ],
    "colocated-unknown": [
        "SpotTrainingCluster 'tc' reads dataUrl from bucket 'events', whose region is unknown. Add it to bucketRegions in the stack's policy config.",
        "SpotTrainingCluster 'tc' reads checkpointBucket from bucket 'ckpt', whose region is unknown. Add it to bucketRegions in the stack's policy config.",
    ],
    "offered-ok": [],
    "offered-region": [
        "GpuNodePool 'p': p5.48xlarge is not offered in eu-central-1 (catalog). Use a region that offers it: ['ap-northeast-1', 'eu-west-1', 'us-east-1', 'us-east-2', 'us-west-2'], or another instance type."
    ],
    "offered-zone": [
        "GpuNodePool 'p': p5.48xlarge is not offered in zones ['us-east-1f'] of us-east-1 (offered in ['us-east-1a', 'us-east-1b']). Use those zones."
    ],
    "offered-cloud-run": [
        "InferenceEndpoint 'recs': Cloud Run does not offer L4 GPUs in us-west1 (catalog). Use a region with a Cloud Run L4 rate, or another implementation."
    ],
    "compact-ok": [],
    "compact-missing": [
        "GpuNodePool 'train' is a multi-node training pool (up to 2 nodes) without compact placement. Set compactPlacement: true (AWS cluster placement group, GKE COMPACT policy)."
    ],
    "compact-efa": [
        "GpuNodePool 'train' is a multi-node training pool of p5.48xlarge, which has 32 EFA interfaces, without EFA. Set efa: true."
    ],
    "compact-single-node": [],
    "ckpt-ok": [],
    "ckpt-missing": [
        "SpotTrainingCluster 'tc' trains on spot without a checkpoint location. Give it a checkpoint bucket (checkpointUrl s3://... or gs://...) so a preempted run resumes instead of restarting."
    ],
    "ckpt-grace": [
        "SpotTrainingCluster 'tc' has terminationGracePeriodSeconds=300, longer than the aws spot notice of 120 s: the node is gone before the checkpoint is written. Set it to 120 s or less."
    ],
    "ckpt-grace-gcp": [
        "SpotTrainingCluster 'tc' has terminationGracePeriodSeconds=60, longer than the gcp spot notice of 30 s: the node is gone before the checkpoint is written. Set it to 30 s or less."
    ],
    "ckpt-jobset": [
        "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet 'js' runs on spot nodes with spec.replicatedJobs[0].template.spec.template.spec.terminationGracePeriodSeconds=90, longer than the gcp spot notice of 30 s. Set it to 30 s or less."
    ],
    "taint-ok": [],
    "taint-pool": [
        "GpuNodePool 'p' makes GPU nodes without a NoSchedule or NoExecute taint, so any pod can land on (and keep awake) a GPU node. Add the taint nvidia.com/gpu=present:NoSchedule."
    ],
    "taint-raw": [
        "aws:eks/nodeGroup 'ng' makes GPU nodes without a NoSchedule or NoExecute taint, so any pod can land on (and keep awake) a GPU node. Add the taint nvidia.com/gpu=present:NoSchedule."
    ],
    "ready-ok": [],
    "ready-timeout": [
        "InferenceEndpoint 'recs' has requestTimeoutSeconds=60, shorter than its cold-start budget of 240 s: a request that wakes it from zero times out. Set requestTimeoutSeconds to at least 240."
    ],
    "ready-progress": [
        "InferenceEndpoint 'recs' has progressDeadlineSeconds=120, shorter than its cold-start budget of 240 s: a revision starting from zero is marked failed. Set it to at least 240."
    ],
    "ready-probe": [
        "InferenceEndpoint 'recs' has no readiness probe: traffic reaches replicas before the model is loaded. Give it a readiness probe on /v2/health/ready."
    ],
    "ready-knative": [
        "kubernetes:serving.knative.dev/v1:Service 'svc' has no readiness probe on its containers. Add one (e.g. httpGet /v2/health/ready)."
    ],
    "enc-ok": [],
    "enc-missing": [
        "aws:s3/bucket 'ckpt' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms)."
    ],
    "enc-cmk": [
        "aws:s3/bucket 'ckpt' is not encrypted with a customer-managed KMS key (requireCustomerManagedKeys). Set sseAlgorithm to aws:kms with kmsMasterKeyId.",
        "gcp:storage/bucket 'data' has no customer-managed key (requireCustomerManagedKeys). Set encryption.defaultKmsKeyName.",
    ],
    "enc-feature-store": [
        "FeatureStore 'fs' stores features unencrypted. Turn encryption on for its online and offline stores."
    ],
    "public-ok": [],
    "public-no-block": [
        "aws:s3/bucket 'ckpt' has no public access block. Add an aws.s3.BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true."
    ],
    "public-block-off": [
        "aws:s3/bucket 'ckpt' has a public access block with ['restrictPublicBuckets'] not true. Set all of blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets to true on every block that targets it.",
    ],
    "public-account-block": [],
    "public-policy": [
        "aws:s3/bucketPolicy 'pol' allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
    ],
    "public-gcs": [
        "gcp:storage/bucket 'data' does not enforce public access prevention. Set publicAccessPrevention: enforced."
    ],
    "public-gcs-iam": [
        "gcp:storage/bucketIAMMember 'm' grants roles/storage.objectViewer to ['allUsers']. Grant it to specific service accounts."
    ],
    "private-ok": [],
    "private-endpoint": [
        "InferenceEndpoint 'recs' is public and unauthenticated. Make it private, or require authentication (IAM / an authenticating gateway)."
    ],
    "private-cloud-run-iam": [
        "gcp:cloudrunv2/serviceIamMember 'inv' grants ['roles/run.invoker'] to ['allUsers'] on a Cloud Run service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals.",
    ],
    "private-knative": [
        "kubernetes:serving.knative.dev/v1:Service 'svc' is reachable from outside the cluster. Label it networking.knative.dev/visibility: cluster-local, or put it behind an authenticating gateway and exempt it."
    ],
    "imds-ok": [],
    "imds-lt": [
        "aws:ec2/launchTemplate 'lt' allows IMDSv1 (metadataOptions.httpTokens='optional'). Set metadataOptions.httpTokens to 'required'."
    ],
    "imds-nodegroup": [
        "aws:eks/nodeGroup 'ng' uses amiType AL2_x86_64_GPU without a launch template, which allows IMDSv1. Use an AL2023 or Bottlerocket AMI type, or a launch template with metadataOptions.httpTokens 'required'."
    ],
    "priv-ok": [],
    "priv-privileged": [
        "kubernetes:apps/v1:Deployment 'd': spec.template.spec.containers[0].securityContext.privileged is true. Remove it; request GPUs with resources.limits nvidia.com/gpu instead.",
    ],
    "priv-hostpath": [
        "kubernetes:apps/v1:Deployment 'd': spec.template.spec.volumes[0].hostPath mounts the host path /dev. Use a PersistentVolumeClaim, emptyDir or object storage instead.",
    ],
    "priv-hostpath-allowed": [],
    "priv-hostnetwork": [
        "kubernetes:apps/v1:Deployment 'd': spec.template.spec.hostNetwork is true. Remove it; pods must not share the node's namespaces.",
    ],
    "identity-ok": [],
    "identity-access-key": [
        "aws:iam/accessKey 'key' creates a long-lived IAM access key. Remove it and give the workload an IAM role through IRSA / EKS Pod Identity."
    ],
    "identity-sa-key": [
        "gcp:serviceaccount/key 'key' creates a service account key. Remove it and bind the Kubernetes service account through GKE Workload Identity."
    ],
    "identity-env": [
        "kubernetes:apps/v1:Deployment 'd' passes static cloud credentials to container 'main' (AWS_SECRET_ACCESS_KEY). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity)."
    ],
    "protect-ok-dev": [],
    "protect-ok-prod": [],
    "protect-cluster": [
        "KubernetesCluster 'k' is in a production stack without deletion protection. Set deletion_protection: True."
    ],
    "protect-bucket": [
        "aws:s3/bucket 'ckpt' is a production bucket without protect. Set protect=True on it (pulumi.ResourceOptions).",
        "aws:s3/bucket 'ckpt' is a production bucket with forceDestroy: true. Set forceDestroy: false.",
    ],
    "protect-gke": [
        "gcp:container/cluster 'gke' is in a production stack with deletionProtection: false. Set it to true."
    ],
    "tags-ok": [],
    "tags-component": [
        "GpuNodePool 'p' lacks the tags ['cost-center'] (at gpuplane.tags). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "tags-aws": [
        "aws:s3/bucket 'ckpt' lacks the tags ['team', 'cost-center'] (at tags). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "tags-aws-provider-default": [],
    "tags-gcp": [
        "gcp:storage/bucket 'data' lacks the labels ['team', 'cost-center'] (at labels). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "tags-gke-node-pool": [
        "gcp:container/nodePool 'np' lacks the labels ['team', 'cost-center'] (at nodeConfig.resourceLabels). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "tags-kubernetes": [
        "kubernetes:apps/v1:Deployment 'd' lacks the labels ['team', 'cost-center'] (at metadata.labels). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "tags-config": [
        "aws:s3/bucket 'ckpt' lacks the tags ['owner'] (at tags). Add them (stack config gpuplane:tags reaches every component), or set defaults in the required-tags config and run it at enforcement level remediate."
    ],
    "batch-spot-ok": [],
    "batch-on-demand": [
        "BatchJob 'embed' tolerates retries (maxAttempts 3) but runs on on-demand capacity on aws-batch. Set spot: True (tasks commit progress and exit 75 to be retried), or set max_attempts to 1 if the job must not be interrupted."
    ],
    "batch-timeout-ok": [],
    "batch-timeout-missing": [
        "aws:batch/jobDefinition 'jd' sets no task timeout (timeout.attemptDurationSeconds). Set one, at most 24 h, so a stuck task does not hold its GPU."
    ],
    "exempt-valid-ok": [],
    "exempt-no-reason": [
        "aws:s3/bucket 'b': Tag 'gpuplane/exempt' has no reason, so it is not honoured. Add 'gpuplane/exempt-reason' (label form 'gpuplane-exempt-reason') saying why."
    ],
    "exempt-unknown-policy": [
        "gcp:storage/bucket 'data': Tag 'gpuplane-exempt' names unknown policies ['no-such-policy']. Use names from the pack: ['allowed-regions', 'batch-on-spot', 'batch-timeout-set', 'cluster-hardened', 'deletion-protection', 'edge-artifacts-pinned', 'endpoint-private-or-authenticated', 'endpoint-readiness', 'endpoint-scale-to-zero', 'exemption-scope', 'exemption-valid', 'gpu-offered-in-region', 'gpu-pool-max-nodes', 'gpu-pool-tainted', 'gpu-total-max', 'gpu-types-allowed', 'helm-release-rendered', 'idle-timeout-bounds', 'imdsv2-required', 'multinode-compact-placement', 'network-ingress-restricted', 'no-privileged-pods', 'required-tags', 'spot-checkpointing', 'stack-budget', 'storage-encrypted', 'storage-not-public', 'training-data-colocated', 'training-on-spot', 'two-tier-steady-bounded', 'workload-identity'].",
    ],
    "edge-ok": [],
    "edge-unpinned-config": [
        "kubernetes:core/v1:ConfigMap 'cm' data: EDGE_MODEL_URI 'oci://r/m' has no sha256 digest (EDGE_MODEL_DIGEST ''). Give the model's sha256 digest in EDGE_MODEL_DIGEST."
    ],
    "edge-unpinned-summary": ["EdgeDeployment 'recs': model 's3://m/model.onnx' is not pinned (digest None). Give its sha256 digest."],
    "edge-image-tag": [
        "kubernetes:apps/v1:Deployment 'd' spec.template.spec.containers[0]: image 'r/edge:latest' is a tag, which can move between waves. Use a digest reference (repo@sha256:...)."
    ],
    "edge-image-tag-allowed": [],
    "edge-tensorrt-no-gpu": [
        "kubernetes:apps/v1:Deployment 'd' spec.template.spec.containers[0]: EDGE_RUNTIME=tensorrt without an nvidia.com/gpu limit; TensorRT needs the site's GPU. Add an nvidia.com/gpu limit, or set EDGE_RUNTIME to onnxruntime."
    ],
}


def messages(rule, resources, cfg) -> list[str]:
    config = config_for(rule, cfg)
    if isinstance(rule, StackRule):
        return [m for _, m in rule.check(resources, config)]
    return [m for r in resources for m in rule.check(r, config)]


@pytest.mark.parametrize(("case_id", "rule", "resources", "cfg"), CASES, ids=[c[0] for c in CASES])
def test_policy_case(case_id, rule, resources, cfg):
    assert messages(rule, resources, cfg) == EXPECTED[case_id], f"{rule.name}: {case_id}"


def test_every_policy_has_a_compliant_case_and_a_failing_case():
    from policies.__main__ import RULES
    from tests.policies.evasion_cases import CASES as EVASION_CASES
    from tests.policies.test_evasion import EXPECTED as EVASION_EXPECTED

    by_rule: dict[str, list[bool]] = {}
    for case_id, rule, _, _ in CASES:
        by_rule.setdefault(rule.name, []).append(bool(EXPECTED[case_id]))
    for case_id, rule, _, _ in EVASION_CASES:
        by_rule.setdefault(rule.name, []).append(bool(EVASION_EXPECTED[case_id]))
    for rule in RULES:
        results = by_rule.get(rule.name, [])
        assert False in results and True in results, (
            f"{rule.name} needs a compliant case and at least one violating case"
        )


def test_every_message_says_what_must_change():
    verbs = (
        "Set ",
        "Add ",
        "Use ",
        "Move ",
        "Remove ",
        "Lower ",
        "Put ",
        "Give ",
        "Grant ",
        "Label ",
        "Make ",
        "Turn ",
        "Raise ",
        "Scale ",
    )
    for case_id, msgs in EXPECTED.items():
        for m in msgs:
            assert any(v in m for v in verbs), f"{case_id}: message gives no fix: {m}"
