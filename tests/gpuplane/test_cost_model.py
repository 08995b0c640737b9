"""The cost model against hand-computed prices, unknown prices, usage profiles, diffs, Markdown."""

from __future__ import annotations

import json

import pytest

from components.catalog import HOURS_PER_MONTH, load_catalog
from gpuplane.engine.cost import cost_diff, cost_markdown, load_cost_json, price_run, render_pr_comment, resource_key
from gpuplane.engine.runtime import ProgramRun, RecordedResource
from policies.costmodel import Usage, UsageError, price_resources
from tests.policies.fixtures import (
    TAGS,
    cluster_summary,
    component,
    endpoint_summary,
    pool_summary,
    training_pool_summary,
    urn,
    view,
)

CAT = load_catalog()
P5_SPOT_US_EAST_1 = 21.1543  # aws_prices.csv: p5.48xlarge, us-east-1, spot (SkyPilot v8 zone median)
P5_ON_DEMAND_US_EAST_1 = 55.04  # after the June 2025 P4/P5 cut
G6_SPOT_US_EAST_1 = 0.38205  # g6.xlarge, us-east-1, spot (zone median)


def one(views, usage=None):
    report = price_resources(views, usage or Usage(), CAT)
    return report, report.items


def test_p5_spot_pool_min_expected_max():
    pool = component(
        "GpuNodePool",
        pool_summary(accelerator="H100", acceleratorsPerNode=8, instanceType="p5.48xlarge", minNodes=0, maxNodes=4),
        "p5",
    )
    report, [item] = one([pool])
    assert item.hourly.min == 0
    assert item.hourly.expected == pytest.approx(0.25 * 4 * P5_SPOT_US_EAST_1)  # expectedNodeFraction 0.25 of 0..4
    assert item.hourly.max == pytest.approx(4 * P5_SPOT_US_EAST_1)
    assert item.monthly.max == pytest.approx(4 * P5_SPOT_US_EAST_1 * 730)
    assert report.monthly.max == pytest.approx(4 * 21.1543 * 730)
    assert "p5.48xlarge spot in us-east-1 at $21.1543/h" in item.basis


def test_training_pool_runs_min_always_and_the_rest_for_training_hours():
    pool = component("GpuNodePool", training_pool_summary(capacityType="spot", minNodes=1, maxNodes=3), "train")
    _, [item] = one([pool], Usage(training_hours_per_month=100))
    assert item.monthly.expected == pytest.approx(P5_SPOT_US_EAST_1 * (1 * 730 + 2 * 100))
    assert item.monthly.min == pytest.approx(P5_SPOT_US_EAST_1 * 730)


def test_on_demand_fallback_pool_in_a_training_cluster_is_expected_idle():
    pool = view(
        "gpuplane:index:GpuNodePool",
        {"gpuplane": training_pool_summary(capacityType="on_demand", minNodes=0, maxNodes=2)},
        "fb",
        parents=("gpuplane:index:SpotTrainingCluster",),
    )
    _, [item] = one([pool])
    assert item.hourly.expected == 0 and item.hourly.max == pytest.approx(2 * P5_ON_DEMAND_US_EAST_1)


def test_gke_pool_is_host_plus_gpus():
    pool = component(
        "GpuNodePool",
        pool_summary(
            cloud="gcp",
            region="us-central1",
            zones=["us-central1-a"],
            accelerator="A100-40GB",
            instanceType="a2-highgpu-1g",
            capacityType="on_demand",
            minNodes=1,
            maxNodes=1,
        ),
        "a100",
    )
    _, [item] = one([pool])
    assert item.hourly.min == pytest.approx(0.73948 + 2.93391)
    assert "at $3.6734/h [host $0.7395 + 1 x A100-40GB $2.9339" in item.basis


def test_cloud_run_endpoint_per_second_rates_and_duty_cycle():
    ep = component("InferenceEndpoint", endpoint_summary(minScale=0, maxScale=2, scaleDownDelaySeconds=300), "recs")
    _, [item] = one([ep], Usage(endpoint_busy_hours_per_day=6))
    per_instance_hour = 3600 * (0.0001867 + 4 * 0.000018 + 16 * 0.000002)
    assert per_instance_hour == pytest.approx(1.04652)
    awake_hours_per_day = 6 + 6 * 300 / 3600
    assert item.hourly.expected == pytest.approx(per_instance_hour * awake_hours_per_day / 24)
    assert item.hourly.min == 0 and item.hourly.max == pytest.approx(2 * per_instance_hour)


