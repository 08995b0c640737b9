"""Pack conventions, exemptions, and the per-stack policy config files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from policies import exemptions
from policies.__main__ import PACK_NAME, RULES
from policies.framework import defaults, to_policy
from policies.resources import ResourceView, plain
from tests.policies.fixtures import TAGS, view

ROOT = Path(__file__).resolve().parents[2]


def test_every_policy_follows_the_pack_conventions():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)), "policy names must be unique"
    for rule in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), f"{rule.name} is not kebab-case"
        assert rule.description.startswith("Checks whether"), f"{rule.name}: description must start 'Checks whether'"
        for key, spec in rule.schema.items():
            assert "default" in spec and "type" in spec and spec.get("description"), (
                f"{rule.name}.{key} needs a type, default and description"
            )
        assert isinstance(to_policy(rule), (ResourceValidationPolicy, StackValidationPolicy))


def test_pulumi_policy_yaml_is_a_python_pack_using_the_repo_virtualenv():
    data = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert data["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    assert data["version"] and data["description"]
    assert PACK_NAME == "gpuplane"


def test_importing_the_pack_starts_no_server():
    # PolicyPack(...) blocks forever; importing policies.__main__ must return at once.
    code = "import policies.__main__ as m; print(len(m.RULES))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(RULES))


@pytest.mark.parametrize("config_file", sorted((ROOT / "policies" / "config").glob("*.json")), ids=lambda p: p.name)
def test_stack_policy_config_names_known_policies_and_matches_the_stack_usage(config_file):
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from gpuplane.engine.policy import reconcile_config

    config = json.loads(config_file.read_text())
    servicer = _PolicyAnalyzerServicer(
        PACK_NAME, "0.1.0", [to_policy(r) for r in RULES], to_policy(RULES[0]).enforcement_level, None
    )
    reconcile_config(servicer.GetAnalyzerInfo(None, None), config)  # raises on unknown policies/properties
    stack_file = ROOT / "stacks" / f"Pulumi.{config_file.stem}.yaml"
    if stack_file.exists():
        stack_usage = (yaml.safe_load(stack_file.read_text()).get("config") or {}).get("gpuplane:usage") or {}
        assert config.get("stack-budget", {}).get("usage", {}) == stack_usage, (
            f"{config_file.name}: stack-budget.usage must equal gpuplane:usage of {stack_file.name}, so `pulumi preview --policy-pack` prices what `gpuplane plan` prices"
        )


# -- exemptions ---------------------------------------------------------------------------------


def test_exemption_tag_names_policies_and_reason():
    v = view(
        "aws:s3/bucket:Bucket",
        {
            "tags": {
                **TAGS,
                "gpuplane/exempt": "storage-encrypted, storage-not-public",
                "gpuplane/exempt-reason": "public dataset mirror",
            }
        },
        "b",
    )
    ex = exemptions.declared(v)
    assert (
        ex is not None
        and ex.policies == ("storage-encrypted", "storage-not-public")
        and ex.reason == "public dataset mirror"
    )
    assert exemptions.honoured(v, "storage-not-public") == ex
    assert exemptions.honoured(v, "required-tags") is None


def test_label_safe_exemption_form_for_gcp():
    v = view(
        "gcp:storage/bucket:Bucket",
        {
            "labels": {
                "gpuplane-exempt": "storage-encrypted.allowed-regions",
                "gpuplane-exempt-reason": "legacy-eu-mirror",
            }
        },
        "b",
    )
    assert exemptions.honoured(v, "allowed-regions") == exemptions.Exemption(
        v.urn, "gpuplane-exempt", ("storage-encrypted", "allowed-regions"), "legacy-eu-mirror"
    )


def test_exemption_without_reason_is_not_honoured():
    v = view("aws:s3/bucket:Bucket", {"tags": {"gpuplane/exempt": "storage-encrypted"}}, "b")
    assert exemptions.declared(v) == exemptions.Exemption(v.urn, "gpuplane/exempt", ("storage-encrypted",), None)
    assert exemptions.honoured(v, "storage-encrypted") is None


def test_component_summary_tags_and_kubernetes_annotations_carry_exemptions():
    comp = view(
        "gpuplane:index:GpuNodePool",
        {"gpuplane": {"tags": {"gpuplane/exempt": "training-on-spot", "gpuplane/exempt-reason": "reserved"}}},
        "p",
    )
    k8s = view(
        "kubernetes:apps/v1:Deployment",
        {
            "metadata": {
                "annotations": {"gpuplane/exempt": "no-privileged-pods", "gpuplane/exempt-reason": "dcgm needs it"}
            }
        },
        "d",
    )
    assert exemptions.honoured(comp, "training-on-spot") == exemptions.Exemption(
        comp.urn, "gpuplane/exempt", ("training-on-spot",), "reserved"
    )
    assert exemptions.honoured(k8s, "no-privileged-pods") == exemptions.Exemption(
        k8s.urn, "gpuplane/exempt", ("no-privileged-pods",), "dcgm needs it"
    )
    assert exemptions.honoured(comp, "gpu-types-allowed") is None  # only what it names


def test_reason_line_round_trips():
    ex = exemptions.Exemption(
        "urn:pulumi:s::p::aws:s3/bucket:Bucket::b", "gpuplane/exempt", ("storage-encrypted",), "mirror (public): data"
    )
    m = exemptions.REASON_LINE.match(exemptions.reason_line(ex, "aws:s3/bucket 'b' has no\nencryption."))
    assert m and m.group("urn") == ex.urn and m.group("message") == "aws:s3/bucket 'b' has no encryption."


# -- resource views --------------------------------------------------------------------------------


def test_unknown_preview_values_become_unknown_not_errors():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    props = unknown_checking_proxy(
        {"bucket": UNKNOWN_STRING_VALUE, "tags": dict(TAGS), "rules": [{"x": UNKNOWN_STRING_VALUE}]}
    )
    out = plain(props)
    from policies.resources import UNKNOWN

    assert out["bucket"] is UNKNOWN and out["rules"][0]["x"] is UNKNOWN and out["tags"] == TAGS


def test_urn_facts():
    v = ResourceView(
        "aws:eks/nodeGroup:NodeGroup",
        {},
        "urn:pulumi:prod::gpuplane::gpuplane:index:SpotTrainingCluster$gpuplane:index:GpuNodePool$aws:eks/nodeGroup:NodeGroup::ng",
        "ng",
    )
    assert v.stack == "prod" and v.managed and v.component_ancestors == ["SpotTrainingCluster", "GpuNodePool"]
    assert defaults({"a": {"default": 1}, "b": {}}) == {"a": 1}


def test_ci_example_gates_on_gpuplane_plan_and_previews_with_the_pack():
    wf = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    plan_steps = " ".join(str(s.get("run", "")) for s in wf["jobs"]["plan"]["steps"])
    assert "gpuplane plan --stack" in plan_steps and "--format markdown" in plan_steps
    pulumi = next(s for s in wf["jobs"]["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@v7"))
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
