"""`gpuplane plan`: every reference stack plans offline and validates; the CLI's contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gpuplane.cli import app
from gpuplane.engine.plan import PlanError, available_stacks, plan_stack

runner = CliRunner()
REFERENCE_STACKS = ["aws-dev", "gcp-dev", "local"]


def test_reference_stacks_exist():
    assert set(REFERENCE_STACKS) <= set(available_stacks())


@pytest.mark.parametrize("stack", available_stacks())
def test_every_stack_plans_and_validates(stack):
    plan = plan_stack(stack)
    assert plan.resources, f"{stack} registered nothing"
    assert plan.validation_problems == [], "\n".join(plan.validation_problems)
    urns = {r.urn for r in plan.resources}
    for r in plan.resources:
        assert r.parent is None or r.parent in urns or r.parent.endswith(f"::gpuplane-{stack}"), f"{r.urn} has an unknown parent {r.parent}"


def test_json_shape_is_stable():
    result = runner.invoke(app, ["plan", "--stack", "local", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"project", "stack", "resources", "outputs"} <= set(data)
    assert data["project"] == "gpuplane" and data["stack"] == "local"
    for r in data["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "custom", "provider", "inputs"}
    cluster = next(r for r in data["resources"] if r["type"] == "gpuplane:index:KubernetesCluster")
    assert cluster["inputs"]["gpuplane"]["cloud"] == "kubernetes"  # wire names, as the engine sees them


def test_unknown_stack_is_a_usage_error():
    result = runner.invoke(app, ["plan", "--stack", "nope"])
    assert result.exit_code == 2
    assert "no stack 'nope'" in result.stderr and "Stacks: " in result.stderr
    assert "Traceback" not in result.output


def test_config_error_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  gpuplane:cluster:\n    cloud: aws\n    region: us-east-1\n  gpuplane:gpuPools:\n    - name: x\n      accelerator: H900\n")
    result = runner.invoke(app, ["plan", "--stack", "bad", "--config-file", str(bad)])
    assert result.exit_code == 2
    err_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1, result.stderr
    assert "gpuplane:gpuPools[0].accelerator: unknown accelerator 'H900'" in result.stderr
    assert "Traceback" not in result.output


def test_impossible_component_request_is_a_usage_error():
    config = {"gpuplane:cluster": {"cloud": "existing"}, "gpuplane:gpuPools": [{"name": "x", "accelerator": "L4", "capacityType": "spot"}]}
    with pytest.raises(PlanError) as exc:
        plan_stack("t", config=config)
    assert "existing-device-plugin does not support spot" in str(exc.value)


def test_help_is_useful():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "plan" in result.stdout and "simulate" in result.stdout
    result = runner.invoke(app, ["plan", "--help"])
    assert "--stack" in result.stdout and "--format" in result.stdout