def test_sagemaker_endpoint_with_a_warm_replica():
    ep = component(
        "InferenceEndpoint",
        endpoint_summary(
            platform="sagemaker", cloud="aws", region="us-east-1", instanceType="ml.g6.xlarge", minScale=1, maxScale=2
        ),
        "sm",
    )
    _, [item] = one([ep])
    assert (item.hourly.min, item.hourly.expected, item.hourly.max) == pytest.approx((1.1267, 1.1267, 2 * 1.1267))


def test_knative_endpoint_is_priced_on_its_pool_not_twice():
    ep = component("InferenceEndpoint", endpoint_summary(platform="knative"), "k")
    _, items = one([ep])
    assert items == []


def test_cluster_control_plane_and_system_nodes():
    report, items = one([component("KubernetesCluster", cluster_summary(), "k")])
    assert {i.part: i.hourly.min for i in items} == pytest.approx({"control plane": 0.10, "system nodes": 2 * 0.096})
    assert report.hourly.expected == pytest.approx(0.292)
    assert one([component("KubernetesCluster", cluster_summary(cloud="kubernetes", region=None), "k")])[1] == []


def test_buckets_share_the_storage_profile():
    b1 = view("aws:s3/bucket:Bucket", {"bucket": "a", "region": "us-east-1"}, "a")
    b2 = view("gcp:storage/bucket:Bucket", {"name": "b", "location": "us-central1"}, "b")
    _, items = one([b1, b2], Usage(storage_gib=500))
    assert [i.monthly.expected for i in items] == pytest.approx([250 * 0.023, 250 * 0.020])


def test_unknown_price_stays_unknown_never_zero():
    pool = component("GpuNodePool", pool_summary(instanceType="p5.48xlarge", region="eu-central-1"), "p5")
    ok = component("GpuNodePool", pool_summary(minNodes=1, maxNodes=1), "g6")
    report, _ = one([pool, ok])
    assert [i.name for i in report.unknown] == ["p5"]
    assert report.unknown[0].hourly is None and report.unknown[0].monthly is None
    assert "not offered in eu-central-1" in report.unknown[0].basis
    assert report.hourly.min == pytest.approx(G6_SPOT_US_EAST_1)  # only the known pool is summed
    data = report.to_json()
    assert data["unknown"] == [{"urn": pool.urn, "type": pool.type, "name": "p5", "reason": report.unknown[0].basis}]
    assert [r["name"] for r in data["by_resource"]] == ["g6"]
    fs = component("FeatureStore", {"cloud": "gcp", "region": "asia-northeast1", "online": "datastore"}, "fs")
    assert one([fs])[0].unknown[0].part == "online store"


def test_request_priced_online_stores_price_storage_and_reads():
    fs = component("FeatureStore", {"cloud": "aws", "region": "us-east-1", "online": "dynamodb"}, "fs")
    _, items = one([fs], Usage(online_reads_per_month=20e6, online_storage_gib=4))
    # 4 GiB x $0.25 per GiB-month + 20 M reads x $0.125 per million
    assert [i.monthly.expected for i in items] == pytest.approx([4 * 0.25 + 20 * 0.125])
    ds = component("FeatureStore", {"cloud": "gcp", "region": "us-central1", "online": "datastore", "onlineStorageGib": 10}, "ds")
    _, items = one([ds], Usage(online_reads_per_month=1e6))
    assert [i.monthly.expected for i in items] == pytest.approx([10 * 0.18 + 1 * 0.33])


def test_children_of_priced_components_are_not_priced_again():
    child = view(
        "aws:eks/nodeGroup:NodeGroup",
        {"instanceTypes": ["g6.xlarge"], "scalingConfig": {"minSize": 1, "maxSize": 1}, "region": "us-east-1"},
        "ng",
        parents=("gpuplane:index:GpuNodePool",),
    )
    raw = view(
        "aws:eks/nodeGroup:NodeGroup",
        {
            "instanceTypes": ["g6.xlarge"],
            "scalingConfig": {"minSize": 1.0, "maxSize": 1.0},
            "capacityType": "SPOT",
            "region": "us-east-1",
        },
        "raw",
    )
    _, items = one([child, raw])
    assert [i.name for i in items] == ["raw"] and items[0].hourly.min == pytest.approx(G6_SPOT_US_EAST_1)


