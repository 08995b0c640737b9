"""Security policies.

- ``storage-encrypted`` (stack): every S3 bucket has a server-side encryption configuration
  (a ``BucketServerSideEncryptionConfiguration`` that depends on it or names it); with
  ``requireCustomerManagedKeys`` it must use KMS, and GCS buckets, DynamoDB tables, SageMaker
  feature groups and Vertex online stores must name a KMS key; RDS instances set
  ``storageEncrypted`` (and ``kmsKeyId`` / Cloud SQL ``encryptionKeyName`` where keys are
  required). FeatureStore and ModelRegistry summaries with ``encrypted: false`` are reported.
- ``storage-not-public`` (stack): S3 buckets are covered by a public access block with all four
  settings on (per bucket or account-wide); no public ACL or ``Principal: *`` bucket policy;
  GCS buckets enforce public access prevention and uniform bucket-level access, and no IAM
  grant to ``allUsers`` / ``allAuthenticatedUsers``; RDS instances are not ``publiclyAccessible``;
  Cloud SQL instances have no public IPv4 and no authorized networks; FeatureStore and
  ModelRegistry summaries with ``public``.
- ``endpoint-private-or-authenticated``: an inference endpoint is private or requires
  authentication (Cloud Run: no ``allUsers`` invoker; Knative: ``cluster-local`` visibility).
- ``imdsv2-required``: EC2 launch templates and instances require IMDSv2 tokens; EKS node groups
  without a launch template use an AMI type that requires them (AL2023, Bottlerocket);
  Karpenter EC2NodeClasses do not turn them off.
- ``no-privileged-pods``: no privileged containers, host namespaces or hostPath volumes in
  Kubernetes workloads (outside ``exemptNamespaces``).
- ``workload-identity``: no long-lived cloud keys (``aws.iam.AccessKey``,
  ``gcp.serviceaccount.Key``, static key environment variables); use IRSA / Pod Identity or
  GKE Workload Identity.
- ``deletion-protection``: on production stacks (``production: true`` in the stack's policy
  config, or a stack name matching ``productionStacks``), clusters and data stores are
  protected from deletion.
"""

from __future__ import annotations

import json
from typing import Any

from policies.framework import Config, ResourceRule, StackRule
from policies.resources import (
    UNKNOWN,
    ResourceView,
    dig,
    endpoint_facts,
    label,
    namespace_of,
    pod_specs,
    region_matches,
)

S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
RDS_INSTANCE = "aws:rds/instance:Instance"
CLOUD_SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
SSE_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
PAB_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PAB_TYPE = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
GCS_BUCKET = "gcp:storage/bucket:Bucket"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def _refers_to(attached: ResourceView, bucket: ResourceView) -> bool:
    """True when ``attached`` (an encryption config, access block, ...) belongs to ``bucket``."""
    if bucket.urn in attached.dependencies:
        return True
    ref = attached.props.get("bucket")
    names = {bucket.props.get("bucket"), bucket.name, f"{bucket.name}-id"}
    return isinstance(ref, str) and ref in names


