"""KubernetesCluster's spec: its args, the plan dataclasses and the pure planner ``plan_cluster``.

Implementations (chosen by ``cloud``), one backend module each in this folder:

- ``aws``: EKS (``eks.py``, its node autoscaler in ``eks_autoscaler.py``) — a new VPC or given
  subnets, IAM roles, an OIDC provider for workload identity (IRSA), optional private endpoint,
  KMS envelope encryption of secrets, a small on-demand system node group with IMDSv2 required,
  and a node autoscaler (Karpenter with its interruption queue, or Cluster Autoscaler).
- ``gcp``: GKE (``gke.py``) — a VPC network, Workload Identity, a release channel, private
  nodes, a small system node pool.
- ``existing``: any cluster reachable with a kubeconfig (``existing.py``); it creates nothing
  but the Kubernetes provider — what kind, minikube or an on-prem cluster use.

Children need facts about the cluster while they *plan* (before any output resolves), so the
component exposes plain ``facts`` next to its outputs. This module creates nothing; it never
reads config or environment. ``ClusterHandles`` is what a backend returns for the component to
expose to children.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, NotRequired, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Catalog, load_catalog
from components.errors import Problems

TYPE_TOKEN = "gpuplane:index:KubernetesCluster"


class ExistingNetworkArgs(TypedDict, total=False):
    """A network to use instead of creating one."""

    vpc_id: pulumi.Input[str]
    """AWS: the VPC id."""
    subnet_ids_by_zone: dict[str, pulumi.Input[str]]
    """AWS: private subnet id per availability zone (zone names are plan-time facts)."""
    network: pulumi.Input[str]
    """GCP: the VPC network self link or name."""
    subnetwork: pulumi.Input[str]
    """GCP: the subnetwork self link or name (with secondary ranges ``pods`` and ``services``)."""


class KubernetesClusterArgs(TypedDict, total=False):
    """Arguments of ``KubernetesCluster``."""

    cloud: Required[Literal["aws", "gcp", "existing"]]
    """Where the cluster lives: ``aws`` (EKS), ``gcp`` (GKE) or ``existing`` (a kubeconfig). Required."""
    region: NotRequired[str]
    """Cloud region, e.g. ``us-east-1`` or ``us-central1``. Required for aws and gcp; checked against the catalog."""
    zones: NotRequired[list[str]]
    """Zones to spread the network and system nodes over. Default: the first three zones of the region in the catalog."""
    project: NotRequired[pulumi.Input[str]]
    """GCP project id. Required for gcp (Workload Identity pool is ``<project>.svc.id.goog``)."""
    kubernetes_version: NotRequired[str]
    """Kubernetes minor version, e.g. ``1.33``. Default ``1.33``. Ignored for existing clusters."""
    existing_network: NotRequired[ExistingNetworkArgs]
    """Use this network instead of creating one. Default: create a VPC with private subnets and NAT."""
    private_endpoint: NotRequired[bool]
    """Make the API server reachable only from inside the network. Default False."""
    private_nodes: NotRequired[bool]
    """Nodes get no public IPs (egress through NAT). Default True."""
    autoscaler: NotRequired[Literal["karpenter", "cluster-autoscaler", "none"]]
    """AWS node autoscaler. ``karpenter`` makes GpuNodePools Karpenter NodePools; ``cluster-autoscaler`` keeps
    managed node groups that scale from zero through node-template tags. Default ``cluster-autoscaler``.
    GKE always uses its own autoscaler; existing clusters keep theirs."""
    release_channel: NotRequired[Literal["RAPID", "REGULAR", "STABLE"]]
    """GKE release channel. Default ``REGULAR``."""
    system_node_count: NotRequired[int]
    """On-demand CPU nodes for system pods (controllers, Kueue, Knative). Default 2."""
    system_instance_type: NotRequired[str]
    """Instance/machine type of the system nodes. Default ``m6i.large`` (aws), ``e2-standard-4`` (gcp)."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """Existing clusters: kubeconfig contents. Default: the provider's own discovery (KUBECONFIG / ~/.kube/config)."""
    context: NotRequired[str]
    """Existing clusters: kubeconfig context to use. Default: the current context."""
    chart_source: NotRequired[str]
    """Where every Helm chart installed on this cluster comes from: unset for the upstream repositories, an
    ``http(s)://`` Helm repository or ``oci://`` registry mirroring them, or a folder of ``<name>-<version>.tgz``
    archives (absolute path) for an air-gapped cluster. See ``components/kubernetes/charts.py``."""
    deletion_protection: NotRequired[bool]
    """Protect the cluster from deletion (``protect`` on AWS, ``deletion_protection`` on GKE). Default False."""
    tags: NotRequired[dict[str, str]]
    """Tags (AWS) or labels (GCP) put on every taggable child, e.g. ``team`` and ``cost-center``."""


