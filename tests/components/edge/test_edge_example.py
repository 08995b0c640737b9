"""`gpuplane plan --cwd examples/edge --stack factories`: the reference fleet plans, validates and prints its rollout."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gpuplane.cli import app
from gpuplane.engine.plan import load_project, plan_stack
from gpuplane.render import edge_rollouts

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "edge"


def test_the_reference_fleet_plans_with_every_site_kind_it_declares() -> None:
    result = plan_stack("factories", project=load_project(EXAMPLE))
    assert not result.validation_problems, result.validation_problems
    types = {r.type for r in result.run.resources}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:apps.kubeedge.io/v1alpha1:EdgeApplication",
            "aws-native:greengrassv2:Deployment", "aws-native:greengrassv2:ComponentVersion"} <= types
    (name, summary), = edge_rollouts(result)
    assert name == "recs" and summary["promotedWaves"] == 1
    # Both KubeEdge lines share one kubeconfig Output: one EdgeApplication on that cluster.
    assert sum(r.type.endswith("EdgeApplication") for r in result.run.resources) == 1


def test_plan_prints_waves_sites_transfer_prestage_and_the_disconnect_contract() -> None:
    out = CliRunner().invoke(app, ["plan", "--cwd", str(EXAMPLE), "--stack", "factories"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    text = out.output
    assert "edge rollout recs" in text and "1 of 3 waves promoted" in text
    assert "egress $0.0966/GiB from aws/eu-central-1" in text  # catalog row: aws internet-egress eu-central-1
    for row in ("1 canary", "2 half", "3 all", "01:00-05:00 x1", "(results-buffer)"):
        assert row in text, row
    assert "plant-b-line-2: ONNX Runtime on the CPU: fallback from TensorRT, jetson-xavier-nx (Volta) cannot run it" in text
