"""GPU requests on the routes beside node groups and node pools (resources.gpu_requests calls this).

Contract: ``more_gpu_requests(view, catalog)`` returns the ``GpuRequest``s of raw resources that
ask for GPU capacity by another route: EC2 launch templates, launch configurations, spot
requests, autoscaling groups (mixed-instances overrides), EC2 fleets and spot fleets, aws-native
instances, Karpenter NodePools / Provisioners of any API version (the catalog GPU types their
instance-type requirements admit), Kubernetes pods whose node selector or required node affinity
picks a GPU type (GKE's ``gke-accelerator``, an instance type, Karpenter's GPU name or family:
autoprovisioning makes that node for them), GKE clusters (default pool, inline pools, node
auto-provisioning GPU limits), GCE instance templates. An instance type that looks like a GPU
type (``p*``/``g*`` on AWS, ``a2-``/``a3-``/``a4-``/``g2-`` on GCP) but is not in the catalog
is an ``unknown:<type>`` request, so the GPU type gate fails closed. ``unpriced_compute(views)``
lists raw compute the cost model does not price (``stack-budget`` counts it as unknown).
"""

from __future__ import annotations

import re
from typing import Any

from components.catalog import Catalog

_AWS_GPU_FAMILY = re.compile(r"^(p\d|g\d|dl\d)[a-z0-9-]*\.")
_GCP_GPU_FAMILY = re.compile(r"^(a2|a3|a4|g2|g4)-")
KARPENTER_PREFIX = "kubernetes:karpenter.sh/"
UNKNOWN_PREFIX = "unknown:"


def aws_type(catalog: Catalog, it: Any) -> tuple[str, int] | None:
    """(accelerator, GPUs) of an AWS instance type; ``unknown:<type>`` for an unknown GPU-family type."""
    if not isinstance(it, str) or not it:
        return None
    info = catalog.instance_type("aws", it)
    if info is not None:
        return (info.accelerator, info.gpus) if info.gpus > 0 else None
    return (f"{UNKNOWN_PREFIX}{it}", 1) if _AWS_GPU_FAMILY.match(it) else None


def gcp_type(catalog: Catalog, machine: Any, accelerators: Any) -> tuple[str, int] | None:
    acc: str | None = None
    count = 0
    info = catalog.instance_type("gcp", machine) if isinstance(machine, str) else None
    if info is not None and info.gpus > 0:
        acc, count = info.accelerator, info.gpus
    elif isinstance(machine, str) and info is None and _GCP_GPU_FAMILY.match(machine):
        acc, count = f"{UNKNOWN_PREFIX}{machine}", 1
    for ga in accelerators or [] if isinstance(accelerators, list) else []:
        if isinstance(ga, dict) and isinstance(ga.get("type"), str):
            name = next((a.name for a in catalog.accelerators.values() if a.gcp_accelerator_type == ga["type"]), None)
            acc = name or f"{UNKNOWN_PREFIX}{ga['type']}"
            n = ga.get("count")
            count = int(n) if isinstance(n, (int, float)) and n else count or 1
    return (acc, count or 1) if acc else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _gpu_name(acc: str) -> str:
    return acc.split("-", 1)[0].lower()


def _karpenter_attrs(name: str, acc: str, gpus: int) -> dict[str, str]:
    family = name.split(".", 1)[0]
    return {
        "node.kubernetes.io/instance-type": name,
        "karpenter.k8s.aws/instance-family": family,
        "karpenter.k8s.aws/instance-category": re.sub(r"[^a-z].*$", "", family) or family,
        "karpenter.k8s.aws/instance-gpu-name": _gpu_name(acc),
        "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
        "karpenter.k8s.aws/instance-gpu-count": str(gpus),
    }


def _admits(req: dict[str, Any], attrs: dict[str, str]) -> bool:
    key, op = req.get("key"), str(req.get("operator", "In"))
    vals = [str(x) for x in req.get("values") or []]
    if key not in attrs:
        return True  # a requirement on a key the catalog does not model cannot rule a type out
    have = attrs[key]
    if op == "In":
        return have in vals
    if op == "NotIn":
        return have not in vals
    if op == "DoesNotExist":
        return False
    if op in ("Gt", "Lt") and vals and have.isdigit():
        try:
            bound = float(vals[0])
        except ValueError:
            return True
        return int(have) > bound if op == "Gt" else int(have) < bound
    return True


