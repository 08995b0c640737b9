"""ModelRegistry: MLflow tracking and model registry (runs, metrics, registered models, aliases).

Implementations (chosen by ``target``):

- ``mlflow-local`` (``target="local"``): creates nothing; computes the URIs the local loop
  (``gpuplane pipeline``, workloads/pipeline) uses: MLflow on SQLite (``sqlite:///<dir>/mlflow.db``)
  with artifacts in ``<dir>/artifacts``.
- ``mlflow-kubernetes`` (components/model_registry/mlflow.py) on any ``KubernetesCluster``:
  the MLflow server from the pinned community-charts ``mlflow`` chart, backed by the chart's
  in-cluster PostgreSQL (a StatefulSet with a persistent volume and a generated password), with
  artifacts in a given ``s3://`` / ``gs://`` bucket (MinIO works through ``credentials_secret``).
- ``mlflow-aws`` (components/model_registry/aws.py): the same server on EKS, backed by an RDS
  PostgreSQL instance (storage encrypted with KMS, not publicly accessible, in the cluster's node
  subnets, reachable only from the cluster's security group) and an S3 artifact bucket (SSE-KMS,
  public access blocked, versioned), reached through an IRSA role bound to the server's service
  account.
- ``mlflow-gcp`` (components/model_registry/gcp.py): on GKE, a Cloud SQL PostgreSQL instance
  with a private IP only (private services access on the cluster's network, no public IPv4, no
  authorized networks) and a GCS artifact bucket (uniform access, public access prevention),
  reached through a Workload Identity service account.

The server proxies artifacts (``--artifacts-destination``), so training and evaluation pods
talk to MLflow over HTTP only and never need bucket credentials of their own; the server alone
holds the bucket identity. Private by default: a ClusterIP Service, no ingress.

``plan_model_registry`` is pure (args + cluster facts + catalog -> frozen plan) and raises one
``ComponentInputError`` listing every problem before any child resource exists. What it does
not do: MLflow authentication (the server is reached inside the cluster only) or database
read replicas.
"""

from __future__ import annotations

import pulumi

from components.model_registry.spec import TYPE_TOKEN, ModelRegistryArgs, ModelRegistryPlan, plan_model_registry


class ModelRegistry(pulumi.ComponentResource):
    """MLflow tracking and model registry; see the module docstring for the implementations.

    Outputs: ``tracking_uri`` (what clients pass as ``--tracking-uri``), ``artifact_uri``,
    ``implementation``. Attribute: ``plan``.
    """

    plan: ModelRegistryPlan
    tracking_uri: pulumi.Output[str]
    """The MLflow tracking URI clients pass as ``--tracking-uri`` / ``MLFLOW_TRACKING_URI``."""
    artifact_uri: pulumi.Output[str]
    """Where model artifacts are stored (a local path or bucket URI)."""
    implementation: pulumi.Output[str]
    """How the registry is built (the target's implementation)."""

    def __init__(self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_model_registry(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        if plan.target == "local":
            self.artifact_uri = pulumi.Output.from_input(f"{plan.local_dir}/artifacts")
        else:
            cluster = args["cluster"]
            if plan.target == "aws":
                from components.model_registry.aws import create_registry_cloud
            elif plan.target == "gcp":
                from components.model_registry.gcp import create_registry_cloud  # type: ignore[assignment]
            else:
                from components.model_registry.mlflow import create_registry_cloud  # type: ignore[assignment]
            cloud = create_registry_cloud(self, name, plan, cluster)
            from components.model_registry.mlflow import create_mlflow_server

            create_mlflow_server(self, name, plan, cluster, cloud)
            self.artifact_uri = cloud.artifact_uri
        self.tracking_uri = pulumi.Output.from_input(plan.tracking_uri)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.register_outputs({"tracking_uri": self.tracking_uri, "artifact_uri": self.artifact_uri, "implementation": self.implementation})
