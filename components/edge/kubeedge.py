"""EdgeDeployment's KubeEdge backend: node groups on one cluster, one ``EdgeApplication`` per cluster and runtime.

``apps.kubeedge.io/v1alpha1 EdgeApplication`` (kubeedge/kubeedge
``staging/src/github.com/kubeedge/api/apis/apps/v1alpha1/edgeapplication_types.go``, CRD
``build/crds/apps/apps_v1alpha1_edgeapplication.yaml``): ``spec.workloadTemplate.manifests`` holds
the edge server Deployment (contract inlined as ``env``), ``spec.workloadScope.targetNodeGroups``
one entry per site (its ``NodeGroup``) whose ``overriders`` set the site's replicas, its contract
values (``envOverriders`` with operator ``replace``, which replaces or adds variables by name) and
its resources. KubeEdge's controller makes one Deployment per node group; edge autonomy keeps
pods running while a node's link is down.

Sites of one cluster with different runtimes get one EdgeApplication per runtime (the image differs;
an ``imageOverrider`` edits registry, repository or tag parts, not a digest reference). Promoting
a wave edits the overriders of that wave's groups only. Lacks nothing of the declared features.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.edge.manifests import (
    CONTAINER,
    MODEL_DIGEST_ANNOTATION,
    SITE_LABEL,
    create_node_group_objects,
    deployment,
)
from components.edge.spec import ENV_KEYS, EdgePlan, SitePlan

API_VERSION = "apps.kubeedge.io/v1alpha1"


def edge_application(plan: EdgePlan, sites: list[SitePlan], runtime: str) -> dict[str, Any]:
    """One EdgeApplication for ``sites`` (node groups of one cluster) running ``runtime``."""
    template = deployment(plan, sites[0], env_from_config_map=False)
    # The template is node-group neutral; every group's values come from its overriders.
    for key in ("labels", "annotations"):
        template["metadata"].pop(key, None)
    template["spec"]["template"]["metadata"]["annotations"].pop(MODEL_DIGEST_ANNOTATION, None)
    template["spec"]["template"]["metadata"]["labels"].pop(SITE_LABEL, None)
    groups = []
    for site in sites:
        env = plan.site_env(site)
        resources = deployment(plan, site, env_from_config_map=False)["spec"]["template"]["spec"]["containers"][0]["resources"]
        groups.append({
            "name": site.node_group,
            "overriders": {
                "replicas": site.replicas,
                "envOverriders": [{"containerName": CONTAINER, "operator": "replace",
                                   "value": [{"name": k, "value": env[k]} for k in ENV_KEYS]}],
                "resourcesOverriders": [{"containerName": CONTAINER, "value": resources}],
            },
        })
    return {
        "apiVersion": API_VERSION,
        "kind": "EdgeApplication",
        "metadata": {"name": f"{plan.name}-{runtime}", "namespace": plan.namespace,
                     "labels": {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {"workloadTemplate": {"manifests": [template]}, "workloadScope": {"targetNodeGroups": groups}},
    }


def create_kubeedge_sites(component: pulumi.ComponentResource, name: str, plan: EdgePlan) -> list[pulumi.Resource]:
    return create_node_group_objects(component, name, plan, "kubeedge", edge_application)


__all__ = ["API_VERSION", "create_kubeedge_sites", "edge_application"]
