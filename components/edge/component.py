"""EdgeDeployment, the component: one ONNX model rolled out to a fleet of edge sites in waves gated on the device.

Implementations, chosen per site by its ``kind`` (a fleet may mix them):

- ``kubernetes`` (components/edge/kubernetes_sites.py): each site its own cluster (k3s, ...) reached
  by kubeconfig; a Namespace, ConfigMap, model-cache claim, Deployment and Service per site.
- ``fleet`` (components/edge/fleet.py): Fleet downstream clusters; one Bundle on the management
  cluster with per-site overlays and a rollout partition per site in wave order.
- ``kubeedge`` (components/edge/kubeedge.py): KubeEdge node groups of one cluster; an
  ``EdgeApplication`` per cluster and runtime with per-group overriders.
- ``openyurt`` (components/edge/openyurt.py): OpenYurt node pools of one cluster; a ``YurtAppSet``
  per cluster and runtime with per-pool tweaks.
- ``greengrass`` (components/edge/greengrass.py): AWS IoT Greengrass v2 thing groups; a component
  version per model and a deployment per site with exponential rollout, abort criteria and rollback.

The rollout contract (waves, promotion, the on-device gate, rollback, what a site receives) is in
components/edge/spec.py's module docstring. The plan (components/edge/planner.py) prices and times
every site's transfer and checks its disconnect contract before anything is created.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.edge.planner import plan_edge_deployment
from components.edge.spec import TYPE_TOKEN, EdgeDeploymentArgs, EdgePlan


class EdgeDeployment(pulumi.ComponentResource):
    """A model rolled out to fleets of edge sites in waves gated on on-device quality; see the module docstring.

    Outputs: ``model_digest``, ``promoted_waves``, ``site_models`` (site -> digest it serves),
    ``site_runtimes`` (site -> runtime), ``rollout`` (waves, transfer and disconnect plan). Attribute ``plan``.
    """

    plan: EdgePlan
    model_digest: pulumi.Output[str]
    """Digest of the model being rolled out."""
    promoted_waves: pulumi.Output[int]
    """How many waves run the new model."""
    site_models: pulumi.Output[dict[str, str]]
    """Site name -> digest of the model it serves now ('' for a site with nothing yet)."""
    site_runtimes: pulumi.Output[dict[str, str]]
    """Site name -> ``onnxruntime`` or ``tensorrt``."""
    rollout: pulumi.Output[dict[str, Any]]
    """The plan: waves (sites, gate, bytes, seconds, cost) and sites (runtime and why, transfer, pre-stage window, disconnect contract)."""

    def __init__(self, name: str, args: EdgeDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_edge_deployment(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        from components.edge.fleet import create_fleet_sites
        from components.edge.greengrass import create_greengrass_sites
        from components.edge.kubeedge import create_kubeedge_sites
        from components.edge.kubernetes_sites import create_kubernetes_site
        from components.edge.manifests import serving_digest
        from components.edge.openyurt import create_openyurt_sites

        for site in plan.sites:
            if site.kind == "kubernetes":
                create_kubernetes_site(self, name, plan, site)
        kinds = plan.kinds()
        if "fleet" in kinds:
            create_fleet_sites(self, name, plan)
        if "kubeedge" in kinds:
            create_kubeedge_sites(self, name, plan)
        if "openyurt" in kinds:
            create_openyurt_sites(self, name, plan)
        if "greengrass" in kinds:
            create_greengrass_sites(self, name, plan)
        self.model_digest = pulumi.Output.from_input(plan.model.digest)
        self.promoted_waves = pulumi.Output.from_input(plan.promoted_waves)
        self.site_models = pulumi.Output.from_input({s.name: serving_digest(plan, s) for s in plan.sites})
        self.site_runtimes = pulumi.Output.from_input({s.name: s.runtime for s in plan.sites})
        self.rollout = pulumi.Output.from_input({"waves": plan.summary()["waves"], "sites": plan.summary()["sites"]})
        self.register_outputs(
            {
                "model_digest": self.model_digest,
                "promoted_waves": self.promoted_waves,
                "site_models": self.site_models,
                "site_runtimes": self.site_runtimes,
                "rollout": self.rollout,
            }
        )
