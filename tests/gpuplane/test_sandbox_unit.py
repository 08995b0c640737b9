"""`gpuplane sandbox`: the pure parts (nodes from the catalog, command lines, ports, the toolchain's
cache key) and the CLI's bad-input paths, which must stop before starting anything."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.cluster import ClusterFacts
from components.node_pool import plan_node_pool
from gpuplane.cli import app
from gpuplane.sandbox import cluster, toolchain
from gpuplane.sandbox.nodes import SANDBOX_POOLS, SandboxPool, gpu_capacity, node_objects

runner = CliRunner()


def _by_name(nodes):
    return {n["metadata"]["name"]: n for n in nodes}


def test_gpu_nodes_carry_the_catalog_capacity_and_the_pool_taint():
    nodes = _by_name(node_objects())
    assert gpu_capacity(list(nodes.values())) == {"gpu-spot-l4-0": 1, "gpu-spot-l4-1": 1, "gpu-h100-0": 8}
    h100 = nodes["gpu-h100-0"]
    assert h100["status"]["capacity"]["cpu"] == "192" and h100["status"]["capacity"]["memory"] == "2048Gi"
    assert h100["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    spot = nodes["gpu-spot-l4-0"]["metadata"]["labels"]
    assert spot["gpuplane.dev/pool"] == "gpu-spot-l4"
    assert spot["gpuplane.dev/accelerator"] == "L4"
    assert spot["gpuplane.dev/capacity-type"] == "spot" and spot["karpenter.sh/capacity-type"] == "spot"
    assert spot["node.kubernetes.io/instance-type"] == "g6.xlarge"
    assert nodes["gpu-h100-0"]["metadata"]["labels"]["gpuplane.dev/capacity-type"] == "on-demand"


def test_system_nodes_have_no_gpu_and_no_taint():
    system = [n for n in node_objects() if n["metadata"]["labels"]["gpuplane.dev/pool"] == "system"]
    assert len(system) == 2
    for n in system:
        assert "nvidia.com/gpu" not in n["status"]["capacity"] and n["spec"] == {}
        assert "nvidia.com/gpu.present" not in n["metadata"]["labels"]


def test_every_node_is_handed_to_kwok():
    for n in node_objects():
        assert n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake", n["metadata"]["name"]


def _tolerated(node, tolerations) -> bool:
    return all(any(t["key"] == taint["key"] and t.get("value") == taint["value"] and t["effect"] == taint["effect"]
                   for t in tolerations) for taint in node["spec"].get("taints", []))


@pytest.mark.parametrize("facts", [
    ClusterFacts(cloud="aws", name="c", region="us-east-1", zones=("us-east-1a",), autoscaler="karpenter"),
    ClusterFacts(cloud="kubernetes", name="c", region=None, zones=(), autoscaler="none"),
], ids=["eks-karpenter", "existing"])
def test_a_gpu_node_pools_pods_land_on_the_sandbox_gpu_nodes(facts):
    """What a GpuNodePool tells its pods (selector, tolerations) matches the sandbox's GPU nodes."""
    args = {"accelerator": "L4", "capacity_type": "spot"} if facts.cloud == "aws" else {"accelerator": "L4"}
    plan = plan_node_pool("gpu-spot-l4", args, facts)  # type: ignore[arg-type]
    sched = plan.scheduling
    matching = [n for n in node_objects()
                if all(n["metadata"]["labels"].get(k) == v for k, v in sched.node_selector.items())
                and _tolerated(n, sched.tolerations)]
    names = {n["metadata"]["name"] for n in matching}
    assert {"gpu-spot-l4-0", "gpu-spot-l4-1"} <= names
    assert not any(n.startswith("system") for n in names)


def test_an_instance_type_outside_the_catalog_is_refused():
    with pytest.raises(ValueError, match=r"'x9\.huge' is not in the AWS catalog"):
        node_objects((SandboxPool("bad", "x9.huge", "spot", 1),))


def test_default_pools_are_the_ones_documented():
    assert [(p.instance_type, p.capacity_type, p.count) for p in SANDBOX_POOLS] == [
        ("g6.xlarge", "spot", 2), ("p5.48xlarge", "on_demand", 1), ("m6i.xlarge", "on_demand", 2)]


# -- layout and command lines ----------------------------------------------------------------------


def test_layout_uses_six_consecutive_ports(tmp_path):
    layout = cluster.Layout("a", 20000, tmp_path)
    assert sorted(layout.ports.values()) == list(range(20000, 20006))
    assert layout.dir == tmp_path / "a" and layout.server == "https://127.0.0.1:20000"


@pytest.mark.parametrize(("name", "port", "message"), [
    ("bad name", 20000, "--name 'bad name' is not a sandbox name"),
    ("", 20000, "is not a sandbox name"),
    ("a", 80, "--port 80 is out of range"),
    ("a", 65533, "--port 65533 is out of range"),
])
def test_bad_name_or_port_is_refused(name, port, message):
    with pytest.raises(cluster.SandboxError, match=message):
        cluster.Layout(name, port)


