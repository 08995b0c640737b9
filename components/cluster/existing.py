"""KubernetesCluster backend for an existing cluster reached with a kubeconfig: only the Kubernetes provider.

Assumes the cluster already runs and someone else owns its nodes. With no ``kubeconfig`` the
provider discovers one the usual way (``KUBECONFIG``, ``~/.kube/config``) when Pulumi runs —
the component itself never reads the environment. Creates no cloud resource.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.spec import ClusterHandles, ClusterPlan, KubernetesClusterArgs


def connect_existing(component: pulumi.Resource, name: str, plan: ClusterPlan, args: KubernetesClusterArgs) -> ClusterHandles:
    kubeconfig = args.get("kubeconfig")
    return ClusterHandles(
        k8s_provider=k8s.Provider(
            f"{name}-provider",
            k8s.ProviderArgs(kubeconfig=kubeconfig, context=args.get("context")),
            opts=pulumi.ResourceOptions(parent=component),
        ),
        cluster_name=pulumi.Output.from_input(args.get("context") or name),
        endpoint=pulumi.Output.from_input("(from kubeconfig)"),
        kubeconfig=pulumi.Output.secret(kubeconfig or ""),
    )
