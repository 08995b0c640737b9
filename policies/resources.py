"""What a policy sees of a resource, and the facts every policy module reads from it.

A ``ResourceView`` is plain data: type token, inputs (wire names), URN, name, ``protect``, the
provider's inputs, dependencies. It is built from the CrossGuard validation arguments (CLI) or
from a recorded registration (``gpuplane plan``); validators are pure functions of a view and a
config mapping.

Values that are unknown during ``pulumi preview`` arrive as CrossGuard sentinel strings; they are
turned into ``UNKNOWN`` here, so one unknown field (an ARN not yet created) never stops a policy
from checking the fields it can see. Rules treat ``UNKNOWN`` as "cannot tell" and do not report.

Component-level facts come from the ``gpuplane`` summary input every gpuplane component
registers (components/README.md). Summary keys read here and by the policy modules:

- every component: ``cloud``, ``region``, ``tags``
- KubernetesCluster: ``systemNodeCount``, ``systemInstanceType``, ``deletionProtection``
- GpuNodePool: ``accelerator``, ``acceleratorsPerNode``, ``instanceType``, ``capacityType``,
  ``minNodes``, ``maxNodes``, ``zones``, ``taints``, ``labels``, ``compactPlacement``, ``efa``,
  ``createsNodes``; optional ``role`` (``training`` | ``inference``)
- SpotTrainingCluster: ``capacityFallback``, ``pools`` (its GPUs are its GpuNodePool
  children), ``checkpointBucket`` (``{url, ...}``) or ``checkpointUrl``,
  ``terminationGracePeriodSeconds``, optional ``dataUrl``
- TrainingJob: ``accelerator``, ``nodes``, ``gpusPerNode``, ``capacityFallback``,
  ``checkpointUrl``, ``terminationGracePeriodSeconds``, optional ``dataUrl``
- InferenceEndpoint (``endpoint_facts``): ``platform``, ``accelerator``, ``instanceType``,
  ``gpus``, ``cpu``, ``memoryGib``, ``minScale``, ``maxScale``, ``scaleDownDelaySeconds``,
  ``coldStartBudget.totalSeconds``, ``timeouts.{requestTimeoutSeconds,
  progressDeadlineSeconds}``, ``readinessPath``, ``public``, ``auth``, ``zonalRedundancy``
- FeatureStore: ``online`` (sqlite | redis | dynamodb | sagemaker | bigtable | vertex...),
  ``onlineNodes``, ``onlineStorageGib``, ``encrypted``, ``public``, ``deletionProtection``

A missing key never raises: the rule that needs it does not fire.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.catalog import Catalog
from policies.gpuroutes import aws_type, more_gpu_requests

COMPONENT_PREFIX = "gpuplane:index:"


class _Unknown:
    """A value Pulumi cannot know during preview."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()

# pulumi_policy.proxy sentinels (stable strings of the CrossGuard wire format).
_UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)


def plain(value: Any) -> Any:
    """A deep plain copy of CrossGuard props (proxies unwrapped, unknown sentinels -> UNKNOWN)."""
    # Fast paths for the plain JSON types a proxy's target holds (every policy sees every
    # resource, so this runs for each pair): exact types first, the ABC checks only for the rest.
    kind = type(value)
    if kind is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if kind is float or kind is bool or kind is int or value is None:
        return value
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        try:
            target = value["__target"]  # pulumi_policy's _DictProxy hands out its raw dict
        except (KeyError, TypeError):
            target = value
        return {str(k): plain(v) for k, v in dict(target).items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, (bytes, bytearray)):
        try:
            target = value["__target"]  # _ListProxy
        except (KeyError, TypeError, IndexError):
            return [plain(value[i]) for i in range(len(value))]
        return [plain(v) for v in target]
    return value


def known(value: Any) -> bool:
    return value is not UNKNOWN and value is not None


