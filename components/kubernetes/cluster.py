"""An existing cluster reached with a kubeconfig: creates only the Kubernetes provider.

Assumes the cluster already runs and someone else owns its nodes. With no ``kubeconfig`` the
provider discovers one the usual way (``KUBECONFIG``, ``~/.kube/config``) when Pulumi runs —
the component itself never reads the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

if TYPE_CHECKING:
    from components.cluster import ClusterPlan, KubernetesCluster, KubernetesClusterArgs


def connect_existing(component: KubernetesCluster, name: str, plan: ClusterPlan, args: KubernetesClusterArgs) -> None:
    kubeconfig = args.get("kubeconfig")
    component.k8s_provider = k8s.Provider(
        f"{name}-provider",
        k8s.ProviderArgs(kubeconfig=kubeconfig, context=args.get("context")),
        opts=pulumi.ResourceOptions(parent=component),
    )
    component.cluster_name = pulumi.Output.from_input(args.get("context") or name)
    component.endpoint = pulumi.Output.from_input("(from kubeconfig)")
    component.kubeconfig = pulumi.Output.secret(kubeconfig or "")
    component.oidc_issuer_url = None
