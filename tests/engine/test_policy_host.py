"""`pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json` under the real
Pulumi policy host must report the same mandatory violations, as (policy, resource URN) pairs, as
`gpuplane plan` for the same stack and config (a difference is a defect in one of them).

Compared here: the `local` stack with its own policy config, and with a stricter one (idle timeouts of at
most 1 s, an `owner` tag required) so that both sides have violations to agree on (six). Not compared: aws-dev, gcp-dev and
multicloud, whose previews need the pulumi-aws / pulumi-gcp provider plugins, which this toolchain does
not build (tests/engine/pulumi_lane.py says how the CLI, program and pack run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuplane.engine.plan import plan_stack
from gpuplane.engine.policy import evaluate_policies, load_policy_config
from tests.engine import pulumi_lane
from tests.engine.test_pulumi_local import _require_engine

pytestmark = pytest.mark.engine

REPO = pulumi_lane.REPO


def _offline(stack: str, config_path: Path) -> set[tuple[str, str]]:
    plan = plan_stack(stack)
    report = evaluate_policies(plan.run, load_policy_config(config_path), stack, usage=plan.usage())
    return {(v.policy, v.urn) for v in report.violations if v.level == "mandatory"}


def _real(stack_obj, shim: Path, config_path: Path) -> set[tuple[str, str]]:
    from pulumi.automation import errors

    found: set[tuple[str, str]] = set()

    def on_event(event) -> None:
        pe = getattr(event, "policy_event", None)
        if pe is not None and str(pe.enforcement_level).lower().endswith("mandatory"):
            found.add((pe.policy_name, pe.resource_urn or ""))

    try:
        stack_obj.preview(policy_packs=[str(shim)], policy_pack_configs=[str(config_path)], on_event=on_event)
    except errors.CommandError as e:  # mandatory violations fail the preview; anything else is re-raised
        if not found:
            raise AssertionError(f"preview failed without a policy violation: {e}") from e
    return found


@pytest.mark.parametrize("strict", [False, True], ids=["own-config", "strict-config"])
def test_the_policy_host_and_gpuplane_plan_report_the_same_mandatory_violations(sandbox, tmp_path: Path,
                                                                                strict: bool) -> None:
    charts = _require_engine()
    config_path = REPO / "policies" / "config" / "local.json"
    if strict:
        config = json.loads(config_path.read_text())
        config["idle-timeout-bounds"] = {"minIdleSeconds": 0, "maxIdleSeconds": 1}
        config["required-tags"] = {**config["required-tags"], "requiredTags": ["team", "cost-center", "owner"]}
        config_path = tmp_path / "strict.json"
        config_path.write_text(json.dumps(config))
    shim = pulumi_lane.policy_pack_shim(tmp_path / "pack")
    work = pulumi_lane.project_dir(tmp_path / "project", "local", {"chartSource": str(charts)})
    stack = pulumi_lane.select_stack("local", work, sandbox.env)
    real = _real(stack, shim, config_path)
    offline = _offline("local", config_path)
    print(f"\nlocal ({'strict config' if strict else 'own config'}): {len(real)} mandatory violations under the "
          f"policy host, {len(offline)} from gpuplane plan")
    if strict:
        assert offline, "the strict config must produce violations, or this comparison proves nothing"
    assert real == offline, f"only the policy host: {sorted(real - offline)}; only gpuplane plan: {sorted(offline - real)}"
