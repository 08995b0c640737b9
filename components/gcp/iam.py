"""GKE Workload Identity: a Google service account a Kubernetes service account may act as.

``workload_identity_sa`` creates, as children of ``parent``:

- ``{name}-gsa``: a ``gcp.serviceaccount.Account`` (account id derived from ``name``, 6-30
  characters as GCP requires);
- ``{name}-wi``: a ``gcp.serviceaccount.IAMMember`` granting ``roles/iam.workloadIdentityUser``
  on that account to ``serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]`` — the member
  GKE's metadata server presents for pods running as that Kubernetes service account;
- ``{name}-<role>``: one ``gcp.projects.IAMMember`` per project-level role in ``roles``.

It does not create the Kubernetes ServiceAccount: the caller does, with the annotation from
``WorkloadIdentity.annotations`` (``iam.gke.io/gcp-service-account: <email>``), so that the
ServiceAccount lives beside the workload that uses it. Grants narrower than a project (one
bucket, one secret) are the caller's too, on ``WorkloadIdentity.member``.
See https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity.

``account_id`` and ``role_suffix`` are the naming rules every GCP backend shares. A low-level
building block: it imports no capability (``GkeCluster`` is the shape it needs of a cluster).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_gcp as gcp


class _Facts(Protocol):
    @property
    def cloud(self) -> str: ...

    @property
    def name(self) -> str: ...


class GkeCluster(Protocol):
    """What Workload Identity needs of a cluster (``KubernetesCluster(cloud="gcp")`` has it all)."""

    @property
    def facts(self) -> _Facts: ...

    @property
    def project(self) -> pulumi.Input[str] | None: ...

    @property
    def workload_identity_pool(self) -> pulumi.Output[str] | None: ...

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
KSA_ANNOTATION = "iam.gke.io/gcp-service-account"
_ACCOUNT_ID_MIN, _ACCOUNT_ID_MAX = 6, 30


def account_id(base: str, suffix: str = "") -> str:
    """A valid service-account id from a resource name: ``[a-z][-a-z0-9]{4,28}[a-z0-9]``.

    Lowercases, turns other characters into ``-``, prefixes ``sa-`` when the name does not start
    with a letter, and when the result is longer than 30 characters keeps a prefix plus a short
    hash of the whole name, so distinct long names stay distinct.
    """
    raw = f"{base}-{suffix}" if suffix else base
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"sa-{cleaned}".rstrip("-")
    if len(cleaned) > _ACCOUNT_ID_MAX:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
        cleaned = f"{cleaned[: _ACCOUNT_ID_MAX - 7].rstrip('-')}-{digest}"
    while len(cleaned) < _ACCOUNT_ID_MIN:
        cleaned += "-sa" if len(cleaned) + 3 <= _ACCOUNT_ID_MAX else "0"
    return cleaned


def role_suffix(role: str) -> str:
    """Short child-name suffix for a role: ``roles/storage.objectAdmin`` -> ``storage-objectadmin``."""
    return re.sub(r"[^a-z0-9]+", "-", role.removeprefix("roles/").lower()).strip("-")


@dataclass(frozen=True)
class WorkloadIdentity:
    """What ``workload_identity_sa`` made. Unpacks as ``(account, binding)``."""

    account: gcp.serviceaccount.Account
    """The Google service account."""
    binding: gcp.serviceaccount.IAMMember
    """``roles/iam.workloadIdentityUser`` for the Kubernetes service account."""
    grants: tuple[gcp.projects.IAMMember, ...] = field(default_factory=tuple)
    """Project-level role grants, one per role asked for."""

    def __iter__(self) -> Iterator[pulumi.Resource]:
        return iter((self.account, self.binding))

    @property
    def email(self) -> pulumi.Output[str]:
        return self.account.email

    @property
    def member(self) -> pulumi.Output[str]:
        """``serviceAccount:<email>``, for IAM grants on buckets and other resources."""
        return pulumi.Output.concat("serviceAccount:", self.account.email)

    @property
    def annotations(self) -> pulumi.Output[dict[str, str]]:
        """Annotations for the Kubernetes ServiceAccount that pods run as."""
        return self.account.email.apply(lambda email: {KSA_ANNOTATION: email})


def workload_identity_member(pool: pulumi.Input[str], namespace: str, k8s_service_account: str) -> pulumi.Output[str]:
    """``serviceAccount:<pool>[<namespace>/<ksa>]``, the principal of a Kubernetes service account."""
    return pulumi.Output.concat("serviceAccount:", pool, "[", namespace, "/", k8s_service_account, "]")


def workload_identity_sa(
    parent: pulumi.Resource,
    name: str,
    cluster: GkeCluster,
    namespace: str,
    k8s_service_account: str,
    roles: Sequence[str] = (),
    *,
    display_name: str | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> WorkloadIdentity:
    """Create a Google service account that pods running as ``namespace/k8s_service_account`` act as.

    ``cluster`` must be a GKE ``KubernetesCluster`` (it supplies the project and the Workload
    Identity pool). ``roles`` are project-level roles granted to the account, e.g.
    ``["roles/aiplatform.user"]``. Raises ``ValueError`` for a non-GKE cluster — callers choose
    this helper only for ``cluster.facts.cloud == "gcp"``.
    """
    if cluster.facts.cloud != "gcp" or cluster.project is None or cluster.workload_identity_pool is None:
        raise ValueError(
            f"workload_identity_sa needs a GKE cluster; {cluster.facts.name!r} is {cluster.facts.cloud!r}."
        )
    opts = pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None)
    account = gcp.serviceaccount.Account(
        f"{name}-gsa",
        gcp.serviceaccount.AccountArgs(
            account_id=account_id(name),
            display_name=display_name or f"gpuplane {name} ({namespace}/{k8s_service_account})",
            project=cluster.project,
        ),
        opts=opts,
    )
    binding = gcp.serviceaccount.IAMMember(
        f"{name}-wi",
        gcp.serviceaccount.IAMMemberArgs(
            service_account_id=account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=workload_identity_member(cluster.workload_identity_pool, namespace, k8s_service_account),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    member = pulumi.Output.concat("serviceAccount:", account.email)
    grants = tuple(
        gcp.projects.IAMMember(
            f"{name}-{role_suffix(role)}",
            gcp.projects.IAMMemberArgs(project=cluster.project, role=role, member=member),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for role in dict.fromkeys(roles)
    )
    return WorkloadIdentity(account, binding, grants)
