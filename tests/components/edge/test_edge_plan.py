"""EdgeDeployment's planner: waves, runtimes, transfer bytes / time / cost, pre-stage windows, the disconnect
contract, and bad input (one message per problem, every problem at once)."""

from __future__ import annotations

import math

import pytest

from components.edge import plan_edge_deployment
from components.errors import ComponentInputError
from tests.components.edge.fleet import IMG, L1, L2, args

MIB = 1024 * 1024


def test_waves_take_canary_sites_then_cumulative_percentages_in_declaration_order() -> None:
    plan = plan_edge_deployment("recs", args())
    assert [w.sites for w in plan.waves] == [("a-line-2",), ("a-line-1",), ("b-line-1", "b-line-2")]
    assert [w.percent for w in plan.waves] == [25.0, 50.0, 100.0]
    assert {s.name: s.wave for s in plan.sites} == {"a-line-1": 2, "a-line-2": 1, "b-line-1": 3, "b-line-2": 3}


@pytest.mark.parametrize(
    ("site", "runtime", "why"),
    [
        ("a-line-1", "tensorrt", "TensorRT on jetson-orin-nano (Ampere, compute capability 8.7)"),
        ("a-line-2", "onnxruntime", "fallback from TensorRT, the site declares no NVIDIA GPU"),
        ("b-line-2", "onnxruntime", "jetson-nano (Maxwell) cannot run it"),
    ],
)
def test_tensorrt_only_where_the_gpu_runs_it_else_onnx_runtime_with_the_reason(site: str, runtime: str, why: str) -> None:
    s = plan_edge_deployment("recs", args()).site(site)
    assert s.runtime == runtime
    assert why in s.runtime_reason


def test_onnx_runtime_is_the_default() -> None:
    a = args()
    del a["runtime"]
    plan = plan_edge_deployment("recs", a)
    assert {s.runtime for s in plan.sites} == {"onnxruntime"}


def test_transfer_counts_the_model_and_uncached_layers_per_device_at_the_declared_bandwidth_and_egress_price() -> None:
    a = args()
    del a["runtime"]  # all on the ONNX Runtime image: layers L1 (30 MiB) and L2 (90 MiB)
    a["groups"][1]["sites"][0]["devices"] = 3
    plan = plan_edge_deployment("recs", a)
    a2 = plan.site("a-line-2").transfer  # caches L1 and L2: the model only
    assert a2.bytes == 12 * MIB and a2.items == ("model 12 MiB",)
    assert a2.seconds == pytest.approx(12 * MIB * 8 / 10e6)
    a1 = plan.site("a-line-1").transfer  # caches L1
    assert a1.bytes == (12 + 90) * MIB
    b1 = plan.site("b-line-1").transfer  # nothing cached, three devices
    assert b1.bytes == 3 * (12 + 30 + 90) * MIB
    assert b1.seconds == pytest.approx(b1.bytes * 8 / 5e6)
    assert b1.cost_usd == pytest.approx(b1.bytes / 1024**3 * 0.0966)  # catalog: aws internet-egress us-east-1
    assert plan.source == ("aws", "us-east-1")  # from the ECR host of the model URI
    wave3 = plan.waves[2]
    assert wave3.bytes == b1.bytes + plan.site("b-line-2").transfer.bytes
    assert wave3.seconds == pytest.approx(max(b1.seconds, plan.site("b-line-2").transfer.seconds))


def test_prestage_fits_the_good_link_window_or_spans_several() -> None:
    plan = plan_edge_deployment("recs", args())
    t = plan.site("a-line-1").transfer  # TensorRT image 900 MiB + model 12 MiB at 100 Mbit/s in a 4 h window
    assert (t.window, t.window_hours, t.windows_needed) == ("01:00-05:00", 4.0, 1)
    assert t.window_seconds == pytest.approx(t.bytes * 8 / 100e6)
    a = args()
    a["groups"][0]["sites"][0].update(link_window_utc="23:30-00:00", window_bandwidth_mbps=1)
    t = plan_edge_deployment("recs", a).site("a-line-1").transfer
    assert t.window_hours == 0.5
    assert t.windows_needed == math.ceil(t.window_seconds / 1800) > 1


def test_disconnect_contract_is_the_first_of_buffer_credentials_and_cache() -> None:
    a = args()
    a["groups"][0]["sites"][1].update(results_buffer_mib=64, results_kib_per_second=0.5, credential_validity_hours=30)
    o = plan_edge_deployment("recs", a).site("a-line-2").offline
    assert o.results_buffer_hours == pytest.approx(64 * 1024 / 0.5 / 3600)  # 36.4 h
    assert (o.limited_by, o.hours, o.ok) == ("credentials", 30.0, True)
    o = plan_edge_deployment("recs", args()).site("a-line-2").offline
    assert "credentials" in o.unchecked[0]  # not declared: said, not assumed


def test_a_buffer_shorter_than_the_outage_is_rejected_with_the_size_that_fits() -> None:
    a = args(max_outage_hours=100)
    with pytest.raises(ComponentInputError) as e:
        plan_edge_deployment("recs", a)
    text = str(e.value)
    assert "groups[0].sites[0].results_buffer_mib = 256.0: holds 72.8 h of results at 1 KiB/s, less than the maximum outage of 100 h" in text
    assert "give at least 352 MiB" in text


