"""IAM building blocks shared by the AWS backends: IRSA roles, service roles, trust policies, ARNs.

``irsa_role`` makes an IAM role that exactly one Kubernetes service account of an EKS cluster
can assume through the cluster's OIDC provider (web identity federation), with either an inline
policy document or managed policies attached. The trust policy pins both the subject
(``system:serviceaccount:<namespace>:<service account>``) and the audience
(``sts.amazonaws.com``), as the EKS guide requires:
https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html

Pods pick the role up from the ``eks.amazonaws.com/role-arn`` annotation on their service
account; annotating the service account is the caller's job (usually through Helm values).

``service_role`` makes a role an AWS service assumes, with managed policies attached.

It assumes the cluster has an IAM OIDC provider (``OidcCluster``: ``KubernetesCluster(cloud="aws")``
sets ``oidc_provider_arn`` and ``oidc_issuer_url``) and creates nothing else: no service account,
no namespace. A low-level building block: it imports no capability.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.errors import ComponentInputError, Problem


class OidcCluster(Protocol):
    """What IRSA needs of a cluster: its IAM OIDC provider (``KubernetesCluster(cloud="aws")`` has both)."""

    @property
    def oidc_provider_arn(self) -> pulumi.Output[str] | None: ...

    @property
    def oidc_issuer_url(self) -> pulumi.Output[str] | None: ...

STS_AUDIENCE = "sts.amazonaws.com"

PolicyInput = str | Mapping[str, Any] | pulumi.Output[str] | Sequence[str]
"""An inline policy (JSON text, a dict, or an Output of JSON text) or a list of managed policy ARNs."""


def partition_of(region: str | None) -> str:
    """The AWS partition of a region: ``aws-cn`` for China, ``aws-us-gov`` for GovCloud, else ``aws``."""
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(policy: str, region: str | None = None) -> str:
    """ARN of an AWS managed policy, e.g. ``AmazonEKSWorkerNodePolicy``, in the region's partition."""
    return f"arn:{partition_of(region)}:iam::aws:policy/{policy}"


def service_trust_policy(service: str) -> str:
    """Trust policy letting an AWS service principal (``ec2.amazonaws.com``) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
        sort_keys=True,
    )


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer_url: str, namespace: str, service_account: str) -> str:
    """The web-identity trust policy for one service account (pure; used inside ``Output.apply``)."""
    issuer = oidc_issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{issuer}:aud": STS_AUDIENCE,
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def irsa_role(
    parent: pulumi.Resource,
    name: str,
    cluster: OidcCluster,
    namespace: str,
    service_account: str,
    policy_json_or_managed_arns: PolicyInput,
    tags: Mapping[str, str] | None = None,
) -> aws.iam.Role:
    """An IAM role for ``namespace/service_account`` on ``cluster``, child of ``parent``.

    ``name`` is the role's resource name (callers pass ``f"{component}-{role}"``). With a policy
    document (JSON text, dict or ``Output[str]``) an inline ``aws.iam.RolePolicy`` named
    ``f"{name}-policy"`` is attached; with a list of managed policy ARNs, one
    ``aws.iam.RolePolicyAttachment`` per ARN named ``f"{name}-<policy name>"``.
    Raises ``ComponentInputError`` (before creating anything) when the cluster has no OIDC
    provider (it is not an EKS cluster) or the service account is blank.
    """
    problems = []
    if getattr(cluster, "oidc_provider_arn", None) is None or getattr(cluster, "oidc_issuer_url", None) is None:
        problems.append(
            Problem(
                "cluster",
                getattr(cluster, "_name", cluster),
                "has no IAM OIDC provider, so IRSA is impossible.",
                "pass a KubernetesCluster created with cloud='aws'.",
            )
        )
    if not namespace or not service_account:
        problems.append(
            Problem(
                "service_account",
                f"{namespace}/{service_account}",
                "needs both a namespace and a service account name.",
                "give both.",
            )
        )
    if (
        isinstance(policy_json_or_managed_arns, Sequence)
        and not isinstance(policy_json_or_managed_arns, str)
        and not policy_json_or_managed_arns
    ):
        problems.append(
            Problem(
                "policy_json_or_managed_arns",
                [],
                "grants nothing.",
                "give a policy document or at least one managed policy ARN.",
            )
        )
    if problems:
        raise ComponentInputError("irsa_role", name, problems)

    trust = pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer_url).apply(
        lambda v: irsa_trust_policy(v[0], v[1], namespace, service_account)
    )
    role = aws.iam.Role(
        name,
        aws.iam.RoleArgs(
            assume_role_policy=trust,
            description=f"IRSA role for {namespace}/{service_account} (gpuplane)",
            tags=dict(tags or {}),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    policy = policy_json_or_managed_arns
    if isinstance(policy, Sequence) and not isinstance(policy, str):
        seen: set[str] = set()
        for arn in policy:
            suffix = _slug(arn.rsplit("/", 1)[-1]) or "policy"
            while suffix in seen:
                suffix += "-x"
            seen.add(suffix)
            aws.iam.RolePolicyAttachment(
                f"{name}-{suffix}",
                aws.iam.RolePolicyAttachmentArgs(role=role.name, policy_arn=arn),
                opts=pulumi.ResourceOptions(parent=parent),
            )
    else:
        document = json.dumps(policy, sort_keys=True) if isinstance(policy, Mapping) else policy
        aws.iam.RolePolicy(
            f"{name}-policy",
            aws.iam.RolePolicyArgs(role=role.id, policy=document),
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return role


__all__ = [
    "STS_AUDIENCE",
    "irsa_role",
    "irsa_trust_policy",
    "managed_policy_arn",
    "partition_of",
    "service_trust_policy",
]


def service_role(
    parent: pulumi.Resource,
    name: str,
    service: str,
    policies: tuple[str, ...],
    region: str | None,
    tags: dict[str, str],
) -> aws.iam.Role:
    """An IAM role that ``service`` (e.g. ``ec2.amazonaws.com``) assumes, with AWS managed ``policies`` attached."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, aws.iam.RoleArgs(assume_role_policy=service_trust_policy(service), tags=tags), opts=opts)
    for policy in policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower().replace('_', '-')}",
            aws.iam.RolePolicyAttachmentArgs(role=role.name, policy_arn=managed_policy_arn(policy, region)),
            opts=opts,
        )
    return role
