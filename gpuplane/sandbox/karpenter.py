"""Karpenter's kwok cloud provider in the sandbox, fed with gpuplane's catalog.

Contract:

- Program: ``karpenter-kwok`` (sigs.k8s.io/karpenter/kwok at ``toolchain.KARPENTER_VERSION``), built by the
  toolchain. ``gpuplane sandbox up --controllers`` starts it after Kueue and JobSet (``start``, called by
  ``cluster.up``). It runs as a sandbox process named ``karpenter`` (``pids.json``, ``logs/karpenter.log``;
  ``gpuplane sandbox down`` stops it) with the sandbox's admin kubeconfig (``KUBECONFIG``: the operator has no
  flag for it), leader election off, every feature gate that needs more CRDs off, its metrics on base+10 and
  its health probes on base+11 (``ports``).
- Loopback only: Karpenter's operator binds both servers to ``:PORT`` (all interfaces; pkg/operator/operator.go,
  no flag), so as root it runs in a network namespace of its own behind ``gpuplane.sandbox.netns``: it reaches
  the kube-apiserver on ``127.0.0.1`` through the relay, and only its health port is relayed back to the host's
  loopback (metrics stay inside). Without root (no namespace) it runs directly, and then its two ports listen
  on every interface: ``start`` says so.
- Instance types: ``instance_types()`` writes the kwok provider's instance-type JSON (the ``InstanceTypeOptions``
  of sigs.k8s.io/karpenter/kwok/cloudprovider/helpers.go: ``name``, ``offerings`` of ``{Price, Available,
  Requirements}``, ``architecture``, ``operatingSystems``, ``resources``) from gpuplane's catalog: every EC2 type
  the catalog offers in the sandbox's region, its vCPUs, memory and GPUs (``nvidia.com/gpu``), and one spot and one
  on-demand offering per catalog zone at the catalog's regional prices. Karpenter launches the cheapest offering a
  NodePool allows; the node it makes has the annotation ``kwok.x-k8s.io/node=fake``, which is what the sandbox's
  kwok manages (``--manage-nodes-with-annotation-selector``), so kwok keeps it Ready.
- Objects: the CRDs NodePool, NodeClaim (``kwok/charts/crds``) and KWOKNodeClass (``kwok/apis/crds``), read from
  the module's source in the Go module cache (what the toolchain built from; nothing is copied into the clone),
  and one KWOKNodeClass ``default`` (``NODE_CLASS``) for gpuplane's NodePools to refer to
  (``GpuNodePool(karpenter={"node_class": NODE_CLASS, "region": REGION})``).
- Pure parts (``ports``, ``instance_types``, ``command``, ``environment``, ``crd_paths``, ``node_pool_object``,
  ``gpu_pod``, ``cheapest``) are unit-tested; ``prepare``, ``ready``, ``start`` and the queries talk to the
  filesystem or the sandbox (through ``cluster.api``, passed in: this module does not import cluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.catalog import Catalog, load_catalog
from gpuplane.sandbox import netns, toolchain
from gpuplane.sandbox.controllers import Api, ControllerError, server_side_apply
from gpuplane.sandbox.nodes import PODS_PER_NODE, REGION

NAME = "karpenter"
"""Process name in ``pids.json`` (and the log's name)."""
PROGRAM = "karpenter-kwok"
MODULE = "sigs.k8s.io/karpenter"
NODE_CLASS = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}
"""The node class the sandbox creates; a GpuNodePool's ``karpenter.node_class`` on the sandbox."""
CRD_FILES = ("kwok/charts/crds/karpenter.sh_nodepools.yaml", "kwok/charts/crds/karpenter.sh_nodeclaims.yaml",
             "kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml")
"""The CRDs the kwok provider needs with the feature gates below (NodeOverlay and CapacityBuffer are off)."""
FEATURE_GATES = ("NodeRepair=false,ReservedCapacity=false,SpotToSpotConsolidation=false,NodeOverlay=false,"
                 "StaticCapacity=false,CapacityBuffer=false")
CAPACITY_TYPES = {"spot": "spot", "on_demand": "on-demand"}
"""Catalog capacity -> ``karpenter.sh/capacity-type`` (capacity blocks need reservations: not offered)."""
ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
HOST = "127.0.0.1"
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


HEALTH = "karpenter-health"


def ports(layout: Any) -> dict[str, int]:
    """``karpenter-metrics`` (base+10, inside its namespace) and ``karpenter-health`` (health probes, base+11), as
    ``Layout.ports`` names them in a sandbox with controllers."""
    return {"karpenter-metrics": layout.port + 10, HEALTH: layout.port + 11}


