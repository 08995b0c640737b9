"""TrainingFederation's pure manifests: what the manager and each worker hold, and the mirror check.

Built with the training capability's Kueue builders (components/training/kueue.py) so that a
federation's queues are shaped exactly like a SpotTrainingCluster's. Functions here return plain
dicts (no Pulumi); ``multikueue.py`` turns them into resources, the engine lane applies them to
real clusters as they are, and ``mirror_mismatches`` compares them.
"""

from __future__ import annotations

from typing import Any

from components.federation.spec import (
    ANNOTATION_ACCELERATOR,
    ANNOTATION_CAPACITY,
    KUBECONFIG_KEY,
    KUEUE_NAMESPACE,
    MULTIKUEUE_CONTROLLER,
    FederationPlan,
    WorkerPlan,
)
from components.training import (
    KUEUE_API,
    cluster_queue_manifest,
    flavor_quota,
    local_queue_manifest,
    namespaces_selector,
    resource_flavor_manifest,
)

MANAGED = {"app.kubernetes.io/managed-by": "gpuplane"}


def namespace_manifest(name: str, team: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {**MANAGED, "gpuplane.dev/team": team}}}


def _team_objects(plan: FederationPlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in plan.teams:
        out.append(namespace_manifest(t.namespace, t.name))
        out.append(local_queue_manifest(plan.queue, t.namespace, plan.queue, t.name))
    return out


def admission_check_manifest(plan: FederationPlan) -> dict[str, Any]:
    return {
        "apiVersion": KUEUE_API,
        "kind": "AdmissionCheck",
        "metadata": {"name": plan.admission_check, "labels": dict(MANAGED)},
        "spec": {
            "controllerName": MULTIKUEUE_CONTROLLER,
            "parameters": {"apiGroup": "kueue.x-k8s.io", "kind": "MultiKueueConfig", "name": plan.multikueue_config},
        },
    }


def multikueue_config_manifest(plan: FederationPlan) -> dict[str, Any]:
    return {
        "apiVersion": KUEUE_API,
        "kind": "MultiKueueConfig",
        "metadata": {"name": plan.multikueue_config, "labels": dict(MANAGED)},
        "spec": {"clusters": [w.name for w in plan.workers]},
    }


def multikueue_cluster_manifest(worker: WorkerPlan) -> dict[str, Any]:
    return {
        "apiVersion": KUEUE_API,
        "kind": "MultiKueueCluster",
        "metadata": {"name": worker.name, "labels": dict(MANAGED), "annotations": worker.annotations()},
        "spec": {"clusterSource": {"kubeConfig": {"location": worker.kubeconfig_secret, "locationType": "Secret"}}},
    }


def kubeconfig_secret_manifest(worker: WorkerPlan, kubeconfig: str) -> dict[str, Any]:
    """The Secret MultiKueue reads a worker's kubeconfig from (key ``kubeconfig``, in ``kueue-system``)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": worker.kubeconfig_secret, "namespace": KUEUE_NAMESPACE, "labels": dict(MANAGED)},
        "type": "Opaque",
        "stringData": {KUBECONFIG_KEY: kubeconfig},
    }


def manager_flavor_manifests(plan: FederationPlan) -> list[dict[str, Any]]:
    """Quota-only flavors (no node labels): nothing runs on the manager."""
    out = []
    for f in plan.flavors:
        m = resource_flavor_manifest(f.name, None)
        m["metadata"]["annotations"] = {ANNOTATION_ACCELERATOR: f.accelerator, ANNOTATION_CAPACITY: f.capacity}
        out.append(m)
    return out


def manager_cluster_queue(plan: FederationPlan) -> dict[str, Any]:
    flavors = [flavor_quota(f.name, *plan.manager_quota(f.name)) for f in plan.flavors]
    return cluster_queue_manifest(plan.queue, namespaces_selector(t.namespace for t in plan.teams), flavors, admission_checks=[plan.admission_check])


def manager_objects(plan: FederationPlan) -> list[dict[str, Any]]:
    """Everything the manager holds except the kubeconfig Secrets (their contents are the workers')."""
    return [
        *manager_flavor_manifests(plan),
        admission_check_manifest(plan),
        multikueue_config_manifest(plan),
        *(multikueue_cluster_manifest(w) for w in plan.workers),
        manager_cluster_queue(plan),
        *_team_objects(plan),
    ]


def worker_objects(plan: FederationPlan, worker: WorkerPlan) -> list[dict[str, Any]]:
    """What a worker holds: the mirror the federation creates, or what ``existing_queues`` declares."""
    if worker.existing is not None:
        e = worker.existing
        out: list[dict[str, Any]] = [resource_flavor_manifest(f, {}) for f in e.flavors]
        out.append(cluster_queue_manifest(e.cluster_queue, namespaces_selector(e.namespaces), [flavor_quota(f, 0, 0, 0) for f in e.flavors]))
        for ns in e.namespaces:
            out.append(namespace_manifest(ns, ns))
            out.append(local_queue_manifest(e.local_queue, ns, e.cluster_queue, ns))
        return out
    out = []
    for wf in worker.flavors:
        f = plan.flavor(wf.name)
        out.append(resource_flavor_manifest(wf.name, f.node_labels if f else {}, f.tolerations if f else ()))
    quotas = [flavor_quota(wf.name, wf.gpus, wf.vcpus, wf.memory_gib) for wf in worker.flavors]
    out.append(cluster_queue_manifest(plan.queue, namespaces_selector(t.namespace for t in plan.teams), quotas))
    out += _team_objects(plan)
    return out


def _index(objs: list[dict[str, Any]]) -> dict[str, Any]:
    namespaces = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
    local_queues = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]["clusterQueue"] for o in objs if o["kind"] == "LocalQueue"}
    cluster_queues = {o["metadata"]["name"]: [f["name"] for g in o["spec"]["resourceGroups"] for f in g["flavors"]] for o in objs if o["kind"] == "ClusterQueue"}
    flavors = {o["metadata"]["name"] for o in objs if o["kind"] == "ResourceFlavor"}
    return {"namespaces": namespaces, "local_queues": local_queues, "cluster_queues": cluster_queues, "flavors": flavors}


