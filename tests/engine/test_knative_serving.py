"""Knative Serving's real controller (v1.21.2, built from knative.dev/serving v0.48.2) reconciles the Knative
Service an `InferenceEndpoint` emits, after `pulumi up` of the `local` stack on a sandbox of its own.

Evidence is the controller's own objects: the Revision it creates carries the scale bounds gpuplane set
(min 0, max, target), the PodAutoscaler it creates for that Revision carries them too, and the Deployment it
creates runs the endpoint's container. What cannot be shown here (gpuplane/sandbox/knative.py): no networking
layer, autoscaler, activator or webhook runs, so the Route and the Revision never become Ready.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gpuplane.sandbox import cluster, knative, netns, toolchain
from tests.engine import pulumi_lane

pytestmark = pytest.mark.engine


def _require_knative() -> None:
    gone = toolchain.missing([knative.PROCESS, *pulumi_lane.missing_programs()])
    if gone:
        why = f"not built: {', '.join(gone)}; run `python -m gpuplane.sandbox.toolchain {' '.join(gone)}`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def _get(sb, *args: str) -> dict:
    return json.loads(sb.kubectl(*args, "-o", "json").stdout)


def _maybe(sb, *args: str) -> dict | None:
    proc = sb.kubectl(*args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _wait_for(what: str, fn, timeout_s: float = 90.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def test_knative_controller_reconciles_the_endpoint_service_to_a_revision_with_gpuplanes_scale_bounds(
        sandboxes, charts_dir: Path, tmp_path: Path) -> None:
    _require_knative()
    start, stop = sandboxes
    sb = start("knative", 28443, knative=True)  # `gpuplane sandbox up --knative`
    try:
        assert sb.kubectl("-n", knative.NAMESPACE, "get", "lease", "-o", "name").stdout.count("reconciler") >= 3
        if netns.available():  # in its own network namespace: its fixed :8080 / :8008 are not on this machine's
            assert cluster.port_free(knative.HEALTH_PORT, "0.0.0.0") and cluster.port_free(8008, "0.0.0.0")
        work = pulumi_lane.project_dir(tmp_path / "project", "local", {"chartSource": str(charts_dir)})
        stack = pulumi_lane.select_stack("local", work, sb.env)
        up = stack.up()
        assert up.summary.result == "succeeded", up.stdout[-3000:]

        # What gpuplane asked for: the Service's template annotations as pulumi up created them.
        svc = _get(sb, "-n", "inference", "get", "services.serving.knative.dev", "recs")
        asked = svc["spec"]["template"]["metadata"]["annotations"]
        assert asked["autoscaling.knative.dev/min-scale"] == "0"
        assert int(asked["autoscaling.knative.dev/max-scale"]) == 2  # stacks/Pulumi.local.yaml: maxScale 2
        target = asked["autoscaling.knative.dev/target"]

        # What the controller did with it.
        revs = _wait_for("a Revision of recs", lambda: _get(
            sb, "-n", "inference", "get", "revisions.serving.knative.dev", "-l", "serving.knative.dev/service=recs")["items"])
        rev = revs[0]
        ann = rev["metadata"]["annotations"]
        assert (ann["autoscaling.knative.dev/min-scale"], ann["autoscaling.knative.dev/max-scale"],
                ann["autoscaling.knative.dev/target"]) == ("0", "2", target)
        assert rev["metadata"]["ownerReferences"][0]["kind"] == "Configuration"
        name = rev["metadata"]["name"]
        pa = _wait_for("the Revision's PodAutoscaler", lambda: _maybe(
            sb, "-n", "inference", "get", "podautoscalers.autoscaling.internal.knative.dev", name))
        pa_ann = pa["metadata"]["annotations"]
        assert (pa_ann["autoscaling.knative.dev/min-scale"], pa_ann["autoscaling.knative.dev/max-scale"],
                pa_ann["autoscaling.knative.dev/target"]) == ("0", "2", target)
        assert pa_ann["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
        assert pa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"}
        dep = _wait_for("the Revision's Deployment", lambda: _get(
            sb, "-n", "inference", "get", "deployments", "-l", f"serving.knative.dev/revision={name}")["items"])[0]
        containers = {c["name"]: c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}
        assert containers["server"] == svc["spec"]["template"]["spec"]["containers"][0]["image"]
        assert containers["queue-proxy"] == knative.QUEUE_IMAGE
        # The Route waits for a networking layer that does not run here: the Service is not Ready, and says why.
        conditions = {c["type"]: c for c in _get(sb, "-n", "inference", "get", "services.serving.knative.dev",
                                                 "recs")["status"]["conditions"]}
        assert conditions["Ready"]["status"] != "True"
        print(f"\nsandbox with Knative up in {sb.up_seconds:.1f} s; Revision {name}: min 0, max 2, target {target}; "
              f"Service Ready={conditions['Ready']['status']} ({conditions['Ready'].get('reason')})")
        destroy = stack.destroy()
        assert destroy.summary.result == "succeeded", destroy.stdout[-3000:]
    finally:
        stop(sb)