def instance_types(catalog: Catalog | None = None, region: str = REGION) -> list[dict[str, Any]]:
    """The kwok provider's instance-type list for ``region`` (pure; see the module docstring)."""
    catalog = catalog or load_catalog()
    out: list[dict[str, Any]] = []
    for (cloud, name), it in sorted(catalog.instance_types.items()):
        if cloud != "aws" or it.service != "ec2":
            continue
        offering = catalog.offering("aws", name, region)
        if offering is None:
            continue
        offerings = [
            {"Price": price, "Available": True, "Requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [label]},
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]},
            ]}
            for capacity, label in CAPACITY_TYPES.items()
            if (price := offering.price(capacity)) is not None  # type: ignore[arg-type]
            for zone in offering.zones
        ]
        if not offerings:
            continue
        resources = {"cpu": str(it.vcpus), "memory": f"{int(it.memory_gib)}Gi", "pods": str(PODS_PER_NODE),
                     "ephemeral-storage": "200Gi"}
        if it.gpus:
            resources["nvidia.com/gpu"] = str(it.gpus)
        out.append({"name": name, "offerings": offerings, "architecture": _architecture(it),
                    "operatingSystems": ["linux"], "resources": resources})
    return out


def _architecture(it: Any) -> str:
    # The catalog's CSV has an architecture column (all x86_64 today) that the loader does not keep yet.
    arch = str(getattr(it, "architecture", "x86_64"))
    return ARCHITECTURES.get(arch, arch)


def instance_types_file(layout: Any) -> Path:
    return Path(layout.path("karpenter-instance-types.json"))


def environment(layout: Any) -> dict[str, str]:
    """What the operator reads from the environment (only the kubeconfig: it has no flag)."""
    return {"KUBECONFIG": str(layout.kubeconfig)}


def command(layout: Any, bindir: Path, jail: bool | None = None) -> list[str]:
    """The command line ``start`` runs (pure given ``jail``; default: ``netns.available()``)."""
    p = ports(layout)
    program = [
        "env", *(f"{k}={v}" for k, v in environment(layout).items()), str(bindir / PROGRAM),
        f"--instance-types-file-path={instance_types_file(layout)}",
        f"--metrics-port={p['karpenter-metrics']}", f"--health-probe-port={p[HEALTH]}",
        "--disable-leader-election=true", f"--feature-gates={FEATURE_GATES}", "--log-level=info",
    ]
    if jail if jail is not None else netns.available():
        return netns.relay_argv(program, inward=[layout.port], outward=[p[HEALTH]])
    return program


def executable(layout: Any, bindir: Path, jail: bool | None = None) -> str:
    """What ``pids.json`` records as the process's program (the relay's Python, or the operator)."""
    return command(layout, bindir, jail)[0] if (jail if jail is not None else netns.available()) else str(bindir / PROGRAM)


def module_dir(version: str = toolchain.KARPENTER_VERSION) -> Path | None:
    """The module's source in the Go module cache (``$GOMODCACHE``, ``$GOPATH/pkg/mod``, ``go env GOMODCACHE``)."""
    candidates = [os.environ.get("GOMODCACHE"), os.environ.get("GOPATH") and os.path.join(os.environ["GOPATH"], "pkg", "mod"),
                  str(Path.home() / "go" / "pkg" / "mod")]
    for root in candidates:
        if root and (Path(root) / f"{MODULE}@{version}").is_dir():
            return Path(root) / f"{MODULE}@{version}"
    try:
        root = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return None
    folder = Path(root) / f"{MODULE}@{version}" if root else None
    return folder if folder and folder.is_dir() else None


def crd_paths(moddir: Path) -> list[Path]:
    """The CRD files ``start`` installs, in order (pure)."""
    return [moddir / f for f in CRD_FILES]


def crds(moddir: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in crd_paths(moddir)]


def missing(bindir: Path) -> str | None:
    """Why the provider cannot start (one line with the fix), or None."""
    if toolchain.missing([PROGRAM], bindir):
        return f"{PROGRAM} is not built (looked in {bindir}); run `make engine` (or `python -m gpuplane.sandbox.toolchain {PROGRAM}`)"
    moddir = module_dir()
    if moddir is None:
        return (f"the source of {MODULE}@{toolchain.KARPENTER_VERSION} (its CRDs) is not in the Go module cache; "
                f"run `make engine` (it downloads the module to build {PROGRAM})")
    gone = [str(p) for p in crd_paths(moddir) if not p.is_file()]
    return f"Karpenter's CRD files are missing: {gone}" if gone else None


def prepare(layout: Any, bindir: Path) -> None:
    """Write the instance-type file; raise ``ControllerError`` when the program or the module source is missing."""
    why = missing(bindir)
    if why:
        raise ControllerError(why)
    instance_types_file(layout).write_text(json.dumps(instance_types(), indent=1) + "\n")


