"""The in-process analyzer path: pulumi_policy's _PolicyAnalyzerServicer, config reconciliation,
enforcement levels (incl. the "all" key), remediation, exemptions listed, preview unknowns.

These go through the private servicer on purpose: a pulumi-policy upgrade that breaks it must
fail here, loudly.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as pb
from pulumi_policy.policy import _PolicyAnalyzerServicer

from gpuplane.engine.policy import (
    PolicyConfigError,
    evaluate_policies,
    load_policy_config,
    provider_defaults_from_config,
    resource_views,
)
from gpuplane.engine.runtime import ProgramRun, RecordedResource
from policies.__main__ import PACK_NAME, RULES
from policies.framework import to_policy
from tests.policies.fixtures import TAGS, pool_summary, training_pool_summary, urn

STACK_URN = "urn:pulumi:test::gpuplane::pulumi:pulumi:Stack::gpuplane-test"


def rec(type_: str, name: str, inputs: dict, parents: tuple[str, ...] = (), **kw) -> RecordedResource:
    return RecordedResource(
        urn=urn(type_, name, parents),
        type=type_,
        name=name,
        parent=kw.pop("parent", None),
        custom=not type_.startswith("gpuplane:"),
        remote=False,
        provider=kw.pop("provider", None),
        inputs=inputs,
        **kw,
    )


def program(*resources: RecordedResource) -> ProgramRun:
    return ProgramRun("gpuplane", "test", list(resources), {}, STACK_URN)


POOL = rec("gpuplane:index:GpuNodePool", "p", {"gpuplane": pool_summary()})
TRAIN_ON_DEMAND = rec(
    "gpuplane:index:GpuNodePool", "train", {"gpuplane": training_pool_summary(capacityType="on_demand")}
)
UNTAGGED_BUCKET = rec("aws:s3/bucket:Bucket", "ckpt", {"bucket": "ckpt", "region": "us-east-1"})


def levels(report, policy):
    return sorted({v.level for v in report.violations if v.policy == policy})


def test_servicer_reports_pack_info_schemas_and_levels():
    servicer = _PolicyAnalyzerServicer(
        PACK_NAME, "0.1.0", [to_policy(r) for r in RULES], to_policy(RULES[0]).enforcement_level, None
    )
    info = servicer.GetAnalyzerInfo(None, None)
    assert info.name == "gpuplane" and info.supportsConfig
    by_name = {p.name: p for p in info.policies}
    assert set(by_name) == {r.name for r in RULES}
    assert by_name["stack-budget"].policy_type == pb.PolicyType.POLICY_TYPE_STACK
    assert by_name["required-tags"].policy_type == pb.PolicyType.POLICY_TYPE_RESOURCE
    assert by_name["gpu-pool-max-nodes"].configSchema.properties["maxNodesPerPool"]["default"] == 16


def test_compliant_program_passes_with_no_violations():
    report = evaluate_policies(program(POOL))
    assert report.violations == [] and report.mandatory == 0 and report.passed
    assert report.to_json()["pack"] == "gpuplane"


def test_violation_has_policy_level_urn_and_message_without_description():
    report = evaluate_policies(program(POOL, TRAIN_ON_DEMAND))
    v = [v for v in report.violations if v.policy == "training-on-spot"]
    assert len(v) == 1
    assert v[0].level == "mandatory" and v[0].urn == TRAIN_ON_DEMAND.urn
    assert v[0].message.startswith("GpuNodePool 'train' is a training pool on on-demand capacity.")
    data = report.to_json()
    assert data["mandatory"] == 1 and data["advisory"] == 0
    assert data["violations"][0] == {
        "policy": "training-on-spot",
        "level": "mandatory",
        "urn": TRAIN_ON_DEMAND.urn,
        "message": v[0].message,
    }


def test_all_key_sets_every_level_and_a_policy_entry_overrides_it():
    run = program(TRAIN_ON_DEMAND, UNTAGGED_BUCKET)
    report = evaluate_policies(run, {"all": "advisory"})
    assert report.mandatory == 0 and report.advisory >= 2
    report = evaluate_policies(run, {"all": "advisory", "required-tags": "mandatory"})
    assert levels(report, "required-tags") == ["mandatory"] and levels(report, "training-on-spot") == ["advisory"]
    report = evaluate_policies(run, {"training-on-spot": {"enforcementLevel": "disabled"}})
    assert levels(report, "training-on-spot") == []


def test_config_properties_override_schema_defaults():
    run = program(rec("gpuplane:index:GpuNodePool", "p", {"gpuplane": pool_summary(maxNodes=12)}))
    assert evaluate_policies(run).violations == []
    report = evaluate_policies(run, {"gpu-pool-max-nodes": {"maxNodesPerPool": 8}})
    assert [v.message for v in report.violations] == [
        "GpuNodePool 'p' may grow to 12 nodes, over the limit of 8 per GPU pool. Lower maxNodes to 8 or less, or raise maxNodesPerPool in the stack's policy config."
    ]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"no-such-policy": "advisory"}, "unknown policy 'no-such-policy'"),
        ({"all": "loud"}, "enforcement level 'loud'"),
        ({"gpu-pool-max-nodes": {"maxNodes": 3}}, "unknown property 'maxNodes'"),
        ({"gpu-pool-max-nodes": {"maxNodesPerPool": "8"}}, "must be of type integer"),
        ({"gpu-types-allowed": {"allowedGpus": ["B200"]}}, "'allowedGpus' has ['B200']"),
        ({"stack-budget": {"hourlyFigure": "p99"}}, "is not one of ['min', 'expected', 'max']"),
    ],
)
def test_bad_policy_config_fails_with_the_reason(config, fragment):
    with pytest.raises(PolicyConfigError) as e:
        evaluate_policies(program(POOL), config)
    assert fragment in str(e.value)


def test_remediation_adds_default_tags_before_analysis():
    run = program(UNTAGGED_BUCKET)
    report = evaluate_policies(run, {"required-tags": {"enforcementLevel": "remediate", "defaults": dict(TAGS)}})
    assert report.remediations == [{"policy": "required-tags", "urn": UNTAGGED_BUCKET.urn}]
    assert [v for v in report.violations if v.policy == "required-tags"] == []
    # Without defaults, remediate cannot fix it: the violation is reported as mandatory.
    report = evaluate_policies(run, {"required-tags": "remediate"})
    assert levels(report, "required-tags") == ["mandatory"]


def test_honoured_exemption_suppresses_and_is_listed():
    tags = {"gpuplane/exempt": "training-on-spot", "gpuplane/exempt-reason": "capacity block until 2026-09"}
    pool = rec(
        "gpuplane:index:GpuNodePool",
        "train",
        {"gpuplane": training_pool_summary(capacityType="on_demand", tags={**TAGS, **tags})},
    )
    report = evaluate_policies(program(pool))
    assert [v.policy for v in report.violations] == []
    [ex] = report.exemptions
    assert ex.honoured and ex.policies == ["training-on-spot"] and ex.reason == "capacity block until 2026-09"
    assert ex.suppressed == [
        {
            "policy": "training-on-spot",
            "message": "GpuNodePool 'train' is a training pool on on-demand capacity. Set capacityType to spot (use a SpotTrainingCluster for on-demand fallback), or exempt it with gpuplane/exempt: training-on-spot and a reason.",
        }
    ]
    assert report.to_json()["exemptions"][0]["suppressed"] == ex.suppressed


def test_exemption_without_reason_is_listed_not_honoured_and_reported():
    pool = rec(
        "gpuplane:index:GpuNodePool",
        "train",
        {
            "gpuplane": training_pool_summary(
                capacityType="on_demand", tags={**TAGS, "gpuplane/exempt": "training-on-spot"}
            )
        },
    )
    report = evaluate_policies(program(pool))
    assert {v.policy for v in report.violations} == {"training-on-spot", "exemption-valid"}
    [ex] = report.exemptions
    assert not ex.honoured and ex.suppressed == [] and "no reason" in ex.problems[0]


def test_stack_policy_exemption_per_resource():
    bucket = rec(
        "aws:s3/bucket:Bucket",
        "mirror",
        {
            "bucket": "mirror",
            "region": "us-east-1",
            "tags": {
                **TAGS,
                "gpuplane/exempt": "storage-encrypted,storage-not-public",
                "gpuplane/exempt-reason": "public dataset mirror",
            },
        },
    )
    report = evaluate_policies(program(bucket))
    assert [v.policy for v in report.violations] == []
    [ex] = report.exemptions
    assert sorted(s["policy"] for s in ex.suppressed) == ["storage-encrypted", "storage-not-public"]


def test_stack_policies_see_parents_and_dependencies():
    bucket = rec("aws:s3/bucket:Bucket", "ckpt", {"bucket": "ckpt-x", "region": "us-east-1", "tags": TAGS})
    sse = rec(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "ckpt-sse",
        {"bucket": "ckpt-id", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        dependencies=[bucket.urn],
    )
    report = evaluate_policies(program(bucket, sse))
    assert "storage-encrypted" not in {v.policy for v in report.violations}
    assert "storage-not-public" in {v.policy for v in report.violations}


def test_stack_budget_uses_the_stack_usage_unless_the_config_sets_one():
    pool = rec("gpuplane:index:GpuNodePool", "p", {"gpuplane": pool_summary(minNodes=1, maxNodes=1)})
    # one g6.xlarge spot node all month = 0.3219 x 730 = $235: a $200 budget fails either way
    report = evaluate_policies(program(pool), {"stack-budget": {"maxMonthlyUsd": 200}}, usage={"storageGib": 1})
    assert levels(report, "stack-budget") == ["mandatory"]
    with pytest.raises(PolicyConfigError):
        evaluate_policies(program(pool), {"stack-budget": {"usage": "lots"}})
    bad = evaluate_policies(program(pool), None, usage={"trainingHours": 3})
    assert next(v.message for v in bad.violations if v.policy == "stack-budget").startswith(
        "The stack-budget policy config is wrong: usage profile: unknown key 'trainingHours'."
    )


def test_provider_region_reaches_the_policies():
    bucket = rec("aws:s3/bucket:Bucket", "b", {"bucket": "b", "tags": TAGS})
    config = {"allowed-regions": {"allowedRegions": ["us-*"]}}
    assert "allowed-regions" in {
        v.policy
        for v in evaluate_policies(
            program(bucket), config, provider_defaults={"aws": {"region": "eu-west-1"}}
        ).violations
    }
    assert "allowed-regions" not in {
        v.policy
        for v in evaluate_policies(
            program(bucket), config, provider_defaults={"aws": {"region": "us-east-2"}}
        ).violations
    }
    prov = rec("pulumi:providers:aws", "eu", {"region": "eu-central-1"})
    pinned = rec("aws:s3/bucket:Bucket", "b2", {"bucket": "b2", "tags": TAGS}, provider=f"{prov.urn}::prov-id")
    assert "allowed-regions" in {v.policy for v in evaluate_policies(program(prov, pinned), config).violations}
    assert resource_views([prov, pinned])[1].provider_props == {"region": "eu-central-1"}
    assert provider_defaults_from_config({"aws:region": "us-east-1", "gpuplane:tags": {}}) == {
        "aws": {"region": "us-east-1"}
    }


def test_unknown_values_during_preview_do_not_stop_other_checks():
    # A bucket whose name is unknown at preview still gets its region and tags checked.
    servicer = _PolicyAnalyzerServicer(
        PACK_NAME, "0.1.0", [to_policy(r) for r in RULES], to_policy(RULES[0]).enforcement_level, None
    )
    props = struct_pb2.Struct()
    props.update({"bucket": "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "region": "us-east-1"})
    resp = servicer.Analyze(
        pb.AnalyzeRequest(
            type="aws:s3/bucket:Bucket", properties=props, urn=urn("aws:s3/bucket:Bucket", "b"), name="b"
        ),
        None,
    )
    assert [d.policyName for d in resp.diagnostics] == ["required-tags"]
    assert not any("can't run policy" in d.message for d in resp.diagnostics)


def test_pulumi_environment_is_unset_while_evaluating(monkeypatch):
    monkeypatch.setenv("PULUMI_PROJECT", "other")
    monkeypatch.setenv("PULUMI_STACK", "other")
    monkeypatch.setenv("PULUMI_DRY_RUN", "true")
    seen = {}
    from policies import gpu

    original = gpu.GPU_POOL_MAX_NODES.check

    def spy(view, cfg):
        seen["env"] = os.environ.get("PULUMI_STACK")
        return original(view, cfg)

    rule = dataclasses.replace(gpu.GPU_POOL_MAX_NODES, check=spy)
    evaluate_policies(program(POOL), rules=[rule])
    assert seen["env"] is None and os.environ["PULUMI_STACK"] == "other"


def test_load_policy_config_errors(tmp_path):
    with pytest.raises(PolicyConfigError, match="does not exist"):
        load_policy_config(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_policy_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(PolicyConfigError, match="JSON object"):
        load_policy_config(tmp_path / "list.json")
