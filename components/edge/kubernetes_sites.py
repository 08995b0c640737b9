"""EdgeDeployment's Kubernetes-sites backend: each site is its own cluster (k3s, microk8s, ...) reached by kubeconfig.

Per site, through a ``pulumi_kubernetes`` Provider built from the site's kubeconfig: a Namespace,
the contract ConfigMap, a PersistentVolumeClaim for the model cache, the edge server Deployment
and its Service (manifests.py). A site whose wave is not promoted keeps the previous model (its
objects change only when its wave is promoted); without a previous model it gets nothing yet.

Every object carries ``pulumi.com/skipAwait: "true"``: an edge link may be down during
``pulumi up``, and whether a site took the model is the on-device gate's report, not a rollout
status the engine should block on for minutes per site. The providers set
``enable_config_map_mutable``: the contract ConfigMap keeps its name, so a new wave updates it in
place (the provider's default replaces a ConfigMap on a data change, deleting it first when the
name is fixed). Lacks nothing of the declared features.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.edge.manifests import cache_claim, config_map, deployed, deployment, labels, service
from components.edge.spec import EdgePlan, SitePlan

SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def _meta(obj: dict[str, Any]) -> k8s.meta.v1.ObjectMetaArgs:
    m = obj["metadata"]
    return k8s.meta.v1.ObjectMetaArgs(name=m["name"], namespace=m.get("namespace"), labels=m.get("labels"),
                                      annotations={**m.get("annotations", {}), **SKIP_AWAIT})


def site_objects(plan: EdgePlan, site: SitePlan) -> list[dict[str, Any]]:
    """The site's objects in apply order (pure; tested against the Kubernetes schema)."""
    if not deployed(plan, site):
        return []
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.namespace, "labels": labels(plan, site)}}
    return [ns, config_map(plan, site), cache_claim(plan, site), deployment(plan, site),
            service(plan, site)]


def create_kubernetes_site(component: pulumi.ComponentResource, name: str, plan: EdgePlan, site: SitePlan) -> list[pulumi.Resource]:
    """Provider + objects of one site; returns what was created (empty for a site with nothing to run yet)."""
    objects = site_objects(plan, site)
    if not objects:
        return []
    prefix = f"{name}-{site.name}"
    provider = k8s.Provider(f"{prefix}-provider", kubeconfig=site.kubeconfig, enable_config_map_mutable=True, opts=pulumi.ResourceOptions(parent=component))
    opts = pulumi.ResourceOptions(parent=component, provider=provider)
    ns_obj, cm_obj, pvc_obj, dep_obj, svc_obj = objects
    ns = k8s.core.v1.Namespace(f"{prefix}-ns", metadata=_meta(ns_obj), opts=opts)
    after_ns = pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[ns])
    cm = k8s.core.v1.ConfigMap(f"{prefix}-config", metadata=_meta(cm_obj), data=cm_obj["data"], opts=after_ns)
    pvc_spec: Any = pvc_obj["spec"]
    pvc = k8s.core.v1.PersistentVolumeClaim(f"{prefix}-model-cache", metadata=_meta(pvc_obj), spec=pvc_spec, opts=after_ns)
    spec: Any = dep_obj["spec"]  # checked against the Kubernetes schema in tests
    deployment = k8s.apps.v1.Deployment(f"{prefix}-server", metadata=_meta(dep_obj), spec=spec,
                                        opts=pulumi.ResourceOptions(parent=component, provider=provider, depends_on=[cm, pvc]))
    svc_spec = svc_obj["spec"]
    service = k8s.core.v1.Service(
        f"{prefix}-svc", metadata=_meta(svc_obj),
        spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=svc_spec["selector"],
                                         ports=[k8s.core.v1.ServicePortArgs(name="http", port=plan.port, target_port=plan.port, protocol="TCP")]),
        opts=after_ns,
    )
    return [provider, ns, cm, pvc, deployment, service]


__all__ = ["SKIP_AWAIT", "create_kubernetes_site", "site_objects"]