@dataclass(frozen=True)
class ResourceView:
    """One resource as the policies see it."""

    type: str
    props: Mapping[str, Any]
    urn: str = ""
    name: str = ""
    protect: bool = False
    provider_props: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    parent: str | None = None

    # -- identity ------------------------------------------------------------------------------
    @property
    def component(self) -> str | None:
        """``GpuNodePool`` for a gpuplane component, else None."""
        return self.type[len(COMPONENT_PREFIX) :] if self.type.startswith(COMPONENT_PREFIX) else None

    @property
    def summary(self) -> dict[str, Any]:
        """The component's ``gpuplane`` summary input ({} for cloud resources)."""
        s = self.props.get("gpuplane") if self.component else None
        return s if isinstance(s, dict) else {}

    @property
    def ancestors(self) -> list[str]:
        """Types of the resource's ancestors, outermost first, from its URN's type chain."""
        parts = self.urn.split("::")
        if len(parts) < 4:
            return []
        chain = parts[2].split("$")
        return [t for t in chain[:-1] if t != "pulumi:pulumi:Stack"]

    @property
    def component_ancestors(self) -> list[str]:
        """Class names of the gpuplane components this resource is inside (outermost first)."""
        return [t[len(COMPONENT_PREFIX) :] for t in self.ancestors if t.startswith(COMPONENT_PREFIX)]

    @property
    def managed(self) -> bool:
        """True when a gpuplane component made this resource (its summary carries the portable facts)."""
        return bool(self.component_ancestors)

    @property
    def stack(self) -> str:
        """The stack name, read from the URN (``urn:pulumi:<stack>::<project>::...``)."""
        head = self.urn.split("::", 1)[0]
        return head.split(":", 2)[2] if head.count(":") >= 2 else ""

    @property
    def cloud(self) -> str | None:
        if self.component:
            c = self.summary.get("cloud")
            return c if isinstance(c, str) else None
        prefix = self.type.split(":", 1)[0]
        return {"aws": "aws", "gcp": "gcp", "kubernetes": "kubernetes"}.get(prefix)

    def get(self, path: str, default: Any = None) -> Any:
        return dig(self.props, path, default)


def dig(data: Any, path: str, default: Any = None) -> Any:
    """``dig(props, "scalingConfig.maxSize")``; list indexes as ``containers.0.image``."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, Mapping):
            if part not in cur:
                return default
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return default
        if cur is UNKNOWN:
            return UNKNOWN
    return cur


def first(data: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first key present (not None) among ``keys``."""
    for k in keys:
        v = data.get(k)
        if v is not None:
            return v
    return default


def number(value: Any) -> float | None:
    """Wire numbers arrive as floats (and Kubernetes quantities as strings); None when not a number."""
    if isinstance(value, bool) or value is None or value is UNKNOWN:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def fmt(value: float | None) -> str:
    """Numbers for messages: ``2`` not ``2.0``."""
    if value is None:
        return "unknown"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def duration_seconds(value: Any) -> float | None:
    """Seconds from a number or a Go/Knative duration (``90s``, ``15m``, ``1h30m``); None if unparseable."""
    n = number(value)
    if n is not None:
        return n
    if not isinstance(value, str) or not value.strip():
        return None
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


# ---------------------------------------------------------------------------------------------
# Tags / labels


def tag_maps(view: ResourceView) -> list[dict[str, Any]]:
    """Every tag/label map a resource carries (component summary tags, AWS tags, GCP labels, k8s labels)."""
    p = view.props
    maps: list[Any] = []
    if view.component:
        maps.append(view.summary.get("tags"))
    elif view.type.startswith("aws:"):
        maps.append(p.get("tags"))
    elif view.type.startswith("gcp:"):
        maps += [p.get("labels"), p.get("resourceLabels"), dig(p, "nodeConfig.resourceLabels")]
    elif view.type.startswith("kubernetes:"):
        maps += [dig(p, "metadata.labels"), dig(p, "metadata.annotations")]
    return [m for m in maps if isinstance(m, dict)]


