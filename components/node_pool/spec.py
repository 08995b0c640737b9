"""GpuNodePool's spec: args, the frozen ``NodePoolPlan``, each implementation's declared features and
the pure planner ``plan_node_pool``.

``plan_node_pool`` is pure: args + cluster facts + catalog → a frozen ``NodePoolPlan``, with every
problem collected and raised once before any child resource exists. Creates nothing. The
implementations (``eks.py``, ``gke.py``, ``existing.py``) and the component (``component.py``)
are described in component.py's module docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

from components.catalog import Accelerator, Capacity, Catalog, InstanceType, load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:GpuNodePool"
GPU_TAINT_KEY = "nvidia.com/gpu"
LABEL_POOL = "gpuplane.dev/pool"
LABEL_ACCELERATOR = "gpuplane.dev/accelerator"
LABEL_CAPACITY = "gpuplane.dev/capacity-type"
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 300


class TaintArgs(TypedDict):
    """A Kubernetes taint."""

    key: str
    """Taint key, e.g. ``nvidia.com/gpu``."""
    value: NotRequired[str]
    """Taint value. Default empty."""
    effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]
    """Kubernetes taint effect."""


class GpuSharingArgs(TypedDict, total=False):
    """How pods share a node's GPUs."""

    strategy: Required[Literal["time-slicing", "mps", "mig"]]
    """``time-slicing`` and ``mps`` advertise each GPU ``replicas`` times; ``mig`` partitions A100/H100/H200 GPUs."""
    replicas: int
    """Pods per GPU for time-slicing or MPS (2-48). Default 4."""
    mig_profile: str
    """MIG profile for ``mig``, e.g. ``1g.10gb`` (must be offered by the accelerator)."""


class KarpenterNodeClassArgs(TypedDict):
    """A Karpenter node class the cluster already has (the NodePool's ``nodeClassRef``)."""

    group: str
    """API group of the node class: ``karpenter.k8s.aws`` (EC2NodeClass), ``karpenter.kwok.sh`` (KWOKNodeClass, the sandbox)."""
    kind: str
    """Kind of the node class, e.g. ``EC2NodeClass`` or ``KWOKNodeClass``."""
    name: str
    """Name of the node class object (cluster-scoped)."""


class KarpenterArgs(TypedDict, total=False):
    """An existing cluster that runs Karpenter: what the pool's NodePool launches."""

    node_class: Required[KarpenterNodeClassArgs]
    """The node class the NodePool refers to; it must exist in the cluster (gpuplane does not create it)."""
    cloud: Literal["aws", "gcp"]
    """Whose instance types the node class launches: the catalog the candidates and prices come from. Default ``aws``."""
    region: Required[str]
    """Region of those instance types, e.g. ``us-east-1`` (checked against the catalog)."""


