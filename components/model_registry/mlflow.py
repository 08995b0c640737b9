"""ModelRegistry on any Kubernetes cluster: the MLflow server from its pinned Helm chart.

Two roles, like every ``<cloud>/model_registry.py``:

1. ``create_registry_cloud`` for an *existing* cluster: nothing cloud-side; the database is the
   chart's in-cluster PostgreSQL (bitnami subchart, a StatefulSet with a persistent volume) with
   a generated password, and artifacts go to the given bucket with the optional
   ``credentials_secret``.
2. ``create_mlflow_server``, shared by every implementation: the namespace, the server's
   ServiceAccount (with the IRSA / Workload Identity annotation when the cloud made one), a
   Secret with the database login, and the ``mlflow`` Helm release (community-charts 1.11.5):
   ``--artifacts-destination`` (proxied artifacts: clients need no bucket access), the Postgres
   backend with the chart's connection check and ``mlflow db upgrade`` migration, a ClusterIP
   Service only.

``mlflow_values`` is pure and checked against the chart's values.yaml and templates
(gpuplane/schemas/mlflow-1.11.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.charts import chart_args
from components.model_registry.spec import (
    DATABASE_NAME,
    DATABASE_USER,
    MLFLOW_CHART,
    MLFLOW_CHART_REPO,
    MLFLOW_CHART_VERSION,
    POSTGRES_PORT,
    ModelRegistryPlan,
    RegistryCloud,
)

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster

DB_SECRET_SUFFIX = "db"


def _password(parent: pulumi.Resource, name: str) -> pulumi.Output[str]:
    import pulumi_random as random

    return random.RandomPassword(f"{name}-db-password", random.RandomPasswordArgs(length=40, special=False), opts=pulumi.ResourceOptions(parent=parent)).result


def create_registry_cloud(component: pulumi.ComponentResource, name: str, plan: ModelRegistryPlan, cluster: KubernetesCluster) -> RegistryCloud:
    """Existing cluster: the chart's PostgreSQL in the cluster; the given bucket for artifacts."""
    a = plan.artifacts
    return RegistryCloud(artifact_uri=pulumi.Output.from_input(a.uri(a.bucket or "")), database_password=_password(component, name))


def mlflow_values(plan: ModelRegistryPlan, artifact_bucket: str, db_host: str | None, db_password: Any, db_secret: str) -> dict[str, Any]:
    """Helm values for the mlflow chart (pure). ``db_host`` None: the chart's in-cluster PostgreSQL."""
    a = plan.artifacts
    store: dict[str, Any] = {"enabled": True, "bucket": artifact_bucket}
    if a.prefix:
        store["path"] = a.prefix
    values: dict[str, Any] = {
        "replicaCount": plan.server_replicas,
        "fullnameOverride": plan.service_host.split(".", 1)[0],
        # The component makes the ServiceAccount (it carries the cloud identity annotation).
        "serviceAccount": {"create": False, "name": plan.service_account},
        "service": {"type": "ClusterIP"},
        "backendStore": {
            "databaseMigration": True,
            "databaseConnectionCheck": True,
            "postgres": {"enabled": True, "host": db_host or "", "port": POSTGRES_PORT, "database": DATABASE_NAME},
            "existingDatabaseSecret": {"name": db_secret, "usernameKey": "username", "passwordKey": "password"},
        },
        "artifactRoot": {"proxiedArtifactStorage": True, "s3" if a.scheme == "s3" else "gcs": store},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    }
    if db_host is None:
        # The chart's bundled PostgreSQL (bitnami), reached as <fullname>-postgresql.
        values["postgresql"] = {"enabled": True, "auth": {"username": DATABASE_USER, "password": db_password, "database": DATABASE_NAME}}
        values["backendStore"]["postgres"]["host"] = f"{values['fullnameOverride']}-postgresql"
    if plan.credentials_secret:
        values["extraSecretNamesForEnvFrom"] = [plan.credentials_secret]
    return values


def create_mlflow_server(component: pulumi.ComponentResource, name: str, plan: ModelRegistryPlan, cluster: KubernetesCluster, cloud: RegistryCloud) -> k8s.helm.v3.Release:
    provider = cluster.k8s_provider
    labels = {"app.kubernetes.io/managed-by": "gpuplane", "gpuplane.dev/model-registry": name}
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.namespace, labels=labels),
        opts=pulumi.ResourceOptions(parent=component, provider=provider),
    )
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.service_account, namespace=plan.namespace, labels=labels, annotations=cloud.service_account_annotations),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns, *cloud.depends_on]),
    )
    db_secret = f"{name}-{DB_SECRET_SUFFIX}"
    secret = k8s.core.v1.Secret(
        f"{name}-db-secret",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=db_secret, namespace=plan.namespace, labels=labels),
        type="Opaque",
        string_data={"username": DATABASE_USER, "password": cloud.database_password or ""},
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns]),
    )
    # The in-cluster PostgreSQL takes its password as a chart value (the Release's values are then secret).
    managed = cloud.database_host is not None
    password = None if managed else cloud.database_password
    values = pulumi.Output.all(cloud.artifact_uri, cloud.database_host, password).apply(
        lambda v: mlflow_values(plan, str(v[0]).split("://", 1)[-1].split("/", 1)[0], (v[1] or "") if managed else None, v[2], db_secret)
    )
    return k8s.helm.v3.Release(
        f"{name}-mlflow",
        k8s.helm.v3.ReleaseArgs(
            name=plan.release_name,
            **chart_args(cluster.chart_source, MLFLOW_CHART, MLFLOW_CHART_VERSION, MLFLOW_CHART_REPO),
            namespace=plan.namespace,
            values=values,
        ),
        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns, sa, secret, *cloud.depends_on]),
    )
