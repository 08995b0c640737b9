"""GpuNodePool on GKE: a node pool with guest accelerators.

``create_node_pool`` creates one child, ``{name}-pool``: a ``gcp.container.NodePool`` in the
cluster's region, on the plan's zones, with

- the plan's machine type and ``guest_accelerators`` (catalog ``gcp_accelerator_type``, GPUs
  per node), GPU driver installed by GKE (``gpu_driver_version: LATEST``), and the sharing mode:
  ``gpu_partition_size`` (the MIG profile) for ``mig``, ``gpu_sharing_config`` with
  ``TIME_SHARING`` or ``MPS`` and ``max_shared_clients_per_gpu`` for time-slicing / MPS;
- ``spot`` for spot capacity; autoscaling with total limits (``total_min_node_count`` /
  ``total_max_node_count``, never per-zone limits) and location policy ``ANY`` for spot (GKE
  picks whichever zone has capacity) or ``BALANCED`` for on-demand;
- ``placement_policy {type: COMPACT}`` when compact placement is asked (one zone, planned);
- the plan's taints (GKE effect enum) and labels, the disk, the cluster's node service account,
  ``GKE_METADATA`` (Workload Identity) and shielded nodes, gVNIC, auto-repair and auto-upgrade,
  and the pool's tags as resource labels.

Who owns the node count (``replicas_managed_by``): ``autoscaler`` — GKE's autoscaler, Pulumi
ignores ``initialNodeCount`` and ``nodeCount``; ``iac`` — Pulumi sets ``node_count`` to
``min_nodes`` spread over the zones (GKE counts nodes per zone, so the total is rounded up to a
multiple of the zone count) and resets drift on every update, while the autoscaler still works
within the total limits in between — the same contract as an EKS group's desired size.

GKE installs and runs the NVIDIA device plugin on GPU nodes itself, so no device-plugin Helm
release is created here (unlike EKS and existing clusters). Time-shared and MPS GPUs are still
advertised as ``nvidia.com/gpu`` on GKE; GKE labels the nodes
``cloud.google.com/gke-gpu-sharing-strategy`` and ``cloud.google.com/gke-max-shared-clients-per-gpu``.
GPU metrics come from GKE's managed DCGM (the cluster's ``monitoring_config``), not a DCGM
exporter release. GKE also adds the ``nvidia.com/gpu=present:NoSchedule`` taint to GPU nodes
and tolerations to pods that request GPUs; the plan's taints are set explicitly as well.
See https://cloud.google.com/kubernetes-engine/docs/how-to/gpus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp

from components.gcp.conventions import OAUTH_SCOPES, gcp_labels, per_zone

if TYPE_CHECKING:
    from components.cluster import KubernetesCluster
    from components.node_pool.spec import NodePoolPlan


TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
"""Kubernetes taint effects in GKE's enum."""
SHARING_STRATEGIES = {"time-slicing": "TIME_SHARING", "mps": "MPS"}
"""gpuplane sharing strategies in GKE's ``gpu_sharing_strategy`` enum (MIG is ``gpu_partition_size``)."""
GPU_DRIVER_VERSION = "LATEST"
# Machine families whose boot disk must be Hyperdisk (no Persistent Disk):
# https://cloud.google.com/compute/docs/accelerator-optimized-machines#supported-disk-types
_HYPERDISK_ONLY = ("a3-ultragpu-", "a4-", "a4x-")


def disk_type(machine_type: str) -> str:
    """Boot disk type for a machine type: ``pd-balanced``, or ``hyperdisk-balanced`` where PD is not offered."""
    return "hyperdisk-balanced" if machine_type.startswith(_HYPERDISK_ONLY) else "pd-balanced"


def guest_accelerator(plan: NodePoolPlan) -> gcp.container.NodePoolNodeConfigGuestAcceleratorArgs:
    """The pool's ``guest_accelerators`` entry: type, count, driver and sharing mode."""
    gpu_type = plan.accelerator.gcp_accelerator_type
    if not gpu_type:  # the planner only picks offerings from gcp_machine_types.csv, whose GPUs all have one
        raise ValueError(f"{plan.accelerator.name} has no gcp_accelerator_type in the catalog")
    sharing = None
    if plan.sharing in SHARING_STRATEGIES:
        sharing = gcp.container.NodePoolNodeConfigGuestAcceleratorGpuSharingConfigArgs(
            gpu_sharing_strategy=SHARING_STRATEGIES[plan.sharing],
            max_shared_clients_per_gpu=plan.sharing_replicas,
        )
    return gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
        type=gpu_type,
        count=plan.gpus_per_node,
        gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
            gpu_driver_version=GPU_DRIVER_VERSION
        ),
        gpu_partition_size=plan.mig_profile if plan.sharing == "mig" else None,
        gpu_sharing_config=sharing,
    )


def create_node_pool(component: pulumi.ComponentResource, name: str, plan: NodePoolPlan, cluster: KubernetesCluster) -> None:
    """Create the GKE node pool for ``plan`` as a child of ``component`` (see module docstring)."""
    if plan.instance_type is None:  # the planner always picks a machine type for gke-node-pool
        raise ValueError(f"GpuNodePool {name!r}: the plan has no machine type")
    machine = plan.instance_type.name
    zones = list(plan.zones)
    autoscaled = plan.replicas_managed_by == "autoscaler"
    spot = plan.capacity_type == "spot"
    gcp.container.NodePool(
        f"{name}-pool",
        gcp.container.NodePoolArgs(
            project=cluster.project,
            cluster=cluster.cluster_name,
            location=plan.region,
            node_locations=zones,
            initial_node_count=per_zone(plan.min_nodes, len(zones)) if autoscaled else None,
            node_count=None if autoscaled else per_zone(plan.min_nodes, len(zones)),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=plan.min_nodes,
                total_max_node_count=plan.max_nodes,
                location_policy="ANY" if spot else "BALANCED",
            ),
            placement_policy=gcp.container.NodePoolPlacementPolicyArgs(type="COMPACT")
            if plan.compact_placement
            else None,
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=machine,
                spot=spot,
                guest_accelerators=[guest_accelerator(plan)],
                taints=[
                    gcp.container.NodePoolNodeConfigTaintArgs(key=t.key, value=t.value, effect=TAINT_EFFECTS[t.effect])
                    for t in plan.taints
                ],
                labels=dict(plan.labels),
                disk_size_gb=plan.disk_size_gib,
                disk_type=disk_type(machine),
                image_type="COS_CONTAINERD",
                gvnic=gcp.container.NodePoolNodeConfigGvnicArgs(enabled=True),
                service_account=cluster.node_service_account_email,
                oauth_scopes=OAUTH_SCOPES,
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                resource_labels=gcp_labels({**plan.tags, "gpuplane-pool": name}),
            ),
        ),
        opts=pulumi.ResourceOptions(
            parent=component,
            # initialNodeCount matters only at creation and forces replacement when GKE reports
            # another value after a resize; nodeCount belongs to the autoscaler unless iac owns it.
            ignore_changes=["initialNodeCount", "nodeCount"] if autoscaled else ["initialNodeCount"],
        ),
    )
