"""MultiKueue across three sandboxes: a job submitted to the manager runs on the worker gpuplane's dispatcher chose.

Three `gpuplane sandbox up --controllers` (the real Kueue v0.19.2 each; ports 20 apart): a manager whose Kueue
runs MultiKueue with an external dispatcher (``kueue-overrides.yaml``: ``multiKueue.dispatcherName`` =
``TrainingFederation``'s ``gpuplane.dev/cost-aware-dispatcher``; ``waitForPodsReady`` off there, since pods run
on the workers), and two workers. The objects are exactly what ``TrainingFederation`` plans
(``manager_objects`` / ``worker_objects`` / ``kubeconfig_secret_manifest``), applied server-side; the workers'
kubeconfigs go into the manager's Secrets with inline certificates (Kueue refuses file paths). The dispatcher
(``gpuplane.dispatch.Dispatcher``) reads them back from those Secrets, as it does in a cluster.

Worker ``gcp-usc1`` (catalog L4 spot $0.28/GPU-h, quota 1 GPU) is cheaper than ``aws-use1`` ($0.38, quota 2):

1. job 1 goes to gcp-usc1 and runs there (its copy is admitted by gcp-usc1's Kueue);
2. job 2 goes to aws-use1, because gcp-usc1 has no free quota;
3. job 3, nominated to the full gcp-usc1 (as a stale decision would), is moved to aws-use1 once the patience
   runs out; MultiKueue deletes its copy on gcp-usc1 and creates it on aws-use1.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.federation import kubeconfig_secret_manifest, manager_objects, plan_federation, worker_objects
from components.federation.spec import DISPATCHER_NAMES
from gpuplane.dispatch.controller import ANNOTATION_DISPATCH, ANNOTATION_NOMINATED_AT, Dispatcher
from gpuplane.dispatch.kube import ApiError, KubeClient
from gpuplane.sandbox import toolchain
from tests.engine.conftest import Sandbox, require_toolchain, start, stop

pytestmark = pytest.mark.engine

K = "/apis/kueue.x-k8s.io/v1beta2"
CHEAP, DEAR = "gcp-usc1", "aws-use1"


def _handle(name: str) -> KubernetesCluster:
    c = object.__new__(KubernetesCluster)
    c.facts = ClusterFacts(cloud="kubernetes", name=name, region=None, zones=(), autoscaler="none")  # type: ignore[arg-type]
    return c


PLAN = plan_federation("fed", {  # type: ignore[arg-type]
    "manager": _handle("manager"),
    "flavors": [{"name": "l4-spot", "accelerator": "L4", "capacity": "spot", "node_labels": {"node.kubernetes.io/instance-type": "g6.xlarge"}}],
    "workers": [
        {"name": CHEAP, "cluster": _handle("a"), "cloud": "gcp", "region": "us-central1", "flavors": [{"name": "l4-spot", "gpus": 1, "vcpus": 4, "memory_gib": 16}]},
        {"name": DEAR, "cluster": _handle("b"), "cloud": "aws", "region": "us-east-1", "flavors": [{"name": "l4-spot", "gpus": 2, "vcpus": 8, "memory_gib": 32}]},
    ],
    "teams": [{"name": "recs"}],
})


def inline_kubeconfig(sb: Sandbox) -> str:
    """The sandbox's admin kubeconfig with the certificates inline (what a MultiKueue Secret must hold)."""
    cfg = yaml.safe_load(Path(sb.layout.kubeconfig).read_text())
    for c in cfg["clusters"]:
        c["cluster"]["certificate-authority-data"] = base64.b64encode(Path(c["cluster"].pop("certificate-authority")).read_bytes()).decode()
    for u in cfg["users"]:
        for key in ("client-certificate", "client-key"):
            u["user"][f"{key}-data"] = base64.b64encode(Path(u["user"].pop(key)).read_bytes()).decode()
    return yaml.safe_dump(cfg)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def federation(sandbox_root: Path) -> Iterator[dict[str, Any]]:
    require_toolchain()
    from gpuplane.sandbox import controllers

    why = controllers.missing(toolchain.bin_dir())
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    overrides = sandbox_root / "mk-manager" / "kueue-overrides.yaml"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(yaml.safe_dump({"multiKueue": PLAN.multikueue_section(), "featureGates": PLAN.feature_gates(), "waitForPodsReady": None}))
    started: list[Sandbox] = []
    try:
        base = 27443
        for name in ("mk-manager", "mk-a", "mk-b"):
            sb = start(name, sandbox_root, base, controllers=True)
            started.append(sb)
            base = sb.port + 20
        manager, a, b = started
        clients = {n: KubeClient(Path(sb.layout.kubeconfig).read_text(), name=n) for n, sb in (("manager", manager), (CHEAP, a), (DEAR, b))}
        # Kueue runs as a process in the sandbox (no chart): its namespace, where MultiKueue reads the Secrets, is ours to make.
        clients["manager"].apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kueue-system"}})
        for w, sb in ((PLAN.workers[0], a), (PLAN.workers[1], b)):
            for obj in worker_objects(PLAN, w):
                clients[w.name].apply(obj)
            clients["manager"].apply(kubeconfig_secret_manifest(w, inline_kubeconfig(sb)))
        for obj in manager_objects(PLAN):
            clients["manager"].apply(obj)

        def active(path: str) -> bool:
            conds = (clients["manager"].get(path).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Active" and c["status"] == "True" for c in conds)

        for w in PLAN.workers:
            wait_for(f"MultiKueueCluster {w.name} Active", lambda w=w: active(f"{K}/multikueueclusters/{w.name}"))
        wait_for("the MultiKueue AdmissionCheck Active", lambda: active(f"{K}/admissionchecks/{PLAN.admission_check}"))
        yield {"sandboxes": started, "clients": clients}
    finally:
        for sb in started:
            stop(sb)


def submit(client: KubeClient, name: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "recs", "labels": {"kueue.x-k8s.io/queue-name": PLAN.queue}, "annotations": {"gpuplane.dev/expected-hours": "2"}},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "suspend": True,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "train", "image": "ghcr.io/gpuplane/training:0.1.0", "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
            }]}},
        },
    }
    client.request("POST", "/apis/batch/v1/namespaces/recs/jobs", job)


