"""EdgeDeployment: a model rolled out to fleets of edge sites in waves gated on on-device quality.

Public names of the capability. ``spec.py``: args, the rollout contract, plan dataclasses and
declared features; ``planner.py``: ``plan_edge_deployment``; ``manifests.py``: the per-site
Kubernetes objects; backends ``kubernetes_sites.py``, ``fleet.py``, ``kubeedge.py``,
``openyurt.py``, ``greengrass.py``; ``component.py``: the ComponentResource.
"""

from components.edge.component import EdgeDeployment
from components.edge.planner import plan_edge_deployment
from components.edge.spec import (
    ENV_KEYS,
    FEATURES,
    SITE_KINDS,
    TYPE_TOKEN,
    EdgeDeploymentArgs,
    EdgeGateArgs,
    EdgeImageArgs,
    EdgeModelArgs,
    EdgePlan,
    EdgeRolloutArgs,
    EdgeSiteArgs,
    EdgeSiteGroupArgs,
    EdgeWaveArgs,
)

__all__ = [
    "ENV_KEYS",
    "FEATURES",
    "SITE_KINDS",
    "TYPE_TOKEN",
    "EdgeDeployment",
    "EdgeDeploymentArgs",
    "EdgeGateArgs",
    "EdgeImageArgs",
    "EdgeModelArgs",
    "EdgePlan",
    "EdgeRolloutArgs",
    "EdgeSiteArgs",
    "EdgeSiteGroupArgs",
    "EdgeWaveArgs",
    "plan_edge_deployment",
]
