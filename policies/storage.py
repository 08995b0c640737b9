"""Storage policies, decided on the whole resource graph.

- ``storage-encrypted`` (stack): data at rest is encrypted on every route — S3 buckets (classic
  ``Bucket`` inline rules, ``BucketV2``, aws-native ``s3:Bucket``) by their own configuration or a
  separate ``BucketServerSideEncryptionConfiguration(V2)`` that targets them (by the bucket's
  literal name, or by dependency when the name is not known yet); EBS volumes, launch-template
  block devices, instance and launch-configuration block devices (unless the graph turns on EBS
  encryption by default); EFS file systems; RDS instances and clusters. With
  ``requireCustomerManagedKeys``: KMS for S3, and a key on GCS buckets (``encryption.
  defaultKmsKeyName``), DynamoDB, SageMaker feature groups, Vertex online stores, RDS, Cloud SQL.
  FeatureStore / ModelRegistry summaries with ``encrypted: false`` are reported.
- ``storage-not-public`` (stack): S3 buckets are covered by public access blocks with all four
  settings on — every block that targets the bucket counts and the least restrictive wins; a
  block naming another bucket does not count; an account-level block counts only for this
  stack's account (no ``accountId``, or one in ``accountIds``); no bucket policy (classic,
  separate, aws-native) allows ``*`` without a condition that restricts who calls; no public ACL
  or grant to the AllUsers / AuthenticatedUsers groups; GCS buckets enforce public access
  prevention and uniform access and no IAM route or ACL grants ``allUsers`` /
  ``allAuthenticatedUsers``; RDS / Cloud SQL are not public; FeatureStore / ModelRegistry
  summaries with ``public``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policies.framework import Config, StackRule
from policies.resources import UNKNOWN, ResourceView, dig, label

S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws-native:s3:Bucket")
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_TYPES = (RDS_INSTANCE, RDS_CLUSTER, "aws-native:rds:DbInstance", "aws-native:rds:DbCluster")
EBS_VOLUMES = ("aws:ebs/volume:Volume", "aws-native:ec2:Volume")
EFS_TYPES = ("aws:efs/fileSystem:FileSystem", "aws-native:efs:FileSystem")
CLOUD_SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
SSE_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
PAB_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PAB_TYPE = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
BUCKET_POLICY_TYPES = ("aws:s3/bucketPolicy:BucketPolicy", "aws-native:s3:BucketPolicy")
BUCKET_ACL_TYPES = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
GCS_BUCKET = "gcp:storage/bucket:Bucket"
GCS_ACL_TYPES = (
    "gcp:storage/bucketAccessControl:BucketAccessControl",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
    "gcp:storage/objectAccessControl:ObjectAccessControl",
    "gcp:storage/bucketACL:BucketACL",
    "gcp:storage/defaultObjectACL:DefaultObjectACL",
)
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PUBLIC_ACLS = (
    "public-read",
    "public-read-write",
    "authenticated-read",
    "publicread",
    "publicreadwrite",
    "authenticatedread",
)
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
# Condition keys that restrict WHO (or from where) can call; anything else (SecureTransport,
# UserAgent, Referer, x-amz-acl ...) leaves a "*" principal open to the world.
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceIp",
        "aws:VpcSourceIp",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:userid",
        "aws:username",
        "aws:ResourceOrgID",
        "aws:SourceOwner",
        "aws:VpceAccount",
        "aws:Ec2InstanceSourceVpc",
        "ec2:SourceInstanceArn",
        "lambda:SourceFunctionArn",
        "ssm:SourceInstanceArn",
    )
)
_OPEN_VALUES = ("*", "0.0.0.0/0", "::/0", "")


def bucket_names(bucket: ResourceView) -> set[str]:
    p = bucket.props
    return {
        n for n in (p.get("bucket"), p.get("bucketName"), bucket.name, f"{bucket.name}-id") if isinstance(n, str) and n
    }


def refers_to(attached: ResourceView, bucket: ResourceView) -> bool:
    """True when ``attached`` (an SSE config, access block, policy) targets ``bucket``.

    A literal bucket name decides (a block naming another bucket never counts for this one);
    the dependency decides only while the name is not known (``bucket: <output of the bucket>``).
    """
    ref = attached.props.get("bucket")
    if isinstance(ref, str) and ref:
        return ref in bucket_names(bucket)
    return bucket.urn in attached.dependencies


def _sse_algorithms(rules: Any) -> set[str]:
    rules = rules if isinstance(rules, list) else [rules]
    out = set()
    for r in rules:
        if isinstance(r, dict):
            a = first_present(
                r, "applyServerSideEncryptionByDefault.sseAlgorithm", "serverSideEncryptionByDefault.sseAlgorithm"
            )
            if isinstance(a, str):
                out.add(a)
            elif a is UNKNOWN:
                out.add("<unknown>")
    return out


def first_present(d: Mapping[str, Any], *paths: str) -> Any:
    for p in paths:
        v = dig(d, p)
        if v is not None:
            return v
    return None


def _bucket_algorithms(v: ResourceView, sses: list[ResourceView]) -> set[str]:
    p = v.props
    algos = _sse_algorithms(dig(p, "serverSideEncryptionConfiguration.rule"))
    algos |= _sse_algorithms(dig(p, "serverSideEncryptionConfiguration.rules"))
    algos |= _sse_algorithms(dig(p, "bucketEncryption.serverSideEncryptionConfiguration"))
    for s in sses:
        if refers_to(s, v):
            algos |= _sse_algorithms(s.props.get("rules")) or {"<none>"}
    return algos


def _ebs_unencrypted(v: ResourceView) -> list[str]:
    """Paths of block devices that are not encrypted on an instance, launch template or launch configuration."""
    p, out = v.props, []
    if v.type == "aws:ec2/launchTemplate:LaunchTemplate":
        for i, m in enumerate(p.get("blockDeviceMappings") or []):
            ebs = m.get("ebs") if isinstance(m, dict) else None
            if isinstance(ebs, dict) and str(ebs.get("encrypted")).lower() != "true" and not ebs.get("snapshotId"):
                out.append(f"blockDeviceMappings[{i}].ebs.encrypted")
    elif v.type in (
        "aws:ec2/instance:Instance",
        "aws:ec2/launchConfiguration:LaunchConfiguration",
        "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
    ):
        root = p.get("rootBlockDevice")
        if isinstance(root, dict) and root.get("encrypted") is not True:
            out.append("rootBlockDevice.encrypted")
        for i, d in enumerate(p.get("ebsBlockDevices") or []):
            if isinstance(d, dict) and d.get("encrypted") is not True:
                out.append(f"ebsBlockDevices[{i}].encrypted")
    return out


def check_encrypted(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    cmk = bool(cfg.get("requireCustomerManagedKeys", False))
    out: list[tuple[str | None, str]] = []
    sses = [v for v in views if v.type in SSE_TYPES]
    ebs_default = any(
        v.type == "aws:ebs/encryptionByDefault:EncryptionByDefault" and v.props.get("enabled", True) is True
        for v in views
    )
    for v in views:
        p = v.props
        if v.type in S3_BUCKETS:
            algos = _bucket_algorithms(v, sses)
            if "<unknown>" in algos:
                continue
            good = algos & set(SSE_ALGORITHMS)
            if not good:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it ({'aws:kms with a KMS key' if cmk else 'AES256 or aws:kms'}).",
                    )
                )
            elif cmk and not good & {"aws:kms", "aws:kms:dsse"}:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} is not encrypted with a customer-managed KMS key (requireCustomerManagedKeys). Set sseAlgorithm to aws:kms with kmsMasterKeyId.",
                    )
                )
        elif v.type in EBS_VOLUMES and p.get("encrypted") is not True and not ebs_default:
            out.append(
                (
                    v.urn,
                    f"{label(v)} is an unencrypted EBS volume. Set encrypted: true (with kmsKeyId for a customer-managed key).",
                )
            )
        elif (bad := _ebs_unencrypted(v)) and not ebs_default:
            out.append(
                (
                    v.urn,
                    f"{label(v)} has unencrypted block devices ({', '.join(bad)}). Set encrypted to true on each, or turn on aws.ebs.EncryptionByDefault.",
                )
            )
        elif v.type in EFS_TYPES and p.get("encrypted") is not True:
            out.append((v.urn, f"{label(v)} is an unencrypted EFS file system. Set encrypted: true."))
        elif v.type in RDS_TYPES and p.get("storageEncrypted") is not True:
            out.append(
                (
                    v.urn,
                    f"{label(v)} stores its database unencrypted. Set storageEncrypted: true (with kmsKeyId for a customer-managed key).",
                )
            )
        elif v.type in RDS_TYPES and cmk and not p.get("kmsKeyId"):
            out.append((v.urn, f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set kmsKeyId."))
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
        elif v.type == CLOUD_SQL_INSTANCE and cmk and not p.get("encryptionKeyName"):
            out.append(
                (v.urn, f"{label(v)} has no customer-managed key (requireCustomerManagedKeys). Set encryptionKeyName.")
            )
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
    description="Checks whether buckets, volumes (EBS, launch-template and instance block devices, EFS), databases (RDS, Cloud SQL) and feature stores are encrypted at rest (with customer-managed keys where required).",
    check=check_encrypted,
    schema={
        "requireCustomerManagedKeys": {
            "type": "boolean",
            "default": False,
            "description": "Require KMS / Cloud KMS keys, not provider-owned keys.",
        }
    },
)


def _open_value(x: Any) -> bool:
    """A condition value that admits (nearly) everyone: ``*``, an ARN of any account, an IP range wider than /8."""
    v = str(x).strip()
    if v in _OPEN_VALUES or "::*" in v or v.startswith("arn:aws:*"):
        return True
    if "/" in v:
        _, _, bits = v.partition("/")
        return bits.isdigit() and int(bits) < (8 if ":" not in v else 32)
    return False


def _restricts(condition: Any) -> bool:
    """True when an IAM Condition block limits who can call (org, account, VPC, IP range, ARN)."""
    if not isinstance(condition, dict):
        return False
    for op, clauses in condition.items():
        o = str(op)
        if "Not" in o or o.endswith("IfExists") or o == "Null" or not isinstance(clauses, dict):
            continue  # negated / IfExists / Null operators let requests without the key through
        for key, val in clauses.items():
            vals = val if isinstance(val, list) else [val]
            if str(key).lower() in RESTRICTING_KEYS and vals and not any(_open_value(x) for x in vals):
                return True
    return False


def _is_everyone(principal: Any) -> bool:
    if isinstance(principal, str):
        return principal.strip() == "*"
    if isinstance(principal, dict):
        return any(_is_everyone(v) for v in principal.values())
    if isinstance(principal, list):
        return any(_is_everyone(v) for v in principal)
    return False


def policy_is_public(doc: Any) -> bool:
    """An S3 bucket policy (JSON string or object) that allows everyone without a restricting condition."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return False
    if not isinstance(doc, dict):
        return False
    stmts = doc.get("Statement") or []
    for s in stmts if isinstance(stmts, list) else [stmts]:
        if not isinstance(s, dict) or str(s.get("Effect", "")).lower() != "allow":
            continue
        if ("NotPrincipal" in s or _is_everyone(s.get("Principal"))) and not _restricts(s.get("Condition")):
            return True
    return False