def test_a_cache_too_small_for_model_fallback_and_image_is_rejected() -> None:
    a = args()
    a["groups"][0]["sites"][1]["cache_gib"] = 0.1
    with pytest.raises(ComponentInputError, match=r"groups\[0\]\.sites\[1\]\.cache_gib = 0\.1: cannot hold"):
        plan_edge_deployment("recs", a)


def test_unpromoted_sites_keep_the_previous_model_and_get_the_new_one_to_prestage() -> None:
    a = args()
    a["rollout"]["promoted_waves"] = 1
    plan = plan_edge_deployment("recs", a)
    canary, later = plan.site("a-line-2"), plan.site("b-line-1")
    assert canary.promoted and not later.promoted
    env = plan.site_env(later)
    assert env["EDGE_MODEL_DIGEST"] == plan.previous_model.digest
    assert env["EDGE_PRESTAGE_MODEL_DIGEST"] == plan.model.digest
    env = plan.site_env(canary)
    assert (env["EDGE_MODEL_DIGEST"], env["EDGE_FALLBACK_MODEL_DIGEST"], env["EDGE_PRESTAGE_MODEL_URI"]) == (
        plan.model.digest, plan.previous_model.digest, "")
    assert env["EDGE_GATE_P99_MS"] == "50" and env["EDGE_GATE_MIN_AGREEMENT"] == "0.95" and env["EDGE_AUTO_ROLLBACK"] == "true"


def test_the_four_bad_inputs_give_one_message_each_naming_the_field_and_the_fix() -> None:
    a = args()
    a["groups"][0]["sites"][1]["runtime"] = "tensorrt"  # a-line-2 has no GPU
    a["rollout"]["waves"][1]["percent"] = 150
    del a["model"]["digest"]
    a["model"]["uri"] = "s3://models/recommender.onnx"
    a["groups"][1]["sites"][0]["bandwidth_mbps"] = 0
    with pytest.raises(ComponentInputError) as e:
        plan_edge_deployment("recs", a)
    problems = {p.path: p for p in e.value.problems}
    assert set(problems) == {"groups[0].sites[1].runtime", "rollout.waves[1].percent", "model.digest", "groups[1].sites[0].bandwidth_mbps"}, str(e.value)
    assert "needs an NVIDIA GPU, and site 'a-line-2' declares none" in problems["groups[0].sites[1].runtime"].message
    assert "set the site's gpu" in problems["groups[0].sites[1].runtime"].fix
    assert problems["rollout.waves[1].percent"].value == 150 and "(0, 100]" in problems["rollout.waves[1].percent"].message
    assert "sha256" in problems["model.digest"].fix
    assert "positive number of Mbit/s" in problems["groups[1].sites[0].bandwidth_mbps"].message
    assert str(e.value).startswith("EdgeDeployment 'recs' has 4 problems:")


@pytest.mark.parametrize(
    ("mutate", "path", "text"),
    [
        (lambda a: a["rollout"]["waves"].pop(), "rollout.waves[1]", "leaves sites"),
        (lambda a: a["rollout"]["waves"].insert(1, {"percent": 10}), "rollout.waves[1]", "adds no site"),
        (lambda a: a["rollout"]["waves"][0].update(sites=["nowhere"]), "rollout.waves[0].sites", "is not a site"),
        (lambda a: a["image"].update(ref="registry/edge/server:latest"), "image.ref", "not pinned by digest"),
        (lambda a: a.pop("tensorrt_image"), "tensorrt_image", "sites ['a-line-1'] run TensorRT"),
        (lambda a: a["groups"][1]["sites"][0].pop("node_group"), "groups[1].sites[0].node_group", "required for a kubeedge site"),
        (lambda a: a["groups"][0]["sites"][0].update(gpu="rtx-9999"), "groups[0].sites[0].gpu", "not a GPU in the catalog"),
        (lambda a: a["groups"][0]["sites"][0].update(link_window_utc="1-5"), "groups[0].sites[0].link_window_utc", "HH:MM-HH:MM"),
        (lambda a: a["rollout"]["gate"].update(min_agreement=1.5), "rollout.gate.min_agreement", "(0, 1]"),
        (lambda a: a["groups"][0]["sites"].append({"name": "gg", "kind": "greengrass", "thing_group_arn": "arn:aws:iot:::thinggroup/x",
                                                    "bandwidth_mbps": 5}), "model.uri", "greengrass-v2 does not support edge-oci-model"),
        (lambda a: a.update(previous_model={**a["model"]}), "previous_model.digest", "is the new model's digest"),
    ],
)
def test_bad_input_is_named_by_its_path(mutate, path: str, text: str) -> None:
    a = args()
    mutate(a)
    with pytest.raises(ComponentInputError) as e:
        plan_edge_deployment("recs", a)
    assert any(p.path == path and text in p.render() for p in e.value.problems), str(e.value)


def test_unknown_source_region_leaves_cost_unpriced_and_says_so() -> None:
    a = args()
    for key in ("model", "previous_model"):
        a[key]["uri"] = a[key]["uri"].replace("123456789012.dkr.ecr.us-east-1.amazonaws.com", "registry.example.com")
    plan = plan_edge_deployment("recs", a)
    assert plan.source is None and plan.waves[0].cost_usd is None
    assert any("set source_cloud and source_region" in n for n in plan.notes)


def test_image_layers_named_by_digest_are_what_the_sites_cache() -> None:
    plan = plan_edge_deployment("recs", args(runtime="onnxruntime"))
    assert plan.image.layers == ((L1, 30.0), (L2, 90.0))
    assert plan.image.ref.endswith(IMG)
