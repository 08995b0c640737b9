"""A kubeconfig whose user runs an exec credential plugin (no long-lived credentials in state).

Shared by the EKS (``aws eks get-token``) and GKE (``gke-gcloud-auth-plugin``) clusters.
"""

from __future__ import annotations

from typing import Any


def exec_kubeconfig(cluster_name: str, server: str, ca_data: str, exec_config: dict[str, Any]) -> dict[str, Any]:
    """The kubeconfig as a dict; ``exec_config`` is the user's ``exec`` block less its apiVersion."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", **exec_config}}}],
    }
