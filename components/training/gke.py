"""SpotTrainingCluster on GKE: a GCS checkpoint bucket and Workload Identity per team.

``create_cloud_resources`` (called by ``SpotTrainingCluster`` for ``cloud="gcp"``) makes, as
children of the component:

- the checkpoint bucket (unless ``checkpoint_bucket.url`` names one): ``gcp.storage.Bucket`` in
  the cluster's region with uniform bucket-level access, public access prevention
  ``enforced``, versioning, lifecycle rules (delete live objects after ``retention_days``,
  noncurrent versions after ``noncurrent_retention_days``, abort incomplete multipart uploads
  after a day) and encryption: Google-managed by default, or CMEK with a given key
  (``encryption="kms"``; the project's Cloud Storage service agent needs
  ``roles/cloudkms.cryptoKeyEncrypterDecrypter`` on it, which the key's owner grants);
- per team a Google service account through components/gcp/iam.workload_identity_sa, bound to
  the team's Kubernetes service account, and a conditional ``roles/storage.objectUser`` grant
  on the bucket limited to objects under ``<team>/`` (listing is bucket-level in GCS IAM, so a
  team can list, but not read, other teams' object names). Conditions need uniform
  bucket-level access, which a created bucket has and a given bucket must have.

Interruption handling is GKE's own: spot VMs get a 30 s ACPI notice and GKE's graceful node
shutdown gives pods SIGTERM and up to their grace period within it (15 s for regular pods on
older GKE versions, longer on recent ones), so nothing is installed; the grace period is
derived from the catalog's 30 s notice (25 s by default).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp

from components.gcp.conventions import gcp_labels
from components.gcp.iam import workload_identity_sa
from components.training.spec import CloudTraining

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.training.spec import BucketPlan, TrainingClusterPlan

OBJECT_USER = "roles/storage.objectUser"
ABORT_MULTIPART_DAYS = 1


def team_condition(bucket: str, team: str) -> dict[str, str]:
    """IAM condition: objects under ``<team>/`` in ``bucket``, plus the bucket itself (for listing)."""
    return {
        "title": f"{team}-prefix"[:100],
        "description": f"Objects under gs://{bucket}/{team}/ only (gpuplane)",
        "expression": f'resource.type == "storage.googleapis.com/Bucket" || resource.name.startsWith("projects/_/buckets/{bucket}/objects/{team}/")',
    }


def _condition_of(bucket: str, team: str) -> dict[str, str]:
    return team_condition(bucket, team)


def lifecycle_rules(bucket: BucketPlan) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    s = gcp.storage
    return [
        s.BucketLifecycleRuleArgs(action=s.BucketLifecycleRuleActionArgs(type="Delete"), condition=s.BucketLifecycleRuleConditionArgs(age=bucket.retention_days, with_state="LIVE")),
        s.BucketLifecycleRuleArgs(
            action=s.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=s.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=bucket.noncurrent_retention_days, with_state="ARCHIVED"),
        ),
        s.BucketLifecycleRuleArgs(action=s.BucketLifecycleRuleActionArgs(type="AbortIncompleteMultipartUpload"), condition=s.BucketLifecycleRuleConditionArgs(age=ABORT_MULTIPART_DAYS)),
    ]


def create_cloud_resources(component: pulumi.ComponentResource, name: str, plan: TrainingClusterPlan, cluster: KubernetesCluster) -> CloudTraining:
    bucket_plan = plan.bucket
    annotations: dict[str, pulumi.Input[dict[str, str]]] = {}
    depends: list[pulumi.Resource] = []
    if bucket_plan is None:
        return CloudTraining(checkpoint_url=pulumi.Output.from_input(None))
    opts = pulumi.ResourceOptions(parent=component)
    bucket_name: pulumi.Output[str]
    if bucket_plan.create:
        bucket = gcp.storage.Bucket(
            f"{name}-checkpoints",
            location=plan.facts.region or "",  # GCS stores it upper-cased; the provider ignores case differences
            project=cluster.project,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=lifecycle_rules(bucket_plan),
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=bucket_plan.kms_key) if bucket_plan.encryption == "cmek" else None,
            force_destroy=bucket_plan.force_destroy,
            labels=gcp_labels({**plan.tags, "gpuplane-role": "checkpoints"}),
            opts=opts,
        )
        bucket_name = bucket.name
        depends.append(bucket)
    else:
        bucket_name = pulumi.Output.from_input((bucket_plan.url or "").removeprefix("gs://"))
    for team in plan.teams:
        identity = workload_identity_sa(component, f"{name}-{team.name}", cluster, team.namespace, team.service_account, display_name=f"gpuplane training {name}/{team.name}")
        static = team_condition("BUCKET", team.name)
        condition = bucket_name.apply(functools.partial(_condition_of, team=team.name))
        grant = gcp.storage.BucketIAMMember(
            f"{name}-{team.name}-checkpoints-access",
            bucket=bucket_name,
            role=OBJECT_USER,
            member=identity.member,
            condition=gcp.storage.BucketIAMMemberConditionArgs(
                title=static["title"],
                description=condition.apply(lambda c: c["description"]),
                expression=condition.apply(lambda c: c["expression"]),
            ),
            opts=opts,
        )
        for data_bucket in plan.data_buckets:
            depends.append(
                gcp.storage.BucketIAMMember(
                    f"{name}-{team.name}-data-{data_bucket}",
                    bucket=data_bucket,
                    role="roles/storage.objectViewer",
                    member=identity.member,
                    opts=opts,
                )
            )
        annotations[team.name] = identity.annotations
        depends += [identity.binding, grant]
    return CloudTraining(checkpoint_url=bucket_name.apply(lambda b: f"gs://{b}"), service_account_annotations=annotations, depends_on=depends)


__all__ = ["create_cloud_resources", "lifecycle_rules", "team_condition"]
