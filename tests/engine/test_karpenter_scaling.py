"""Scale from zero and back with the real Karpenter (kwok provider) on the sandbox, provisioning from the NodePool
that `pulumi up` of a `GpuNodePool` emitted.

A sandbox of its own (`gpuplane sandbox up --controllers`, session fixture ``karpenter_sandbox``, apart from the plain
one) runs Karpenter fed with the catalog's instance types (and Kueue and JobSet, unused here). The program: an existing `KubernetesCluster` (the sandbox's kubeconfig) and a spot
L4 `GpuNodePool` with ``karpenter`` (the sandbox's KWOKNodeClass) and a short ``scale_down_delay_seconds``; `pulumi up`
runs under the real CLI and Kubernetes provider (tests/engine/pulumi_lane.py). Then a pending GPU pod must make
Karpenter create a NodeClaim and a node of the cheapest type the NodePool allows (checked against the catalog), Ready
in kwok, the pod bound to it; once the pod is deleted the node must be gone after the consolidation delay. Evidence is
Karpenter's own: NodeClaim conditions and events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.sandbox import cluster, karpenter, toolchain
from tests.engine import dry_run, pulumi_lane
from tests.engine.conftest import Sandbox, exports, run_gpuplane

pytestmark = pytest.mark.engine

POOL = "kp-l4"
DELAY_S = 15


def _skip_or_fail(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def _free_base(start: int = 36443) -> int:
    for base in range(start, 60000, 20):
        if all(cluster.port_free(p) for p in range(base, base + 12)):
            return base
    raise RuntimeError("no twelve free consecutive loopback ports")


@pytest.fixture(scope="session")
def karpenter_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox with the controllers (`gpuplane sandbox up --controllers`: Karpenter's kwok provider among them)."""
    gone = toolchain.missing([*toolchain.SANDBOX_BINARIES, *toolchain.CONTROLLER_BINARIES, "helm"])
    if gone or karpenter.module_dir() is None:
        _skip_or_fail(f"not built: {', '.join(gone) or karpenter.MODULE + ' source'} (in {toolchain.bin_dir()}); run `make engine`")
    root = tmp_path_factory.mktemp("karpenter-sandboxes")
    env = {**os.environ, "GPUPLANE_SANDBOX_HOME": str(root)}
    port = _free_base()
    up = run_gpuplane("sandbox", "up", "--name", "karp", "--port", str(port), "--no-build", "--controllers", env=env)
    assert up.returncode == 0, f"sandbox up --controllers failed ({up.returncode}):\n{up.stdout}\n{up.stderr}"
    print("\n" + up.stdout)
    exp = run_gpuplane("sandbox", "env", "--name", "karp", env=env)
    sb = Sandbox("karp", port, exports(exp.stdout, env), float("nan"), cluster.load_layout("karp", port, root))
    try:
        yield sb
    finally:
        down = run_gpuplane("sandbox", "down", "--name", "karp", "--purge", env=sb.env)
        assert down.returncode == 0, f"sandbox down failed: {down.stderr}"


def _program(charts: Path) -> None:
    from components import GpuNodePool, KubernetesCluster

    c = KubernetesCluster("sandbox", {"cloud": "existing", "chart_source": str(charts)})
    GpuNodePool(POOL, {"cluster": c, **karpenter.pool_args(max_nodes=2, scale_down_delay_seconds=DELAY_S)})  # type: ignore[typeddict-item]


