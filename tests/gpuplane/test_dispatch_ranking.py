"""The cost-aware dispatcher's pure decision: price, notice, free quota, data distance, residency, bad input."""

from __future__ import annotations

import pytest

from components.catalog import load_catalog
from gpuplane.dispatch import JobRequest, Residency, WorkerState, rank

CAT = load_catalog()


def _workers(**free: int) -> list[WorkerState]:
    # $/GPU-hour as TrainingFederation derives them from the catalog (g6.xlarge spot us-east-1, g2-standard-4 spot us-central1)
    return [
        WorkerState("aws-use1", "aws", "us-east-1", 120, {"l4-spot": 0.38205}, {"l4-spot": free.get("aws", 8)}),
        WorkerState("gcp-usc1", "gcp", "us-central1", 30, {"l4-spot": 0.28184}, {"l4-spot": free.get("gcp", 8)}),
        WorkerState("gcp-euw4", "gcp", "europe-west4", 30, {"l4-spot": 0.3153}, {"l4-spot": free.get("eu", 8)}),
    ]


def _job(**over) -> JobRequest:
    args = {"key": "recs/gpt", "flavor": "l4-spot", "gpus": 4, "capacity": "on_demand", "hours": 10.0}
    args.update(over)
    return JobRequest(**args)


def test_cheapest_worker_with_capacity_wins_without_data():
    d = rank(_job(), _workers(), Residency(), CAT)
    assert d.nominated == ("gcp-usc1",)
    assert [s.worker for s in d.scores] == ["gcp-usc1", "gcp-euw4", "aws-use1"]
    assert d.scores[0].compute_usd == pytest.approx(0.28184 * 4 * 10)


def test_data_distance_brings_the_job_to_its_data():
    # 100 GiB in S3 us-east-1: GCP pays internet egress ($0.09/GiB from AWS, catalog) and waits for the copy.
    d = rank(_job(data_cloud="aws", data_region="us-east-1", data_gib=100), _workers(), Residency(), CAT)
    assert d.nominated == ("aws-use1",)
    gcp = next(s for s in d.scores if s.worker == "gcp-usc1")
    assert gcp.egress_usd == pytest.approx(9.0)
    assert gcp.transfer_hours == pytest.approx(100 / 0.1 / 3600)
    assert d.scores[0].egress_usd == 0.0


def test_short_preemption_notice_costs_spot_jobs_lost_work():
    d = rank(_job(capacity="spot"), _workers(), Residency(), CAT)
    by = {s.worker: s for s in d.scores}
    # AWS's 120 s notice fits a 60 s emergency checkpoint (restart only); GCP's 30 s does not (half a Young/Daly interval lost)
    assert by["aws-use1"].preemption_usd == pytest.approx(0.05 * 10 * 0.1 * 0.38205 * 4)
    assert by["gcp-usc1"].preemption_usd > 5 * by["gcp-usc1"].compute_usd * 0.05 * 0.1
    assert rank(_job(capacity="on_demand"), _workers(), Residency(), CAT).scores[0].preemption_usd == 0.0


def test_a_full_worker_ranks_after_every_worker_with_room():
    d = rank(_job(), _workers(gcp=2), Residency(), CAT)
    assert d.nominated == ("gcp-euw4",)
    assert d.scores[-1].worker == "gcp-usc1" and not d.scores[-1].has_capacity


def test_residency_excludes_workers_outright():
    res = Residency(("*",), ("eu",), "policies/config/eu.json")
    d = rank(_job(), _workers(), res, CAT)
    assert d.nominated == ("gcp-euw4",)
    assert "residency: region us-central1 (us) is outside allowedJurisdictions ['eu']" in d.excluded["gcp-usc1"]
    d = rank(_job(), _workers(), Residency(("us-east-*",), (), "cfg"), CAT)
    assert d.nominated == ("aws-use1",) and "outside allowedRegions ['us-east-*']" in d.excluded["gcp-usc1"]


def test_residency_excluding_every_worker_is_one_message_with_the_fix():
    d = rank(_job(), _workers(), Residency(("ap-*",), (), "policies/config/apac.json"), CAT)
    assert d.nominated == () and d.scores == ()
    assert d.error.startswith("recs/gpt: the residency rule excludes every worker (aws-use1 (aws us-east-1), gcp-usc1 (gcp us-central1), gcp-euw4 (gcp europe-west4))")
    assert "policies/config/apac.json" in d.error and "To fix: add a worker in an allowed region, or widen allowed-regions" in d.error


def test_flavor_no_worker_offers_is_one_message_with_the_fix():
    d = rank(_job(flavor="h100-spot"), _workers(), Residency(), CAT)
    assert d.error == "recs/gpt: no worker offers flavor 'h100-spot' (offered: ['l4-spot']). To fix: offer it on a worker (TrainingFederation workers[*].flavors), or submit the job to a flavor a worker offers."


def test_unreachable_workers_are_excluded_and_named():
    ws = [WorkerState(w.name, w.cloud, w.region, w.notice_seconds, w.usd_per_gpu_hour, w.free_gpus, reachable=w.name == "aws-use1", unreachable_reason="connection refused") for w in _workers()]
    d = rank(_job(), ws, Residency(), CAT)
    assert d.nominated == ("aws-use1",) and d.excluded["gcp-usc1"] == "unreachable: connection refused"
    ws = [WorkerState(w.name, w.cloud, w.region, 0, {}, {}, reachable=False, unreachable_reason="worker x (https://127.0.0.1:1) is unreachable") for w in _workers()]
    d = rank(_job(), ws, Residency(), CAT)
    assert d.error.startswith("recs/gpt: every worker cluster is unreachable") and "To fix: check each MultiKueueCluster's kubeconfig Secret" in d.error


def test_explain_records_every_score_and_exclusion():
    d = rank(_job(), _workers(gcp=0), Residency(("*",), ("us",), "cfg"), CAT)
    rec = d.explain()
    assert rec["nominated"] == ["aws-use1"]
    assert [s["worker"] for s in rec["scores"]] == ["aws-use1", "gcp-usc1"]
    assert rec["scores"][1]["hasCapacity"] is False and rec["scores"][1]["waitUsd"] > 0
    assert set(rec["excluded"]) == {"gcp-euw4"}
