"""The dispatcher's loop against an in-memory API (the real API is the engine lane's): what it reads and writes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from components.catalog import load_catalog
from gpuplane.dispatch.controller import ANNOTATION_DISPATCH, Dispatcher, free_gpus
from gpuplane.dispatch.kube import ApiError, KubeClient, Unreachable
from gpuplane.dispatch.ranking import Residency

K = "/apis/kueue.x-k8s.io/v1beta2"


class FakeKube:
    def __init__(self, objects: dict[str, Any]):
        self.objects = objects
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []

    def get(self, path: str) -> Any:
        if path not in self.objects:
            raise ApiError(404, {"message": "not found"}, path)
        return self.objects[path]

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.objects.get(path, []))

    def merge_patch(self, path: str, patch: dict[str, Any]) -> Any:
        self.patches.append((path, patch))
        return {}

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.events.append(body)
        return body


def _cq(gpus: int, reserved: int) -> dict[str, Any]:
    return {
        "spec": {"resourceGroups": [{"flavors": [{"name": "l4-spot", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": gpus}]}]}]},
        "status": {"flavorsReservation": [{"name": "l4-spot", "resources": [{"name": "nvidia.com/gpu", "total": str(reserved)}]}]},
    }


def _mkc(name: str, cloud: str, region: str, price: float, notice: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"gpuplane.dev/cloud": cloud, "gpuplane.dev/region": region, "gpuplane.dev/preemption-notice-seconds": str(notice), "gpuplane.dev/usd-per-gpu-hour": json.dumps({"l4-spot": price})}},
        "spec": {"clusterSource": {"kubeConfig": {"location": f"fed-{name}-kubeconfig", "locationType": "Secret"}}},
    }


def _workload(name: str, nominated: list[str] | None = None, annotations: dict[str, str] | None = None, state: str = "Pending") -> dict[str, Any]:
    status: dict[str, Any] = {
        "admission": {"clusterQueue": "fed", "podSetAssignments": [{"name": "main", "flavors": {"nvidia.com/gpu": "l4-spot"}, "resourceUsage": {"nvidia.com/gpu": "2"}}]},
        "admissionChecks": [{"name": "fed-multikueue", "state": state}],
    }
    if nominated:
        status["nominatedClusterNames"] = nominated
    return {"metadata": {"name": name, "namespace": "recs", "uid": "u1", "annotations": annotations or {}, "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name}]}, "status": status}


def _manager(workloads: list[dict[str, Any]], job_annotations: dict[str, str] | None = None) -> FakeKube:
    return FakeKube({
        f"{K}/admissionchecks": [{"metadata": {"name": "fed-multikueue"}, "spec": {"controllerName": "kueue.x-k8s.io/multikueue", "parameters": {"name": "fed"}}}],
        f"{K}/multikueueconfigs": [{"metadata": {"name": "fed"}, "spec": {"clusters": ["aws-use1", "gcp-usc1"]}}],
        f"{K}/multikueueclusters": [_mkc("aws-use1", "aws", "us-east-1", 0.38205, 120), _mkc("gcp-usc1", "gcp", "us-central1", 0.28184, 30)],
        f"{K}/resourceflavors": [{"metadata": {"name": "l4-spot", "annotations": {"gpuplane.dev/capacity-type": "spot"}}}],
        f"{K}/workloads": workloads,
        **{f"/apis/batch/v1/namespaces/recs/jobs/{w['metadata']['name']}": {"metadata": {"annotations": job_annotations or {}}} for w in workloads},
    })


def _dispatcher(manager: FakeKube, aws_free=(8, 0), gcp_free=(8, 0), now: float = 1000.0, **kw: Any) -> Dispatcher:
    workers = {"aws-use1": FakeKube({f"{K}/clusterqueues/fed": _cq(*aws_free)}), "gcp-usc1": FakeKube({f"{K}/clusterqueues/fed": _cq(*gcp_free)})}
    return Dispatcher(manager, load_catalog(), kw.pop("residency", Residency()), workers=workers, clock=lambda: now, **kw)  # type: ignore[arg-type]


def test_free_gpus_is_nominal_minus_reserved():
    assert free_gpus(_cq(8, 6)) == {"l4-spot": 2}
    assert free_gpus({"spec": {"resourceGroups": [{"flavors": [{"name": "a", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": "4"}]}]}]}}) == {"a": 4}


def test_pending_workload_gets_the_cheapest_worker_and_the_reasons():
    m = _manager([_workload("gpt")])
    p = _dispatcher(m).step()
    assert p.nominated == {"recs/gpt": ["gcp-usc1"]}
    status = [x for x in m.patches if x[0].endswith("/status")]
    assert status == [(f"{K}/namespaces/recs/workloads/gpt/status", {"status": {"nominatedClusterNames": ["gcp-usc1"]}})]
    meta = next(x[1] for x in m.patches if not x[0].endswith("/status"))
    record = json.loads(meta["metadata"]["annotations"][ANNOTATION_DISPATCH])
    assert [s["worker"] for s in record["scores"]] == ["gcp-usc1", "aws-use1"]
    assert m.events[0]["reason"] == "WorkerNominated" and "nominated gcp-usc1" in m.events[0]["message"]


def test_data_location_from_the_jobs_annotation_and_the_policy_bucket_regions():
    m = _manager([_workload("gpt")], {"gpuplane.dev/data-url": "s3://retail-events-us-east-1/log/", "gpuplane.dev/data-gib": "200", "gpuplane.dev/expected-hours": "4"})
    p = _dispatcher(m, bucket_regions={"retail-events-us-east-1": "us-east-1"}).step()
    assert p.nominated == {"recs/gpt": ["aws-use1"]}
    gcp = next(s for s in p.decisions[0].scores if s.worker == "gcp-usc1")
    assert gcp.egress_usd == pytest.approx(200 * 0.09)


def test_admitted_ready_or_foreign_workloads_are_left_alone():
    done = _workload("done", state="Ready")
    placed = _workload("placed")
    placed["status"]["clusterName"] = "aws-use1"
    no_quota = _workload("waiting")
    del no_quota["status"]["admission"]
    m = _manager([done, placed, no_quota])
    assert _dispatcher(m).step().decisions == [] and m.patches == []


def test_a_job_moves_off_a_full_worker_after_the_patience():
    wl = _workload("gpt", nominated=["gcp-usc1"], annotations={"gpuplane.dev/nominated-at": "990"})
    m = _manager([wl])
    assert _dispatcher(m, gcp_free=(8, 8), now=1000.0, patience_seconds=30).step().nominated == {}  # 10 s: still patient
    p = _dispatcher(m, gcp_free=(8, 8), now=1021.0, patience_seconds=30).step()
    assert p.nominated == {"recs/gpt": ["aws-use1"]}
    assert "moved from gcp-usc1: no free quota there" in m.events[-1]["message"]
    m2 = _manager([wl])  # a nominee with room keeps the job, however long it takes
    assert _dispatcher(m2, now=5000.0).step().nominated == {}


def test_two_jobs_in_one_pass_do_not_both_take_the_last_gpus():
    m = _manager([_workload("a"), _workload("b")])
    p = _dispatcher(m, gcp_free=(2, 0)).step()
    assert p.nominated == {"recs/a": ["gcp-usc1"], "recs/b": ["aws-use1"]}


def test_residency_excluding_every_worker_records_the_error_once():
    m = _manager([_workload("gpt")])
    p = _dispatcher(m, residency=Residency(("eu-*",), (), "policies/config/eu.json")).step()
    assert p.nominated == {} and len(p.errors) == 1 and "the residency rule excludes every worker" in p.errors[0]
    assert m.events[0]["type"] == "Warning" and m.events[0]["reason"] == "DispatchFailed"
    assert not [x for x in m.patches if x[0].endswith("/status")]


def test_missing_kubeconfig_secret_makes_the_worker_unreachable_with_the_fix():
    m = _manager([_workload("gpt")])
    d = Dispatcher(m, load_catalog(), Residency(), clock=lambda: 0.0)  # type: ignore[arg-type]
    p = d.step()
    assert p.nominated == {}
    assert "kubeconfig Secret kueue-system/fed-aws-use1-kubeconfig does not exist on the manager" in p.errors[0]
    assert "To fix: create it with key 'kubeconfig'" in p.errors[0]


def test_connection_refused_is_a_clear_message():
    kc = {"apiVersion": "v1", "kind": "Config", "current-context": "c", "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
          "users": [{"name": "c", "user": {"token": "t"}}], "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}]}
    m = _manager([_workload("gpt")])
    m.objects["/api/v1/namespaces/kueue-system/secrets/fed-aws-use1-kubeconfig"] = {"data": {"kubeconfig": base64.b64encode(json.dumps(kc).encode()).decode()}}
    with pytest.raises(Unreachable) as err:
        KubeClient(kc, name="worker aws-use1").get("/version")
    assert str(err.value).startswith("worker aws-use1 (https://127.0.0.1:1) is unreachable: [Errno 111] Connection refused. To fix:")
    d = Dispatcher(m, load_catalog(), Residency(), workers={"gcp-usc1": FakeKube({})}, clock=lambda: 0.0)  # type: ignore[arg-type]
    p = d.step()
    assert p.errors[0].startswith("recs/gpt: every worker cluster is unreachable (aws-use1: worker aws-use1 (https://127.0.0.1:1) is unreachable: [Errno 111] Connection refused")
    assert "gcp-usc1: ClusterQueue 'fed' is missing on the worker (it does not mirror the manager)" in p.errors[0]


def test_cli_names_a_bad_kubeconfig_and_reads_residency_from_the_policy_config(tmp_path):
    from typer.testing import CliRunner

    from gpuplane.dispatch.cli import app, load_policy_config

    r = CliRunner().invoke(app, ["run", "--kubeconfig", str(tmp_path / "missing.yaml"), "--once"])
    assert r.exit_code == 2 and "--kubeconfig" in r.output and "To fix: pass the manager cluster's kubeconfig" in r.output
    cfg = tmp_path / "policy.json"
    cfg.write_text(json.dumps({"allowed-regions": {"allowedRegions": ["us-*"], "allowedJurisdictions": ["us"]},
                               "training-data-colocated": {"bucketRegions": {"events": "us-east-1"}}}))
    residency, buckets = load_policy_config(cfg)
    assert residency.allowed_regions == ("us-*",) and residency.allowed_jurisdictions == ("us",) and buckets == {"events": "us-east-1"}
    assert residency.excludes(load_catalog(), "gcp", "europe-west4") == "region europe-west4 is outside allowedRegions ['us-*']"
