"""KubernetesCluster, the component: validate, plan, register, then dispatch to one backend.

It creates what its backend creates (``eks.py``, ``gke.py`` or ``existing.py``) and nothing else,
and copies the handles the backend returns onto itself for children (``k8s_provider``, IAM and
network handles). It assumes the plan in ``spec.py`` has validated every argument; it never reads
config or environment.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.spec import (
    TYPE_TOKEN,
    ClusterFacts,
    ClusterHandles,
    ClusterPlan,
    KubernetesClusterArgs,
    plan_cluster,
)


class KubernetesCluster(pulumi.ComponentResource):
    """A Kubernetes cluster (EKS, GKE or existing) and a provider for what runs on it.

    Outputs: ``cluster_name``, ``endpoint``, ``oidc_issuer_url`` (None for existing clusters),
    ``kubeconfig`` (secret). Attributes for children: ``facts`` (plan-time), ``k8s_provider``,
    and cloud handles set by the implementation (``aws``: ``node_role_arn``, ``node_role_name``,
    ``oidc_provider_arn``, ``subnet_ids_by_zone``, ``security_group_id``, ``vpc_id``; ``gcp``: ``project``,
    ``node_service_account_email``, ``workload_identity_pool``, ``network``).
    """

    facts: ClusterFacts
    plan: ClusterPlan
    k8s_provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    """The cluster's name in the cloud (or the kubeconfig context for existing clusters)."""
    endpoint: pulumi.Output[str]
    """The Kubernetes API server URL."""
    kubeconfig: pulumi.Output[str]
    """A kubeconfig for the cluster (secret)."""
    oidc_issuer_url: pulumi.Output[str] | None = None
    """The cluster's OIDC issuer URL for workload identity; None for existing clusters."""
    # aws
    oidc_provider_arn: pulumi.Output[str] | None = None
    """aws: the IAM OIDC provider ARN that IRSA roles trust."""
    node_role_arn: pulumi.Output[str] | None = None
    """aws: the IAM role ARN GPU nodes run as."""
    node_role_name: pulumi.Output[str] | None = None
    """aws: the name of that node role."""
    subnet_ids_by_zone: dict[str, pulumi.Output[str]] | None = None
    security_group_id: pulumi.Output[str] | None = None
    """aws: the cluster security group id."""
    vpc_id: pulumi.Input[str] | None = None
    """aws: the cluster's VPC (created or given), for data stores the nodes reach privately."""
    system_node_group: pulumi.Resource | None = None
    autoscaler_release: pulumi.Resource | None = None
    """The Karpenter or Cluster Autoscaler Helm release (Karpenter pools wait for its CRDs)."""
    # gcp
    project: pulumi.Input[str] | None = None
    node_service_account_email: pulumi.Output[str] | None = None
    """gcp: the service account GPU nodes run as."""
    workload_identity_pool: pulumi.Output[str] | None = None
    """gcp: the Workload Identity pool, ``<project>.svc.id.goog``."""
    network: pulumi.Input[str] | None = None
    """gcp: the cluster's VPC network (id), for private service access (Cloud SQL private IP)."""

    def __init__(self, name: str, args: KubernetesClusterArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_cluster(name, args)  # raises before anything is registered
        eks_plan = None
        if plan.facts.cloud == "aws":
            from components.cluster.eks import plan_eks

            eks_plan = plan_eks(name, plan, args)  # EKS-only checks, also before registering
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        self.facts = plan.facts
        # Cluster-wide add-ons installed by child components (Knative, Kueue, ...), keyed by
        # add-on, so that each is installed once however many components need it.
        self.addons: dict[str, list[pulumi.Resource]] = {}
        # Where the charts of every Helm release on this cluster come from (None: upstream).
        self.chart_source: str | None = args.get("chart_source") or None
        handles: ClusterHandles
        if plan.facts.cloud == "aws":
            from components.cluster.eks import create_eks

            handles = create_eks(self, name, plan, args, eks_plan)
        elif plan.facts.cloud == "gcp":
            from components.cluster.gke import create_gke

            handles = create_gke(self, name, plan, args)
        else:
            from components.cluster.existing import connect_existing

            handles = connect_existing(self, name, plan, args)
        handles.apply_to(self)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "oidc_issuer_url": self.oidc_issuer_url,
                "kubeconfig": self.kubeconfig,
            }
        )
