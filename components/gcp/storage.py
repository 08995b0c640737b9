"""Private GCS buckets and object-admin grants: the one bucket shape every GCP capability uses.

Contract: ``private_bucket`` makes a bucket with uniform bucket-level access, public access prevention
enforced, versioning on, the customer-managed key when one is given (CMEK) and ``force_destroy`` only where
the caller allows it; ``grant_object_admin`` gives one member ``roles/storage.objectAdmin`` on a bucket.
Pure building blocks: they import no capability and create only the resource they name.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp


def private_bucket(
    resource_name: str, *, region: str | None, project: str | None, kms_key_name: str | None, force_destroy: bool,
    labels: dict[str, str], opts: pulumi.ResourceOptions,
) -> gcp.storage.Bucket:
    """A private GCS bucket in ``region`` (``US`` when unset)."""
    return gcp.storage.Bucket(
        resource_name,
        gcp.storage.BucketArgs(
            location=(region or "US").upper(),
            project=project,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=kms_key_name) if kms_key_name else None,
            force_destroy=force_destroy,
            labels=labels,
        ),
        opts=opts,
    )


def grant_object_admin(
    resource_name: str, bucket: pulumi.Input[str], member: pulumi.Input[str], opts: pulumi.ResourceOptions,
) -> gcp.storage.BucketIAMMember:
    """``roles/storage.objectAdmin`` on ``bucket`` for ``member`` (e.g. a Workload Identity service account)."""
    return gcp.storage.BucketIAMMember(
        resource_name,
        gcp.storage.BucketIAMMemberArgs(bucket=bucket, role="roles/storage.objectAdmin", member=member),
        opts=opts,
    )
