"""FeatureStore: online and offline stores for gpuplane's one feature definition.

Implementations (chosen by ``target`` and ``engine``):

- ``feast-local`` (``target="local"``): creates nothing; renders the ``feature_store.yaml`` that
  ``python -m workloads.features materialize`` uses (SQLite online store, parquet files).
- ``feast-kubernetes`` (components/feature_store/kubernetes.py) on any ``KubernetesCluster``:
  Redis as an in-cluster StatefulSet with a persistent volume and password auth (a generated
  Secret), or a given Redis endpoint; feature tables and the Feast registry on a bucket (S3 on
  EKS, GCS on GKE, or a given bucket URL); the Feast feature server as a private Deployment
  behind a ClusterIP Service; a materialisation CronJob.
- ``feast-aws`` (components/feature_store/aws.py): DynamoDB online tables, S3 offline files
  (or Athena over Glue tables on them), registry on S3, a KMS key for all of it, and the same
  in-cluster server and CronJob on EKS running as an IRSA role.
- ``feast-gcp`` (components/feature_store/gcp.py): Datastore (a Firestore database in Datastore
  mode) or Bigtable online, BigQuery offline (external tables over parquet on GCS), registry on
  GCS, and the server and CronJob on GKE running as a Workload Identity service account.
- ``sagemaker-feature-store`` (``target="aws", engine="managed"``): one SageMaker FeatureGroup
  per feature view, online and offline (S3, Iceberg, Glue catalog), KMS-encrypted.
- ``vertex-feature-store`` (``target="gcp", engine="managed"``): a Vertex AI Feature Online
  Store, one feature group per view over BigQuery, its features, and one online feature view
  per group synced on a schedule.

The feature definition is data, ``workloads/features/templates/feature_views.yaml``, and
``feature_store.yaml`` is rendered from the jinja2 templates beside it (``<target>.yaml.j2``,
parameters in ``params.yaml``): the same files the local pipeline uses. This module reads them
as data and never imports workload code. Encrypted at rest and private by default: no public
endpoint is created, buckets block public access, secrets stay in Secrets.

``plan_feature_store`` is pure (args + cluster facts + catalog -> frozen plan) and raises one
``ComponentInputError`` listing every problem before any child resource exists.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.feature_store.planner import plan_feature_store
from components.feature_store.spec import TYPE_TOKEN, FeatureStoreArgs, FeatureStorePlan


class FeatureStore(pulumi.ComponentResource):
    """Online and offline stores for gpuplane's feature definition; see the module docstring.

    Outputs: ``implementation``, ``feature_store_yaml`` (None for managed engines),
    ``online_endpoint`` (the Feast feature server URL inside the cluster; None for managed),
    ``registry_uri``, ``offline_uri``, ``online_store``, ``offline_store`` and ``resources``
    (cloud names: tables, feature groups, online store). Attribute: ``plan``.
    """

    plan: FeatureStorePlan
    implementation: pulumi.Output[str]
    """How the store is built: ``feast-local``, ``feast-kubernetes``, ``feast-aws``, ``feast-gcp``, ``sagemaker-feature-store`` or ``vertex-feature-store``."""
    feature_store_yaml: pulumi.Output[str | None]
    """Feast ``feature_store.yaml`` for this store; None for managed engines."""
    online_endpoint: pulumi.Output[str | None]
    """The Feast feature server URL inside the cluster; None for managed engines."""
    registry_uri: pulumi.Output[str | None]
    """Where the Feast registry lives (a file path or bucket URI)."""
    offline_uri: pulumi.Output[str | None]
    """Where the offline store keeps its data (a path, bucket URI or dataset)."""
    online_store: pulumi.Output[str]
    """The online store kind, e.g. ``redis``, ``dynamodb``, ``bigtable``."""
    offline_store: pulumi.Output[str]
    """The offline store kind, e.g. ``file``, ``athena``, ``bigquery``."""
    resources: pulumi.Output[dict[str, Any]]
    """Cloud names of what was created: tables, feature groups, the online store."""

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_feature_store(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        result: dict[str, Any] = {}
        if plan.implementation == "feast-local":
            text = plan.render_yaml()
            result = {"feature_store_yaml": text, "registry_uri": "data/registry.db", "offline_uri": "data", "resources": {}}
        elif plan.implementation == "feast-kubernetes":
            from components.feature_store.kubernetes import create_kubernetes_store

            result = create_kubernetes_store(self, name, plan, args)
        elif plan.cloud == "aws":
            from components.feature_store.aws import create_aws_store

            result = create_aws_store(self, name, plan, args)
        else:
            from components.feature_store.gcp import create_gcp_store

            result = create_gcp_store(self, name, plan, args)
        self.feature_store_yaml = pulumi.Output.from_input(result.get("feature_store_yaml"))
        self.online_endpoint = pulumi.Output.from_input(plan.online_endpoint)
        self.registry_uri = pulumi.Output.from_input(result.get("registry_uri"))
        self.offline_uri = pulumi.Output.from_input(result.get("offline_uri"))
        self.resources = pulumi.Output.from_input(result.get("resources", {}))
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.online_store = pulumi.Output.from_input(plan.online_store)
        self.offline_store = pulumi.Output.from_input(plan.offline_store)
        self.register_outputs(
            {
                "implementation": self.implementation,
                "feature_store_yaml": self.feature_store_yaml,
                "online_endpoint": self.online_endpoint,
                "registry_uri": self.registry_uri,
                "offline_uri": self.offline_uri,
                "online_store": self.online_store,
                "offline_store": self.offline_store,
                "resources": self.resources,
            }
        )
