"""FeatureStore on AWS: Feast on DynamoDB + S3 (``feast-aws``) or SageMaker Feature Store.

``feast-aws`` creates, as children of the store:

- ``{name}-key``: a KMS key with rotation (unless ``kms_key_arn`` is given) that encrypts
  everything below;
- ``{name}-bucket`` (+ ``-sse``, ``-public-block``, ``-ownership``, ``-versioning``): a private
  S3 bucket, SSE-KMS with a bucket key, public access blocked, ACLs disabled, versioned, holding
  the feature tables (``features/``), the Feast registry (``feast/registry.pb``) and Athena
  results; or the given ``offline_bucket``;
- ``{name}-<view>-table``: one DynamoDB table per feature view, named as Feast names them
  (``{project}.{view}``, hash key ``entity_id``), on-demand, SSE with the key, point-in-time
  recovery on. Feast's ``apply`` finds them and does not create its own (unencrypted) ones;
- with ``offline_store="athena"``: ``{name}-glue-db`` and ``{name}-<view>-glue`` (Glue tables
  over ``features/<view>/`` parquet, columns from the feature definition) and
  ``{name}-athena`` (a workgroup that enforces SSE-KMS results under ``athena-results/``);
- ``{name}-feast-role`` (+ ``-policy``): the IRSA role of the pods' service account, allowed
  exactly these tables, this bucket, this key (and the Glue database and workgroup);
- the in-cluster Feast runtime of components/feature_store/feast.py on the EKS cluster.

``sagemaker-feature-store`` creates the key and bucket, ``{name}-sagemaker-role`` (SageMaker's
role for writing the offline store) and one ``aws.sagemaker.FeatureGroup`` per view:
``record_identifier`` = the entity's join key, event time ``event_timestamp`` (ISO 8601
string), online store encrypted with the key, offline store on ``s3://bucket/sagemaker`` in
Iceberg with its Glue table. A ``int64_list`` feature is a ``String`` holding a JSON array
(SageMaker collection types need the InMemory online tier). Loading records (PutRecord or
ingestion jobs) is not done by this component or the local pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.aws.iam import irsa_role, partition_of, service_trust_policy
from components.aws.s3 import bucket_statements, create_bucket
from components.feature_store.feast import create_feast_runtime, create_namespace_and_account
from components.feature_store.s3 import create_kms_key
from components.feature_store.spec import FeatureStorePlan, FeatureViewSpec, sagemaker_group_name

if TYPE_CHECKING:
    from components.feature_store.spec import FeatureStoreArgs

GLUE_TYPES = {"int64": "bigint", "float64": "double", "string": "string", "int64_list": "array<bigint>"}
SAGEMAKER_TYPES = {"int64": "Integral", "float64": "Fractional", "string": "String", "int64_list": "String"}


def _opts(parent: pulumi.Resource, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None)


def feast_statements(
    plan: FeatureStorePlan, bucket_name: str, key_arn: str | None, table_arns: list[str], account: str
) -> list[dict[str, Any]]:
    """What the Feast pods may do on AWS (pure): the bucket, the key, the tables, Athena/Glue."""
    partition = partition_of(plan.region)
    statements = bucket_statements(bucket_name, key_arn, partition)
    statements.append(
        {
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                       "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem"],
            "Resource": sorted(table_arns),
        }
    )
    if plan.offline_store == "athena":
        region = plan.region
        statements += [
            {
                "Effect": "Allow",
                "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                           "athena:StopQueryExecution", "athena:GetWorkGroup"],
                "Resource": f"arn:{partition}:athena:{region}:{account}:workgroup/{name_of_workgroup(plan)}",
            },
            {
                "Effect": "Allow",
                "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions",
                           "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"],
                "Resource": [
                    f"arn:{partition}:glue:{region}:{account}:catalog",
                    f"arn:{partition}:glue:{region}:{account}:database/{plan.athena_database}",
                    f"arn:{partition}:glue:{region}:{account}:table/{plan.athena_database}/*",
                ],
            },
        ]
    return statements


def name_of_workgroup(plan: FeatureStorePlan) -> str:
    return f"{plan.name}-feast"


def glue_columns(view: FeatureViewSpec) -> list[aws.glue.CatalogTableStorageDescriptorColumnArgs]:
    columns = [(view.join_key, GLUE_TYPES[view.join_dtype]), ("event_timestamp", "timestamp"), ("created_timestamp", "timestamp")]
    columns += [(f.name, GLUE_TYPES[f.dtype]) for f in view.features]
    return [aws.glue.CatalogTableStorageDescriptorColumnArgs(name=n, type=t) for n, t in columns]


def _prefix_of(view: str) -> Callable[[str], str]:
    return lambda bucket: f"s3://{bucket}/features/{view}/"


def _create_athena(parent: pulumi.Resource, name: str, plan: FeatureStorePlan, bucket_name: pulumi.Output[str], key_arn: pulumi.Output[str]) -> list[pulumi.Resource]:
    database = aws.glue.CatalogDatabase(
        f"{name}-glue-db",
        aws.glue.CatalogDatabaseArgs(name=plan.athena_database, description=f"gpuplane FeatureStore {name} offline tables", region=plan.region, tags=plan.tags),
        opts=_opts(parent),
    )
    created: list[pulumi.Resource] = [database]
    for view in plan.views:
        created.append(
            aws.glue.CatalogTable(
                f"{name}-{view.name.replace('_', '-')}-glue",
                aws.glue.CatalogTableArgs(
                    name=view.name,
                    database_name=database.name,
                    region=plan.region,
                    table_type="EXTERNAL_TABLE",
                    parameters={"classification": "parquet", "EXTERNAL": "TRUE"},
                    storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                        location=bucket_name.apply(_prefix_of(view.name)),
                        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        ),
                        columns=glue_columns(view),
                    ),
                ),
                opts=_opts(parent),
            )
        )
    created.append(
        aws.athena.Workgroup(
            f"{name}-athena",
            aws.athena.WorkgroupArgs(
                name=name_of_workgroup(plan),
                region=plan.region,
                force_destroy=not plan.deletion_protection,
                configuration=aws.athena.WorkgroupConfigurationArgs(
                    enforce_workgroup_configuration=True,
                    publish_cloudwatch_metrics_enabled=True,
                    result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                        output_location=bucket_name.apply(lambda b: f"s3://{b}/athena-results/"),
                        encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                            encryption_option="SSE_KMS", kms_key_arn=key_arn
                        ),
                    ),
                ),
                tags=plan.tags,
            ),
            opts=_opts(parent),
        )
    )
    return created


def create_aws_store(parent: pulumi.ComponentResource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs) -> dict[str, Any]:
    """``feast-aws`` or ``sagemaker-feature-store`` (see the module docstring)."""
    key_arn = create_kms_key(parent, name, plan, args)
    assert plan.bucket is not None  # planned for aws
    if plan.bucket.create:
        bucket_name: pulumi.Output[str] = create_bucket(parent, name, plan, key_arn).bucket
    else:
        bucket_name = pulumi.Output.from_input(plan.bucket.given or "")
    bucket_url = bucket_name.apply(plan.bucket.url)
    if plan.implementation == "sagemaker-feature-store":
        return _create_sagemaker(parent, name, plan, bucket_name, key_arn)

    tables = [
        aws.dynamodb.Table(
            f"{name}-{view.name.replace('_', '-')}-table",
            aws.dynamodb.TableArgs(
                name=plan.dynamodb_table(view.name),  # Feast's "{project}.{table_name}"
                hash_key="entity_id",
                attributes=[aws.dynamodb.TableAttributeArgs(name="entity_id", type="S")],
                billing_mode="PAY_PER_REQUEST",
                server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=key_arn),
                point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
                deletion_protection_enabled=plan.deletion_protection,
                region=plan.region,
                tags=plan.tags,
            ),
            opts=_opts(parent),
        )
        for view in plan.views
    ]
    athena = _create_athena(parent, name, plan, bucket_name, key_arn) if plan.offline_store == "athena" else []
    cluster = args["cluster"]
    account = aws.get_caller_identity_output().account_id
    policy = pulumi.Output.all(bucket_name, key_arn, account, *[t.arn for t in tables]).apply(
        lambda v: json.dumps({"Version": "2012-10-17", "Statement": feast_statements(plan, v[0], v[1], list(v[3:]), v[2])}, sort_keys=True)
    )
    sa_name = f"{name}-feast"
    role = irsa_role(parent, f"{name}-feast-role", cluster, plan.namespace, sa_name, policy, plan.tags)

    ns, sa = create_namespace_and_account(parent, name, plan, cluster, role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn}))
    yaml_text = bucket_url.apply(lambda url: plan.render_yaml(url) or "")
    create_feast_runtime(parent, name, plan, cluster, args, yaml_text=yaml_text, bucket_url=bucket_url, depends_on=[ns, sa, *tables, *athena])
    return {
        "feature_store_yaml": yaml_text,
        "registry_uri": bucket_url.apply(lambda url: f"{url}/feast/registry.pb"),
        "offline_uri": bucket_url.apply(lambda url: f"{url}/features"),
        "resources": {
            "dynamodb_tables": [plan.dynamodb_table(v.name) for v in plan.views],
            "athena_database": plan.athena_database if plan.offline_store == "athena" else None,
            "athena_workgroup": name_of_workgroup(plan) if plan.offline_store == "athena" else None,
            "role_arn": role.arn,
        },
    }


def sagemaker_feature_definitions(view: FeatureViewSpec) -> list[aws.sagemaker.FeatureGroupFeatureDefinitionArgs]:
    """The join key (record identifier), event time and features of one view."""
    rows = [(view.join_key, SAGEMAKER_TYPES[view.join_dtype]), ("event_timestamp", "String")]
    rows += [(f.name, SAGEMAKER_TYPES[f.dtype]) for f in view.features]
    return [aws.sagemaker.FeatureGroupFeatureDefinitionArgs(feature_name=n, feature_type=t) for n, t in rows]


def _create_sagemaker(
    parent: pulumi.Resource, name: str, plan: FeatureStorePlan, bucket_name: pulumi.Output[str], key_arn: pulumi.Output[str]
) -> dict[str, Any]:
    partition = partition_of(plan.region)
    role = aws.iam.Role(
        f"{name}-sagemaker-role",
        aws.iam.RoleArgs(
            assume_role_policy=service_trust_policy("sagemaker.amazonaws.com"),
            description=f"SageMaker Feature Store offline writes for gpuplane FeatureStore {name}",
            tags=plan.tags,
        ),
        opts=_opts(parent),
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-sagemaker-role-featurestore",
        aws.iam.RolePolicyAttachmentArgs(role=role.name, policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSageMakerFeatureStoreAccess"),
        opts=_opts(parent),
    )
    policy = aws.iam.RolePolicy(
        f"{name}-sagemaker-role-policy",
        aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(bucket_name, key_arn).apply(
                lambda v: json.dumps({"Version": "2012-10-17", "Statement": bucket_statements(v[0], v[1], partition)}, sort_keys=True)
            ),
        ),
        opts=_opts(parent),
    )
    groups = []
    for view in plan.views:
        group_name = sagemaker_group_name(name, view.name)
        groups.append(
            aws.sagemaker.FeatureGroup(
                f"{name}-{view.name.replace('_', '-')}-group",
                aws.sagemaker.FeatureGroupArgs(
                    feature_group_name=group_name,
                    description=view.description,
                    record_identifier_feature_name=view.join_key,
                    event_time_feature_name="event_timestamp",
                    feature_definitions=sagemaker_feature_definitions(view),
                    role_arn=role.arn,
                    online_store_config=aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
                        enable_online_store=True,
                        storage_type="Standard",
                        security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(kms_key_id=key_arn),
                    ),
                    offline_store_config=aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                        s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                            s3_uri=bucket_name.apply(lambda b: f"s3://{b}/sagemaker"), kms_key_id=key_arn
                        ),
                        table_format="Iceberg",
                        disable_glue_table_creation=False,
                    ),
                    region=plan.region,
                    tags=plan.tags,
                ),
                opts=_opts(parent, policy),
            )
        )
    return {
        "feature_store_yaml": None,
        "registry_uri": None,
        "offline_uri": bucket_name.apply(lambda b: f"s3://{b}/sagemaker"),
        "resources": {"feature_groups": [sagemaker_group_name(name, v.name) for v in plan.views], "role_arn": role.arn},
    }