Cloud = Literal["aws", "gcp", "kubernetes"]


@dataclass(frozen=True)
class ClusterFacts:
    """What children need to know about a cluster at plan time (plain values, no Outputs)."""

    cloud: Cloud
    """``aws``, ``gcp`` or ``kubernetes`` (an existing cluster of unknown origin)."""
    name: str
    """The component's resource name."""
    region: str | None
    zones: tuple[str, ...]
    autoscaler: str
    """``karpenter``, ``cluster-autoscaler``, ``gke`` or ``none``."""
    private_nodes: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    kubeconfig_known: bool = True
    """False for an existing cluster reached through the provider's own discovery (no ``kubeconfig``
    given): the program has no credentials for it that it could hand to another cluster."""

    @property
    def uses_karpenter(self) -> bool:
        return self.autoscaler == "karpenter"


@dataclass(frozen=True)
class ClusterPlan:
    facts: ClusterFacts
    kubernetes_version: str
    private_endpoint: bool
    release_channel: str
    system_node_count: int
    system_instance_type: str
    deletion_protection: bool

    def summary(self) -> dict[str, object]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        f = self.facts
        return {
            "cloud": f.cloud,
            "region": f.region,
            "zones": list(f.zones),
            "autoscaler": f.autoscaler,
            "kubernetesVersion": self.kubernetes_version,
            "privateEndpoint": self.private_endpoint,
            "privateNodes": f.private_nodes,
            "systemNodeCount": self.system_node_count,
            "systemInstanceType": self.system_instance_type,
            "deletionProtection": self.deletion_protection,
            "tags": dict(f.tags),
        }


@dataclass
class ClusterHandles:
    """What a backend made that children use; ``KubernetesCluster`` copies each set field onto itself.

    The attributes are documented on ``KubernetesCluster`` (component.py); a field left ``None``
    keeps the component's class default.
    """

    k8s_provider: k8s.Provider | None = None
    cluster_name: pulumi.Output[str] | None = None
    endpoint: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None
    oidc_issuer_url: pulumi.Output[str] | None = None
    oidc_provider_arn: pulumi.Output[str] | None = None
    node_role_arn: pulumi.Output[str] | None = None
    node_role_name: pulumi.Output[str] | None = None
    subnet_ids_by_zone: dict[str, pulumi.Output[str]] | None = None
    security_group_id: pulumi.Output[str] | None = None
    vpc_id: pulumi.Input[str] | None = None
    system_node_group: pulumi.Resource | None = None
    autoscaler_release: pulumi.Resource | None = None
    project: pulumi.Input[str] | None = None
    node_service_account_email: pulumi.Output[str] | None = None
    workload_identity_pool: pulumi.Output[str] | None = None
    network: pulumi.Input[str] | None = None

    def apply_to(self, component: pulumi.ComponentResource) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                setattr(component, f.name, value)


DEFAULT_KUBERNETES_VERSION = "1.33"
DEFAULT_SYSTEM_TYPES = {"aws": "m6i.large", "gcp": "e2-standard-4"}
_KNOWN_KEYS = set(KubernetesClusterArgs.__annotations__)