def tags_of(view: ResourceView) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for m in tag_maps(view):
        merged.update(m)
    return merged


# ---------------------------------------------------------------------------------------------
# Regions


def region_from_location(location: Any) -> str | None:
    """A GCP location: region as is, zone -> region (``us-central1-a`` -> ``us-central1``)."""
    if not isinstance(location, str) or not location:
        return None
    m = re.match(r"^([a-z]+-[a-z]+\d+)-[a-z]$", location)
    return m.group(1) if m else location


def region_of(view: ResourceView) -> Any:
    """Where a regional resource lives: summary region, ``region`` / ``location`` input, or the provider's region.

    Returns None for resources with no region (Kubernetes objects, IAM) and UNKNOWN when Pulumi
    cannot know it yet.
    """
    if view.component:
        return view.summary.get("region")
    p = view.props
    if view.type.startswith("aws:"):
        for v in (p.get("region"), view.provider_props.get("region")):
            if v is UNKNOWN:
                return UNKNOWN
            if isinstance(v, str) and v:
                return v
        return None
    if view.type.startswith("gcp:"):
        for key in ("region", "location", "zone"):
            v = p.get(key)
            if v is UNKNOWN:
                return UNKNOWN
            if isinstance(v, str) and v:
                return region_from_location(v)
        v = view.provider_props.get("region")
        return v if isinstance(v, str) and v else None
    return None


def region_matches(region: str, patterns: Iterable[str]) -> bool:
    """Glob match, case-insensitive (``us-*``, ``europe-west4``, ``EU``)."""
    return any(fnmatch.fnmatch(region.lower(), pat.lower()) for pat in patterns)


# GCS multi-region and dual-region locations and the jurisdiction they keep data in.
GCS_MULTI_REGIONS = {"us": "us", "eu": "eu", "asia": "apac", "nam4": "us", "eur4": "eu", "asia1": "apac"}


def jurisdiction_of(catalog: Catalog, cloud: str | None, region: str) -> str | None:
    r = catalog.region(cloud or "", region) if cloud in ("aws", "gcp") else None
    if r is not None:
        return r.jurisdiction
    if cloud == "gcp":
        return GCS_MULTI_REGIONS.get(region.lower())
    return None


# ---------------------------------------------------------------------------------------------
# GPUs on cloud resources


@dataclass(frozen=True)
class GpuRequest:
    """A GPU request a resource makes: accelerator, GPUs per node/replica, where, and how many nodes at most."""

    accelerator: str
    gpus_per_node: int
    instance_type: str | None
    cloud: str | None
    max_nodes: float | None = None
    min_nodes: float | None = None
    capacity: str | None = None


def gcp_accelerator(catalog: Catalog, gcp_type: Any) -> str | None:
    if not isinstance(gcp_type, str):
        return None
    for acc in catalog.accelerators.values():
        if acc.gcp_accelerator_type == gcp_type:
            return acc.name
    return None