def karpenter_types(catalog: Catalog, requirements: list[Any]) -> list[tuple[str, str, int]]:
    """(instance type, accelerator, GPUs) of every GPU type the requirements admit; unknown GPU types named in them too."""
    reqs = [r for r in requirements if isinstance(r, dict)]
    out = []
    for (cloud, name), info in catalog.instance_types.items():
        if cloud == "aws" and info.gpus > 0 and info.service == "ec2":
            attrs = _karpenter_attrs(name, info.accelerator, info.gpus)
            if all(_admits(r, attrs) for r in reqs):
                out.append((name, info.accelerator, info.gpus))
    for r in reqs:
        if r.get("key") == "node.kubernetes.io/instance-type" and str(r.get("operator", "In")) == "In":
            for it in r.get("values") or []:
                t = aws_type(catalog, it)
                if t and t[0].startswith(UNKNOWN_PREFIX):
                    out.append((str(it), t[0], t[1]))
    return out


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def more_gpu_requests(view: Any, catalog: Catalog, request: Any) -> list[Any]:
    """``request`` is resources.GpuRequest (passed in to avoid an import cycle)."""
    t, p = view.type, view.props
    out: list[Any] = []

    def aws(it: Any, mx: float | None, mn: float | None, cap: str) -> None:
        found = aws_type(catalog, it)
        if found:
            out.append(request(found[0], found[1], it, "aws", mx, mn, cap))

    if t in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/launchConfiguration:LaunchConfiguration"):
        spot = _dig(p, "instanceMarketOptions", "marketType") == "spot" or bool(p.get("spotPrice"))
        aws(p.get("instanceType"), None, None, "spot" if spot else "on_demand")
    elif t in ("aws:ec2/spotInstanceRequest:SpotInstanceRequest", "aws-native:ec2:Instance"):
        aws(p.get("instanceType"), 1.0, 1.0, "spot" if "spot" in t.lower() else "on_demand")
    elif t == "aws:autoscaling/group:Group":
        mx, mn = _num(p.get("maxSize")), _num(p.get("minSize"))
        for o in _dig(p, "mixedInstancesPolicy", "launchTemplate", "overrides") or []:
            if isinstance(o, dict):
                aws(o.get("instanceType"), mx, mn, "on_demand")
    elif t in ("aws:ec2/fleet:Fleet", "aws:ec2/spotFleetRequest:SpotFleetRequest"):
        cap = "spot" if "spot" in t.lower() else "on_demand"
        for cfg in p.get("launchTemplateConfigs") or []:
            for o in _dig(cfg, "overrides") or [] if isinstance(cfg, dict) else []:
                if isinstance(o, dict):
                    aws(o.get("instanceType"), None, None, cap)
        for spec in p.get("launchSpecifications") or []:
            if isinstance(spec, dict):
                aws(spec.get("instanceType"), None, None, cap)
    elif t.startswith(KARPENTER_PREFIX) and t.rsplit(":", 1)[-1] in ("NodePool", "Provisioner"):
        reqs = _dig(p, "spec", "template", "spec", "requirements") or _dig(p, "spec", "requirements") or []
        cap_req = next((r for r in reqs if isinstance(r, dict) and r.get("key") == "karpenter.sh/capacity-type"), None)
        cap = "spot" if cap_req and cap_req.get("values") == ["spot"] else "on_demand"
        for it, acc, gpus in karpenter_types(catalog, reqs if isinstance(reqs, list) else []):
            out.append(request(acc, gpus, it, "aws", None, None, cap))
    elif t == "gcp:container/cluster:Cluster":
        if p.get("removeDefaultNodePool") is not True:
            found = gcp_type(catalog, _dig(p, "nodeConfig", "machineType"), _dig(p, "nodeConfig", "guestAccelerators"))
            if found:
                n = _num(p.get("initialNodeCount")) or 1.0
                out.append(request(found[0], found[1], _dig(p, "nodeConfig", "machineType"), "gcp", n, n, "on_demand"))
        for pool in p.get("nodePools") or []:
            if isinstance(pool, dict):
                found = gcp_type(
                    catalog, _dig(pool, "nodeConfig", "machineType"), _dig(pool, "nodeConfig", "guestAccelerators")
                )
                if found:
                    mx = (
                        _num(_dig(pool, "autoscaling", "maxNodeCount"))
                        or _num(pool.get("nodeCount"))
                        or _num(pool.get("initialNodeCount"))
                    )
                    out.append(
                        request(
                            found[0], found[1], _dig(pool, "nodeConfig", "machineType"), "gcp", mx, None, "on_demand"
                        )
                    )
        for lim in _dig(p, "clusterAutoscaling", "resourceLimits") or []:
            if isinstance(lim, dict) and str(lim.get("resourceType", "")).startswith("nvidia-"):
                found = gcp_type(catalog, None, [{"type": lim["resourceType"], "count": 1}])
                if found and (_num(lim.get("maximum")) or 0) > 0:
                    out.append(request(found[0], 1, None, "gcp", _num(lim.get("maximum")), None, "on_demand"))
    elif t in (
        "gcp:compute/instanceTemplate:InstanceTemplate",
        "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate",
    ):
        found = gcp_type(catalog, p.get("machineType"), p.get("guestAccelerators"))
        if found:
            out.append(request(found[0], found[1], p.get("machineType"), "gcp", None, None, "on_demand"))
    elif t.startswith("kubernetes:") and not t.startswith(KARPENTER_PREFIX):
        for key, value in pod_node_selections(p):
            for acc, gpus, sel_type, cloud in _selected(catalog, key, value):
                out.append(request(acc, gpus, sel_type, cloud, None, None, None))
    return out