def test_usage_profile_defaults_and_errors():
    assert Usage.from_dict({}) == Usage(200, 6, 500, 0.25)
    assert Usage.from_dict({"storageGib": 10}).storage_gib == 10
    with pytest.raises(UsageError, match="unknown key 'storage'"):
        Usage.from_dict({"storage": 1})
    with pytest.raises(UsageError, match="endpointBusyHoursPerDay=30 must be a number from 0 to 24"):
        Usage.from_dict({"endpointBusyHoursPerDay": 30})
    with pytest.raises(UsageError):
        Usage.from_dict({"storageGib": "lots"})


def _run(*views) -> ProgramRun:
    return ProgramRun(
        "gpuplane",
        "test",
        [RecordedResource(v.urn, v.type, v.name, None, True, False, None, dict(v.props)) for v in views],
        {},
        None,
    )


def test_price_run_and_json_shape():
    pool = component("GpuNodePool", pool_summary(), "p")
    report = price_run(_run(pool), {"expectedNodeFraction": 0.5})
    data = report.to_json()
    assert data["currency"] == "USD" and data["hours_per_month"] == HOURS_PER_MONTH == 730
    assert set(data["hourly"]) == set(data["monthly"]) == {"min", "expected", "max"}
    assert data["by_resource"][0]["monthly"]["expected"] == pytest.approx(round(2 * G6_SPOT_US_EAST_1 * 730, 4))
    assert json.loads(json.dumps(data)) == data


def test_cost_diff_matches_resources_across_stacks_and_files(tmp_path):
    a = price_run(_run(component("GpuNodePool", pool_summary(maxNodes=4), "p")), {})
    b_view = view("gpuplane:index:GpuNodePool", {"gpuplane": pool_summary(maxNodes=8)}, "p", stack="other")
    b = price_run(
        _run(b_view, view("aws:s3/bucket:Bucket", {"bucket": "x", "region": "us-east-1"}, "x", stack="other")), {}
    )
    diff = cost_diff(a, b, base_label="test", head_label="other")
    assert [c["change"] for c in diff.changes] == ["changed", "added"]
    assert diff.changes[0]["delta"] == pytest.approx(0.25 * 4 * G6_SPOT_US_EAST_1 * 730, abs=0.01)
    assert diff.delta_monthly["expected"] == pytest.approx(b.monthly.expected - a.monthly.expected, abs=0.001)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"cost": a.to_json()}))
    assert cost_diff(load_cost_json(path), b).to_json()["changes"] == diff.to_json()["changes"]
    assert "Cost change vs `test`" in diff.markdown()
    with pytest.raises(ValueError, match="no cost report"):
        (tmp_path / "x.json").write_text("{}")
        load_cost_json(tmp_path / "x.json")
    assert resource_key(urn("aws:s3/bucket:Bucket", "x", stack="s1")) == resource_key(
        urn("aws:s3/bucket:Bucket", "x", stack="s2")
    )


def test_markdown_lists_costs_unknowns_and_violations():
    from gpuplane.engine.policy import evaluate_policies

    run = _run(
        component("GpuNodePool", pool_summary(), "p"),
        component(
            "GpuNodePool", pool_summary(instanceType="p5.48xlarge", region="eu-central-1", tags={"team": "x"}), "p5"
        ),
    )
    cost = price_run(run, {})
    md = cost_markdown(cost)
    assert "| per month |" in md and "unknown price" in md and "p5.48xlarge is not offered in eu-central-1" in md
    policy = evaluate_policies(run)
    comment = render_pr_comment("test", run, cost, policy)
    assert comment.startswith("### gpuplane plan: `test` — ❌")
    assert "| 🔴 mandatory | `required-tags` |" in comment
    assert "`p` | `gpuplane:index:GpuNodePool` | 1 |" in comment
    assert TAGS  # fixtures stay importable