def gpu_requests(view: ResourceView, catalog: Catalog) -> list[GpuRequest]:
    """GPU requests of a component summary or of a raw cloud resource (empty when it asks for no GPU).

    A SpotTrainingCluster asks through its GpuNodePool children (one per pool and capacity
    type), so it has no requests of its own here.
    """
    s, p, t = view.summary, view.props, view.type
    out: list[GpuRequest] = []
    if view.component in ("GpuNodePool",) and s.get("accelerator") and s.get("createsNodes", True):
        out.append(
            GpuRequest(
                s["accelerator"],
                int(number(s.get("acceleratorsPerNode")) or 1),
                s.get("instanceType"),
                s.get("cloud"),
                number(s.get("maxNodes")),
                number(s.get("minNodes")),
                s.get("capacityType"),
            )
        )
    elif view.component == "InferenceEndpoint" and s.get("accelerator"):
        e = endpoint_facts(s)
        out.append(
            GpuRequest(
                s["accelerator"],
                int(e["gpus"] or 1),
                e["instanceType"],
                e["cloud"],
                e["maxReplicas"],
                e["minReplicas"],
                None,
            )
        )
    elif view.component == "TrainingJob" and s.get("accelerator"):
        out.append(
            GpuRequest(
                s["accelerator"],
                int(number(s.get("gpusPerNode")) or 1),
                None,
                s.get("cloud"),
                number(s.get("nodes")),
                number(s.get("nodes")),
                s.get("capacityType"),
            )
        )
    elif view.component == "BatchJob" and s.get("accelerator") and number(s.get("gpus")):
        out.append(
            GpuRequest(
                s["accelerator"],
                int(number(s.get("gpus")) or 1),
                s.get("instanceType"),
                s.get("cloud"),
                number(s.get("parallelism")),
                0.0,
                s.get("capacityType"),
            )
        )
    elif t == "aws:eks/nodeGroup:NodeGroup":
        for it in p.get("instanceTypes") or []:
            found = aws_type(catalog, it)
            if found:
                cap = {"SPOT": "spot", "ON_DEMAND": "on_demand", "CAPACITY_BLOCK": "capacity_block"}.get(
                    str(p.get("capacityType") or "ON_DEMAND")
                )
                out.append(
                    GpuRequest(
                        found[0],
                        found[1],
                        it,
                        "aws",
                        number(dig(p, "scalingConfig.maxSize")),
                        number(dig(p, "scalingConfig.minSize")),
                        cap,
                    )
                )
    elif t == "aws:ec2/instance:Instance":
        it = p.get("instanceType")
        found = aws_type(catalog, it)
        if found:
            out.append(GpuRequest(found[0], found[1], it, "aws", 1.0, 1.0, ec2_capacity(p)))
    elif t == "gcp:compute/instance:Instance":
        machine = p.get("machineType")
        info = catalog.instance_type("gcp", machine) if isinstance(machine, str) else None
        acc_name, count = (info.accelerator, info.gpus) if info else (None, 0)
        for ga in p.get("guestAccelerators") or []:
            if isinstance(ga, dict):
                acc_name = gcp_accelerator(catalog, ga.get("type")) or acc_name
                count = int(number(ga.get("count")) or count or 1)
        if acc_name:
            out.append(GpuRequest(acc_name, count or 1, machine, "gcp", 1.0, 1.0, gce_capacity(p)))
    elif t == "gcp:container/nodePool:NodePool":
        nc = p.get("nodeConfig") or {}
        machine = nc.get("machineType") if isinstance(nc, dict) else None
        info = catalog.instance_type("gcp", machine) if isinstance(machine, str) else None
        accs = nc.get("guestAccelerators") if isinstance(nc, dict) else None
        acc_name, count = (info.accelerator, info.gpus) if info else (None, 0)
        for ga in accs or []:
            if isinstance(ga, dict):
                acc_name = gcp_accelerator(catalog, ga.get("type")) or acc_name
                count = int(number(ga.get("count")) or count or 1)
        if acc_name:
            auto = p.get("autoscaling") or {}
            mx = number(first(auto, "totalMaxNodeCount", "maxNodeCount")) if isinstance(auto, dict) else None
            mn = number(first(auto, "totalMinNodeCount", "minNodeCount")) if isinstance(auto, dict) else None
            if mx is None:
                mx = number(p.get("nodeCount")) or number(p.get("initialNodeCount"))
            spot = isinstance(nc, dict) and (nc.get("spot") is True or nc.get("preemptible") is True)
            out.append(GpuRequest(acc_name, count or 1, machine, "gcp", mx, mn, "spot" if spot else "on_demand"))
    elif t == "gcp:cloudrunv2/service:Service":
        sel = dig(p, "template.nodeSelector.accelerator")
        acc = gcp_accelerator(catalog, sel)
        if acc:
            gpus = 1
            for c in dig(p, "template.containers", []) or []:
                lim = dig(c, "resources.limits") or {}  # the key "nvidia.com/gpu" has dots: no dig()
                if isinstance(lim, dict) and number(lim.get("nvidia.com/gpu")):
                    gpus = int(number(lim.get("nvidia.com/gpu")) or 1)
            out.append(
                GpuRequest(
                    acc,
                    gpus,
                    None,
                    "gcp",
                    number(dig(p, "template.scaling.maxInstanceCount")),
                    number(dig(p, "template.scaling.minInstanceCount")),
                    None,
                )
            )
    elif t == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        for v in p.get("productionVariants") or []:
            it = v.get("instanceType") if isinstance(v, dict) else None
            info = catalog.instance_type("aws", it) if isinstance(it, str) else None
            if info and info.gpus > 0:
                mx = number(dig(v, "managedInstanceScaling.maxInstanceCount")) or number(v.get("initialInstanceCount"))
                mn = number(dig(v, "managedInstanceScaling.minInstanceCount"))
                if mn is None:
                    mn = number(v.get("initialInstanceCount"))
                out.append(GpuRequest(info.accelerator, info.gpus, it, "aws", mx, mn, "on_demand"))
    else:
        out += more_gpu_requests(view, catalog, GpuRequest)
    return out