def plan_cluster(name: str, args: KubernetesClusterArgs, catalog: Catalog | None = None) -> ClusterPlan:
    """Validate the args and decide everything that does not need a cloud call."""
    catalog = catalog or load_catalog()
    problems = Problems("KubernetesCluster", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        problems.add(key, args[key], "is not an argument of KubernetesCluster.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    cloud_arg = args.get("cloud")
    if cloud_arg not in ("aws", "gcp", "existing"):
        problems.add("cloud", cloud_arg, "is not a supported cluster kind.", "set it to 'aws', 'gcp' or 'existing'.")
        problems.raise_if_any()
    cloud: Cloud = "kubernetes" if cloud_arg == "existing" else cloud_arg  # type: ignore[assignment]
    region = args.get("region")
    zones: tuple[str, ...] = ()
    if cloud in ("aws", "gcp"):
        known = catalog.region(cloud, region or "")
        if known is None:
            problems.add("region", region, f"is not a {cloud} region in the catalog.", f"use one of {catalog.region_names(cloud)}.")
        else:
            zones = tuple(args.get("zones") or known.zones[:3])
            bad = [z for z in zones if z not in known.zones]
            if bad:
                problems.add("zones", list(zones), f"{bad} are not zones of {region}.", f"use zones from {list(known.zones)}.")
        if cloud == "gcp" and not args.get("project"):
            problems.add("project", args.get("project"), "is required for a GKE cluster.", "set it to the GCP project id.")
    else:
        for key in ("region", "existing_network", "autoscaler", "release_channel", "kubernetes_version"):
            if key in args:
                problems.add(key, args[key], "has no effect on an existing cluster.", "remove it.")  # type: ignore[literal-required]
    autoscaler = args.get("autoscaler", "cluster-autoscaler")
    if cloud == "aws" and autoscaler not in ("karpenter", "cluster-autoscaler", "none"):
        problems.add("autoscaler", autoscaler, "is not a known autoscaler.", "use 'karpenter', 'cluster-autoscaler' or 'none'.")
    if cloud != "aws" and "autoscaler" in args and cloud == "gcp":
        problems.add("autoscaler", autoscaler, "applies only to EKS; GKE scales node pools itself.", "remove it.")
    if cloud == "gcp" and args.get("private_endpoint") and not args.get("private_nodes", True):
        # GKE silently ignores enable_private_endpoint without private nodes and keeps the endpoint public.
        problems.add("private_endpoint", True, "needs private nodes on GKE (GKE ignores it otherwise and the endpoint stays public).", "set private_nodes to True, or drop private_endpoint.")
    channel = args.get("release_channel", "REGULAR")
    if channel not in ("RAPID", "REGULAR", "STABLE"):
        problems.add("release_channel", channel, "is not a GKE release channel.", "use RAPID, REGULAR or STABLE.")
    system_nodes = args.get("system_node_count", 2)
    if not isinstance(system_nodes, int) or system_nodes < 1:
        problems.add("system_node_count", system_nodes, "must be a whole number of at least 1.", "set it to 1 or more (2 for high availability).")
    existing_net = args.get("existing_network")
    if existing_net and cloud == "aws":
        subnets = existing_net.get("subnet_ids_by_zone") or {}
        if not existing_net.get("vpc_id") or not subnets:
            problems.add("existing_network", "...", "needs vpc_id and subnet_ids_by_zone on AWS.", "give both, or drop existing_network to create a VPC.")
        elif region and catalog.region("aws", region):
            bad = [z for z in subnets if z not in catalog.region("aws", region).zones]  # type: ignore[union-attr]
            if bad:
                problems.add("existing_network.subnet_ids_by_zone", sorted(subnets), f"zones {bad} are not in {region}.", "key the subnets by zones of the region.")
            zones = tuple(subnets)
    if existing_net and cloud == "gcp" and not (existing_net.get("network") and existing_net.get("subnetwork")):
        problems.add("existing_network", "...", "needs network and subnetwork on GCP.", "give both, or drop existing_network.")
    problems.raise_if_any()
    facts = ClusterFacts(
        cloud=cloud,
        name=name,
        region=region if cloud != "kubernetes" else None,
        zones=zones,
        autoscaler=autoscaler if cloud == "aws" else ("gke" if cloud == "gcp" else "none"),
        private_nodes=bool(args.get("private_nodes", True)),
        tags=dict(args.get("tags") or {}),
        kubeconfig_known=cloud != "kubernetes" or args.get("kubeconfig") is not None,
    )
    return ClusterPlan(
        facts=facts,
        kubernetes_version=args.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION),
        private_endpoint=bool(args.get("private_endpoint", False)),
        release_channel=channel,
        system_node_count=system_nodes,
        system_instance_type=args.get("system_instance_type", DEFAULT_SYSTEM_TYPES.get(cloud, "")),
        deletion_protection=bool(args.get("deletion_protection", False)),
    )