def test_every_program_listens_on_loopback_only(tmp_path):
    layout = cluster.Layout("a", 20000, tmp_path)
    cmds = cluster.commands(layout, tmp_path / "bin")
    assert list(cmds) == list(cluster.START_ORDER)
    text = " ".join(" ".join(c) for c in cmds.values())
    assert "0.0.0.0" not in text
    assert "--listen-client-urls=http://127.0.0.1:20001" in cmds["etcd"]
    assert "--etcd-servers=http://127.0.0.1:20001" in cmds["kube-apiserver"]
    assert "--bind-address=127.0.0.1" in cmds["kube-apiserver"] and "--secure-port=20000" in cmds["kube-apiserver"]
    assert "--secure-port=20003" in cmds["kube-controller-manager"] and "--secure-port=20004" in cmds["kube-scheduler"]
    assert "--server-address=127.0.0.1:20005" in cmds["kwok"]
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in cmds["kwok"]
    assert all(c[0].startswith(str(tmp_path / "bin")) for c in cmds.values())
    assert f"--data-dir={tmp_path / 'a' / 'etcd'}" in cmds["etcd"]


def test_kubeconfig_and_env_point_at_the_sandbox(tmp_path):
    layout = cluster.Layout("a", 20000, tmp_path)
    kc = json.loads(cluster.kubeconfig_text(layout))
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:20000"
    lines = cluster.env_lines(layout, Path("/c/bin"), "p'w")
    assert f"export KUBECONFIG='{tmp_path / 'a' / 'kubeconfig'}'" in lines
    assert f"export PULUMI_BACKEND_URL='file://{tmp_path / 'a' / 'pulumi-state'}'" in lines
    assert "export PULUMI_CONFIG_PASSPHRASE='p'\\''w'" in lines
    assert "export PATH='/c/bin':\"$PATH\"" in lines
    out = subprocess.run(["bash", "-c", "\n".join(lines) + '\necho "$PULUMI_CONFIG_PASSPHRASE|${PATH%%:*}"'],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "p'w|/c/bin"


def test_port_free_sees_a_listener():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not cluster.port_free(port)
    assert cluster.port_free(port)


# -- toolchain --------------------------------------------------------------------------------------


def test_cache_key_follows_the_pins_and_a_fingerprint_follows_each_recipe(tmp_path):
    recipes = tmp_path / "engine"
    shutil.copytree(toolchain.RECIPES, recipes)
    key = toolchain.cache_key()
    assert key == toolchain.cache_key()
    kwok = next(b for b in toolchain.BINARIES if b.name == "kwok")
    etcd = next(b for b in toolchain.BINARIES if b.name == "etcd")
    before = {b.name: toolchain.fingerprint(b, recipes) for b in (kwok, etcd)}
    assert before == {b.name: toolchain.fingerprint(b) for b in (kwok, etcd)}
    gomod = recipes / "kwok" / "go.mod"
    gomod.write_text(gomod.read_text().replace("v0.7.0", "v0.8.0"))
    assert toolchain.fingerprint(kwok, recipes) != before["kwok"]
    assert toolchain.fingerprint(etcd, recipes) == before["etcd"]
    bumped = tuple(b if b.name != "etcd" else toolchain.Binary(**{**b.__dict__, "version": "v3.6.15"}) for b in toolchain.BINARIES)
    assert toolchain.cache_key(bumped) != key


def test_cache_lives_outside_the_clone(monkeypatch, tmp_path):
    monkeypatch.delenv("GPUPLANE_ENGINE_CACHE", raising=False)
    assert toolchain.engine_cache() == Path.home() / ".cache" / "gpuplane" / "engine"
    monkeypatch.setenv("GPUPLANE_ENGINE_CACHE", str(tmp_path))
    assert toolchain.bin_dir().parent.parent == tmp_path
    assert toolchain.REPO not in toolchain.bin_dir().parents


def test_recipes_hold_no_upstream_code():
    """Each recipe is a go.mod/go.sum and at most a tiny main.go of our own."""
    for b in toolchain.BINARIES:
        if b.blocked:
            assert not b.recipe, b.name
            continue
        folder = toolchain.RECIPES / b.recipe
        assert (folder / "go.mod").is_file() and (folder / "go.sum").is_file(), b.name
        assert f"{b.module} {b.version}" in (folder / "go.mod").read_text(), f"{b.name}: go.mod does not pin {b.module} {b.version}"
        for f in folder.iterdir():
            assert f.name in ("go.mod", "go.sum") or (f.suffix == ".go" and len(f.read_text().splitlines()) < 20), f


def test_built_programs_are_reused_without_go(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    bindir = toolchain.bin_dir(tmp_path)
    bindir.mkdir(parents=True)
    for name in ("etcd", "kwok"):
        (bindir / name).write_text("#!/bin/sh\n")
        fp = toolchain.fingerprint(next(b for b in toolchain.BINARIES if b.name == name))
        (bindir / f".{name}.built").write_text(json.dumps({"fingerprint": fp}) + "\n")
    lines: list[str] = []
    results = toolchain.build(["etcd", "kwok"], echo=lines.append, cache=tmp_path)
    assert [(r.name, r.status) for r in results] == [("etcd", "cached"), ("kwok", "cached")]
    assert lines == ["[1/2] etcd: cached (go.etcd.io/etcd/server/v3 v3.6.16)", "[2/2] kwok: cached (sigs.k8s.io/kwok v0.7.0)"]


def test_a_binary_without_its_stamp_is_rebuilt_and_missing_go_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    bindir = toolchain.bin_dir(tmp_path)
    bindir.mkdir(parents=True)
    (bindir / "etcd").write_text("half-written")
    assert toolchain.missing(["etcd"], bindir) == ["etcd"]
    (bindir / ".etcd.built").write_text(json.dumps({"fingerprint": "from-an-older-recipe"}))
    assert toolchain.missing(["etcd"], bindir) == ["etcd"]
    with pytest.raises(toolchain.ToolchainError, match=r"`go` is not on PATH.*Install Go 1.26 or newer"):
        toolchain.build(["etcd"], echo=lambda _: None, cache=tmp_path)


def test_blocked_programs_are_reported_not_replaced(tmp_path):
    lines: list[str] = []
    results = toolchain.build(["pulumi-language-python"], echo=lines.append, cache=tmp_path)
    assert results[0].status == "blocked" and "403 Forbidden" in results[0].detail
    assert not (toolchain.bin_dir(tmp_path) / "pulumi-language-python").exists()


def test_make_engine_without_go_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "GPUPLANE_ENGINE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "gpuplane.sandbox.toolchain", "etcd"], env=env,
                          capture_output=True, text=True, cwd=toolchain.REPO, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "`go` is not on PATH" in proc.stderr


# -- CLI bad input: one line, exit 2, nothing started -----------------------------------------------


@pytest.fixture
def homes(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUPLANE_SANDBOX_HOME", str(tmp_path / "sandbox"))
    monkeypatch.setenv("GPUPLANE_ENGINE_CACHE", str(tmp_path / "engine"))
    return tmp_path


def _free_base_port() -> int:
    for base in range(21000, 60000, 10):
        if all(cluster.port_free(p) for p in range(base, base + 6)):
            return base
    raise RuntimeError("no free ports")


def test_up_with_a_port_in_use_names_the_port_and_starts_nothing(homes):
    base = _free_base_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 1))
        s.listen()
        result = runner.invoke(app, ["sandbox", "up", "--name", "t", "--port", str(base), "--no-build"])
    assert result.exit_code == 2
    assert f"port {base + 1} (etcd) on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert not (homes / "sandbox" / "t" / "pids.json").exists()


def test_up_with_a_stale_state_folder_says_how_to_clear_it(homes):
    folder = homes / "sandbox" / "t"
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / "pids.json").write_text(json.dumps({"etcd": {"pid": dead.pid, "exe": "/x/etcd"}}))
    result = runner.invoke(app, ["sandbox", "up", "--name", "t", "--port", str(_free_base_port()), "--no-build"])
    assert result.exit_code == 2
    assert "stale state folder" in result.stderr and "gpuplane sandbox down --name t" in result.stderr
    down = runner.invoke(app, ["sandbox", "down", "--name", "t"])
    assert down.exit_code == 0 and not (folder / "pids.json").exists()