def ec2_capacity(props: Mapping[str, Any]) -> str:
    """``spot`` when an ``aws:ec2/instance:Instance`` asks for the spot market, else ``on_demand``."""
    market = dig(props, "instanceMarketOptions.marketType")
    return "spot" if isinstance(market, str) and market.lower() == "spot" else "on_demand"


def gce_capacity(props: Mapping[str, Any]) -> str:
    """``spot`` for a ``gcp:compute/instance:Instance`` with a SPOT provisioning model or preemptible."""
    sched = props.get("scheduling") or {}
    if isinstance(sched, dict) and (sched.get("provisioningModel") == "SPOT" or sched.get("preemptible") is True):
        return "spot"
    return "on_demand"


def endpoint_facts(s: Mapping[str, Any]) -> dict[str, Any]:
    """An InferenceEndpoint summary's facts under one set of names (tolerates older/newer keys)."""
    raw_timeouts = s.get("timeouts")
    timeouts: Mapping[str, Any] = raw_timeouts if isinstance(raw_timeouts, dict) else {}
    budget = s.get("coldStartBudget")
    auth = s.get("auth")
    return {
        "platform": str(first(s, "platform", "implementation", default="")),
        "cloud": s.get("cloud"),
        "region": s.get("region"),
        "accelerator": s.get("accelerator"),
        "instanceType": s.get("instanceType"),
        "gpus": number(first(s, "gpus", "gpusPerReplica", "acceleratorsPerReplica")),
        "vcpus": number(first(s, "cpu", "vcpus")),
        "memoryGib": number(s.get("memoryGib")),
        "minReplicas": number(first(s, "minScale", "minReplicas")),
        "maxReplicas": number(first(s, "maxScale", "maxReplicas")),
        "scaleDownDelaySeconds": number(s.get("scaleDownDelaySeconds")),
        "coldStartBudgetSeconds": number(budget.get("totalSeconds"))
        if isinstance(budget, dict)
        else number(first(s, "coldStartBudgetSeconds", "coldStartBudget")),
        "requestTimeoutSeconds": number(
            first(timeouts, "requestTimeoutSeconds", default=s.get("requestTimeoutSeconds"))
        ),
        "progressDeadlineSeconds": number(
            first(timeouts, "progressDeadlineSeconds", default=s.get("progressDeadlineSeconds"))
        ),
        "readiness": first(s, "readinessPath", "readinessProbe"),
        "public": s.get("public") is True,
        "authenticated": (auth not in (None, "", "none")) if "auth" in s else s.get("authenticated") is True,
        "zonalRedundancy": bool(s.get("zonalRedundancy")),
        "deletionProtection": s.get("deletionProtection"),
    }