def _acl_public(p: Mapping[str, Any]) -> list[str]:
    out = []
    acl = first_present(p, "acl", "accessControl")
    if isinstance(acl, str) and acl.replace("-", "").lower() in {a.replace("-", "") for a in PUBLIC_ACLS}:
        out.append(f"the ACL '{acl}'")
    grants = list(dig(p, "accessControlPolicy.grants") or []) + list(p.get("grants") or [])
    for g in grants:
        uri = first_present(g, "grantee.uri", "uri") if isinstance(g, dict) else None
        if isinstance(uri, str) and uri.rstrip("/") in PUBLIC_GROUPS:
            out.append(f"{g.get('permission') or 'access'} to the {uri.rsplit('/', 1)[-1]} group")
    return out


def _flags(pab: Mapping[str, Any] | None) -> dict[str, Any]:
    return {f: (pab or {}).get(f) for f in PAB_FLAGS}


def check_not_public(views: list[ResourceView], cfg: Config) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    pabs = [v for v in views if v.type == PAB_TYPE]
    accounts = [str(a) for a in cfg.get("accountIds") or []]
    account_blocks = [
        v
        for v in views
        if v.type == ACCOUNT_PAB_TYPE
        and (not isinstance(v.props.get("accountId"), str) or v.props["accountId"] in accounts)
    ]
    ignored_accounts = [v for v in views if v.type == ACCOUNT_PAB_TYPE and v not in account_blocks]
    account_on = {f: any(b.props.get(f) is True for b in account_blocks) for f in PAB_FLAGS}
    for v in ignored_accounts:
        out.append(
            (
                v.urn,
                f"{label(v)} blocks public access for account {v.props.get('accountId')}, not this stack's account, so it covers none of its buckets. Remove accountId (or add it to accountIds in the storage-not-public config).",
            )
        )
    for v in views:
        p = v.props
        if v.type in S3_BUCKETS:
            blocks = [b.props for b in pabs if refers_to(b, v)]
            if v.type == "aws-native:s3:Bucket" and isinstance(p.get("publicAccessBlockConfiguration"), dict):
                blocks.append(p["publicAccessBlockConfiguration"])
            if not blocks and not all(account_on.values()):
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has no public access block. Add an aws.s3.BucketPublicAccessBlock with {', '.join(PAB_FLAGS)} all true.",
                    )
                )
            elif blocks:
                # Every block applies; the least restrictive setting of each flag wins.
                off = [
                    f
                    for f in PAB_FLAGS
                    if not account_on[f]
                    and any(_flags(b)[f] is not True and _flags(b)[f] is not UNKNOWN for b in blocks)
                ]
                if off:
                    out.append(
                        (
                            v.urn,
                            f"{label(v)} has a public access block with {off} not true. Set all of {', '.join(PAB_FLAGS)} to true on every block that targets it.",
                        )
                    )
            if policy_is_public(p.get("policy")):
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has a bucket policy that allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
                    )
                )
            if grants := _acl_public(p):
                out.append(
                    (
                        v.urn,
                        f"{label(v)} grants {', '.join(grants)}. Use 'private' (or no ACL, with bucket owner enforced).",
                    )
                )
        elif v.type in BUCKET_POLICY_TYPES and policy_is_public(
            p.get("policy") if "policy" in p else p.get("policyDocument")
        ):
            out.append(
                (
                    v.urn,
                    f"{label(v)} allows Principal '*' without a condition that restricts the caller. Grant access to specific roles instead.",
                )
            )
        elif v.type in BUCKET_ACL_TYPES and (grants := _acl_public(p)):
            out.append(
                (
                    v.urn,
                    f"{label(v)} grants {', '.join(grants)}. Use 'private' (or no ACL, with bucket owner enforced).",
                )
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
            members += [m for b in _policy_bindings(p.get("policyData")) for m in b.get("members") or []]
            public = [m for m in members if m in PUBLIC_MEMBERS]
            if public:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} grants {p.get('role') or 'a role'} to {public}. Grant it to specific service accounts.",
                    )
                )
        elif v.type in GCS_ACL_TYPES:
            entities = [p.get("entity"), *list(p.get("roleEntities") or [])]
            public = [e for e in entities if isinstance(e, str) and any(m in e for m in PUBLIC_MEMBERS)]
            if public or p.get("predefinedAcl") in ("publicRead", "publicReadWrite", "authenticatedRead"):
                out.append(
                    (
                        v.urn,
                        f"{label(v)} grants access to {public or [p.get('predefinedAcl')]}. Remove the grant and use uniform bucket-level access.",
                    )
                )
        elif v.component == "FeatureStore" and v.summary.get("public") is True:
            out.append((v.urn, f"{label(v)} is publicly reachable. Make its online store private."))
        elif v.type in RDS_TYPES and p.get("publiclyAccessible") is True:
            out.append(
                (
                    v.urn,
                    f"{label(v)} is publicly accessible. Set publiclyAccessible: false and reach it from the cluster's subnets.",
                )
            )
        elif v.type == CLOUD_SQL_INSTANCE:
            ip = dig(p, "settings.ipConfiguration") or {}
            if not isinstance(ip, dict) or ip.get("ipv4Enabled") is not False:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} has a public IPv4 address. Set settings.ipConfiguration.ipv4Enabled: false with a privateNetwork.",
                    )
                )
            nets = ip.get("authorizedNetworks") if isinstance(ip, dict) else None
            if nets:
                out.append(
                    (
                        v.urn,
                        f"{label(v)} admits authorized networks {[n.get('value') for n in nets if isinstance(n, dict)]}. Remove them; connect over the private IP.",
                    )
                )
        elif v.component == "ModelRegistry" and dig(v.summary, "database.public") is True:
            out.append((v.urn, f"{label(v)} has a publicly reachable database. Make it private."))
    return out


def _policy_bindings(data: Any) -> list[dict[str, Any]]:
    """The bindings of a GCP IAM policy (JSON string or object)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return []
    bindings = data.get("bindings") if isinstance(data, dict) else None
    return [b for b in bindings or [] if isinstance(b, dict)]


STORAGE_NOT_PUBLIC = StackRule(
    name="storage-not-public",
    description="Checks whether buckets, databases (RDS, Cloud SQL) and feature stores are closed to the public, on the whole resource graph.",
    check=check_not_public,
    schema={
        "accountIds": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "This stack's AWS account IDs: an AccountPublicAccessBlock naming another account covers nothing.",
        }
    },
)
