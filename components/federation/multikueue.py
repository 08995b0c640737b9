"""TrainingFederation's Kubernetes backend: the resources for the manager and every mirrored worker.

Turns manifests.py's pure manifests into resources: the Kueue Helm release (chart 0.19.2, the
manager's configured for MultiKueue with the plan's dispatcher), namespaces, kubeconfig Secrets
and Kueue custom resources, each on its cluster's provider, each named ``f"{name}-..."`` with the
component as parent. A worker declared with ``existing_queues`` gets nothing. Kueue is installed
once per cluster (``KubernetesCluster.addons["kueue"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.federation.manifests import manager_objects, worker_objects
from components.federation.spec import KUBECONFIG_KEY, KUEUE_NAMESPACE
from components.kubernetes.charts import chart_args
from components.training import KUEUE_CHART, KUEUE_VERSION, custom_resource, kueue_values

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.federation.spec import FederationPlan, WorkerPlan


def _kueue(component: pulumi.ComponentResource, name: str, cluster: KubernetesCluster, values: dict[str, Any]) -> list[pulumi.Resource]:
    existing = cluster.addons.get("kueue")
    if existing:
        return list(existing)
    release = k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(**chart_args(cluster.chart_source, KUEUE_CHART, KUEUE_VERSION), namespace=KUEUE_NAMESPACE, create_namespace=True, values=values),
        opts=pulumi.ResourceOptions(parent=component, provider=cluster.k8s_provider),
    )
    cluster.addons["kueue"] = [release]
    return [release]


def _objects(component: pulumi.ComponentResource, prefix: str, objs: list[dict[str, Any]], provider: k8s.Provider, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
    """Namespaces first, then cluster-scoped Kueue objects, then LocalQueues (which need both)."""
    created: list[pulumi.Resource] = []
    namespaces: list[pulumi.Resource] = []
    for o in objs:
        if o["kind"] == "Namespace":
            team = o["metadata"]["labels"].get("gpuplane.dev/team", o["metadata"]["name"])
            namespaces.append(
                k8s.core.v1.Namespace(
                    f"{prefix}-{team}-namespace",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=o["metadata"]["name"], labels=o["metadata"]["labels"]),
                    opts=pulumi.ResourceOptions(parent=component, provider=provider),
                )
            )
    kueue_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=after)
    cluster_scoped: list[pulumi.Resource] = []
    for o in objs:
        kind, oname = o["kind"], o["metadata"]["name"]
        if kind == "ResourceFlavor":
            cluster_scoped.append(custom_resource(f"{prefix}-flavor-{oname}", o, kueue_opts))
        elif kind == "AdmissionCheck":
            cluster_scoped.append(custom_resource(f"{prefix}-admission-check", o, kueue_opts))
        elif kind == "MultiKueueConfig":
            cluster_scoped.append(custom_resource(f"{prefix}-multikueue-config", o, kueue_opts))
        elif kind == "MultiKueueCluster":
            cluster_scoped.append(custom_resource(f"{prefix}-{oname}-cluster", o, kueue_opts))
    queue_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=after + cluster_scoped)
    queues = [custom_resource(f"{prefix}-cq", o, queue_opts) for o in objs if o["kind"] == "ClusterQueue"]
    lq_opts = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=after + namespaces + queues)
    for o in objs:
        if o["kind"] == "LocalQueue":
            created.append(custom_resource(f"{prefix}-{o['metadata']['labels']['gpuplane.dev/team']}-local-queue", o, lq_opts))
    return namespaces + cluster_scoped + queues + created


def create_federation(component: pulumi.ComponentResource, name: str, plan: FederationPlan, manager: KubernetesCluster, workers: dict[str, KubernetesCluster]) -> dict[str, list[pulumi.Resource]]:
    """Everything on the manager and the workers; returns the resources per cluster (``manager`` and each worker name)."""
    out: dict[str, list[pulumi.Resource]] = {}
    mopts = pulumi.ResourceOptions(parent=component, provider=manager.k8s_provider)
    releases = _kueue(component, f"{name}-kueue", manager, kueue_values(plan.multikueue_section(), plan.feature_gates())) if plan.install_kueue else []
    secrets: list[pulumi.Resource] = []
    for w in plan.workers:
        if w.create_secret:
            secrets.append(_secret(name, w, workers[w.name], pulumi.ResourceOptions.merge(mopts, pulumi.ResourceOptions(depends_on=releases))))
    out["manager"] = releases + secrets + _objects(component, name, manager_objects(plan), manager.k8s_provider, releases + secrets)
    for w in plan.workers:
        if w.existing is not None:
            out[w.name] = []
            continue
        cluster = workers[w.name]
        wreleases = _kueue(component, f"{name}-{w.name}-kueue", cluster, kueue_values()) if w.install_kueue else []
        out[w.name] = wreleases + _objects(component, f"{name}-{w.name}", worker_objects(plan, w), cluster.k8s_provider, wreleases)
    return out


def _secret(name: str, worker: WorkerPlan, cluster: KubernetesCluster, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        f"{name}-{worker.name}-kubeconfig",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=worker.kubeconfig_secret, namespace=KUEUE_NAMESPACE, labels={"app.kubernetes.io/managed-by": "gpuplane"}),
        type="Opaque",
        string_data={KUBECONFIG_KEY: pulumi.Output.secret(cluster.kubeconfig)},
        opts=opts,
    )
