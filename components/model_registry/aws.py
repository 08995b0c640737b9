"""ModelRegistry on AWS: RDS PostgreSQL and an S3 artifact bucket for the MLflow server on EKS.

Creates, as children of the registry: a KMS key with rotation (unless ``kms_key_arn``), a private
SSE-KMS artifact bucket (public access blocked, ACLs disabled, versioned; the same helper as the
feature store's), an IRSA role for the server's service account scoped to that bucket and key, a
DB subnet group on the cluster's node subnets (private subnets unless the cluster was built with
``private_nodes=False``), a security group admitting 5432 only from the cluster security group
(which EKS puts on every node), a generated master password, and the ``aws.rds.Instance``:
``storage_encrypted`` with the key, ``publicly_accessible=False``, gp3, automated backups, and
deletion protection / a final snapshot when the stack asks for protection. The MLflow server
itself is components/model_registry/mlflow.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pulumi
import pulumi_aws as aws

from components.aws.iam import irsa_role, partition_of
from components.aws.s3 import bucket_statements, create_bucket
from components.model_registry.spec import DATABASE_NAME, DATABASE_USER, POSTGRES_PORT, ModelRegistryPlan, RegistryCloud

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster


def rds_instance_args(plan: ModelRegistryPlan, subnet_group: Any, security_group_id: Any, password: Any, key_arn: Any) -> aws.rds.InstanceArgs:
    """The RDS instance: encrypted, private, backed up (pure apart from the inputs)."""
    db = plan.database
    return aws.rds.InstanceArgs(
        engine="postgres",
        engine_version=db.version,
        instance_class=db.instance_class or "db.t4g.micro",
        allocated_storage=db.storage_gib,
        storage_type="gp3",
        storage_encrypted=True,
        kms_key_id=key_arn,
        publicly_accessible=False,
        db_subnet_group_name=subnet_group,
        vpc_security_group_ids=[security_group_id],
        db_name=DATABASE_NAME,
        username=DATABASE_USER,
        password=password,
        port=POSTGRES_PORT,
        multi_az=db.high_availability,
        backup_retention_period=db.backup_retention_days,
        copy_tags_to_snapshot=True,
        auto_minor_version_upgrade=True,
        deletion_protection=plan.deletion_protection,
        skip_final_snapshot=not plan.deletion_protection,
        final_snapshot_identifier=f"{plan.name}-final" if plan.deletion_protection else None,
        region=plan.region,
        tags=plan.tags,
    )


def create_registry_cloud(component: pulumi.ComponentResource, name: str, plan: ModelRegistryPlan, cluster: KubernetesCluster) -> RegistryCloud:
    import pulumi_random as random

    opts = pulumi.ResourceOptions(parent=component)
    key_arn: pulumi.Output[str]
    if plan.extra.get("kms_key_arn") is not None:
        key_arn = pulumi.Output.from_input(plan.extra["kms_key_arn"])
    else:
        key = aws.kms.Key(
            f"{name}-key",
            aws.kms.KeyArgs(description=f"gpuplane ModelRegistry {name}: database and artifacts", enable_key_rotation=True, deletion_window_in_days=30, region=plan.region, tags=plan.tags),
            opts=opts,
        )
        key_arn = key.arn
    a = plan.artifacts
    if a.create:
        bucket = create_bucket(component, f"{name}-artifacts", cast(Any, plan), key_arn)
        bucket_name: pulumi.Output[str] = bucket.bucket
    else:
        bucket_name = pulumi.Output.from_input(a.bucket or "")
    partition = partition_of(plan.region)
    policy = pulumi.Output.all(bucket_name, key_arn).apply(
        lambda v: json.dumps({"Version": "2012-10-17", "Statement": bucket_statements(v[0], v[1], partition)}, sort_keys=True)
    )
    role = irsa_role(component, f"{name}-server-role", cluster, plan.namespace, plan.service_account, policy, plan.tags)

    subnets = list((cluster.subnet_ids_by_zone or {}).values())
    subnet_group = aws.rds.SubnetGroup(
        f"{name}-db-subnets",
        aws.rds.SubnetGroupArgs(description=f"gpuplane ModelRegistry {name}: the cluster's node subnets", subnet_ids=subnets, region=plan.region, tags=plan.tags),
        opts=opts,
    )
    sg = aws.ec2.SecurityGroup(
        f"{name}-db-sg",
        aws.ec2.SecurityGroupArgs(
            description=f"gpuplane ModelRegistry {name}: Postgres from the cluster only",
            vpc_id=cluster.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                    security_groups=[cluster.security_group_id] if cluster.security_group_id is not None else [],
                    description="EKS cluster security group (every node)",
                )
            ],
            region=plan.region,
            tags=plan.tags,
        ),
        opts=opts,
    )
    password = random.RandomPassword(f"{name}-db-password", random.RandomPasswordArgs(length=40, special=False), opts=opts).result
    db = aws.rds.Instance(f"{name}-db", rds_instance_args(plan, subnet_group.name, sg.id, password, key_arn), opts=opts)
    return RegistryCloud(
        artifact_uri=bucket_name.apply(lambda b: a.uri(b)),
        database_host=db.address,
        database_password=password,
        service_account_annotations=role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn}),
        depends_on=[role],
    )
