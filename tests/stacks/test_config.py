"""Stack config: typed, camelCase, unknown keys rejected with their path."""

from __future__ import annotations

import pytest

from stacks.config import StackConfigError, parse_config

BASE = {"gpuplane:cluster": {"cloud": "aws", "region": "us-east-1"}}


def test_defaults_live_in_one_place():
    cfg = parse_config(BASE)
    assert cfg.environment == "dev"
    assert cfg.gpu_pools == []
    assert cfg.usage.training_hours_per_month == 200
    assert cfg.cluster.system_node_count == 2


def test_camel_case_keys_map_to_fields():
    cfg = parse_config({**BASE, "gpuplane:gpuPools": [{"name": "a", "accelerator": "L4", "acceleratorsPerNode": 1, "capacityType": "spot", "gpuSharing": {"strategy": "mps", "replicas": 4}}]})
    pool = cfg.gpu_pools[0]
    assert pool.accelerators_per_node == 1 and pool.capacity_type == "spot" and pool.gpu_sharing.replicas == 4


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({**BASE, "gpuplane:clutser": {}}, "gpuplane:clutser: Extra inputs are not permitted"),
        ({"gpuplane:cluster": {"cloud": "aws", "region": "us-east-1", "regoin": "x"}}, "gpuplane:cluster.regoin: Extra inputs"),
        ({**BASE, "gpuplane:gpuPools": [{"name": "a", "accelerator": "H900"}]}, "gpuplane:gpuPools[0].accelerator: unknown accelerator 'H900'"),
        ({**BASE, "gpuplane:gpuPools": [{"name": "a", "accelerator": "L4", "maxNodes": "many"}]}, "gpuplane:gpuPools[0].maxNodes: Input should be a valid integer"),
        ({**BASE, "gpuplane:gpuPools": [{"name": "a", "accelerator": "L4"}, {"name": "a", "accelerator": "L4"}]}, "repeated: ['a']"),
        ({"gpuplane:cluster": {"cloud": "aws"}}, "region is required"),
        ({"gpuplane:cluster": {"cloud": "gcp", "region": "us-central1"}}, "project is required"),
        ({**BASE, "gpuplane:environment": "qa"}, "gpuplane:environment: Input should be 'dev', 'staging' or 'prod'"),
        ({}, "gpuplane:cluster: Field required"),
    ],
)
def test_config_errors_name_the_key_path_and_the_fix(values, fragment):
    with pytest.raises(StackConfigError) as exc:
        parse_config(values)
    assert fragment in str(exc.value)


def test_other_namespaces_are_ignored():
    assert parse_config({**BASE, "aws:region": "us-east-1"}).cluster.region == "us-east-1"