def ready(layout: Any) -> bool:
    """Karpenter's readiness probe answers 200 (its caches synced and its CRDs known)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ports(layout)[HEALTH]}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def start(
    layout: Any,
    bindir: Path,
    api: Api,
    launch: Callable[[str, list[str], str], None],
    wait: Callable[[str, Callable[[], bool]], None],
    step: Callable[[str], None],
) -> None:
    """Install the CRDs and the node class, start the provider (``launch(name, argv, exe)``) and wait until it is
    ready. ``wait(what, check)`` raises when a started process dies or time runs out; a problem of this module's own
    is a ``ControllerError``."""
    prepare(layout, bindir)
    moddir = module_dir()
    assert moddir is not None  # prepare checked it
    objs = crds(moddir)
    for crd in objs:
        code, body = server_side_apply(api, layout, _CRDS, crd)
        if code not in (200, 201):
            raise ControllerError(f"installing CRD {crd['metadata']['name']} failed ({code}): {str(body)[:300]}")

    def established() -> bool:
        for crd in objs:
            code, body = api(layout, "GET", f"{_CRDS}/{crd['metadata']['name']}")
            conds = body.get("status", {}).get("conditions", []) if code == 200 and isinstance(body, dict) else []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    wait("Karpenter's CRDs Established", established)
    node_class = {"apiVersion": f"{NODE_CLASS['group']}/v1alpha1", "kind": NODE_CLASS["kind"],
                  "metadata": {"name": NODE_CLASS["name"]}, "spec": {}}
    code, body = server_side_apply(api, layout, f"/apis/{NODE_CLASS['group']}/v1alpha1/kwoknodeclasses", node_class)
    if code not in (200, 201):
        raise ControllerError(f"creating KWOKNodeClass {NODE_CLASS['name']} failed ({code}): {str(body)[:300]}")
    step(f"{len(objs)} Karpenter CRDs established, KWOKNodeClass '{NODE_CLASS['name']}'")
    jail = netns.available()
    launch(NAME, command(layout, bindir, jail), executable(layout, bindir, jail))
    wait(f"Karpenter /readyz on {HOST}:{ports(layout)[HEALTH]}", lambda: ready(layout))
    step(f"Karpenter (kwok provider) ready, {len(instance_types())} instance types from the catalog"
         + ("" if jail else f"; NOT loopback-only: without root its ports {sorted(ports(layout).values())} listen on every interface"))


# -- what gpuplane emits for the sandbox's Karpenter, and what a test or a benchmark asks it -----------------


def pool_args(accelerator: str = "L4", capacity_type: str = "spot", max_nodes: int = 2,
              scale_down_delay_seconds: int = 300) -> dict[str, Any]:
    """``GpuNodePool`` args (less ``cluster``) for a Karpenter pool on the sandbox."""
    return {"accelerator": accelerator, "capacity_type": capacity_type, "max_nodes": max_nodes,
            "karpenter": {"node_class": dict(NODE_CLASS), "region": REGION},
            "scale_down_delay_seconds": scale_down_delay_seconds}


def node_pool_object(name: str, **kw: Any) -> dict[str, Any]:
    """The NodePool a sandbox ``GpuNodePool`` named ``name`` emits (gpuplane's own planner and spec), without Pulumi."""
    from components.cluster import ClusterFacts
    from components.node_pool import plan_node_pool
    from components.node_pool.karpenter import k8s_name, karpenter_node_pool_spec

    facts = ClusterFacts(cloud="kubernetes", name="sandbox", region=None, zones=(), autoscaler="none")
    plan = plan_node_pool(name, pool_args(**kw), facts)  # type: ignore[arg-type]
    assert plan.node_class is not None
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": k8s_name(name)},
            "spec": karpenter_node_pool_spec(plan, plan.node_class)}


def gpu_pod(name: str, pool: str, gpus: int = 1, namespace: str = "default") -> dict[str, Any]:
    """A pod that fits only a node of GpuNodePool ``pool`` (its selector, its GPU taint's toleration, a GPU)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeSelector": {"gpuplane.dev/pool": pool},
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                      "effect": "NoSchedule"}],
                     "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi",
                                                                "nvidia.com/gpu": str(gpus)},
                                                   "limits": {"nvidia.com/gpu": str(gpus)}}}],
                     "terminationGracePeriodSeconds": 0}}


def cheapest(candidates: list[str], capacity_type: str, catalog: Catalog | None = None, region: str = REGION) -> str:
    """The candidate type with the lowest catalog price at ``capacity_type`` (what Karpenter should launch)."""
    catalog = catalog or load_catalog()
    priced = [(p, n) for n in candidates if (p := catalog.price("aws", n, region, capacity_type)) is not None]  # type: ignore[arg-type]
    return min(priced)[1]


def nodeclaims(api: Api, layout: Any, pool: str | None = None) -> list[dict[str, Any]]:
    """The NodeClaims (of NodePool ``pool`` when given)."""
    query = f"?labelSelector=karpenter.sh/nodepool%3D{pool}" if pool else ""
    code, body = api(layout, "GET", f"/apis/karpenter.sh/v1/nodeclaims{query}")
    return list(body.get("items", [])) if code == 200 and isinstance(body, dict) else []


def condition(obj: dict[str, Any], kind: str) -> bool:
    """``status.conditions[type=kind].status == "True"``."""
    return any(c.get("type") == kind and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []))


def events(api: Api, layout: Any, kind: str, name: str, namespace: str = "default") -> list[dict[str, Any]]:
    """Events about one object (``kind``/``name``; NodeClaims and Nodes are reported in ``default``)."""
    sel = f"involvedObject.kind%3D{kind},involvedObject.name%3D{name}"
    code, body = api(layout, "GET", f"/api/v1/namespaces/{namespace}/events?fieldSelector={sel}")
    return list(body.get("items", [])) if code == 200 and isinstance(body, dict) else []
