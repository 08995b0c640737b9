"""`pulumi preview` / `up` / `preview --expect-no-changes` / `refresh --expect-no-changes` / `destroy` of
the `local` stack on the sandbox under the real Pulumi CLI and Kubernetes provider, every Helm release
installed from the chart archives (``gpuplane:cluster.chartSource``), with a file backend and a
passphrase; `destroy` must leave the cluster as it was. How each piece runs: tests/engine/pulumi_lane.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gpuplane.engine import manifests
from tests.engine import dry_run, pulumi_lane
from tests.engine.kubeapi import KubeAPI

pytestmark = pytest.mark.engine


def _require_engine() -> Path:
    gone = pulumi_lane.missing_programs()
    charts = dry_run.charts_dir()
    why = (f"Pulumi programs not built: {', '.join(gone)}; run `make engine`" if gone
           else "no chart archives (../shared/charts or $GPUPLANE_CHARTS_DIR)" if charts is None else "")
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    assert charts is not None
    return charts


def test_local_stack_up_is_stable_and_destroy_leaves_the_cluster_as_it_was(sandbox, tmp_path: Path) -> None:
    charts = _require_engine()
    api = KubeAPI(Path(sandbox.env["KUBECONFIG"]))
    # Knative Serving's CRDs come from its operator at run time, and no operator runs on kwok nodes:
    # install the pinned Service CRD the operator would install, as part of "the cluster as it was".
    knative = [c for c in manifests.pinned_crds() if c["metadata"]["name"] == "services.serving.knative.dev"]
    assert dry_run.install_crds(api, {c["metadata"]["name"]: c for c in knative}) == []
    before = api.snapshot()

    work = pulumi_lane.project_dir(tmp_path / "project", "local", {"chartSource": str(charts)})
    stack = pulumi_lane.select_stack("local", work, sandbox.env)
    timings: dict[str, float] = {}

    def timed(step: str, fn, **kw):
        started = time.perf_counter()
        result = fn(**kw)
        timings[step] = time.perf_counter() - started
        return result

    preview = timed("preview", stack.preview)
    assert preview.change_summary.get("create", 0) > 0, preview.change_summary
    up = timed("up", stack.up)
    assert up.summary.result == "succeeded", up.stdout[-3000:]
    created = api.snapshot() - before
    releases = [o for o in created if o[1] == "Deployment" and o[2] == "knative-operator"]
    assert releases, f"the knative-operator chart installed nothing from {charts}: {sorted(created)}"
    timed("preview --expect-no-changes", stack.preview, expect_no_changes=True)
    timed("refresh --expect-no-changes", stack.refresh, expect_no_changes=True)
    destroy = timed("destroy", stack.destroy)
    assert destroy.summary.result == "succeeded", destroy.stdout[-3000:]
    left = api.snapshot() - before
    gone = before - api.snapshot()
    print("\nlocal on the sandbox: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; {len(created)} objects created")
    assert (left, gone) == (set(), set()), f"destroy left {sorted(left)} and removed {sorted(gone)}"