class GpuNodePoolArgs(TypedDict, total=False):
    """Arguments of ``GpuNodePool``."""

    cluster: Required[KubernetesCluster]
    """The cluster the pool joins. Its kind picks the implementation."""
    accelerator: Required[str]
    """Canonical accelerator name from the catalog: ``H100``, ``H200``, ``A100-40GB``, ``A100-80GB``, ``L4``, ``L40S``, ``A10G``."""
    accelerators_per_node: int
    """GPUs per node. Default: the smallest count the cloud offers for the accelerator."""
    instance_type: str
    """Instance/machine type to use instead of the cheapest matching one in the catalog."""
    min_nodes: int
    """Fewest nodes. Default 0 (scale from zero)."""
    max_nodes: int
    """Most nodes. Default 1."""
    capacity_type: Literal["on_demand", "spot"]
    """``spot`` (preemptible, 60-90% cheaper, 30 s to 2 min notice) or ``on_demand``. Default ``on_demand``."""
    zones: list[str]
    """Zones for the nodes. Default: the cluster's zones that offer the instance type (one zone with EFA or compact placement)."""
    taints: list[TaintArgs]
    """Node taints. Default ``nvidia.com/gpu=present:NoSchedule``; give ``[]`` for an untainted pool."""
    labels: dict[str, str]
    """Extra node labels (the pool, accelerator and capacity labels are always added)."""
    disk_size_gib: int
    """Root disk size in GiB (images with CUDA are large). Default 200, minimum 50."""
    gpu_sharing: GpuSharingArgs
    """Optional GPU sharing. Default: none (one pod per GPU)."""
    compact_placement: bool
    """Place nodes close together (AWS cluster placement group, GKE COMPACT policy). Default False."""
    efa: bool
    """Attach AWS Elastic Fabric Adapter interfaces for multi-node training. Default False."""
    replicas_managed_by: Literal["autoscaler", "iac"]
    """Who owns the node count: ``autoscaler`` (Pulumi ignores drift in desired size) or ``iac``. Default ``autoscaler``."""
    priority: int
    """Karpenter NodePool weight (higher is tried first); used for capacity fallback ordering. Default 0."""
    role: Literal["training", "inference", "general"]
    """What the pool is for; policies hold training pools to spot and compact placement. Default ``general``."""
    tags: dict[str, str]
    """Extra tags/labels on the cloud resources (merged over the cluster's tags)."""
    karpenter: KarpenterArgs
    """Existing clusters that run Karpenter: make the pool a ``karpenter.sh/v1`` NodePool referring to the cluster's
    own node class, with candidates from the catalog of ``karpenter.cloud`` / ``karpenter.region``. Default: none (on an
    existing cluster the pool then creates no nodes). EKS clusters with ``autoscaler='karpenter'`` do not take it: gpuplane
    creates their EC2NodeClass."""
    scale_down_delay_seconds: int
    """Karpenter pools: seconds a node stays empty before Karpenter removes it (the NodePool's ``consolidateAfter``).
    Default 300."""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def toleration(self) -> dict[str, str]:
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class PoolScheduling:
    """What a pod needs to land on the pool."""

    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]
    resource_name: str
    """Extended resource to request, ``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``."""
    gpus_per_node: int
    """Physical GPUs per node."""
    allocatable_per_node: int
    """Units of ``resource_name`` a node advertises (GPUs × sharing replicas, or MIG slices)."""
    vcpus_per_node: int
    memory_gib_per_node: float