def mirror_mismatches(manager: list[dict[str, Any]], worker: list[dict[str, Any]]) -> list[tuple[str, Any, str, str]]:
    """Every way a worker's objects fail to mirror the manager's: ``(what, value, message, fix)``, one per mismatch.

    Mirrored means: each manager namespace exists on the worker with a LocalQueue of the same name
    pointing at a ClusterQueue of the same name as on the manager; that ClusterQueue exists; and
    every flavor the worker's ClusterQueue lists is one the manager defines (a worker may offer
    fewer flavors than the manager, never others) and exists on the worker.
    """
    m, w = _index(manager), _index(worker)
    out: list[tuple[str, Any, str, str]] = []
    for ns in sorted(m["namespaces"] - w["namespaces"]):
        out.append(("namespaces", ns, f"namespace {ns!r} exists on the manager but not on the worker.", f"create namespace {ns!r} on the worker (or add it to existing_queues.namespaces once it exists)."))
    for (ns, lq), cq in sorted(m["local_queues"].items()):
        if ns not in w["namespaces"]:
            continue  # reported with the namespace
        got = w["local_queues"].get((ns, lq))
        if got is None:
            others = sorted(name for (n, name) in w["local_queues"] if n == ns)
            out.append(("local_queue", others[0] if others else None, f"namespace {ns!r} has no LocalQueue {lq!r} on the worker (MultiKueue creates the job's copy with queue-name {lq!r}).", f"name the worker's LocalQueue {lq!r}."))
        elif got != cq:
            out.append(("cluster_queue", got, f"LocalQueue {ns}/{lq} points at ClusterQueue {got!r} on the worker, {cq!r} on the manager.", f"point it at a ClusterQueue named {cq!r}."))
    for cq in sorted(set(m["cluster_queues"]) - set(w["cluster_queues"])):
        out.append(("cluster_queue", sorted(w["cluster_queues"]) or None, f"ClusterQueue {cq!r} exists on the manager but not on the worker.", f"name the worker's ClusterQueue {cq!r}."))
    for cq, flavors in sorted(w["cluster_queues"].items()):
        for f in flavors:
            if f not in m["flavors"]:
                out.append(("flavors", f, f"the worker's ClusterQueue {cq!r} offers flavor {f!r}, which the manager does not define (known: {sorted(m['flavors'])}).", "use one of the federation's flavor names, or add the flavor to the federation's flavors."))
            elif f not in w["flavors"]:
                out.append(("flavors", f, f"the worker's ClusterQueue {cq!r} lists flavor {f!r} but the worker has no such ResourceFlavor.", f"create ResourceFlavor {f!r} on the worker."))
    return out