def check_encrypted(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    cmk = bool(cfg.get("requireCustomerManagedKeys", False))
    out: list[tuple[str | None, str]] = []
    sses = [v for v in views if v.type in SSE_TYPES]
    for v in views:
        p = v.props
        if v.type in S3_BUCKETS:
            inline = p.get("serverSideEncryptionConfiguration")
            mine = [s for s in sses if _refers_to(s, v)]
            if not mine and not inline:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it ({'aws:kms with a KMS key' if cmk else 'AES256 or aws:kms'}).",
                    )
                )
            elif cmk:
                rules = [r for s in mine for r in (s.props.get("rules") or [])] + (
                    [dig(inline, "rule")] if inline else []
                )
                algos = {
                    dig(r, "applyServerSideEncryptionByDefault.sseAlgorithm") for r in rules if isinstance(r, dict)
                }
                if not algos & {"aws:kms", "aws:kms:dsse"}:
                    out.append(
                        (
                            v.urn,
                            f"{label(v)} is not encrypted with a customer-managed KMS key (requireCustomerManagedKeys). Set sseAlgorithm to aws:kms with kmsMasterKeyId.",
                        )
                    )
        elif v.type == GCS_BUCKET and cmk and not dig(p, "encryption.defaultKmsKeyName"):
            out.append(
                (
                    v.urn,
                    f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set encryption.defaultKmsKeyName.",
                )
            )
        elif (
            v.type == "aws:dynamodb/table:Table"
            and cmk
            and not (dig(p, "serverSideEncryption.enabled") is True and dig(p, "serverSideEncryption.kmsKeyArn"))
        ):
            out.append(
                (
                    v.urn,
                    f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set serverSideEncryption {{enabled: true, kmsKeyArn}}.",
                )
            )
        elif v.type == "aws:sagemaker/featureGroup:FeatureGroup" and cmk:
            missing = [
                path
                for path in ("onlineStoreConfig.securityConfig.kmsKeyId", "offlineStoreConfig.s3StorageConfig.kmsKeyId")
                if p.get(path.split(".")[0]) and not dig(p, path)
            ]
            if missing:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has no customer-managed key at {', '.join(missing)} (requireCustomerManagedKeys). Set them to a KMS key.",
                    )
                )
        elif (
            v.type == "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore"
            and cmk
            and not dig(p, "encryptionSpec.kmsKeyName")
        ):
            out.append(
                (
                    v.urn,
                    f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set encryptionSpec.kmsKeyName.",
                )
            )
        elif v.type == RDS_INSTANCE and p.get("storageEncrypted") is not True:
            out.append(
                (
                    v.urn,
                    f"{label(v)} stores its database unencrypted. Set storageEncrypted: true (with kmsKeyId for a customer-managed key).",
                )
            )
        elif v.type == RDS_INSTANCE and cmk and not p.get("kmsKeyId"):
            out.append((v.urn, f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set kmsKeyId."))
        elif v.type == CLOUD_SQL_INSTANCE and cmk and not p.get("encryptionKeyName"):
            out.append((v.urn, f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set encryptionKeyName."))
        elif v.component == "ModelRegistry" and dig(v.summary, "database.encrypted") is False:
            out.append((v.urn, f"{label(v)} keeps its registry database unencrypted. Use an encrypted database."))
        elif v.component == "FeatureStore" and v.summary.get("encrypted") is False:
            out.append(
                (
                    v.urn,
                    f"{label(v)} stores features unencrypted. Turn encryption on for its online and offline stores.",
                )
            )
    return out


STORAGE_ENCRYPTED = StackRule(
    name="storage-encrypted",
    description="Checks whether buckets, databases (RDS, Cloud SQL) and feature stores are encrypted at rest (with customer-managed keys where required).",
    check=check_encrypted,
    schema={
        "requireCustomerManagedKeys": {
            "type": "boolean",
            "default": False,
            "description": "Require KMS / Cloud KMS keys, not provider-owned keys.",
        }
    },
)


def _policy_is_public(doc: Any) -> bool:
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return False
    if not isinstance(doc, dict):
        return False
    stmts = doc.get("Statement") or []
    for s in stmts if isinstance(stmts, list) else [stmts]:
        if not isinstance(s, dict) or s.get("Effect") != "Allow" or s.get("Condition"):
            continue
        principal = s.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"])):
            return True
    return False


def check_not_public(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    pabs = [v for v in views if v.type == PAB_TYPE]
    account_blocked = any(all(v.props.get(f) is True for f in PAB_FLAGS) for v in views if v.type == ACCOUNT_PAB_TYPE)
    for v in views:
        p = v.props
        if v.type in S3_BUCKETS and not account_blocked:
            mine = [b for b in pabs if _refers_to(b, v)]
            if not mine:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has no public access block. Add an aws.s3.BucketPublicAccessBlock with {', '.join(PAB_FLAGS)} all true.",
                    )
                )
            else:
                off = [f for f in PAB_FLAGS if mine[0].props.get(f) is not True and mine[0].props.get(f) is not UNKNOWN]
                if off:
                    out.append(
                        (
                            v.urn,
                            f"{label(v)} has a public access block with {off} not true. Set all of {', '.join(PAB_FLAGS)} to true.",
                        )
                    )
        elif v.type.startswith("aws:s3/bucketAcl") and str(p.get("acl", "")).startswith(
            ("public-", "authenticated-read")
        ):
            out.append(
                (
                    v.urn,
                    f"{label(v)} grants the ACL '{p.get('acl')}'. Use 'private' (or no ACL, with bucket owner enforced).",
                )
            )
        elif v.type == "aws:s3/bucketPolicy:BucketPolicy" and _policy_is_public(p.get("policy")):
            out.append(
                (v.urn, f"{label(v)} allows Principal '*' without a condition. Grant access to specific roles instead.")
            )
        elif v.type == GCS_BUCKET:
            if p.get("publicAccessPrevention") != "enforced":
                out.append(
                    (
                        v.urn,
                        f"{label(v)} does not enforce public access prevention. Set publicAccessPrevention: enforced.",
                    )
                )
            if p.get("uniformBucketLevelAccess") is not True:
                out.append(
                    (v.urn, f"{label(v)} does not use uniform bucket-level access. Set uniformBucketLevelAccess: true.")
                )
        elif v.type.startswith("gcp:storage/bucketIAM"):
            members = [p.get("member"), *list(p.get("members") or [])]
            if any(m in PUBLIC_MEMBERS for m in members):
                out.append(
                    (
                        v.urn,
                        f"{label(v)} grants {p.get('role')} to {[m for m in members if m in PUBLIC_MEMBERS]}. Grant it to specific service accounts.",
                    )
                )
        elif v.component == "FeatureStore" and v.summary.get("public") is True:
            out.append((v.urn, f"{label(v)} is publicly reachable. Make its online store private."))
        elif v.type == RDS_INSTANCE and p.get("publiclyAccessible") is True:
            out.append((v.urn, f"{label(v)} is publicly accessible. Set publiclyAccessible: false and reach it from the cluster's subnets."))
        elif v.type == CLOUD_SQL_INSTANCE:
            ip = dig(p, "settings.ipConfiguration") or {}
            if not isinstance(ip, dict) or ip.get("ipv4Enabled") is not False:
                out.append((v.urn, f"{label(v)} has a public IPv4 address. Set settings.ipConfiguration.ipv4Enabled: false with a privateNetwork."))
            nets = ip.get("authorizedNetworks") if isinstance(ip, dict) else None
            if nets:
                out.append((v.urn, f"{label(v)} admits authorized networks {[n.get('value') for n in nets if isinstance(n, dict)]}. Remove them; connect over the private IP."))
        elif v.component == "ModelRegistry" and dig(v.summary, "database.public") is True:
            out.append((v.urn, f"{label(v)} has a publicly reachable database. Make it private."))
    return out


STORAGE_NOT_PUBLIC = StackRule(
    name="storage-not-public",
    description="Checks whether buckets, databases (RDS, Cloud SQL) and feature stores are closed to the public.",
    check=check_not_public,
)


def check_endpoint_private(view: ResourceView, cfg: Config) -> list[str]:
    p = view.props
    if view.component == "InferenceEndpoint":
        e = endpoint_facts(view.summary)
        if e["public"] and not e["authenticated"]:
            return [
                f"{label(view)} is public and unauthenticated. Make it private, or require authentication (IAM / an authenticating gateway)."
            ]
        return []
    if view.type.startswith("gcp:cloudrunv2/serviceIam"):
        members = [p.get("member"), *list(p.get("members") or [])]
        if any(m in PUBLIC_MEMBERS for m in members) and "invoker" in str(p.get("role", "")):
            return [
                f"{label(view)} lets {[m for m in members if m in PUBLIC_MEMBERS]} invoke the service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals."
            ]
        return []
    if view.type == "kubernetes:serving.knative.dev/v1:Service" and not view.managed:
        labels = dig(p, "metadata.labels") or {}
        if labels.get("networking.knative.dev/visibility") != "cluster-local" and not cfg.get(
            "allowPublicKnative", False
        ):
            return [
                f"{label(view)} is reachable from outside the cluster. Label it networking.knative.dev/visibility: cluster-local, or put it behind an authenticating gateway and exempt it."
            ]
    return []


ENDPOINT_PRIVATE = ResourceRule(
    name="endpoint-private-or-authenticated",
    description="Checks whether inference endpoints are private or require authentication.",
    check=check_endpoint_private,
    schema={
        "allowPublicKnative": {
            "type": "boolean",
            "default": False,
            "description": "Allow Knative services with external visibility (e.g. behind an authenticating ingress).",
        }
    },
)


def check_imdsv2(view: ResourceView, cfg: Config) -> list[str]:
    p = view.props
    if view.type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
        tokens = dig(p, "metadataOptions.httpTokens")
        if tokens is not UNKNOWN and tokens != "required":
            return [
                f"{label(view)} allows IMDSv1 (metadataOptions.httpTokens={tokens!r}). Set metadataOptions.httpTokens to 'required'."
            ]
    elif view.type == "aws:eks/nodeGroup:NodeGroup" and not p.get("launchTemplate"):
        ami = p.get("amiType")
        if isinstance(ami, str) and ami.startswith("AL2_"):
            return [
                f"{label(view)} uses amiType {ami} without a launch template, which allows IMDSv1. Use an AL2023 or Bottlerocket AMI type, or a launch template with metadataOptions.httpTokens 'required'."
            ]
    elif (
        view.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
        and dig(p, "spec.metadataOptions.httpTokens") == "optional"
    ):
        return [
            f"{label(view)} sets spec.metadataOptions.httpTokens to 'optional'. Set it to 'required' (Karpenter's default)."
        ]
    return []


IMDSV2_REQUIRED = ResourceRule(
    name="imdsv2-required",
    description="Checks whether EC2 nodes require IMDSv2 session tokens for the instance metadata service.",
    check=check_imdsv2,
)


def check_privileged(view: ResourceView, cfg: Config) -> list[str]:
    specs = pod_specs(view)
    if not specs or namespace_of(view) in list(cfg.get("exemptNamespaces") or []):
        return []
    allowed_paths = list(cfg.get("allowedHostPaths") or [])
    out: list[str] = []
    for path, spec in specs:
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag) is True:
                out.append(
                    f"{label(view)} sets {path}.{flag}: true. Remove it; pods must not share the node's namespaces."
                )
        for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            if isinstance(c, dict) and dig(c, "securityContext.privileged") is True:
                out.append(
                    f"{label(view)} runs container '{c.get('name')}' privileged ({path}). Remove securityContext.privileged; request the GPU with resources.limits nvidia.com/gpu instead."
                )
        for vol in spec.get("volumes") or []:
            hp = dig(vol, "hostPath.path") if isinstance(vol, dict) else None
            if isinstance(hp, str) and not any(hp == a or hp.startswith(a.rstrip("/") + "/") for a in allowed_paths):
                out.append(
                    f"{label(view)} mounts the host path {hp} (volume '{vol.get('name')}'). Use a PersistentVolumeClaim, emptyDir or object storage instead."
                )
    return out


NO_PRIVILEGED_PODS = ResourceRule(
    name="no-privileged-pods",
    description="Checks whether Kubernetes workloads avoid privileged containers, host namespaces and host paths.",
    check=check_privileged,
    schema={
        "exemptNamespaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["kube-system"],
            "description": "Namespaces of system agents that need node access.",
        },
        "allowedHostPaths": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Host path prefixes that may be mounted.",
        },
    },
)

