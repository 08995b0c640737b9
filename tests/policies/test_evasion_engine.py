"""Issue 19 through `gpuplane plan`'s engine and CLI: exemptions listed with exactly what they
suppressed when the same stack policy reports another resource, a stack-wide exemption tag that
fails the gate, and a bad policy config that is one line and exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gpuplane.cli import app
from gpuplane.engine.policy import evaluate_policies
from tests.gpuplane.test_policy_engine import program, rec
from tests.policies.fixtures import TAGS, pool_summary

ENC = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
FLAGS = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def _bucket(name: str, tags: dict) -> list:
    return [
        rec("aws:s3/bucketV2:BucketV2", name, {"bucket": name, "region": "us-east-1", "tags": tags}),
        rec(PAB, f"{name}-pab", {"bucket": name, **FLAGS}),
    ]


def test_exemption_is_listed_with_what_it_suppressed_when_the_stack_policy_reports_another_resource():
    exempt = {**TAGS, "gpuplane/exempt": "storage-encrypted", "gpuplane/exempt-reason": "public mirror"}
    run = program(*_bucket("open", dict(TAGS)), *_bucket("mirror", exempt))
    report = evaluate_policies(run)
    enc = [v for v in report.violations if v.policy == "storage-encrypted"]
    assert [(v.urn.rsplit("::", 1)[-1], v.message) for v in enc] == [
        (
            "open",
            "aws:s3/bucketV2 'open' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
        )
    ]
    [record] = [e for e in report.exemptions if e.urn.endswith("::mirror")]
    assert record.to_json()["suppressed"] == [
        {
            "policy": "storage-encrypted",
            "message": "aws:s3/bucketV2 'mirror' has no server-side encryption configuration. Add an aws.s3.BucketServerSideEncryptionConfiguration for it (AES256 or aws:kms).",
        }
    ]


def test_a_stack_wide_exemption_of_a_gpu_gate_fails_the_plan():
    tags = {**TAGS, "gpuplane/exempt": "gpu-types-allowed", "gpuplane/exempt-reason": "all of them"}
    run = program(
        rec(
            "gpuplane:index:GpuNodePool",
            "p",
            {"gpuplane": pool_summary(accelerator="H100", instanceType="p5.48xlarge", tags=tags)},
        ),
        rec("gpuplane:index:GpuNodePool", "q", {"gpuplane": pool_summary(tags=tags)}),
    )
    report = evaluate_policies(run, {"gpu-types-allowed": {"allowedGpus": ["L4"]}})
    assert [(v.policy, v.level, v.message) for v in report.violations] == [
        (
            "exemption-scope",
            "mandatory",
            "The stack exempts every gpuplane component from 'gpu-types-allowed' (a stack-wide gpuplane/exempt tag, e.g. in gpuplane:tags). Remove it from the stack-wide tags and tag only the resources that need it, or list 'gpu-types-allowed' in exemption-scope's stackWideAllowed.",
        )
    ]
    # The per-resource exemption is still listed with exactly what it suppressed.
    [p] = [e for e in report.exemptions if e.urn.endswith("::p")]
    assert p.to_json()["suppressed"] == [
        {
            "policy": "gpu-types-allowed",
            "message": "GpuNodePool 'p' asks for H100, which this stack does not allow (allowedGpus: L4). Use one of those, or add H100 to allowedGpus in the stack's policy config.",
        }
    ]


def _plan_with(tmp_path, config: dict):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(config))
    return CliRunner().invoke(app, ["plan", "--stack", "local", "--policy-pack-config", str(path)])


def test_a_policy_config_naming_an_unknown_policy_is_one_line_and_exit_2(tmp_path):
    result = _plan_with(tmp_path, {"no-privileged-pod": "mandatory"})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: policy config names unknown policy 'no-privileged-pod'. Policies in the pack: ["
    ), result.stderr


def test_a_policy_config_with_an_invalid_level_is_one_line_and_exit_2(tmp_path):
    result = _plan_with(tmp_path, {"no-privileged-pods": {"enforcementLevel": "strict"}})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: policy 'no-privileged-pods': enforcement level 'strict' is not one of ['advisory', 'disabled', 'mandatory', 'remediate']."
    ]


# The same evasion table through the analyzer the Pulumi CLI's policy host drives
# (pulumi_policy's servicer, protobuf round trip, config reconciled from a policy config file).
from gpuplane.engine.runtime import RecordedResource  # noqa: E402
from tests.policies.evasion_cases import CASES  # noqa: E402
from tests.policies.test_evasion import EXPECTED  # noqa: E402


def _recorded(v) -> RecordedResource:
    return RecordedResource(
        urn=v.urn,
        type=v.type,
        name=v.name,
        parent=v.parent,
        custom=not v.type.startswith("gpuplane:"),
        remote=False,
        provider=None,
        inputs=dict(v.props),
        dependencies=list(v.dependencies),
    )


@pytest.mark.parametrize(("case_id", "rule", "resources", "cfg"), CASES, ids=[c[0] for c in CASES])
def test_evasion_case_through_the_policy_host(case_id, rule, resources, cfg):
    providers = {v.type.split(":", 1)[0]: dict(v.provider_props) for v in resources if v.provider_props}
    report = evaluate_policies(
        program(*[_recorded(v) for v in resources]), {rule.name: cfg} if cfg else None, provider_defaults=providers
    )
    assert [v.message for v in report.violations if v.policy == rule.name] == EXPECTED[case_id]
