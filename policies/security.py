"""Security policies.

- ``storage-encrypted`` and ``storage-not-public`` are in policies/storage.py.
- ``endpoint-private-or-authenticated``: an inference endpoint is private or requires
  authentication (Cloud Run: no ``allUsers`` invoker; Knative: ``cluster-local`` visibility).
- ``imdsv2-required``: EC2 launch templates and instances require IMDSv2 tokens; EKS node groups
  without a launch template use an AMI type that requires them (AL2023, Bottlerocket);
  Karpenter EC2NodeClasses do not turn them off.
- ``no-privileged-pods``, ``helm-release-rendered`` and ``workload-identity`` are in
  policies/pods.py.
- ``deletion-protection``: on production stacks (``production: true`` in the stack's policy
  config, or a stack name matching ``productionStacks``), clusters and data stores are
  protected from deletion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policies.framework import Config, ResourceRule
from policies.resources import (
    UNKNOWN,
    ResourceView,
    dig,
    endpoint_facts,
    label,
    region_matches,
)
from policies.storage import CLOUD_SQL_INSTANCE, GCS_BUCKET, RDS_INSTANCE, S3_BUCKETS

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
CLOUD_RUN_IAM_PREFIXES = ("gcp:cloudrunv2/serviceIam", "gcp:cloudrun/iam", "gcp:cloudrunv2/jobIam")
PROJECT_IAM_PREFIX = "gcp:projects/iAM"


def iam_public_members(p: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(role, member) of every public member an IAM member / binding / policy resource grants."""
    out: list[tuple[str, str]] = []
    members = [p.get("member"), *list(p.get("members") or [])]
    out += [(str(p.get("role") or ""), m) for m in members if m in PUBLIC_MEMBERS]
    data = p.get("policyData")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    for b in (data.get("bindings") or []) if isinstance(data, dict) else []:
        if isinstance(b, dict):
            out += [(str(b.get("role") or ""), m) for m in b.get("members") or [] if m in PUBLIC_MEMBERS]
    return out


def check_endpoint_private(view: ResourceView, cfg: Config) -> list[str]:
    p = view.props
    if view.component == "InferenceEndpoint":
        e = endpoint_facts(view.summary)
        if e["public"] and not e["authenticated"]:
            return [
                f"{label(view)} is public and unauthenticated. Make it private, or require authentication (IAM / an authenticating gateway)."
            ]
        return []
    if view.type.startswith(CLOUD_RUN_IAM_PREFIXES):
        public = iam_public_members(p)
        if public:
            return [
                f"{label(view)} grants {sorted({r for r, _ in public})} to {sorted({m for _, m in public})} on a Cloud Run service, so it is public and unauthenticated. Grant roles/run.invoker to specific principals."
            ]
        return []
    if view.type.startswith(PROJECT_IAM_PREFIX):
        public = [(r, m) for r, m in iam_public_members(p) if r.startswith("roles/run.") or r in ("roles/editor", "roles/owner", "roles/viewer")]
        if public:
            return [
                f"{label(view)} grants {sorted({r for r, _ in public})} to {sorted({m for _, m in public})} on the whole project, so every Cloud Run service in it is public. Grant the role to specific principals."
            ]
        return []
    if view.type == "gcp:cloudrunv2/service:Service" and p.get("invokerIamDisabled") is True:
        return [
            f"{label(view)} sets invokerIamDisabled: true, so anyone can invoke it. Remove it and grant roles/run.invoker to specific principals."
        ]
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
