"""Every Kubernetes object and custom resource of the four reference stacks, server-side dry run on
the sandbox with the pinned CRDs installed from the chart archives (../shared/charts): the API
server itself decides schemas, CEL rules, defaulting and pruning. ``gpuplane plan``'s offline
validation must agree (clean for the same stacks); a disagreement is a defect in one of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuplane.engine import manifests
from gpuplane.engine.plan import plan_stack
from tests.engine import dry_run
from tests.engine.kubeapi import KubeAPI

pytestmark = pytest.mark.engine

STACKS = ("local", "aws-dev", "gcp-dev", "multicloud")


@pytest.fixture(scope="module")
def charts() -> Path:
    found = dry_run.charts_dir()
    if found is None or not any(found.glob("*.tgz")):
        why = "no chart archives (../shared/charts or $GPUPLANE_CHARTS_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def dry_sandbox(sandboxes):
    """A sandbox of its own: the dry run installs CRDs and creates namespaces for real, which the
    session sandbox's `pulumi up` of the local stack must not find there."""
    start, stop = sandboxes
    sb = start("dryrun")
    yield sb
    stop(sb)


@pytest.fixture(scope="module")
def api(dry_sandbox) -> Iterator[KubeAPI]:
    client = KubeAPI(Path(dry_sandbox.env["KUBECONFIG"]))
    yield client
    client.close()


@pytest.fixture(scope="module")
def installed(api: KubeAPI, charts: Path, dry_sandbox) -> dict[str, dict[str, Any]]:
    """The charts' CRDs (default values) and the pinned ones no chart carries, installed for real."""
    os.environ["PATH"] = dry_sandbox.env["PATH"]  # the toolchain's helm
    crds = dry_run.base_crds(charts)
    problems = dry_run.install_crds(api, crds)
    assert problems == [], "\n".join(problems)
    return crds


def test_the_dry_run_reports_what_the_server_prunes_and_rejects(api: KubeAPI, installed) -> None:
    """The lane can fail: a server-side apply with a field the CRD does not declare is refused (the
    apply path builds a typed object, so nothing is silently pruned), and a CEL rule rejects."""
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "canary"}}, dry_run=False)
    unknown = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
               "metadata": {"name": "q", "namespace": "canary"}, "spec": {"clusterQueue": "cq", "priority": 3}}
    res = api.apply(unknown, dry_run=True)
    assert not res.ok and ".spec.priority: field not declared in schema" in res.message(), res.body
    good = {**unknown, "spec": {"clusterQueue": "cq"}}
    res = api.apply(good, dry_run=True)
    assert res.ok and manifests.dropped_fields(good, res.body) == [], res.body
    # Karpenter's NodePool: a requirement on the reserved label "karpenter.sh/nodepool" breaks a CEL rule.
    bad = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "bad"},
           "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                           "name": "x"},
                                          "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In",
                                                            "values": ["a"]}]}}}}
    res = api.apply(bad, dry_run=True)
    assert res.status == 422, res.body


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_of_the_stack_passes_server_side_dry_run(stack: str, api: KubeAPI, installed, charts: Path) -> None:
    plan = plan_stack(stack)
    report = dry_run.dry_run_stack(plan, api, installed, charts)
    print(f"\n{stack}: {report.objects} objects ({report.crds} CRDs of its own), {report.applied} accepted, "
          f"{len(report.rejected)} rejected, {len(report.pruned)} pruned, {len(report.warnings)} warnings, "
          f"{report.seconds:.1f} s")
    for w in report.warnings:
        print(f"  warning: {w}")
    server, offline = report.problems(), plan.validation_problems
    assert report.applied > 0
    assert (server, offline) == ([], []), (
        f"{stack}: the API server and `gpuplane plan` must both find nothing (a disagreement is a defect in one)."
        "\nAPI server:\n  " + "\n  ".join(server or ["(nothing)"]) + "\ngpuplane plan:\n  " + "\n  ".join(offline or ["(nothing)"])
    )
