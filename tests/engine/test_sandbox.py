"""`gpuplane sandbox` for real: etcd, kube-apiserver, controller-manager, scheduler and kwok built from
their Go modules, with the catalog's GPU nodes; scheduling, server-side dry run, a second sandbox beside
the first, and `down` leaving no process and no port."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gpuplane.sandbox import cluster
from gpuplane.sandbox.nodes import gpu_capacity, node_objects

pytestmark = pytest.mark.engine


def _wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _pod(name: str, gpus: int, tolerate: bool) -> dict:
    spec: dict = {
        "containers": [{"name": "main", "image": "ghcr.io/gpuplane/serving:0.1.0",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
    }
    if tolerate:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_kwok_nodes_are_ready_with_the_catalog_gpus(sandbox):
    nodes = json.loads(sandbox.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = {n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
    assert ready == {n["metadata"]["name"] for n in node_objects()}
    assert gpu_capacity(nodes) == {"gpu-spot-l4-0": 1, "gpu-spot-l4-1": 1, "gpu-h100-0": 8}
    h100 = next(n for n in nodes if n["metadata"]["name"] == "gpu-h100-0")
    assert h100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert h100["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert h100["metadata"]["labels"]["gpuplane.dev/accelerator"] == "H100"


def test_server_reports_the_pinned_kubernetes_version(sandbox):
    version = json.loads(sandbox.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.33.13"
    assert version["clientVersion"]["gitVersion"] == "v1.33.13"


def test_a_gpu_pod_with_the_toleration_runs_on_the_h100_node(sandbox):
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(_pod("train-8gpu", 8, tolerate=True)))

    def running():
        pod = json.loads(sandbox.kubectl("get", "pod", "train-8gpu", "-o", "json").stdout)
        return pod if pod["status"].get("phase") == "Running" else None

    pod = _wait_for("train-8gpu Running", running)
    assert pod["spec"]["nodeName"] == "gpu-h100-0"
    sandbox.kubectl("delete", "pod", "train-8gpu", "--grace-period=0", "--force", "--wait=false")


def test_a_gpu_pod_without_the_toleration_stays_pending(sandbox):
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(_pod("no-toleration", 1, tolerate=False)))

    def unschedulable():
        pod = json.loads(sandbox.kubectl("get", "pod", "no-toleration", "-o", "json").stdout)
        cond = [c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"]
        return cond[0] if cond and cond[0].get("reason") == "Unschedulable" else None

    cond = _wait_for("no-toleration Unschedulable", unschedulable)
    assert "untolerated taint" in cond["message"] and "nvidia.com/gpu" in cond["message"]
    sandbox.kubectl("delete", "pod", "no-toleration", "--grace-period=0", "--force", "--wait=false")


def test_server_side_dry_run_validates_without_creating(sandbox):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry", "namespace": "default"},
          "data": {"k": "v"}}
    out = sandbox.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(cm))
    assert json.loads(out.stdout)["metadata"]["name"] == "dry"
    assert sandbox.kubectl("get", "configmap", "dry", check=False).returncode != 0
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "default"},
           "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    rejected = sandbox.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0 and "spec.replicas" in rejected.stderr


def test_a_second_up_names_the_running_sandbox(sandbox, gpuplane):
    again = gpuplane("sandbox", "up", "--name", sandbox.name, "--port", str(sandbox.port), "--no-build", env=sandbox.env)
    assert again.returncode == 2
    assert f"sandbox '{sandbox.name}' is already running" in again.stderr
    assert gpuplane("sandbox", "status", "--name", sandbox.name, env=sandbox.env).returncode == 0


def test_a_second_sandbox_runs_beside_and_down_leaves_nothing(sandbox, sandboxes):
    start, stop = sandboxes
    other = start("beside", port=sandbox.port + 10)
    assert other.port != sandbox.port
    nodes = json.loads(other.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == len(node_objects())
    pids = json.loads(other.layout.pids_file.read_text())
    assert set(pids) == set(cluster.START_ORDER)
    down = stop(other)
    assert down.returncode == 0, down.stderr
    for name, entry in pids.items():
        assert not Path(f"/proc/{entry['pid']}").exists() or "Z" in Path(f"/proc/{entry['pid']}/stat").read_text().split()[2], name
    assert [p for p in other.layout.ports.values() if not cluster.port_free(p)] == []
    assert not other.layout.dir.exists()
    # The first sandbox is untouched.
    assert sandbox.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_helm_installs_the_device_plugin_chart_onto_exactly_the_gpu_nodes(sandbox, charts_dir, helm_built):
    """The built helm, offline from the pinned archive; the real DaemonSet controller and scheduler place it."""
    import subprocess

    archive = sorted(charts_dir.glob("nvidia-device-plugin-*.tgz"))[-1]
    proc = subprocess.run(["helm", "install", "ndp", str(archive), "-n", "gpu-operator", "--create-namespace",
                           "--wait", "--timeout", "120s"], env=sandbox.env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    pods = json.loads(sandbox.kubectl("get", "pods", "-n", "gpu-operator", "-o", "json").stdout)["items"]
    placed = {p["spec"]["nodeName"] for p in pods if p["status"].get("phase") == "Running"}
    assert placed == set(gpu_capacity(node_objects()))
    subprocess.run(["helm", "uninstall", "ndp", "-n", "gpu-operator", "--wait"], env=sandbox.env, capture_output=True,
                   timeout=120, check=True)


def test_the_built_pulumi_runs_a_program_on_the_sandbox_with_the_local_backend(sandbox, pulumi_built, tmp_path):
    """pulumi CLI + pulumi-language-yaml + pulumi-resource-kubernetes, all from the toolchain (PATH), against
    the file backend and passphrase of `gpuplane sandbox env`: up, preview without changes, destroy."""
    import subprocess

    (tmp_path / "Pulumi.yaml").write_text(
        "name: sandbox-smoke\nruntime: yaml\nresources:\n  cm:\n    type: kubernetes:core/v1:ConfigMap\n"
        "    properties:\n      metadata:\n        namespace: default\n      data:\n        gpu: nvidia.com/gpu\n"
        "outputs:\n  name: ${cm.metadata.name}\n")

    def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=tmp_path, env=sandbox.env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"pulumi {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc

    assert sandbox.env["PULUMI_BACKEND_URL"].startswith("file://")
    pulumi("stack", "init", "smoke")
    pulumi("up", "--yes", "--stack", "smoke")
    name = pulumi("stack", "output", "name", "--stack", "smoke").stdout.strip()
    cm = json.loads(sandbox.kubectl("get", "configmap", name, "-n", "default", "-o", "json").stdout)
    assert cm["data"] == {"gpu": "nvidia.com/gpu"}
    pulumi("preview", "--expect-no-changes", "--stack", "smoke")
    pulumi("destroy", "--yes", "--stack", "smoke")
    assert sandbox.kubectl("get", "configmap", name, "-n", "default", check=False).returncode != 0
