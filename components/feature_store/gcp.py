"""FeatureStore on Google Cloud: Feast on Datastore/Bigtable + BigQuery (``feast-gcp``) or Vertex AI.

Both create, as children of the store:

- ``{name}-bucket``: a GCS bucket with uniform access, public access prevention enforced and
  versioning, holding the feature tables as parquet (``features/<view>/data.parquet``) and the
  Feast registry (``feast/registry.pb``); or the given ``offline_bucket``;
- ``{name}-dataset``: a BigQuery dataset in the store's region and, per view,
  ``{name}-<view>-bq``: an external table over that view's parquet files (what Feast's BigQuery
  offline store and Vertex read).

``feast-gcp`` adds the online store, ``{name}-datastore`` (a Firestore database in Datastore
mode) or ``{name}-bigtable`` (an autoscaling SSD instance; Feast creates its tables on apply),
``{name}-feast-*``: a Workload Identity service account for the pods (object admin on the
bucket, data editor on the dataset, BigQuery job user, Datastore or Bigtable user) and the
in-cluster Feast runtime of components/feature_store/feast.py on the GKE cluster.

``vertex-feature-store`` adds, per view, ``{name}-<view>-vertex-bq`` (a BigQuery view that adds
the ``feature_timestamp`` column Vertex expects), ``{name}-<view>-group`` (an
``AiFeatureGroup`` over it) with one ``{name}-<view>-<feature>`` ``AiFeatureGroupFeature`` per
feature, ``{name}-online`` (an ``AiFeatureOnlineStore``: autoscaling Bigtable, or optimized
serving behind a Private Service Connect endpoint) and ``{name}-<view>-view`` (an online
feature view synced from the group on ``materialize_schedule``).

With either engine the parquet files under ``features/`` are written by the materialisation
job (``python -m workloads.features materialize --offline-root gs://BUCKET/features --source
bigquery``): the CronJob for ``feast-gcp``, a job of your own for Vertex, which then syncs from
BigQuery on its schedule.

Everything is encrypted at rest by Google; with ``kms_key_name`` the bucket, dataset, Bigtable
and Vertex store use that key instead (CMEK). Project APIs (BigQuery, Datastore, Bigtable,
Vertex AI) must already be enabled: this component does not enable services.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.feature_store.feast import create_feast_runtime, create_namespace_and_account
from components.feature_store.gcs import bucket_access_identity, create_bucket, store_labels
from components.feature_store.spec import (
    FeatureStorePlan,
    FeatureViewSpec,
    bigtable_instance_id,
    datastore_database_id,
    vertex_id,
)

if TYPE_CHECKING:
    from components.feature_store.spec import FeatureStoreArgs

BIGQUERY_TYPES = {"int64": ("INT64", "NULLABLE"), "float64": ("FLOAT64", "NULLABLE"), "string": ("STRING", "NULLABLE"), "int64_list": ("INT64", "REPEATED")}


def _opts(parent: pulumi.Resource, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None)


def bigquery_schema(view: FeatureViewSpec, *, vertex: bool = False) -> str:
    """The BigQuery schema (JSON) of a view's table (pure)."""
    fields = [
        {"name": view.join_key, "type": BIGQUERY_TYPES[view.join_dtype][0], "mode": "REQUIRED"},
        {"name": "event_timestamp", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "created_timestamp", "type": "TIMESTAMP", "mode": "NULLABLE"},
    ]
    fields += [{"name": f.name, "type": BIGQUERY_TYPES[f.dtype][0], "mode": BIGQUERY_TYPES[f.dtype][1], "description": f.description} for f in view.features]
    if vertex:
        fields.append({"name": "feature_timestamp", "type": "TIMESTAMP", "mode": "REQUIRED"})
    return json.dumps(fields)


def _parquet_of(view: str) -> Callable[[str], str]:
    return lambda bucket: f"gs://{bucket}/features/{view}/*.parquet"


def _create_bigquery(
    parent: pulumi.Resource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs, bucket_name: pulumi.Output[str]
) -> tuple[gcp.bigquery.Dataset, dict[str, gcp.bigquery.Table]]:
    kms = args.get("kms_key_name")
    dataset = gcp.bigquery.Dataset(
        f"{name}-dataset",
        gcp.bigquery.DatasetArgs(
            dataset_id=plan.bigquery_dataset,
            project=plan.gcp_project,
            location=plan.region,
            description=f"gpuplane FeatureStore {name}: feature tables (external, parquet on GCS)",
            default_encryption_configuration=gcp.bigquery.DatasetDefaultEncryptionConfigurationArgs(kms_key_name=kms) if kms else None,
            delete_contents_on_destroy=not plan.deletion_protection,
            labels=store_labels(plan),
        ),
        opts=_opts(parent),
    )
    tables = {}
    for view in plan.views:
        tables[view.name] = gcp.bigquery.Table(
            f"{name}-{view.name.replace('_', '-')}-bq",
            gcp.bigquery.TableArgs(
                dataset_id=dataset.dataset_id,
                table_id=view.name,
                project=plan.gcp_project,
                description=view.description,
                deletion_protection=plan.deletion_protection,
                external_data_configuration=gcp.bigquery.TableExternalDataConfigurationArgs(
                    source_format="PARQUET",
                    autodetect=False,
                    schema=bigquery_schema(view),
                    source_uris=[bucket_name.apply(_parquet_of(view.name))],
                ),
                labels=store_labels(plan),
            ),
            opts=_opts(parent),
        )
    return dataset, tables


