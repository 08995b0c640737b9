"""EdgeDeployment's OpenYurt backend: node pools on one cluster, one ``YurtAppSet`` per cluster and runtime.

``apps.openyurt.io/v1beta1 YurtAppSet`` (openyurtio/openyurt ``pkg/apis/apps/v1beta1/yurtappset_types.go``):
``spec.workload.workloadTemplate.deploymentTemplate`` is the edge server Deployment (contract inlined
as ``env``), ``spec.pools`` the sites' ``NodePool`` names, and ``spec.workload.workloadTweaks`` one
entry per site (``pools: [pool]``) whose ``tweaks.patches`` (JSON patch ``replace`` operations) set
that pool's replicas and contract values. Only ``patches`` is used: the API documents that only one
member of ``tweaks`` may be given. OpenYurt's controller makes one Deployment per pool; YurtHub's
cache keeps pods running while a node's link is down. Promoting a wave edits that wave's tweaks
only. Lacks nothing of the declared features.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.edge.manifests import (
    MODEL_DIGEST_ANNOTATION,
    SITE_LABEL,
    WAVE_LABEL,
    create_node_group_objects,
    deployment,
)
from components.edge.spec import ENV_KEYS, EdgePlan, SitePlan

API_VERSION = "apps.openyurt.io/v1beta1"


def yurt_app_set(plan: EdgePlan, sites: list[SitePlan], runtime: str) -> dict[str, Any]:
    """One YurtAppSet for ``sites`` (node pools of one cluster) running ``runtime``."""
    template = deployment(plan, sites[0], env_from_config_map=False)
    for key in ("name", "namespace", "annotations"):
        template["metadata"].pop(key, None)
    template["metadata"]["labels"].pop(SITE_LABEL, None)
    template["metadata"]["labels"].pop(WAVE_LABEL, None)
    template["spec"]["template"]["metadata"]["annotations"].pop(MODEL_DIGEST_ANNOTATION, None)
    template["spec"]["template"]["metadata"]["labels"].pop(SITE_LABEL, None)
    tweaks = []
    for site in sites:
        env = plan.site_env(site)
        patches = [{"path": "/spec/replicas", "operation": "replace", "value": site.replicas}]
        patches += [{"path": f"/spec/template/spec/containers/0/env/{i}/value", "operation": "replace", "value": env[k]}
                    for i, k in enumerate(ENV_KEYS)]
        tweaks.append({"pools": [site.node_group], "tweaks": {"patches": patches}})
    return {
        "apiVersion": API_VERSION,
        "kind": "YurtAppSet",
        "metadata": {"name": f"{plan.name}-{runtime}", "namespace": plan.namespace,
                     "labels": {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "gpuplane"}},
        "spec": {
            "pools": [s.node_group for s in sites],
            "workload": {"workloadTemplate": {"deploymentTemplate": {"metadata": template["metadata"], "spec": template["spec"]}},
                         "workloadTweaks": tweaks},
        },
    }


def create_openyurt_sites(component: pulumi.ComponentResource, name: str, plan: EdgePlan) -> list[pulumi.Resource]:
    return create_node_group_objects(component, name, plan, "openyurt", yurt_app_set)


__all__ = ["API_VERSION", "create_openyurt_sites", "yurt_app_set"]