SELECTOR_KEYS = (
    "cloud.google.com/gke-accelerator",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-family",
)


def pod_node_selections(props: Any) -> list[tuple[str, str]]:
    """(key, value) of every GPU-choosing node selector / required node affinity in any pod spec of ``props``.

    On GKE (Autopilot, node auto-provisioning) and with Karpenter a pod's selector picks the GPU
    type of the node made for it, so it is a GPU request like a node pool's.
    """
    from policies.podsecurity import is_pod_spec, walk  # imported late: podsecurity is pure, no cycle

    out: list[tuple[str, str]] = []
    for _, d in walk(props):
        if not is_pod_spec(d):
            continue
        sel = d.get("nodeSelector")
        for k, v in sel.items() if isinstance(sel, dict) else []:
            if k in SELECTOR_KEYS and isinstance(v, str):
                out.append((k, v))
        terms = _dig(
            d, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"
        )
        for term in terms or []:
            for e in _dig(term, "matchExpressions") or []:
                if isinstance(e, dict) and e.get("key") in SELECTOR_KEYS and e.get("operator") == "In":
                    out += [(str(e["key"]), str(v)) for v in e.get("values") or []]
    return list(dict.fromkeys(out))


def _selected(catalog: Catalog, key: str, value: str) -> list[tuple[str, int, str | None, str]]:
    """(accelerator, GPUs, instance type, cloud) a node selector value picks."""
    if key == "cloud.google.com/gke-accelerator":
        found = gcp_type(catalog, None, [{"type": value, "count": 1}])
        return [(found[0], found[1], None, "gcp")] if found else []
    if key.endswith("instance-type"):
        aws = aws_type(catalog, value)
        if aws and not aws[0].startswith(UNKNOWN_PREFIX):
            return [(aws[0], aws[1], value, "aws")]
        gcp = gcp_type(catalog, value, None)
        if gcp and not gcp[0].startswith(UNKNOWN_PREFIX):
            return [(gcp[0], gcp[1], value, "gcp")]
        found = aws or gcp
        return [(found[0], found[1], value, "aws" if aws else "gcp")] if found else []
    attr = "karpenter.k8s.aws/instance-gpu-name" if key.endswith("gpu-name") else "karpenter.k8s.aws/instance-family"
    out = []
    for (cloud, name), info in catalog.instance_types.items():
        if cloud == "aws" and info.gpus > 0 and _karpenter_attrs(name, info.accelerator, info.gpus)[attr] == value:
            out.append((info.accelerator, info.gpus, name, "aws"))
    return list({o[0]: o for o in out}.values())


UNPRICED_COMPUTE = (
    "aws:autoscaling/group:Group",
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
    "aws:ec2/fleet:Fleet",
    "aws:ec2/spotFleetRequest:SpotFleetRequest",
    "aws-native:ec2:Instance",
    "gcp:compute/instanceGroupManager:InstanceGroupManager",
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager",
)


def unpriced_compute(views: list[Any]) -> list[tuple[Any, str]]:
    """(view, why) of raw compute the cost model does not price."""
    out = []
    for v in views:
        if v.managed:
            continue  # priced as part of its gpuplane component
        t = v.type
        if t in UNPRICED_COMPUTE:
            out.append((v, "the cost model does not price this resource type"))
        elif t.startswith(KARPENTER_PREFIX) and t.rsplit(":", 1)[-1] in ("NodePool", "Provisioner"):
            out.append((v, "Karpenter launches nodes the cost model cannot size"))
        elif t == "gcp:container/cluster:Cluster" and (
            (v.props.get("removeDefaultNodePool") is not True and _num(v.props.get("initialNodeCount")))
            or v.props.get("nodePools")
            or _dig(v.props, "clusterAutoscaling", "enabled") is True
        ):
            out.append((v, "its default / inline node pools or node auto-provisioning are not priced"))
    return out
