"""FeatureStore's GCS storage on GCP: a private bucket and a Workload Identity service account that reaches it.

Used by the ``feast-gcp`` backend (gcp.py) and by ``feast-kubernetes`` on GKE (kubernetes.py).
``store_labels`` are the GCP labels every FeatureStore resource on GCP carries. Creates nothing else.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.cluster import KubernetesCluster
from components.feature_store.spec import FeatureStoreArgs, FeatureStorePlan
from components.gcp.iam import WorkloadIdentity, workload_identity_sa
from components.gcp.storage import grant_object_admin, private_bucket


def _opts(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent)


def store_labels(plan: FeatureStorePlan) -> dict[str, str]:
    """GCP labels: lowercase keys and values of letters, digits, '_' and '-'."""
    clean = {k.lower().replace("/", "_").replace(".", "_"): str(v).lower().replace("/", "_").replace(".", "_") for k, v in plan.tags.items()}
    return {**clean, "gpuplane-feature-store": plan.name.lower()}


def create_bucket(parent: pulumi.Resource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs) -> gcp.storage.Bucket:
    """A private GCS bucket: uniform access, public access prevention, versioning, optional CMEK."""
    kms = args.get("kms_key_name") if plan.target == "gcp" else None
    return private_bucket(f"{name}-bucket", region=plan.region, project=plan.gcp_project, kms_key_name=kms,
                          force_destroy=not plan.deletion_protection, labels=store_labels(plan), opts=_opts(parent))


def bucket_access_identity(
    parent: pulumi.Resource, name: str, plan: FeatureStorePlan, cluster: KubernetesCluster, ksa: str,
    bucket_name: pulumi.Input[str], roles: tuple[str, ...] = (),
) -> WorkloadIdentity:
    """A Workload Identity service account for the pods, object admin on the bucket."""
    identity = workload_identity_sa(parent, f"{name}-feast", cluster, plan.namespace, ksa, roles)
    grant_object_admin(f"{name}-feast-bucket", bucket_name, identity.member, _opts(parent))
    return identity