def create_gcp_store(parent: pulumi.ComponentResource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs) -> dict[str, Any]:
    """``feast-gcp`` or ``vertex-feature-store`` (see the module docstring)."""
    assert plan.bucket is not None and plan.gcp_project is not None and plan.region is not None  # planned for gcp
    region: str = plan.region
    if plan.bucket.create:
        bucket_name: pulumi.Output[str] = create_bucket(parent, name, plan, args).name
    else:
        bucket_name = pulumi.Output.from_input(plan.bucket.given or "")
    bucket_url = bucket_name.apply(plan.bucket.url)
    dataset, tables = _create_bigquery(parent, name, plan, args, bucket_name)
    if plan.implementation == "vertex-feature-store":
        return _create_vertex(parent, name, plan, args, dataset, tables, bucket_url)

    kms = args.get("kms_key_name")
    if plan.online_store == "bigtable":
        zone = plan.zones[0] if plan.zones else f"{plan.region}-a"
        online: pulumi.Resource = gcp.bigtable.Instance(
            f"{name}-bigtable",
            gcp.bigtable.InstanceArgs(
                name=bigtable_instance_id(name),
                project=plan.gcp_project,
                deletion_protection=plan.deletion_protection,
                clusters=[
                    gcp.bigtable.InstanceClusterArgs(
                        cluster_id=f"{bigtable_instance_id(name)}-c1"[:30],
                        zone=zone,
                        storage_type="SSD",
                        kms_key_name=kms,
                        autoscaling_config=gcp.bigtable.InstanceClusterAutoscalingConfigArgs(
                            min_nodes=plan.online_min_nodes, max_nodes=plan.online_max_nodes, cpu_target=60
                        ),
                    )
                ],
                labels=store_labels(plan),
            ),
            opts=_opts(parent),
        )
        online_role = "roles/bigtable.user"
    else:
        online = gcp.firestore.Database(
            f"{name}-datastore",
            gcp.firestore.DatabaseArgs(
                name=datastore_database_id(name),
                project=plan.gcp_project,
                location_id=region,
                type="DATASTORE_MODE",
                delete_protection_state="DELETE_PROTECTION_ENABLED" if plan.deletion_protection else "DELETE_PROTECTION_DISABLED",
                deletion_policy="ABANDON" if plan.deletion_protection else "DELETE",
                point_in_time_recovery_enablement="POINT_IN_TIME_RECOVERY_ENABLED",
                cmek_config=gcp.firestore.DatabaseCmekConfigArgs(kms_key_name=kms) if kms else None,
            ),
            opts=_opts(parent),
        )
        online_role = "roles/datastore.user"
    cluster = args["cluster"]
    sa_name = f"{name}-feast"
    identity = bucket_access_identity(parent, name, plan, cluster, sa_name, bucket_name, ("roles/bigquery.jobUser", online_role))
    gcp.bigquery.DatasetIamMember(
        f"{name}-feast-dataset",
        gcp.bigquery.DatasetIamMemberArgs(dataset_id=dataset.dataset_id, project=plan.gcp_project, role="roles/bigquery.dataEditor", member=identity.member),
        opts=_opts(parent),
    )

    ns, sa = create_namespace_and_account(parent, name, plan, cluster, identity.annotations)
    yaml_text = bucket_url.apply(lambda url: plan.render_yaml(url) or "")
    create_feast_runtime(parent, name, plan, cluster, args, yaml_text=yaml_text, bucket_url=bucket_url, depends_on=[ns, sa, online, *tables.values()])
    return {
        "feature_store_yaml": yaml_text,
        "registry_uri": bucket_url.apply(lambda url: f"{url}/feast/registry.pb"),
        "offline_uri": f"bq://{plan.gcp_project}.{plan.bigquery_dataset}",
        "resources": {
            "bigquery_dataset": f"{plan.gcp_project}.{plan.bigquery_dataset}",
            "bigtable_instance": bigtable_instance_id(name) if plan.online_store == "bigtable" else None,
            "datastore_database": datastore_database_id(name) if plan.online_store == "datastore" else None,
            "service_account": identity.email,
        },
    }


def vertex_view_query(plan: FeatureStorePlan, view: FeatureViewSpec) -> str:
    """The BigQuery view Vertex reads: the external table plus ``feature_timestamp`` (pure)."""
    return f"SELECT *, event_timestamp AS feature_timestamp FROM `{plan.gcp_project}.{plan.bigquery_dataset}.{view.name}`"


