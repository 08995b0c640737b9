"""The cost-aware MultiKueue dispatcher (External mode): a thin loop around ``ranking.rank``.

Kueue's manager runs with ``multiKueue.dispatcherName`` set to an external name
(``TrainingFederation(dispatcher="external")``); it then reserves quota on the manager and waits
for someone to write ``status.nominatedClusterNames`` on the Workload (kueue v0.19.2
pkg/controller/admissionchecks/multikueue/workload.go: "Incremental dispatcher and External
dispatcher path"), creates the job's copy on the nominated workers and deletes it from workers
no longer nominated. This loop is that someone. Each pass:

1. reads the manager's AdmissionChecks (controller ``kueue.x-k8s.io/multikueue``), their
   MultiKueueConfigs and MultiKueueClusters (annotations: cloud, region, notice, $/GPU-hour per
   flavor, written by TrainingFederation) and connects to each worker with the kubeconfig in the
   Secret the MultiKueueCluster names (or a client given in code);
2. reads each worker's ClusterQueue status: free GPUs per flavor = nominal quota minus reserved;
3. for every Workload with quota reserved on the manager, a MultiKueue check still Pending and no
   ``status.clusterName``: builds a ``JobRequest`` (flavor and GPUs from ``status.admission``;
   expected hours and data location from the owner job's annotations ``gpuplane.dev/expected-hours``,
   ``gpuplane.dev/data-url`` / ``gpuplane.dev/data-region`` and ``gpuplane.dev/data-gib``), ranks the
   workers, and writes ``status.nominatedClusterNames``; the scores go to the Workload's
   ``gpuplane.dev/dispatch`` annotation and an Event;
4. re-nominates a workload whose nominee still has not admitted it after ``patience_seconds`` and has
   no free quota for it, so a job moves to another worker when the first is full.

Residency (``allowed-regions`` in a policy config file) excludes workers outright.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

from gpuplane.dispatch.kube import ApiError, KubeClient, Unreachable
from gpuplane.dispatch.ranking import Decision, JobRequest, Residency, WorkerState, rank

KUEUE = "/apis/kueue.x-k8s.io/v1beta2"
MULTIKUEUE_CONTROLLER = "kueue.x-k8s.io/multikueue"
GPU = "nvidia.com/gpu"
ANNOTATION_DISPATCH = "gpuplane.dev/dispatch"
ANNOTATION_NOMINATED_AT = "gpuplane.dev/nominated-at"
JOB_HOURS = "gpuplane.dev/expected-hours"
JOB_DATA_URL = "gpuplane.dev/data-url"
JOB_DATA_REGION = "gpuplane.dev/data-region"
JOB_DATA_GIB = "gpuplane.dev/data-gib"
SCHEMES = {"s3": "aws", "gs": "gcp"}


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number (GPU counts, cpu, memory in bytes)."""
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * mult
    return float(s)


def free_gpus(cluster_queue: dict[str, Any]) -> dict[str, int]:
    """Flavor -> GPUs of nominal quota not reserved, from a ClusterQueue (spec + status)."""
    nominal: dict[str, float] = {}
    for group in cluster_queue.get("spec", {}).get("resourceGroups", []):
        for f in group.get("flavors", []):
            for r in f.get("resources", []):
                if r["name"] == GPU:
                    nominal[f["name"]] = quantity(r["nominalQuota"])
    used: dict[str, float] = {}
    for f in cluster_queue.get("status", {}).get("flavorsReservation") or []:
        for r in f.get("resources", []):
            if r["name"] == GPU:
                used[f["name"]] = quantity(r.get("total", 0))
    return {name: int(q - used.get(name, 0)) for name, q in nominal.items()}


