"""The example pack in ``examples/policy-pack`` (README "Write your own policy pack") on the reference stacks.

It reads ``props["gpuplane"]["capacityType"]`` (and ``acceleratorsPerNode``, ``maxNodes``) as a
team's pack must: if the component's properties change shape, these tests fail before a team's
pack silently stops finding anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gpuplane.cli import app

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "examples" / "policy-pack"
runner = CliRunner()


def plan(stack: str, *extra: str) -> tuple[int, list[dict]]:
    result = runner.invoke(app, ["plan", "--cwd", str(REPO), "--stack", stack, "--policy-pack", str(PACK),
                                 "--format", "json", *extra])
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["policy"]["pack"] == "acme-gpu-capacity", data["policy"]
    return result.exit_code, data["policy"]["violations"]


def test_example_pack_flags_the_large_on_demand_pool_of_aws_dev() -> None:
    code, found = plan("aws-dev")
    assert code == 1
    assert [(v["policy"], v["level"], v["urn"].rsplit("::", 1)[-1]) for v in found] == [
        ("on-demand-gpus-bounded", "mandatory", "p5-train")
    ], found
    assert found[0]["message"] == (
        "GpuNodePool 'p5-train' is on-demand and can grow to 16 H100 GPUs (2 nodes x 8); on-demand capacity is "
        "capped at 8 GPUs per pool. Set capacityType: spot, or lower maxNodes to 1."
    )


def test_example_pack_passes_the_spot_pools_of_gcp_dev() -> None:
    code, found = plan("gcp-dev")
    assert code == 0 and found == []


def test_example_pack_takes_its_config_like_the_pulumi_cli(tmp_path: Path) -> None:
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"on-demand-gpus-bounded": {"maxOnDemandGpus": 16}}))
    code, found = plan("aws-dev", "--policy-pack-config", str(config))
    assert code == 0 and found == []