_STATIC_KEY_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS")


def check_workload_identity(view: ResourceView, cfg: Config) -> list[str]:
    if view.type == "aws:iam/accessKey:AccessKey":
        return [
            f"{label(view)} creates a long-lived IAM access key. Remove it and give the workload an IAM role through IRSA / EKS Pod Identity."
        ]
    if view.type == "gcp:serviceaccount/key:Key":
        return [
            f"{label(view)} creates a service account key. Remove it and bind the Kubernetes service account through GKE Workload Identity."
        ]
    out = []
    for _path, spec in pod_specs(view):
        for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            if not isinstance(c, dict):
                continue
            names = [e.get("name") for e in c.get("env") or [] if isinstance(e, dict)]
            bad = [n for n in names if n in _STATIC_KEY_ENV]
            if bad:
                out.append(
                    f"{label(view)} passes static cloud credentials to container '{c.get('name')}' ({', '.join(bad)}). Remove them and use workload identity (IRSA / Pod Identity, GKE Workload Identity)."
                )
    return out


WORKLOAD_IDENTITY = ResourceRule(
    name="workload-identity",
    description="Checks whether workloads use workload identity instead of static cloud keys.",
    check=check_workload_identity,
)


def check_deletion_protection(view: ResourceView, cfg: Config) -> list[str]:
    production = bool(cfg.get("production", False)) or (
        bool(view.stack) and region_matches(view.stack, list(cfg.get("productionStacks") or []))
    )
    if not production:
        return []
    p, t = view.props, view.type
    fix = "Set protect=True on it (pulumi.ResourceOptions)"
    if view.component == "KubernetesCluster":
        if view.summary.get("cloud") in ("aws", "gcp") and view.summary.get("deletionProtection") is not True:
            return [
                f"{label(view)} is in a production stack without deletion protection. Set deletion_protection: True."
            ]
        return []
    if view.component == "FeatureStore":
        if view.summary.get("deletionProtection") is False:
            return [f"{label(view)} is in a production stack without deletion protection. Turn deletion protection on."]
        return []
    if t in S3_BUCKETS:
        out = [] if view.protect else [f"{label(view)} is a production bucket without protect. {fix}."]
        if p.get("forceDestroy") is True:
            out.append(f"{label(view)} is a production bucket with forceDestroy: true. Set forceDestroy: false.")
        return out
    if t == GCS_BUCKET:
        out = [] if view.protect else [f"{label(view)} is a production bucket without protect. {fix}."]
        if p.get("forceDestroy") is True:
            out.append(f"{label(view)} is a production bucket with forceDestroy: true. Set forceDestroy: false.")
        return out
    if t == "aws:eks/cluster:Cluster" and not view.protect:
        return [f"{label(view)} is a production cluster without protect. {fix}."]
    if (
        t in ("gcp:container/cluster:Cluster", "gcp:cloudrunv2/service:Service")
        and p.get("deletionProtection") is False
    ):
        return [f"{label(view)} is in a production stack with deletionProtection: false. Set it to true."]
    if t == RDS_INSTANCE and p.get("deletionProtection") is not True:
        return [f"{label(view)} is a production database without deletion protection. Set deletionProtection: true."]
    if t == CLOUD_SQL_INSTANCE and p.get("deletionProtection") is not True:
        return [f"{label(view)} is a production database without deletion protection. Set deletionProtection: true."]
    if t == "aws:dynamodb/table:Table" and not (view.protect or p.get("deletionProtectionEnabled") is True):
        return [
            f"{label(view)} is a production table without deletion protection. Set deletionProtectionEnabled: true."
        ]
    if t in ("aws:sagemaker/featureGroup:FeatureGroup",) and not view.protect:
        return [f"{label(view)} is a production feature group without protect. {fix}."]
    if t == "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore" and (
        p.get("forceDestroy") is True or not view.protect
    ):
        return [
            f"{label(view)} is a production online store that can be destroyed. {fix} and leave forceDestroy unset."
        ]
    return []


DELETION_PROTECTION = ResourceRule(
    name="deletion-protection",
    description="Checks whether clusters and data stores in production stacks are protected from deletion.",
    check=check_deletion_protection,
    schema={
        "production": {"type": "boolean", "default": False, "description": "This stack is a production stack."},
        "productionStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["prod", "prod-*", "*-prod", "production"],
            "description": "Stack name patterns that count as production.",
        },
    },
)
