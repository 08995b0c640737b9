"""ModelRegistry on GCP: Cloud SQL PostgreSQL (private IP only) and a GCS artifact bucket.

Creates, as children of the registry: a private GCS bucket (uniform bucket-level access, public
access prevention, versioning, CMEK with ``kms_key_name``), a Workload Identity service account
for the MLflow server with ``roles/storage.objectAdmin`` on that bucket only, private services
access on the cluster's VPC network (a /16 ``VPC_PEERING`` range and the
``servicenetworking.googleapis.com`` connection), and the ``gcp.sql.DatabaseInstance`` with no
public IPv4 and no authorized networks (``ipv4_enabled=False``, ``private_network``), TLS-only
connections, automated backups with point-in-time recovery, and deletion protection as the stack
chooses; then the ``mlflow`` database and user with a generated password. The MLflow server
itself is components/model_registry/mlflow.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.model_registry.spec import DATABASE_NAME, DATABASE_USER, ModelRegistryPlan, RegistryCloud

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster


def _labels(plan: ModelRegistryPlan) -> dict[str, str]:
    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", str(text).lower())[:63]

    return {**{clean(k): clean(v) for k, v in plan.tags.items()}, "gpuplane-model-registry": clean(plan.name)}


def sql_settings(plan: ModelRegistryPlan, network: Any) -> gcp.sql.DatabaseInstanceSettingsArgs:
    """Cloud SQL settings: private IP only, TLS only, backups with PITR (pure apart from the network)."""
    db = plan.database
    return gcp.sql.DatabaseInstanceSettingsArgs(
        tier=db.instance_class or "db-custom-1-3840",
        edition="ENTERPRISE",
        availability_type="REGIONAL" if db.high_availability else "ZONAL",
        disk_type="PD_SSD",
        disk_size=db.storage_gib,
        disk_autoresize=True,
        deletion_protection_enabled=plan.deletion_protection,
        ip_configuration=gcp.sql.DatabaseInstanceSettingsIpConfigurationArgs(
            ipv4_enabled=False, private_network=network, ssl_mode="ENCRYPTED_ONLY", authorized_networks=[]
        ),
        backup_configuration=gcp.sql.DatabaseInstanceSettingsBackupConfigurationArgs(
            enabled=True,
            point_in_time_recovery_enabled=True,
            backup_retention_settings=gcp.sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(retained_backups=db.backup_retention_days),
        ),
        user_labels=_labels(plan),
    )


def create_registry_cloud(component: pulumi.ComponentResource, name: str, plan: ModelRegistryPlan, cluster: KubernetesCluster) -> RegistryCloud:
    import pulumi_random as random

    from components.gcp.iam import workload_identity_sa
    from components.gcp.storage import grant_object_admin, private_bucket

    opts = pulumi.ResourceOptions(parent=component)
    kms = plan.extra.get("kms_key_name")
    a = plan.artifacts
    if a.create:
        bucket = private_bucket(f"{name}-artifacts", region=plan.region, project=plan.gcp_project, kms_key_name=kms,
                                force_destroy=not plan.deletion_protection, labels=_labels(plan), opts=opts)
        bucket_name: pulumi.Output[str] = bucket.name
    else:
        bucket_name = pulumi.Output.from_input(a.bucket or "")
    identity = workload_identity_sa(component, f"{name}-server", cluster, plan.namespace, plan.service_account, ())
    grant = grant_object_admin(f"{name}-server-artifacts", bucket_name, identity.member, opts)
    network: Any = cluster.network  # set by the GKE implementation (components/cluster/gke.py)
    peering_range = gcp.compute.GlobalAddress(
        f"{name}-sql-range",
        gcp.compute.GlobalAddressArgs(project=plan.gcp_project, purpose="VPC_PEERING", address_type="INTERNAL", prefix_length=16, network=network),
        opts=opts,
    )
    peering = gcp.servicenetworking.Connection(
        f"{name}-sql-peering",
        gcp.servicenetworking.ConnectionArgs(network=network, service="servicenetworking.googleapis.com", reserved_peering_ranges=[peering_range.name]),
        opts=opts,
    )
    instance = gcp.sql.DatabaseInstance(
        f"{name}-db",
        gcp.sql.DatabaseInstanceArgs(
            database_version=plan.database.version or "POSTGRES_16",
            region=plan.region,
            project=plan.gcp_project,
            deletion_protection=plan.deletion_protection,
            encryption_key_name=kms,
            settings=sql_settings(plan, network),
        ),
        opts=pulumi.ResourceOptions(parent=component, depends_on=[peering]),
    )
    gcp.sql.Database(f"{name}-database", gcp.sql.DatabaseArgs(name=DATABASE_NAME, instance=instance.name, project=plan.gcp_project), opts=opts)
    password = random.RandomPassword(f"{name}-db-password", random.RandomPasswordArgs(length=40, special=False), opts=opts).result
    user = gcp.sql.User(f"{name}-db-user", gcp.sql.UserArgs(name=DATABASE_USER, instance=instance.name, password=password, project=plan.gcp_project), opts=opts)
    return RegistryCloud(
        artifact_uri=bucket_name.apply(lambda b: a.uri(b)),
        database_host=instance.private_ip_address,
        database_password=password,
        service_account_annotations=identity.annotations,
        depends_on=[identity.binding, grant, user],
    )