def workload_of(client: KubeClient, job: str) -> dict[str, Any] | None:
    for wl in client.items(f"{K}/namespaces/recs/workloads"):
        if any(o.get("name") == job for o in wl["metadata"].get("ownerReferences") or []):
            return wl
    return None


def dispatched(d: Dispatcher, client: KubeClient, job: str) -> Callable[[], str | None]:
    def check() -> str | None:
        d.step()
        wl = workload_of(client, job)
        return (wl or {}).get("status", {}).get("clusterName")

    return check


def job_on(client: KubeClient, name: str) -> bool:
    return exists(client, f"/apis/batch/v1/namespaces/recs/jobs/{name}")


def exists(client: KubeClient, path: str) -> bool:
    try:
        client.get(path)
        return True
    except ApiError as e:
        if e.status == 404:
            return False
        raise


def admitted_on_worker(client: KubeClient, job: str) -> bool:
    wl = workload_of(client, job)
    conds = ((wl or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Admitted" and c["status"] == "True" for c in conds)


def test_manager_config_names_the_external_dispatcher(federation):
    manager = federation["sandboxes"][0]
    config = yaml.safe_load(Path(manager.layout.path("kueue.yaml")).read_text())
    assert config["multiKueue"] == {"dispatcherName": DISPATCHER_NAMES["external"]}
    assert config["featureGates"]["WorkloadRequestUseMergePatch"] is True
    assert "waitForPodsReady" not in config or config["waitForPodsReady"] is None


def test_jobs_go_to_the_cheapest_worker_with_room_and_move_off_a_full_one(federation):
    c = federation["clients"]
    d = Dispatcher(c["manager"], load_catalog(), patience_seconds=3.0)

    # 1. the cheapest worker takes the first job
    submit(c["manager"], "job-1")
    assert wait_for("job-1 placed", dispatched(d, c["manager"], "job-1")) == CHEAP
    wl = workload_of(c["manager"], "job-1")
    record = json.loads(wl["metadata"]["annotations"][ANNOTATION_DISPATCH])
    assert record["nominated"] == [CHEAP] and [s["worker"] for s in record["scores"]] == [CHEAP, DEAR], record
    assert wait_for("job-1's copy admitted by gcp-usc1's Kueue", lambda: admitted_on_worker(c[CHEAP], "job-1"))
    assert job_on(c[CHEAP], "job-1") and not job_on(c[DEAR], "job-1")
    events = c["manager"].items("/api/v1/namespaces/recs/events")
    assert any(e["reason"] == "WorkerNominated" and e["involvedObject"]["name"] == wl["metadata"]["name"] for e in events)

    # 2. gcp-usc1's only GPU is taken: the next job goes to aws-use1
    submit(c["manager"], "job-2")
    assert wait_for("job-2 placed", dispatched(d, c["manager"], "job-2")) == DEAR
    record = json.loads(workload_of(c["manager"], "job-2")["metadata"]["annotations"][ANNOTATION_DISPATCH])
    assert record["scores"][0]["worker"] == DEAR and record["scores"][1] == {**record["scores"][1], "worker": CHEAP, "hasCapacity": False}
    assert wait_for("job-2's copy admitted by aws-use1's Kueue", lambda: admitted_on_worker(c[DEAR], "job-2"))

    # 3. a job nominated to the full worker moves once the patience runs out
    submit(c["manager"], "job-3")
    wl = wait_for("job-3's quota reserved on the manager", lambda: (w := workload_of(c["manager"], "job-3")) and (w.get("status") or {}).get("admission") and w)
    path = f"{K}/namespaces/recs/workloads/{wl['metadata']['name']}"
    c["manager"].merge_patch(path, {"metadata": {"annotations": {ANNOTATION_NOMINATED_AT: f"{time.time():.3f}"}}})
    c["manager"].merge_patch(path + "/status", {"status": {"nominatedClusterNames": [CHEAP]}})
    remote = f"{K}/namespaces/recs/workloads/{wl['metadata']['name']}"
    wait_for("job-3's workload copied to gcp-usc1 (pending there: no quota)", lambda: exists(c[CHEAP], remote), timeout=60)
    assert not admitted_on_worker(c[CHEAP], "job-3")
    assert d.step().nominated == {}  # inside the patience: left where it is
    time.sleep(3.5)
    assert wait_for("job-3 placed", dispatched(d, c["manager"], "job-3")) == DEAR
    assert wait_for("job-3's workload removed from gcp-usc1", lambda: not exists(c[CHEAP], remote), timeout=60)
    assert wait_for("job-3's copy admitted by aws-use1's Kueue", lambda: admitted_on_worker(c[DEAR], "job-3"))
    moved = [e for e in c["manager"].items("/api/v1/namespaces/recs/events") if "moved from gcp-usc1" in e.get("message", "")]
    assert moved, "no event records the move"