def _create_vertex(
    parent: pulumi.Resource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs,
    dataset: gcp.bigquery.Dataset, tables: dict[str, gcp.bigquery.Table], bucket_url: pulumi.Output[str],
) -> dict[str, Any]:
    kms = args.get("kms_key_name")
    region: str = plan.region or ""
    store_id = vertex_id(name, "online")
    if plan.online_store == "bigtable":
        serving: dict[str, Any] = {
            "bigtable": gcp.vertex.AiFeatureOnlineStoreBigtableArgs(
                auto_scaling=gcp.vertex.AiFeatureOnlineStoreBigtableAutoScalingArgs(
                    min_node_count=plan.online_min_nodes, max_node_count=plan.online_max_nodes, cpu_utilization_target=60
                )
            )
        }
    else:
        # Optimized serving gets its own endpoint: keep it private (Private Service Connect).
        serving = {
            "optimized": gcp.vertex.AiFeatureOnlineStoreOptimizedArgs(),
            "dedicated_serving_endpoint": gcp.vertex.AiFeatureOnlineStoreDedicatedServingEndpointArgs(
                private_service_connect_config=gcp.vertex.AiFeatureOnlineStoreDedicatedServingEndpointPrivateServiceConnectConfigArgs(
                    enable_private_service_connect=True, project_allowlists=[plan.gcp_project or ""]
                )
            ),
        }
    online = gcp.vertex.AiFeatureOnlineStore(
        f"{name}-online",
        gcp.vertex.AiFeatureOnlineStoreArgs(
            name=store_id,
            project=plan.gcp_project,
            region=region,
            labels=store_labels(plan),
            encryption_spec=gcp.vertex.AiFeatureOnlineStoreEncryptionSpecArgs(kms_key_name=kms) if kms else None,
            force_destroy=not plan.deletion_protection,
            **serving,
        ),
        opts=_opts(parent),
    )
    groups = []
    for view in plan.views:
        slug = view.name.replace("_", "-")
        bq_view = gcp.bigquery.Table(
            f"{name}-{slug}-vertex-bq",
            gcp.bigquery.TableArgs(
                dataset_id=dataset.dataset_id,
                table_id=f"{view.name}_vertex",
                project=plan.gcp_project,
                deletion_protection=plan.deletion_protection,
                view=gcp.bigquery.TableViewArgs(query=vertex_view_query(plan, view), use_legacy_sql=False),
                labels=store_labels(plan),
            ),
            opts=_opts(parent, tables[view.name]),
        )
        group_id = vertex_id(name, view.name)
        group = gcp.vertex.AiFeatureGroup(
            f"{name}-{slug}-group",
            gcp.vertex.AiFeatureGroupArgs(
                name=group_id,
                project=plan.gcp_project,
                region=region,
                description=view.description,
                labels=store_labels(plan),
                big_query=gcp.vertex.AiFeatureGroupBigQueryArgs(
                    big_query_source=gcp.vertex.AiFeatureGroupBigQueryBigQuerySourceArgs(
                        input_uri=f"bq://{plan.gcp_project}.{plan.bigquery_dataset}.{view.name}_vertex"
                    ),
                    entity_id_columns=[view.join_key],
                ),
            ),
            opts=_opts(parent, bq_view),
        )
        features = [
            gcp.vertex.AiFeatureGroupFeature(
                f"{name}-{slug}-{feature.name.replace('_', '-')}",
                gcp.vertex.AiFeatureGroupFeatureArgs(
                    name=feature.name,
                    feature_group=group.name,
                    project=plan.gcp_project,
                    region=region,
                    description=feature.description,
                    labels=store_labels(plan),
                ),
                opts=_opts(parent),
            )
            for feature in view.features
        ]
        gcp.vertex.AiFeatureOnlineStoreFeatureview(
            f"{name}-{slug}-view",
            gcp.vertex.AiFeatureOnlineStoreFeatureviewArgs(
                name=group_id,
                project=plan.gcp_project,
                region=region,
                feature_online_store=online.name,
                sync_config=gcp.vertex.AiFeatureOnlineStoreFeatureviewSyncConfigArgs(cron=plan.materialize_schedule),
                feature_registry_source=gcp.vertex.AiFeatureOnlineStoreFeatureviewFeatureRegistrySourceArgs(
                    feature_groups=[
                        gcp.vertex.AiFeatureOnlineStoreFeatureviewFeatureRegistrySourceFeatureGroupArgs(
                            feature_group_id=group.name, feature_ids=[f.name for f in view.features]
                        )
                    ]
                ),
                labels=store_labels(plan),
            ),
            opts=_opts(parent, *features),
        )
        groups.append(group_id)
    return {
        "feature_store_yaml": None,
        "registry_uri": None,
        "offline_uri": f"bq://{plan.gcp_project}.{plan.bigquery_dataset}",
        "resources": {"online_store": store_id, "feature_groups": groups, "bucket": bucket_url},
    }
