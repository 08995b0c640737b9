"""``plan_federation``: TrainingFederation's args + catalog -> a frozen plan, or one error listing every problem.

Pure (no Pulumi resources, no network): validates the manager, flavors, teams and workers, fills
quotas and prices from the catalog, and runs the mirror check (manifests.py) on what each worker
will hold. Unreachable workers (no kubeconfig the program can hand to the manager), flavors no
worker offers and workers that do not mirror the manager are reported here, before anything exists.
"""

from __future__ import annotations

from typing import Any

from components.catalog import load_catalog
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.federation.manifests import manager_objects, mirror_mismatches, worker_objects
from components.federation.spec import (
    DEFAULT_INCREMENTAL_STEP,
    DEFAULT_TEAM,
    DISPATCHER_NAMES,
    LABEL_ACCELERATOR,
    LABEL_CAPACITY,
    ExistingQueuesPlan,
    FederationPlan,
    FlavorPlan,
    TeamPlan,
    TrainingFederationArgs,
    WorkerFlavorPlan,
    WorkerPlan,
)
from components.training import NODE_CPU_FRACTION, NODE_MEMORY_FRACTION, dns_label, is_int

COMPONENT = "TrainingFederation"
MAX_WORKERS = 20
"""Kueue v1beta2 Workload ``status.nominatedClusterNames`` holds at most 20 names."""
CAPACITIES = ("spot", "on_demand", "reserved")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
"""GpuNodePool taints GPU nodes ``nvidia.com/gpu=present:NoSchedule`` by default."""


def _catalog_capacity(capacity: str) -> str:
    # Reservations are paid whether used or not; the catalog's on-demand price is the marginal
    # figure a dispatcher compares them by (no reserved-rate rows exist).
    return "spot" if capacity == "spot" else "on_demand"


def plan_federation(name: str, args: TrainingFederationArgs) -> FederationPlan:
    p = Problems(COMPONENT, name)
    cat = load_catalog()
    dns_label(p, "name", name, "federation name", max_len=50)
    if not isinstance(args.get("manager"), KubernetesCluster):
        p.add("manager", args.get("manager"), "is not a KubernetesCluster.", "pass the KubernetesCluster that runs the MultiKueue manager.")

    # -- flavors ---------------------------------------------------------------------------------
    flavors: list[FlavorPlan] = []
    raw_flavors = args.get("flavors") or []
    if not raw_flavors:
        p.add("flavors", raw_flavors, "is empty.", "give at least one flavor, e.g. {'name': 'h100-spot', 'accelerator': 'H100', 'capacity': 'spot'}.")
    for i, f in enumerate(raw_flavors):
        path = f"flavors[{i}]"
        ok = dns_label(p, f"{path}.name", f.get("name"), "ResourceFlavor name")
        accel = f.get("accelerator")
        if accel not in cat.accelerators:
            p.add(f"{path}.accelerator", accel, "is not a catalog accelerator.", f"use one of {sorted(cat.accelerators)}.")
            ok = False
        cap = f.get("capacity", "on_demand")
        if cap not in CAPACITIES:
            p.add(f"{path}.capacity", cap, "is not a capacity type.", f"use one of {list(CAPACITIES)}.")
            ok = False
        if ok and any(x.name == f["name"] for x in flavors):
            p.add(f"{path}.name", f["name"], "is used by another flavor.", "give each flavor its own name.")
            continue
        if ok:
            labels = f.get("node_labels") or {LABEL_ACCELERATOR: str(accel), LABEL_CAPACITY: str(cap).replace("_", "-")}
            flavors.append(FlavorPlan(f["name"], str(accel), str(cap), dict(labels), (dict(GPU_TOLERATION),)))
    by_name = {f.name: f for f in flavors}

    # -- teams -----------------------------------------------------------------------------------
    teams: list[TeamPlan] = []
    for i, t in enumerate(args.get("teams") or [{"name": DEFAULT_TEAM}]):
        if not dns_label(p, f"teams[{i}].name", t.get("name"), "team name"):
            continue
        ns = t.get("namespace") or t["name"]
        if not dns_label(p, f"teams[{i}].namespace", ns, "namespace"):
            continue
        if any(x.namespace == ns for x in teams):
            p.add(f"teams[{i}].namespace", ns, "is another team's namespace too.", "give each team its own namespace.")
            continue
        teams.append(TeamPlan(t["name"], ns))

    # -- dispatcher ------------------------------------------------------------------------------
    dispatcher = args.get("dispatcher", "external")
    if dispatcher not in DISPATCHER_NAMES:
        p.add("dispatcher", dispatcher, "is not a dispatcher.", f"use one of {sorted(DISPATCHER_NAMES)}.")
        dispatcher = "external"
    step = args.get("incremental_step", DEFAULT_INCREMENTAL_STEP)
    if "incremental_step" in args and dispatcher != "incremental":
        p.add("incremental_step", step, f"only applies to dispatcher='incremental' (this one is {dispatcher!r}).", "drop it, or set dispatcher='incremental'.")
    elif not is_int(step) or step < 1:
        p.add("incremental_step", step, "must be a whole number of workers, at least 1.", "set it to 1 or more (Kueue's default is 3).")
        step = DEFAULT_INCREMENTAL_STEP

    # -- workers ---------------------------------------------------------------------------------
    raw_workers = args.get("workers") or []
    if not 1 <= len(raw_workers) <= MAX_WORKERS:
        p.add("workers", len(raw_workers), f"must list 1 to {MAX_WORKERS} workers (Kueue nominates at most {MAX_WORKERS} clusters per workload).", "add a worker, or split the federation.")
    workers: list[WorkerPlan] = []
    for i, w in enumerate(raw_workers):
        plan = _plan_worker(p, cat, name, i, w, by_name, [x.name for x in workers])
        if plan is not None:
            workers.append(plan)
    for f in flavors:
        if workers and not any(w.flavor(f.name) for w in workers):
            p.add("flavors", f.name, f"flavor {f.name!r} is offered by no worker: jobs that ask for it would wait forever.", f"offer {f.name!r} on a worker (workers[*].flavors), or remove it.")

    plan = FederationPlan(
        name=name,
        queue=name,
        teams=tuple(teams),
        flavors=tuple(flavors),
        workers=tuple(workers),
        dispatcher=dispatcher,
        dispatcher_name=DISPATCHER_NAMES[dispatcher],
        incremental_step=int(step) if is_int(step) else DEFAULT_INCREMENTAL_STEP,
        install_kueue=bool(args.get("install_kueue", True)),
    )
    # -- mirror check: what each worker will hold against what the manager holds ------------------
    if flavors and teams:
        manager = manager_objects(plan)
        for w in workers:
            base = f"workers[{w.index}]" + (".existing_queues" if w.existing is not None else ".flavors")
            for what, value, message, fix in mirror_mismatches(manager, worker_objects(plan, w)):
                path = f"{base}.{what}" if w.existing is not None else base
                p.add(path, value, f"worker {w.name!r} does not mirror the manager: {message}", fix)
    p.raise_if_any()
    return plan