def _stack(work: Path, sb: Sandbox, charts: Path) -> Any:
    from pulumi import automation as auto

    work.mkdir(parents=True, exist_ok=True)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "gpuplane-karpenter", "runtime": "python"}))
    env = pulumi_lane.engine_env(sb.env)
    os.environ.update(env)
    command = auto.PulumiCommand(root=str(toolchain.bin_dir().parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(work), env_vars=env, pulumi_command=command, pulumi_home=env.get("PULUMI_HOME"))
    return auto.create_or_select_stack(stack_name="karpenter", project_name="gpuplane-karpenter",
                                       program=lambda: _program(charts), opts=opts)


def _until(what: str, check: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _evidence(layout: cluster.Layout, claim: str) -> str:
    return "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in karpenter.events(cluster.api, layout, "NodeClaim", claim))


def test_pending_gpu_pod_scales_the_pool_from_zero_and_back(karpenter_sandbox: Sandbox, tmp_path: Path) -> None:
    charts = dry_run.charts_dir()
    if pulumi_lane.missing_programs() or charts is None:
        _skip_or_fail(f"Pulumi programs ({pulumi_lane.missing_programs()}) or chart archives missing; run `make engine`")
    assert charts is not None
    sb, layout = karpenter_sandbox, karpenter_sandbox.layout
    stack = _stack(tmp_path / "project", sb, charts)
    up = stack.up()
    assert up.summary.result == "succeeded", up.stdout[-3000:]
    try:
        code, np = cluster.api(layout, "GET", f"/apis/karpenter.sh/v1/nodepools/{POOL}")
        assert code == 200, np
        spec = np["spec"]
        assert spec["template"]["spec"]["nodeClassRef"] == {**karpenter.NODE_CLASS}
        assert spec["disruption"]["consolidateAfter"] == f"{DELAY_S}s"
        _until("NodePool Ready (Karpenter's status)", lambda: karpenter.condition(
            cluster.api(layout, "GET", f"/apis/karpenter.sh/v1/nodepools/{POOL}")[1], "Ready"), 60)
        candidates = next(r["values"] for r in spec["template"]["spec"]["requirements"]
                          if r["key"] == "node.kubernetes.io/instance-type")
        expected_type = karpenter.cheapest(candidates, "spot")
        assert not karpenter.nodeclaims(cluster.api, layout, POOL), "the pool starts at zero nodes"

        started = time.monotonic()
        code, body = cluster.api(layout, "POST", "/api/v1/namespaces/default/pods", karpenter.gpu_pod("gpu-job", POOL))
        assert code == 201, body

        def claim_initialized() -> dict[str, Any] | None:
            claims = karpenter.nodeclaims(cluster.api, layout, POOL)
            return claims[0] if claims and karpenter.condition(claims[0], "Initialized") else None

        claim = _until("a NodeClaim of the pool Launched, Registered and Initialized", claim_initialized, 180)
        name, node_name = claim["metadata"]["name"], claim["status"]["nodeName"]
        assert all(karpenter.condition(claim, c) for c in ("Launched", "Registered", "Initialized")), claim["status"]
        code, node = cluster.api(layout, "GET", f"/api/v1/nodes/{node_name}")
        assert code == 200 and karpenter.condition(node, "Ready"), f"node {node_name} not Ready: {node.get('status')}"
        labels = node["metadata"]["labels"]
        assert labels["node.kubernetes.io/instance-type"] == expected_type, (labels, _evidence(layout, name))
        assert labels["karpenter.sh/capacity-type"] == "spot" and labels["karpenter.sh/nodepool"] == POOL
        assert labels["gpuplane.dev/pool"] == POOL
        assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake", "kwok manages Karpenter's node"

        def pod_running() -> bool:
            _, pod = cluster.api(layout, "GET", "/api/v1/namespaces/default/pods/gpu-job")
            return pod.get("spec", {}).get("nodeName") == node_name and pod.get("status", {}).get("phase") == "Running"

        _until(f"the pod bound to {node_name} and Running", pod_running, 60)
        to_ready = time.monotonic() - started
        print(f"\npending GPU pod -> {expected_type} node {node_name} Ready and pod Running in {to_ready:.1f} s; "
              f"NodeClaim {name}: {_evidence(layout, name)}")

        deleted = time.monotonic()
        code, _ = cluster.api(layout, "DELETE", "/api/v1/namespaces/default/pods/gpu-job?gracePeriodSeconds=0")
        assert code == 200
        _until("the pod gone", lambda: cluster.api(layout, "GET", "/api/v1/namespaces/default/pods/gpu-job")[0] == 404, 60)
        reasons: set[str] = set()

        def node_gone() -> bool:
            reasons.update(f"{e.get('reason')}: {e.get('message')}" for e in karpenter.events(cluster.api, layout, "NodeClaim", name))
            return (cluster.api(layout, "GET", f"/api/v1/nodes/{node_name}")[0] == 404
                    and not karpenter.nodeclaims(cluster.api, layout, POOL))

        _until("the empty node removed by consolidation", node_gone, DELAY_S + 150, every=1.0)
        removed = time.monotonic() - deleted
        print(f"node removed {removed:.1f} s after the pod was deleted (consolidateAfter {DELAY_S}s); "
              f"NodeClaim events: {sorted(reasons)}")
        assert removed >= DELAY_S, f"removed after {removed:.1f} s, before the {DELAY_S} s delay gpuplane set"
        assert "DisruptionTerminating: Disrupting NodeClaim: Empty" in reasons, f"not removed as empty by consolidation: {reasons}"
    finally:
        destroy = stack.destroy()
        assert destroy.summary.result == "succeeded", destroy.stdout[-3000:]
    assert cluster.api(layout, "GET", f"/apis/karpenter.sh/v1/nodepools/{POOL}")[0] == 404