def role_of(view: ResourceView) -> str | None:
    """``training`` or ``inference`` for GPU pools and clusters, when it can be told.

    From the summary's ``role``, a role label/tag, the enclosing component, or — for a
    GpuNodePool — EFA or compact placement, which only multi-node training asks for.
    """
    s = view.summary
    role = s.get("role")
    if isinstance(role, str):
        return role
    node_labels = view.props.get("labels") if not view.component else s.get("labels")
    labels = {**(node_labels if isinstance(node_labels, dict) else {}), **tags_of(view)}
    for key in ("gpuplane.dev/role", "gpuplane/role", "gpuplane-role", "role", "workload"):
        v = labels.get(key)
        if isinstance(v, str) and v in ("training", "inference"):
            return v
    if "SpotTrainingCluster" in view.component_ancestors or view.component in ("SpotTrainingCluster", "TrainingJob"):
        return "training"
    if view.component == "InferenceEndpoint" or "InferenceEndpoint" in view.component_ancestors:
        return "inference"
    if view.component == "GpuNodePool" and (s.get("efa") or s.get("compactPlacement")):
        return "training"  # only multi-node training asks for EFA or compact placement
    return None


def label(view: ResourceView) -> str:
    """How messages name a resource: ``GpuNodePool 'p5-train'``, ``aws:s3/bucket 'ckpt'``."""
    if view.component:
        kind = view.component
    elif view.type.startswith(("aws:", "gcp:")) and view.type.count(":") == 2:
        kind = view.type.rsplit(":", 1)[0]
    else:
        kind = view.type
    return f"{kind} '{view.name}'"


# Node selector keys that put a pod on spot capacity, and the cloud whose notice applies.
SPOT_SELECTORS: dict[str, tuple[str, str | None]] = {
    "gpuplane.dev/capacity-type": ("spot", None),
    "karpenter.sh/capacity-type": ("spot", "aws"),
    "eks.amazonaws.com/capacityType": ("SPOT", "aws"),
    "cloud.google.com/gke-spot": ("true", "gcp"),
    "cloud.google.com/gke-preemptible": ("true", "gcp"),
}


def pod_specs(view: ResourceView) -> list[tuple[str, dict[str, Any]]]:
    """(path, pod spec) of every pod template a Kubernetes workload object carries."""
    t, p = view.type, view.props
    if not t.startswith("kubernetes:"):
        return []
    kind = t.rsplit(":", 1)[-1]
    specs: list[tuple[str, Any]] = []
    if kind == "Pod":
        specs.append(("spec", p.get("spec")))
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        specs.append(("spec.template.spec", dig(p, "spec.template.spec")))
    elif kind == "CronJob":
        specs.append(("spec.jobTemplate.spec.template.spec", dig(p, "spec.jobTemplate.spec.template.spec")))
    elif kind == "JobSet":
        for i, rj in enumerate(dig(p, "spec.replicatedJobs") or []):
            specs.append(
                (f"spec.replicatedJobs[{i}].template.spec.template.spec", dig(rj, "template.spec.template.spec"))
            )
    elif kind == "Service" and "serving.knative.dev" in t:
        specs.append(("spec.template.spec", dig(p, "spec.template.spec")))
    return [(path, s) for path, s in specs if isinstance(s, dict)]


def namespace_of(view: ResourceView) -> str:
    ns = dig(view.props, "metadata.namespace")
    return ns if isinstance(ns, str) and ns else "default"


def descends_from(views: list[ResourceView], view: ResourceView, ancestor_urn: str) -> bool:
    """True when ``ancestor_urn`` is on the parent chain of ``view``."""
    by_urn = {v.urn: v for v in views}
    cur, seen = view.parent, set()
    while cur and cur not in seen:
        if cur == ancestor_urn:
            return True
        seen.add(cur)
        nxt = by_urn.get(cur)
        cur = nxt.parent if nxt else None
    return False