@dataclass
class Pass:
    """What one pass of the loop did."""

    decisions: list[Decision] = field(default_factory=list)
    nominated: dict[str, list[str]] = field(default_factory=dict)
    """Workload -> the nomination written this pass."""
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        manager: KubeClient,
        catalog: Any,
        residency: Residency | None = None,
        *,
        workers: dict[str, KubeClient] | None = None,
        bucket_regions: dict[str, str] | None = None,
        patience_seconds: float = 30.0,
        kueue_namespace: str = "kueue-system",
        clock: Any = time.time,
    ):
        self.manager = manager
        self.catalog = catalog
        self.residency = residency or Residency()
        self._given_workers = dict(workers or {})
        self.bucket_regions = dict(bucket_regions or {})
        self.patience_seconds = patience_seconds
        self.kueue_namespace = kueue_namespace
        self.clock = clock
        self._clients: dict[str, KubeClient] = {}

    # -- reading ------------------------------------------------------------------------------
    def _client(self, mkc: dict[str, Any]) -> KubeClient:
        name = mkc["metadata"]["name"]
        if name in self._given_workers:
            return self._given_workers[name]
        if name not in self._clients:
            loc = mkc.get("spec", {}).get("clusterSource", {}).get("kubeConfig", {})
            secret_name = loc.get("location")
            if loc.get("locationType", "Secret") != "Secret":
                raise Unreachable(f"worker {name}: kubeConfig locationType {loc.get('locationType')!r} is a path on the manager's pods. To fix: use a Secret (TrainingFederation does).")
            try:
                secret = self.manager.get(f"/api/v1/namespaces/{self.kueue_namespace}/secrets/{secret_name}")
            except ApiError as e:
                if e.status == 404:
                    raise Unreachable(
                        f"worker {name}: its kubeconfig Secret {self.kueue_namespace}/{secret_name} does not exist on the manager. "
                        f"To fix: create it with key 'kubeconfig' (TrainingFederation creates it unless kubeconfig_secret names one)."
                    ) from None
                raise
            data = (secret.get("data") or {}).get("kubeconfig")
            if not data:
                raise Unreachable(f"worker {name}: Secret {self.kueue_namespace}/{secret_name} has no 'kubeconfig' key. To fix: store the worker's kubeconfig under that key.")
            self._clients[name] = KubeClient(base64.b64decode(data).decode(), name=f"worker {name}")
        return self._clients[name]

    def worker_states(self, cluster_queue: str, names: list[str]) -> list[WorkerState]:
        states = []
        mkcs = {m["metadata"]["name"]: m for m in self.manager.items(f"{KUEUE}/multikueueclusters")}
        for name in names:
            mkc = mkcs.get(name)
            if mkc is None:
                states.append(WorkerState(name, "kubernetes", "", 0, {}, {}, reachable=False, unreachable_reason=f"no MultiKueueCluster {name!r} on the manager"))
                continue
            ann = mkc["metadata"].get("annotations") or {}
            prices = json.loads(ann.get("gpuplane.dev/usd-per-gpu-hour") or "{}")
            cloud, region = ann.get("gpuplane.dev/cloud", "kubernetes"), ann.get("gpuplane.dev/region", "")
            notice = int(ann.get("gpuplane.dev/preemption-notice-seconds") or self.catalog.notice_seconds(cloud if cloud in ("aws", "gcp") else "kubernetes"))
            try:
                cq = self._client(mkc).get(f"{KUEUE}/clusterqueues/{cluster_queue}")
                free = free_gpus(cq)
            except (Unreachable, ValueError) as e:
                states.append(WorkerState(name, cloud, region, notice, prices, {}, reachable=False, unreachable_reason=str(e)))
                continue
            except ApiError as e:
                reason = f"ClusterQueue {cluster_queue!r} is missing on the worker (it does not mirror the manager)" if e.status == 404 else str(e)
                states.append(WorkerState(name, cloud, region, notice, prices, {}, reachable=False, unreachable_reason=reason))
                continue
            states.append(WorkerState(name, cloud, region, notice, prices, free))
        return states

    def _job_request(self, wl: dict[str, Any], capacities: dict[str, str]) -> JobRequest:
        meta, status = wl["metadata"], wl.get("status", {})
        psas = status["admission"].get("podSetAssignments") or []
        flavor = next((a["flavors"].get(GPU) or next(iter(a["flavors"].values()), "") for a in psas if a.get("flavors")), "")
        gpus = int(sum(quantity((a.get("resourceUsage") or {}).get(GPU, 0)) for a in psas))
        ann = dict(meta.get("annotations") or {})
        owner = next(iter(meta.get("ownerReferences") or []), None)
        if owner is not None:
            api = owner["apiVersion"]
            base = f"/apis/{api}" if "/" in api else f"/api/{api}"
            try:
                job = self.manager.get(f"{base}/namespaces/{meta['namespace']}/{owner['kind'].lower()}s/{owner['name']}")
                ann = {**(job["metadata"].get("annotations") or {}), **ann}
            except ApiError:
                pass  # the job is gone or unreadable: rank without its hints
        data_cloud = data_region = None
        if ann.get(JOB_DATA_REGION):
            data_cloud, _, data_region = ann[JOB_DATA_REGION].partition("/")
        elif ann.get(JOB_DATA_URL):
            scheme, _, rest = ann[JOB_DATA_URL].partition("://")
            bucket = rest.split("/", 1)[0]
            if scheme in SCHEMES and bucket in self.bucket_regions:
                data_cloud, data_region = SCHEMES[scheme], self.bucket_regions[bucket]
        return JobRequest(
            key=f"{meta['namespace']}/{meta['name']}",
            flavor=flavor,
            gpus=max(gpus, 1),
            capacity=capacities.get(flavor, "on_demand"),
            hours=float(ann.get(JOB_HOURS) or 1.0),
            data_cloud=data_cloud,
            data_region=data_region,
            data_gib=float(ann.get(JOB_DATA_GIB) or 0.0),
        )

    # -- one pass -----------------------------------------------------------------------------
    def step(self) -> Pass:
        out = Pass()
        checks = {a["metadata"]["name"]: a for a in self.manager.items(f"{KUEUE}/admissionchecks") if a.get("spec", {}).get("controllerName") == MULTIKUEUE_CONTROLLER}
        if not checks:
            return out
        configs = {c["metadata"]["name"]: c.get("spec", {}).get("clusters") or [] for c in self.manager.items(f"{KUEUE}/multikueueconfigs")}
        capacities = {f["metadata"]["name"]: (f["metadata"].get("annotations") or {}).get("gpuplane.dev/capacity-type", "on_demand") for f in self.manager.items(f"{KUEUE}/resourceflavors")}
        states_cache: dict[tuple[str, str], list[WorkerState]] = {}
        for wl in self.manager.items(f"{KUEUE}/workloads"):
            status = wl.get("status", {})
            mk = next((s for s in status.get("admissionChecks") or [] if s.get("name") in checks), None)
            if mk is None or mk.get("state") != "Pending" or not status.get("admission") or status.get("clusterName"):
                continue
            if any(c.get("type") == "Finished" and c.get("status") == "True" for c in status.get("conditions") or []):
                continue
            params = checks[mk["name"]]["spec"].get("parameters") or {}
            workers = configs.get(params.get("name", ""), [])
            cq = status["admission"]["clusterQueue"]
            if (cq, params.get("name", "")) not in states_cache:
                states_cache[(cq, params.get("name", ""))] = self.worker_states(cq, workers)
            job = self._job_request(wl, capacities)
            decision = rank(job, states_cache[(cq, params.get("name", ""))], self.residency, self.catalog)
            out.decisions.append(decision)
            try:
                written = self._apply(wl, decision)
            except (ApiError, Unreachable) as e:
                out.errors.append(f"{job.key}: {e}")
                continue
            if written is not None:
                out.nominated[job.key] = written
                # What it reserves is not in the worker's status yet: keep this pass's view honest.
                for s in states_cache[(cq, params.get("name", ""))]:
                    if s.name in written and job.flavor in s.free_gpus:
                        s.free_gpus[job.flavor] -= job.gpus
            if decision.error:
                out.errors.append(decision.error)
        return out

    def _apply(self, wl: dict[str, Any], decision: Decision) -> list[str] | None:
        meta, status = wl["metadata"], wl.get("status", {})
        path = f"{KUEUE}/namespaces/{meta['namespace']}/workloads/{meta['name']}"
        current = list(status.get("nominatedClusterNames") or [])
        ann = meta.get("annotations") or {}
        if decision.error:
            if json.loads(ann.get(ANNOTATION_DISPATCH) or "{}").get("error") != decision.error:
                self.manager.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_DISPATCH: json.dumps(decision.explain(), sort_keys=True)}}})
                self._event(wl, "Warning", "DispatchFailed", decision.error)
            return None
        target = list(decision.nominated)
        if current == target:
            return None
        if current:
            since = float(ann.get(ANNOTATION_NOMINATED_AT) or 0)
            by_name = {s.worker: s for s in decision.scores}
            nominee_ok = all(n in by_name and by_name[n].has_capacity for n in current)
            if nominee_ok or self.clock() - since < self.patience_seconds:
                return None  # give the nominee time; move only off a worker that cannot admit the job
        self.manager.merge_patch(path, {"metadata": {"annotations": {ANNOTATION_DISPATCH: json.dumps(decision.explain(), sort_keys=True), ANNOTATION_NOMINATED_AT: f"{self.clock():.3f}"}}})
        self.manager.merge_patch(path + "/status", {"status": {"nominatedClusterNames": target}})
        best = decision.scores[0]
        moved = f" (moved from {', '.join(current)}: no free quota there)" if current else ""
        self._event(wl, "Normal", "WorkerNominated", f"nominated {', '.join(target)}{moved}: ${best.total_usd:.2f} for the job (compute {best.compute_usd:.2f}, preemption {best.preemption_usd:.2f}, egress {best.egress_usd:.2f}, wait {best.wait_usd:.2f})")
        return target

    def _event(self, wl: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = wl["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload", "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": "gpuplane-dispatcher"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiError):  # an event is a courtesy; the annotation holds the record
            self.manager.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", event)

    def run(self, interval_seconds: float = 5.0, passes: int | None = None, echo: Any = print) -> None:
        n = 0
        while passes is None or n < passes:
            try:
                p = self.step()
            except Unreachable as e:
                echo(f"error: manager: {e}")
            else:
                for key, names in p.nominated.items():
                    echo(f"{key} -> {', '.join(names)}")
                for err in p.errors:
                    echo(f"error: {err}")
            n += 1
            if passes is None or n < passes:
                time.sleep(interval_seconds)
