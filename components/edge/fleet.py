"""EdgeDeployment's Rancher Fleet backend: sites are Fleet downstream clusters, all served by one ``Bundle``.

``fleet.cattle.io/v1alpha1 Bundle`` (rancher/fleet ``pkg/apis/fleet.cattle.io/v1alpha1/bundle_types.go``,
``bundledeployment_types.go``), created on the Fleet management cluster (the sites' ``kubeconfig``)
in the ``fleet-default`` workspace: ``spec.resources`` holds the edge server objects of the first
site as base files plus, per site, ``overlays/<site>/<file>`` replacing them (Fleet's YAML overlays:
a file under ``overlays/<name>/`` with the base file's path replaces it); ``spec.targets`` has one
target per site (``clusterName`` and ``yaml.overlays: [<site>]``); ``spec.rolloutStrategy`` has one
partition per site in wave order (a Partition picks clusters by ``clusterName``, a selector or a
cluster group; gpuplane owns no labels on Fleet's Cluster objects, so it names them), each with
the rollout's ``maxUnavailable``. Fleet rolls a partition only while
the previous ones are within their ``maxUnavailable``; gpuplane's wave gate is on the device and
promotion is a ``pulumi up``, as with the other backends. Lacks nothing of the declared features.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.edge.manifests import cache_claim, config_map, deployed, deployment, service
from components.edge.spec import EdgePlan, SitePlan

API_VERSION = "fleet.cattle.io/v1alpha1"
WORKSPACE = "fleet-default"
FILES = ("configmap.yaml", "model-cache.yaml", "deployment.yaml", "service.yaml")


def _objects(plan: EdgePlan, site: SitePlan) -> list[dict[str, Any]]:
    return [config_map(plan, site), cache_claim(plan, site), deployment(plan, site), service(plan, site)]


def bundle(plan: EdgePlan, sites: list[SitePlan]) -> dict[str, Any]:
    """The Bundle for ``sites`` (Fleet downstream clusters); sites with nothing to run yet are left out of the targets."""
    live = [s for s in sites if deployed(plan, s)]
    resources: list[dict[str, str]] = []
    if live:
        resources += [{"name": f, "content": yaml.safe_dump(o, sort_keys=False)} for f, o in zip(FILES, _objects(plan, live[0]), strict=True)]
    for site in live:
        resources += [{"name": f"overlays/{site.name}/{f}", "content": yaml.safe_dump(o, sort_keys=False)}
                      for f, o in zip(FILES, _objects(plan, site), strict=True)]
    partitions = []
    for wave in plan.waves:
        for site in live:
            if site.wave == wave.index:
                # A Partition selects one cluster by name; one partition per site keeps the wave order.
                partitions.append({"name": f"{wave.name}-{site.name}", "clusterName": site.cluster, "maxUnavailable": f"{plan.max_unavailable_percent}%"})
    return {
        "apiVersion": API_VERSION,
        "kind": "Bundle",
        "metadata": {"name": plan.name, "namespace": WORKSPACE, "labels": {"app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {
            "defaultNamespace": plan.namespace,
            "resources": resources,
            "targets": [{"name": s.name, "clusterName": s.cluster, "yaml": {"overlays": [s.name]}} for s in live],
            "rolloutStrategy": {"maxUnavailable": f"{plan.max_unavailable_percent}%", "partitions": partitions},
        },
    }


def create_fleet_sites(component: pulumi.ComponentResource, name: str, plan: EdgePlan) -> list[pulumi.Resource]:
    created: list[pulumi.Resource] = []
    fleet_sites = [s for s in plan.sites if s.kind == "fleet"]
    managers: list[tuple[Any, list[SitePlan]]] = []
    for s in fleet_sites:
        entry = next((m for m in managers if m[0] is s.kubeconfig or (isinstance(m[0], str) and m[0] == s.kubeconfig)), None)
        if entry is None:
            managers.append((s.kubeconfig, [s]))
        else:
            entry[1].append(s)
    for i, (kubeconfig, sites) in enumerate(managers):
        b = bundle(plan, sites)
        if not b["spec"]["targets"]:
            continue
        provider = k8s.Provider(f"{name}-fleet-{i}-provider", kubeconfig=kubeconfig, enable_config_map_mutable=True, opts=pulumi.ResourceOptions(parent=component))
        created += [provider, k8s.apiextensions.CustomResource(
            f"{name}-fleet-{i}-bundle", api_version=b["apiVersion"], kind=b["kind"], metadata=b["metadata"], spec=b["spec"],
            opts=pulumi.ResourceOptions(parent=component, provider=provider))]
    return created


__all__ = ["API_VERSION", "bundle", "create_fleet_sites"]
