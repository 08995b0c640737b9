"""Every reference stack passes its own policy config; deliberately bad stacks fail as expected.

These run the real stack program under the mock runtime and the pack through the analyzer, the
way `gpuplane plan` does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from gpuplane.engine.cost import assess_plan
from gpuplane.engine.plan import available_stacks, plan_stack, read_stack_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack", available_stacks())
def test_reference_stack_passes_its_own_policy_config(stack):
    checks = assess_plan(plan_stack(stack))
    policy = checks.policy.to_json()
    assert policy["mandatory"] == 0, json.dumps(policy["violations"], indent=2)
    assert checks.cost.to_json()["unknown"] == [], "every priced resource of a reference stack has a catalog price"


def _bad(stack: str, mutate) -> dict:
    config = copy.deepcopy(read_stack_config(stack))
    mutate(config)
    return config


def _violations(stack: str, config: dict) -> list[tuple[str, str, str]]:
    checks = assess_plan(plan_stack(stack, config=config), ROOT / "policies" / "config" / f"{stack}.json")
    return [(v["policy"], v["level"], v["urn"].rsplit("::", 1)[-1]) for v in checks.policy.to_json()["violations"]]


def test_a_public_unauthenticated_cloud_run_endpoint_is_refused_before_policy():
    # The component itself refuses it (nothing half-created); the pack never sees it.
    from gpuplane.engine.plan import PlanError

    def mutate(c):
        c["gpuplane:inferenceEndpoints"][0].update({"public": True, "auth": "none"})

    with pytest.raises(PlanError, match="a public endpoint needs authentication"):
        plan_stack("gcp-dev", config=_bad("gcp-dev", mutate))


def test_an_endpoint_kept_warm_violates_scale_to_zero():
    def mutate(c):
        c["gpuplane:inferenceEndpoints"][0]["minScale"] = 2

    found = _violations("gcp-dev", _bad("gcp-dev", mutate))
    assert ("endpoint-scale-to-zero", "mandatory", "recs") in found


def test_a_region_outside_data_residency_is_flagged_on_every_regional_resource():
    def mutate(c):
        c["aws:region"] = "eu-west-1"
        c["gpuplane:cluster"]["region"] = "eu-west-1"
        c["gpuplane:gpuPools"] = [p for p in c["gpuplane:gpuPools"] if p["accelerator"] != "H100"]  # p5 is not offered there
        c["gpuplane:inferenceEndpoints"] = [e for e in c["gpuplane:inferenceEndpoints"] if e["platform"] != "sagemaker"]

    found = _violations("aws-dev", _bad("aws-dev", mutate))
    flagged = {name for policy, level, name in found if policy == "allowed-regions" and level == "mandatory"}
    assert {"aws-dev-cluster", "g6-spot", "aws-dev-train-checkpoints", "aws-dev-features-bucket"} <= flagged, flagged


def test_missing_cost_center_tags_are_flagged():
    def mutate(c):
        c["gpuplane:tags"] = {"team": "ml-platform"}

    found = _violations("gcp-dev", _bad("gcp-dev", mutate))
    assert any(policy == "required-tags" and level == "mandatory" for policy, level, _ in found), found


def test_a_gpu_type_not_allowed_for_the_stack_is_flagged():
    def mutate(c):
        c["gpuplane:gpuPools"].append({"name": "h200", "accelerator": "H200", "acceleratorsPerNode": 8, "capacityType": "spot", "maxNodes": 1, "role": "training", "efa": True, "compactPlacement": True})

    found = _violations("aws-dev", _bad("aws-dev", mutate))
    assert ("gpu-types-allowed", "mandatory", "h200") in found, found


def test_the_all_key_downgrades_every_violation_to_advisory(tmp_path):
    def mutate(c):
        c["gpuplane:inferenceEndpoints"][0]["minScale"] = 2

    config_file = tmp_path / "advisory.json"
    base = json.loads((ROOT / "policies" / "config" / "gcp-dev.json").read_text())
    config_file.write_text(json.dumps({**base, "all": "advisory"}))
    checks = assess_plan(plan_stack("gcp-dev", config=_bad("gcp-dev", mutate)), config_file)
    policy = checks.policy.to_json()
    assert policy["mandatory"] == 0 and policy["advisory"] >= 1


PROVIDER_KEYS = {"aws:region", "gcp:project", "gcp:region"}
"""The default providers' settings a stack file may hold beside its own namespace."""


def test_stack_files_are_valid_yaml_with_one_namespace_besides_provider_defaults():
    for stack in available_stacks():
        data = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
        own = {k for k in data["config"] if k.split(":", 1)[0] == "gpuplane"}
        assert own, f"{stack}: no gpuplane: keys"
        assert set(data["config"]) - own <= PROVIDER_KEYS, (stack, sorted(set(data["config"]) - own - PROVIDER_KEYS))


def test_multicloud_shows_both_clouds_and_keeps_training_beside_its_data(tmp_path):
    checks = assess_plan(plan_stack("multicloud"))
    assert set(checks.by_cloud or {}) == {"aws", "gcp"}
    assert all(v["expected"] > 0 for v in checks.by_cloud.values())
    # Move the event log's bucket to Europe in the policy config: the training job now reads
    # its data across an ocean and the colocation policy says so.
    base = json.loads((ROOT / "policies" / "config" / "multicloud.json").read_text())
    base["training-data-colocated"]["bucketRegions"] = {"retail-events-us-east-1": "eu-west-1"}
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(base))
    found = assess_plan(plan_stack("multicloud"), moved).policy.to_json()["violations"]
    messages = [v["message"] for v in found if v["policy"] == "training-data-colocated"]
    assert any("trains in us-east-1 but its dataUrl bucket 'retail-events-us-east-1' is in eu-west-1" in m for m in messages), messages