@dataclass(frozen=True)
class NodePoolPlan:
    name: str
    implementation: str
    cloud: str
    region: str | None
    accelerator: Accelerator
    gpus_per_node: int
    instance_type: InstanceType | None
    """None on an existing cluster (no nodes are created)."""
    candidate_instance_types: tuple[str, ...]
    """Every catalog type that fits (Karpenter may choose among them)."""
    zones: tuple[str, ...]
    capacity_type: Capacity
    min_nodes: int
    max_nodes: int
    taints: tuple[Taint, ...]
    labels: dict[str, str]
    disk_size_gib: int
    sharing: str | None
    sharing_replicas: int
    mig_profile: str | None
    compact_placement: bool
    efa: bool
    replicas_managed_by: str
    priority: int
    role: str
    tags: dict[str, str]
    scheduling: PoolScheduling
    usd_per_node_hour: float | None
    """Catalog price of one node at the pool's capacity type, None when unknown."""
    notice_seconds: int
    """The cloud's preemption notice (catalog)."""
    extra: dict[str, Any] = field(default_factory=dict)
    scale_down_delay_seconds: int = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    """Karpenter pools: seconds an empty node lives before Karpenter removes it."""
    node_class: dict[str, str] | None = None
    """Karpenter pools on an existing cluster: the cluster's node class (``group``, ``kind``, ``name``); None otherwise."""

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input: what policies and the cost model read."""
        return {
            "implementation": self.implementation,
            "cloud": self.cloud,
            "region": self.region,
            "zones": list(self.zones),
            "accelerator": self.accelerator.name,
            "acceleratorsPerNode": self.gpus_per_node,
            "instanceType": self.instance_type.name if self.instance_type else None,
            "capacityType": self.capacity_type,
            "minNodes": self.min_nodes,
            "maxNodes": self.max_nodes,
            "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in self.taints],
            "labels": dict(self.labels),
            "gpuSharing": self.sharing,
            "compactPlacement": self.compact_placement,
            "efa": self.efa,
            "createsNodes": self.implementation != "existing-device-plugin",
            "role": self.role,
            "tags": dict(self.tags),
        }


def _implementation(facts: ClusterFacts) -> str:
    if facts.cloud == "aws":
        return "karpenter" if facts.uses_karpenter else "eks-managed-node-group"
    if facts.cloud == "gcp":
        return "gke-node-pool"
    return "existing-device-plugin"


# -- what each implementation supports (declared here, next to the planner that checks it) ---------

MANAGED_NODE_GROUP_FEATURES = FeatureSupport(
    implementation="eks-managed-node-group",
    supported=frozenset(
        {
            Feature.SPOT,
            Feature.SCALE_FROM_ZERO,
            Feature.TIME_SLICING,
            Feature.MPS,
            Feature.EFA,
            Feature.COMPACT_PLACEMENT,
            Feature.CREATES_NODES,
        }
    ),
    missing={
        Feature.MIG: "MIG partitioning on EKS needs the NVIDIA GPU operator's MIG manager, which gpuplane does not install; "
        "use a GKE pool, or an existing cluster whose GPUs are already partitioned",
    },
)


KARPENTER_FEATURES = FeatureSupport(
    implementation="karpenter",
    supported=frozenset({Feature.SPOT, Feature.SCALE_FROM_ZERO, Feature.CREATES_NODES}),
    missing={
        Feature.TIME_SLICING: "Karpenter does not understand time-sliced GPU resources when scaling from zero "
        "(kubernetes-sigs/karpenter#729); use autoscaler='cluster-autoscaler' on the cluster",
        Feature.MPS: "Karpenter does not understand MPS-shared GPU resources when scaling from zero (kubernetes-sigs/karpenter#729)",
        Feature.MIG: "Karpenter cannot provision for MIG resources from zero (NVIDIA/gpu-operator#2670)",
        Feature.EFA: "gpuplane attaches EFA interfaces through a launch template, which Karpenter does not take; "
        "use autoscaler='cluster-autoscaler' for EFA pools",
        Feature.COMPACT_PLACEMENT: "Karpenter's EC2NodeClass has no placement-group setting; "
        "use autoscaler='cluster-autoscaler' for compact placement",
    },
)


GKE_FEATURES = FeatureSupport(
    implementation="gke-node-pool",
    supported=frozenset(
        {
            Feature.SPOT,
            Feature.SCALE_FROM_ZERO,
            Feature.TIME_SLICING,
            Feature.MPS,
            Feature.MIG,
            Feature.COMPACT_PLACEMENT,
            Feature.CREATES_NODES,
        }
    ),
    missing={
        Feature.EFA: "EFA is an AWS network adapter; GKE's GPUDirect-RDMA multi-networking on A3 is not configured by gpuplane yet",
    },
)


_NO_NODES = "an existing cluster's nodes belong to its owner; gpuplane creates no nodes there"

EXISTING_FEATURES = FeatureSupport(
    implementation="existing-device-plugin",
    supported=frozenset({Feature.TIME_SLICING, Feature.MPS, Feature.MIG}),
    missing={
        Feature.SPOT: _NO_NODES,
        Feature.SCALE_FROM_ZERO: _NO_NODES,
        Feature.COMPACT_PLACEMENT: _NO_NODES,
        Feature.EFA: _NO_NODES,
        Feature.CREATES_NODES: _NO_NODES,
    },
)



def feature_support(implementation: str) -> FeatureSupport:
    """The declared features of a GpuNodePool implementation."""
    return {
        "karpenter": KARPENTER_FEATURES,
        "eks-managed-node-group": MANAGED_NODE_GROUP_FEATURES,
        "gke-node-pool": GKE_FEATURES,
    }.get(implementation, EXISTING_FEATURES)


IMPLEMENTATIONS = ("eks-managed-node-group", "karpenter", "gke-node-pool", "existing-device-plugin")
_KNOWN_KEYS = set(GpuNodePoolArgs.__annotations__)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def plan_node_pool(name: str, args: GpuNodePoolArgs, facts: ClusterFacts, catalog: Catalog | None = None) -> NodePoolPlan:
    """Turn args into a frozen plan, or raise ``ComponentInputError`` listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("GpuNodePool", name)
    impl = _implementation(facts)
    for key in sorted(set(args) - _KNOWN_KEYS):
        p.add(key, args[key], "is not an argument of GpuNodePool.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    cloud, region, region_path, node_class = facts.cloud, facts.region, "cluster.region", None
    if "karpenter" in args:
        if facts.cloud != "kubernetes":
            p.add("karpenter", args["karpenter"], f"applies to existing clusters only; on {facts.cloud} gpuplane "
                  "makes the node class itself.", "remove it (on EKS set autoscaler='karpenter' on the cluster).")
        else:
            impl, region_path = "karpenter", "karpenter.region"
            cloud, region, node_class = _existing_karpenter(args["karpenter"], catalog, p)  # type: ignore[assignment]
    support = feature_support(impl)
    delay = args.get("scale_down_delay_seconds", DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    if "scale_down_delay_seconds" in args and impl != "karpenter":
        p.add("scale_down_delay_seconds", delay, f"applies only to Karpenter pools (the NodePool's consolidateAfter), "
              f"not to {impl}.", "remove it, or use a cluster that runs Karpenter.")
    elif not _is_int(delay) or delay < 0:
        p.add("scale_down_delay_seconds", delay, "must be a whole number of seconds, 0 or more.", "e.g. 300 (the default).")
        delay = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    if node_class is not None and not (_is_int(args.get("priority", 0)) and 0 <= args.get("priority", 0) <= 100):
        p.add("priority", args.get("priority"), "is outside Karpenter's NodePool weight range.", "use 0 (no weight) to 100.")

    # -- accelerator and counts ----------------------------------------------------------------
    acc_name = args.get("accelerator")
    acc = catalog.accelerators.get(acc_name or "")
    if acc is None:
        p.add("accelerator", acc_name, "is not in the GPU catalog.", f"use one of {sorted(catalog.accelerators)}.")
        p.raise_if_any()
    assert acc is not None  # for the type checker; raise_if_any ended the None case
    service = {"aws": "ec2", "gcp": "compute"}.get(cloud)
    offered_counts = catalog.gpu_counts(cloud, acc.name, service) if service else []
    count = args.get("accelerators_per_node", offered_counts[0] if offered_counts else 1)
    if not _is_int(count) or count < 1:
        p.add("accelerators_per_node", count, "must be a whole number of at least 1.", "set it to a GPU count per node.")
        count = 1
    elif service and count not in offered_counts:
        if offered_counts:
            p.add("accelerators_per_node", count, f"is not offered for {acc.name} on {cloud} (offered: {', '.join(map(str, offered_counts))}).", "set it to one of those.")
        else:
            p.add("accelerator", acc.name, f"is not offered on {cloud}.", f"use one of {sorted({it.accelerator for (c, _), it in catalog.instance_types.items() if c == cloud and it.accelerator})}.")

    capacity: Capacity = args.get("capacity_type", "on_demand")  # type: ignore[assignment]
    if capacity not in ("on_demand", "spot"):
        p.add("capacity_type", capacity, "is not a capacity type.", "use 'spot' or 'on_demand'.")
        capacity = "on_demand"

    min_nodes, max_nodes = args.get("min_nodes", 0), args.get("max_nodes", 1)
    if not _is_int(min_nodes) or min_nodes < 0:
        p.add("min_nodes", min_nodes, "must be a whole number of at least 0.", "set it to 0 to scale from zero.")
        min_nodes = 0
    if not _is_int(max_nodes) or max_nodes < 1:
        p.add("max_nodes", max_nodes, "must be a whole number of at least 1.", "set it to the most nodes the pool may grow to.")
        max_nodes = max(1, min_nodes)
    elif max_nodes < min_nodes:
        p.add("max_nodes", max_nodes, f"is below min_nodes={min_nodes}.", "raise max_nodes or lower min_nodes.")

    # -- sharing ---------------------------------------------------------------------------------
    sharing_args = args.get("gpu_sharing")
    sharing = sharing_args.get("strategy") if sharing_args else None
    replicas, mig_profile = 1, None
    requested: list[tuple[Feature, str, object]] = []
    if sharing_args:
        if sharing not in ("time-slicing", "mps", "mig"):
            p.add("gpu_sharing.strategy", sharing, "is not a sharing strategy.", "use 'time-slicing', 'mps' or 'mig'.")
            sharing = None
        elif sharing == "mig":
            requested.append((Feature.MIG, "gpu_sharing.strategy", sharing))
            mig_profile = sharing_args.get("mig_profile")
            if not acc.supports_mig:
                p.add("gpu_sharing.strategy", "mig", f"{acc.name} has no MIG.", f"use time-slicing or mps, or a MIG GPU ({', '.join(a for a, v in sorted(catalog.accelerators.items()) if v.supports_mig)}).")
            elif mig_profile not in acc.mig_profiles:
                p.add("gpu_sharing.mig_profile", mig_profile, f"is not a MIG profile of {acc.name}.", f"use one of {list(acc.mig_profiles)}.")
        else:
            requested.append((Feature.TIME_SLICING if sharing == "time-slicing" else Feature.MPS, "gpu_sharing.strategy", sharing))
            replicas = sharing_args.get("replicas", 4)
            if not _is_int(replicas) or not 2 <= replicas <= 48:
                p.add("gpu_sharing.replicas", replicas, "must be a whole number from 2 to 48.", "set the number of pods that share one GPU.")
                replicas = 2

    # -- capabilities --------------------------------------------------------------------------
    compact, efa = bool(args.get("compact_placement", False)), bool(args.get("efa", False))
    if capacity == "spot":
        requested.append((Feature.SPOT, "capacity_type", capacity))
    if compact:
        requested.append((Feature.COMPACT_PLACEMENT, "compact_placement", True))
    if efa:
        requested.append((Feature.EFA, "efa", True))
    if min_nodes == 0 and impl != "existing-device-plugin":
        requested.append((Feature.SCALE_FROM_ZERO, "min_nodes", 0))
    p.extend(support.check(requested))

    # -- instance type, region and zones -------------------------------------------------------
    instance: InstanceType | None = None
    candidates: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    price: float | None = None
    if service and region and count in offered_counts:
        offers = [o for o in catalog.find_offerings(cloud, acc.name, count, region, capacity, service) if not efa or o.instance_type.supports_efa]
        wanted = args.get("instance_type")
        if wanted:
            it = catalog.instance_type(cloud, wanted)
            if it is None or it.accelerator != acc.name or it.gpus != count:
                p.add("instance_type", wanted, f"is not a {cloud} type with {count} x {acc.name}.", f"use one of {sorted({o.instance_type.name for o in catalog.find_offerings(cloud, acc.name, count, service=service)})} or drop instance_type.")
            offers = [o for o in offers if o.instance_type.name == wanted]
        if not offers:
            where = sorted({o.region for o in catalog.find_offerings(cloud, acc.name, count, None, capacity, service) if not efa or o.instance_type.supports_efa})
            what = f"{count} x {acc.name}{' with EFA' if efa else ''} ({capacity.replace('_', '-')})"
            p.add(region_path, region, f"does not offer {what} in the catalog.", f"use a cluster in one of {where}{' or another capacity type' if capacity == 'spot' else ''}." if where else "choose another accelerator or count.")
        else:
            chosen = offers[0]
            instance, candidates, price = chosen.instance_type, tuple(sorted({o.instance_type.name for o in offers})), chosen.price(capacity)
            given_zones = args.get("zones")
            usable = tuple(z for z in (facts.zones or chosen.zones) if z in chosen.zones)
            if given_zones:
                bad = [z for z in given_zones if z not in chosen.zones]
                outside = [z for z in given_zones if facts.zones and z not in facts.zones]
                if bad:
                    p.add("zones", list(given_zones), f"{instance.name} is not offered in {bad}.", f"use zones from {list(chosen.zones)}.")
                if outside:
                    p.add("zones", list(given_zones), f"{outside} are not zones of cluster '{facts.name}' ({list(facts.zones)}).", "use the cluster's zones, or add the zone to the cluster.")
                zones = tuple(given_zones)
            elif not usable:
                p.add("cluster.zones", list(facts.zones), f"none of the cluster's zones offers {instance.name} (offered in {list(chosen.zones)}).", "add one of those zones to the cluster.")
            else:
                zones = usable
            if (efa or compact) and len(zones) > 1:
                if given_zones:
                    p.add("zones", list(zones), "EFA and compact placement need all nodes in one zone.", f"give one zone, e.g. [{zones[0]!r}].")
                zones = zones[:1]
    elif args.get("instance_type") and not service:
        p.add("instance_type", args.get("instance_type"), "has no effect on an existing cluster (no nodes are created).", "remove it.")

    # -- taints and labels ---------------------------------------------------------------------
    taints: list[Taint] = []
    for i, t in enumerate(args.get("taints", [{"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}])):
        eff = t.get("effect") if isinstance(t, dict) else None
        if not isinstance(t, dict) or not t.get("key") or eff not in ("NoSchedule", "NoExecute", "PreferNoSchedule"):
            p.add(f"taints[{i}]", t, "needs a key and an effect of NoSchedule, NoExecute or PreferNoSchedule.", "fix the taint.")
            continue
        taints.append(Taint(t["key"], t.get("value", ""), eff))
    disk = args.get("disk_size_gib", 200)
    if not _is_int(disk) or disk < 50:
        p.add("disk_size_gib", disk, "is too small for CUDA images and model weights.", "set it to 50 GiB or more (default 200).")
    role = args.get("role", "general")
    if role not in ("training", "inference", "general"):
        p.add("role", role, "is not a pool role.", "use 'training', 'inference' or 'general'.")
    managed_by = args.get("replicas_managed_by", "autoscaler")
    if managed_by not in ("autoscaler", "iac"):
        p.add("replicas_managed_by", managed_by, "is not an owner of the node count.", "use 'autoscaler' or 'iac'.")
    p.raise_if_any()

    labels = {
        **dict(args.get("labels") or {}),
        LABEL_POOL: name,
        LABEL_ACCELERATOR: acc.name,
        LABEL_CAPACITY: capacity.replace("_", "-"),
    }
    if impl == "existing-device-plugin":
        # No nodes are created, so the pool's own labels cannot be put on them: select GPU nodes
        # by the label NVIDIA GPU feature discovery sets, plus any labels the user gave.
        node_selector = {**dict(args.get("labels") or {}), "nvidia.com/gpu.present": "true"}
    else:
        node_selector = {LABEL_POOL: name}
    # The device plugin's "single" MIG strategy and GKE both advertise MIG slices as
    # nvidia.com/gpu; only the "mixed" strategy (not used here) names them nvidia.com/mig-<profile>.
    # GKE: https://cloud.google.com/kubernetes-engine/docs/how-to/gpus-multi
    resource = "nvidia.com/gpu"
    per_gpu = replicas if sharing in ("time-slicing", "mps") else (_mig_slices(mig_profile) if sharing == "mig" and mig_profile else 1)
    scheduling = PoolScheduling(
        node_selector=node_selector,
        tolerations=tuple(t.toleration() for t in taints),
        resource_name=resource,
        gpus_per_node=count,
        allocatable_per_node=count * per_gpu,
        vcpus_per_node=instance.vcpus if instance else 0,
        memory_gib_per_node=instance.memory_gib if instance else 0.0,
    )
    return NodePoolPlan(
        name=name,
        implementation=impl,
        cloud=cloud,
        region=region,
        accelerator=acc,
        gpus_per_node=count,
        instance_type=instance,
        candidate_instance_types=candidates,
        zones=zones,
        capacity_type=capacity,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        taints=tuple(taints),
        labels=labels,
        disk_size_gib=disk,
        sharing=sharing,
        sharing_replicas=replicas,
        mig_profile=mig_profile,
        compact_placement=compact,
        efa=efa,
        replicas_managed_by=managed_by,
        priority=int(args.get("priority", 0)),
        role=role,
        tags={**facts.tags, **dict(args.get("tags") or {})},
        scheduling=scheduling,
        usd_per_node_hour=price,
        notice_seconds=catalog.notice_seconds(cloud),
        scale_down_delay_seconds=delay,
        node_class=node_class,
    )


def _existing_karpenter(karp: object, catalog: Catalog, p: Problems) -> tuple[str, str | None, dict[str, str] | None]:
    """Check ``karpenter`` on an existing cluster; returns (catalog cloud, region or None, node class or None)."""
    if not isinstance(karp, dict):
        p.add("karpenter", karp, "must be a mapping with node_class and region.", "e.g. {'node_class': {'group': "
              "'karpenter.kwok.sh', 'kind': 'KWOKNodeClass', 'name': 'default'}, 'region': 'us-east-1'}.")
        return "aws", None, None
    for key in sorted(set(karp) - set(KarpenterArgs.__annotations__)):
        p.add(f"karpenter.{key}", karp[key], "is not a field of karpenter.", f"use {sorted(KarpenterArgs.__annotations__)}.")
    nc = karp.get("node_class")
    node_class = None
    if not isinstance(nc, dict) or any(not isinstance(nc.get(k), str) or not nc.get(k) for k in ("group", "kind", "name")):
        p.add("karpenter.node_class", nc, "needs group, kind and name, each a non-empty string.",
              "e.g. {'group': 'karpenter.kwok.sh', 'kind': 'KWOKNodeClass', 'name': 'default'}.")
    else:
        node_class = {k: str(nc[k]) for k in ("group", "kind", "name")}
    cloud = karp.get("cloud", "aws")
    if cloud not in ("aws", "gcp"):
        p.add("karpenter.cloud", cloud, "is not a cloud of the catalog.", "use 'aws' or 'gcp'.")
        return "aws", None, node_class
    region = karp.get("region")
    if catalog.region(cloud, region or "") is None:
        p.add("karpenter.region", region, f"is not a {cloud} region in the catalog.", f"use one of {catalog.region_names(cloud)}.")
        region = None
    return cloud, region, node_class


def _mig_slices(profile: str) -> int:
    """How many instances of a MIG profile fit one GPU (7 compute slices per GPU)."""
    compute = int(profile.split("g.", 1)[0])
    return max(1, math.floor(7 / compute))