def test_up_without_built_programs_and_no_build_names_them(homes):
    result = runner.invoke(app, ["sandbox", "up", "--name", "t", "--port", str(_free_base_port()), "--no-build"])
    assert result.exit_code == 2
    assert "etcd, kube-apiserver, kwok" in result.stderr and "run `make engine`" in result.stderr
    assert not (homes / "sandbox" / "t" / "pids.json").exists()


def test_up_without_go_says_what_is_missing(homes, monkeypatch):
    monkeypatch.setenv("PATH", str(homes / "nothing"))
    result = runner.invoke(app, ["sandbox", "up", "--name", "t", "--port", str(_free_base_port())])
    assert result.exit_code == 2
    assert "`go` is not on PATH" in result.stderr and "Install Go" in result.stderr


def test_env_before_up_is_an_error_and_status_reports_absent(homes):
    result = runner.invoke(app, ["sandbox", "env", "--name", "t"])
    assert result.exit_code == 2 and "run `gpuplane sandbox up --name t` first" in result.stderr
    st = runner.invoke(app, ["sandbox", "status", "--name", "t"])
    assert st.exit_code == 1 and "absent" in st.stdout


def test_pulumi_embeds_are_the_schema_with_its_version_and_the_compact_mapping(tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps({"name": "kubernetes", "version": "", "resources": {}}, indent=4))
    (tmp_path / "terraform-mapping.json").write_text('{\n  "a": 1\n}\n')
    toolchain.pulumi_embeds(tmp_path, "4.24.0-dev.x")
    assert json.loads((tmp_path / "schema-embed.json").read_text()) == {"name": "kubernetes", "version": "4.24.0-dev.x", "resources": {}}
    assert (tmp_path / "terraform-mapping-embed.json").read_text() == '{"a":1}'