def _plan_worker(p: Problems, cat: Any, fed: str, i: int, w: Any, flavors: dict[str, FlavorPlan], taken: list[str]) -> WorkerPlan | None:
    path = f"workers[{i}]"
    ok = dns_label(p, f"{path}.name", w.get("name"), "MultiKueueCluster name")
    if ok and w["name"] in taken:
        p.add(f"{path}.name", w["name"], "is another worker's name too.", "give each worker its own name.")
        ok = False
    cluster = w.get("cluster")
    if not isinstance(cluster, KubernetesCluster):
        p.add(f"{path}.cluster", cluster, "is not a KubernetesCluster.", "pass the worker's KubernetesCluster.")
        return None
    facts = cluster.facts
    cloud = w.get("cloud") or facts.cloud
    if cloud not in ("aws", "gcp", "kubernetes"):
        p.add(f"{path}.cloud", cloud, "is not a cloud.", "use 'aws', 'gcp' or 'kubernetes'.")
        return None
    region = w.get("region") or facts.region
    if cloud in ("aws", "gcp"):
        if region is None:
            p.add(f"{path}.region", region, f"is unknown: the worker's cluster is an existing one and cloud={cloud!r} needs its region.", f"set region to the worker's {cloud} region, e.g. {cat.region_names(cloud)[0]!r}.")
            ok = False
        elif cat.region(cloud, region) is None:
            p.add(f"{path}.region", region, f"is not a {cloud} region in the catalog.", f"use one of {cat.region_names(cloud)}.")
            ok = False
    secret = w.get("kubeconfig_secret")
    if secret is None and not facts.kubeconfig_known:
        p.add(
            f"{path}.kubeconfig_secret", None,
            f"worker {w.get('name')!r} is unreachable from the manager: its cluster {facts.name!r} is an existing one reached through this machine's own kubeconfig, which the program cannot copy into the manager.",
            "give the worker cluster's kubeconfig (KubernetesCluster kubeconfig=...), or create a Secret with key 'kubeconfig' in the manager's kueue-system namespace and name it in kubeconfig_secret.",
        )
        ok = False
    elif secret is not None and not (isinstance(secret, str) and secret):
        p.add(f"{path}.kubeconfig_secret", secret, "is not a Secret name.", "name the Secret in kueue-system that holds the worker's kubeconfig, or drop it to create one.")
        ok = False
    wflavors: list[WorkerFlavorPlan] = []
    raw = w.get("flavors") or []
    if not raw and w.get("existing_queues") is None:
        p.add(f"{path}.flavors", raw, "is empty.", "offer at least one of the federation's flavors with a GPU quota.")
        ok = False
    for j, wf in enumerate(raw):
        fpath = f"{path}.flavors[{j}]"
        fname = wf.get("name")
        gpus = wf.get("gpus")
        if not is_int(gpus) or gpus < 1:
            p.add(f"{fpath}.gpus", gpus, "must be a whole number of GPUs, at least 1.", "set the GPUs this worker admits for the flavor.")
            ok = False
            continue
        fl = flavors.get(fname)  # an unknown name is reported by the mirror check
        per_gpu = _per_gpu_shape(cat, cloud, fl.accelerator) if fl else None
        vcpus, mem = wf.get("vcpus"), wf.get("memory_gib")
        if vcpus is None or mem is None:
            if per_gpu is None and fl is not None:
                p.add(fpath, fname, f"has no vcpus/memory_gib and the catalog has no {fl.accelerator} type on {cloud} to derive them from.", "set vcpus and memory_gib (the quota the worker's nodes hold).")
                ok = False
                continue
            vcpus = vcpus if vcpus is not None else int(gpus * per_gpu[0]) if per_gpu else 0
            mem = mem if mem is not None else round(gpus * per_gpu[1], 1) if per_gpu else 0.0
        price = wf.get("usd_per_gpu_hour")
        if price is None and fl is not None:
            price = catalog_usd_per_gpu_hour(cat, cloud, region, fl)
            if price is None:
                where = f"{cloud} {region}" if cloud != "kubernetes" else "an existing cluster (no catalog prices)"
                p.add(f"{fpath}.usd_per_gpu_hour", None, f"the catalog has no {fl.capacity} price for {fl.accelerator} in {where}, so the dispatcher could not rank this worker.", f"set usd_per_gpu_hour, or offer a flavor {cloud} sells in {region}.")
                ok = False
                continue
        elif price is not None and not (isinstance(price, (int, float)) and price > 0):
            p.add(f"{fpath}.usd_per_gpu_hour", price, "must be a positive price.", "set the $ per GPU-hour the worker costs.")
            ok = False
            continue
        wflavors.append(WorkerFlavorPlan(str(fname), int(gpus), int(vcpus), float(mem), float(price) if price is not None else None))
    existing = None
    eq = w.get("existing_queues")
    if eq is not None:
        missing = [k for k in ("namespaces", "local_queue", "cluster_queue", "flavors") if k not in eq]
        if missing:
            p.add(f"{path}.existing_queues", sorted(eq), f"lacks {missing}.", "declare namespaces, local_queue, cluster_queue and flavors as they exist on the worker.")
            return None
        existing = ExistingQueuesPlan(tuple(eq["namespaces"]), eq["local_queue"], eq["cluster_queue"], tuple(eq["flavors"]))
        if "install_kueue" in w:
            p.add(f"{path}.install_kueue", w["install_kueue"], "has no effect on a worker with existing_queues (nothing is created on it).", "drop it.")
    if not ok:
        return None
    return WorkerPlan(
        name=w["name"],
        index=i,
        cloud=cloud,
        region=region,
        notice_seconds=cat.notice_seconds(cloud),
        flavors=tuple(wflavors),
        kubeconfig_secret=secret or f"{fed}-{w['name']}-kubeconfig",
        create_secret=secret is None,
        existing=existing,
        install_kueue=bool(w.get("install_kueue", True)),
    )


def _per_gpu_shape(cat: Any, cloud: str, accelerator: str) -> tuple[float, float] | None:
    """(vCPUs, GiB) per GPU a training pod may request on the cheapest catalog type of the accelerator."""
    if cloud not in ("aws", "gcp"):
        return None
    offers = cat.find_offerings(cloud=cloud, accelerator=accelerator)
    if not offers:
        return None
    it = offers[0].instance_type
    return it.vcpus * NODE_CPU_FRACTION / it.gpus, it.memory_gib * NODE_MEMORY_FRACTION / it.gpus


def catalog_usd_per_gpu_hour(cat: Any, cloud: str, region: str | None, flavor: FlavorPlan) -> float | None:
    """The catalog's cheapest $/GPU-hour for the flavor's accelerator and capacity in the region."""
    if cloud not in ("aws", "gcp") or region is None:
        return None
    cap = _catalog_capacity(flavor.capacity)
    prices = [o.usd_per_hour[cap] / o.instance_type.gpus for o in cat.find_offerings(cloud=cloud, accelerator=flavor.accelerator, region=region, capacity=cap)]
    return round(min(prices), 5) if prices else None
