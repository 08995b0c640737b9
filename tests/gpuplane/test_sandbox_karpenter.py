"""Karpenter's kwok provider in the sandbox: the pure parts (instance types from the catalog, the command line,
the CRDs it installs) and the loopback relay it runs behind. The format checks compare with the upstream
module's own files when its source is in the Go module cache (the toolchain's build puts it there)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from components.catalog import load_catalog
from gpuplane.sandbox import cluster, karpenter, netns

LAYOUT = cluster.Layout("k", 20000, Path("/state"))


def _by_name(types):
    return {t["name"]: t for t in types}


def test_instance_types_carry_the_catalogs_capacity_and_gpus():
    types = _by_name(karpenter.instance_types())
    g6 = types["g6.xlarge"]
    assert g6["resources"] == {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "200Gi",
                               "nvidia.com/gpu": "1"}
    assert types["p5.48xlarge"]["resources"]["nvidia.com/gpu"] == "8"
    assert "nvidia.com/gpu" not in types["m6i.xlarge"]["resources"]
    assert g6["architecture"] == "amd64" and g6["operatingSystems"] == ["linux"]
    assert not any(n.startswith("ml.") for n in types), "SageMaker types are not EC2 nodes"


def test_offerings_are_spot_and_on_demand_per_catalog_zone_at_catalog_prices():
    catalog = load_catalog()
    for t in karpenter.instance_types(catalog):
        offering = catalog.offering("aws", t["name"], "us-east-1")
        assert offering is not None
        seen = {}
        for o in t["offerings"]:
            reqs = {r["key"]: r["values"] for r in o["Requirements"]}
            assert all(r["operator"] == "In" for r in o["Requirements"])
            assert o["Available"] is True
            seen[(reqs["karpenter.sh/capacity-type"][0], reqs["topology.kubernetes.io/zone"][0])] = o["Price"]
        expected = {(label, z): offering.price(cap) for cap, label in (("spot", "spot"), ("on_demand", "on-demand"))
                    if offering.price(cap) is not None for z in offering.zones}
        assert seen == expected, t["name"]
    assert "reserved" not in json.dumps(karpenter.instance_types()), "capacity blocks need reservations"


def test_region_without_offerings_gives_no_types():
    assert karpenter.instance_types(region="nowhere-1") == []


def test_command_runs_the_operator_behind_the_loopback_relay_as_root():
    argv = karpenter.command(LAYOUT, Path("/bin"), jail=True)
    assert argv[:3] == [sys.executable, "-I", str(Path(netns.__file__).resolve())]
    assert argv[3:8] == ["--inward", "20000", "--outward", "20011", "--"]
    program = argv[8:]
    assert program[:3] == ["env", "KUBECONFIG=/state/k/kubeconfig", "/bin/karpenter-kwok"]
    assert "--instance-types-file-path=/state/k/karpenter-instance-types.json" in program
    assert "--metrics-port=20010" in program and "--health-probe-port=20011" in program
    assert "--disable-leader-election=true" in program
    gates = next(a for a in program if a.startswith("--feature-gates="))
    assert "NodeOverlay=false" in gates and "CapacityBuffer=false" in gates and "StaticCapacity=false" in gates
    assert karpenter.executable(LAYOUT, Path("/bin"), jail=True) == sys.executable


def test_command_without_root_runs_the_operator_directly():
    argv = karpenter.command(LAYOUT, Path("/bin"), jail=False)
    assert argv[0] == "env" and argv[2] == "/bin/karpenter-kwok"
    assert karpenter.executable(LAYOUT, Path("/bin"), jail=False) == "/bin/karpenter-kwok"
    assert karpenter.ports(LAYOUT) == {"karpenter-metrics": 20010, "karpenter-health": 20011}


def test_crds_are_nodepool_nodeclaim_and_kwoknodeclass():
    moddir = karpenter.module_dir()
    if moddir is None:
        pytest.skip("sigs.k8s.io/karpenter is not in the Go module cache (make engine)")
    kinds = [(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in karpenter.crds(moddir)]
    assert kinds == [("karpenter.sh", "NodePool"), ("karpenter.sh", "NodeClaim"), ("karpenter.kwok.sh", "KWOKNodeClass")]


def test_instance_type_json_has_the_upstream_fields():
    moddir = karpenter.module_dir()
    if moddir is None:
        pytest.skip("sigs.k8s.io/karpenter is not in the Go module cache (make engine)")
    upstream = json.loads((moddir / "kwok" / "cloudprovider" / "instance_types.json").read_text())[0]
    ours = karpenter.instance_types()[0]
    assert set(ours) == set(upstream)
    assert set(ours["offerings"][0]) == set(upstream["offerings"][0])
    assert {r["key"] for r in ours["offerings"][0]["Requirements"]} == {r["key"] for r in upstream["offerings"][0]["Requirements"]}


def test_missing_program_is_named_with_the_fix(tmp_path):
    why = karpenter.missing(tmp_path)
    assert why is not None and "karpenter-kwok is not built" in why and "make engine" in why


@pytest.mark.skipif(not netns.available(), reason="network namespaces need root")
def test_relay_serves_an_all_interfaces_program_on_loopback_only(tmp_path):
    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    inward, outward = free(), free()
    (tmp_path / "f.txt").write_text("host")
    host = subprocess.Popen([sys.executable, "-m", "http.server", str(inward), "--bind", "127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while cluster.port_free(inward) and time.monotonic() < deadline:  # the host's server listens first
        time.sleep(0.05)
    script = tmp_path / "inner.sh"
    script.write_text(f"#!/bin/sh\n{sys.executable} -c \"import urllib.request as u; open('{tmp_path}/in.txt','wb')"
                      f".write(u.urlopen('http://127.0.0.1:{inward}/f.txt').read())\"\n"
                      f"exec {sys.executable} -m http.server {outward} --directory {tmp_path}\n")
    script.chmod(0o755)
    relay = subprocess.Popen(netns.relay_argv([str(script)], [inward], [outward]), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        body = b""
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{outward}/in.txt", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        assert body == b"host", "inside the namespace the host's loopback server answers through the relay"
        listeners = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
        if listeners:
            bound = [ln.split()[3] for ln in listeners.splitlines() if ln.split()[3].endswith(f":{outward}")]
            assert bound == [f"127.0.0.1:{outward}"], f"only the relay's loopback listener is on the host: {bound}"
    finally:
        os.killpg(relay.pid, 15)
        relay.wait(10)
        host.terminate()
        host.wait(10)


def test_demo_objects_let_karpenter_make_nodes_that_kueues_flavors_select():
    from gpuplane.demo.sandbox import training_objects

    objs = training_objects()
    pools = {p["metadata"]["name"]: p["spec"] for p in objs["node_pools"]}
    assert list(pools) == ["train-a10g-spot", "train-a10g-on-demand"]
    assert pools["train-a10g-spot"]["weight"] > pools["train-a10g-on-demand"]["weight"], "spot first"
    for spec in pools.values():
        assert spec["template"]["spec"]["nodeClassRef"] == karpenter.NODE_CLASS
    flavors = [o for o in objs["kueue"] if o["kind"] == "ResourceFlavor"]
    assert len(flavors) == 2
    for f in flavors:
        labels = pools[f["metadata"]["name"]]["template"]["metadata"]["labels"]
        assert f["spec"]["nodeLabels"].items() <= labels.items(), f"{f['metadata']['name']} selects the pool's nodes"
    jobset = objs["jobset"][0]
    pod = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs["namespace_and_accounts"] if o["kind"] == "ServiceAccount"}
    assert (jobset["metadata"]["namespace"], pod["serviceAccountName"]) in accounts, "the pods' service account exists"
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "train"


def test_demo_sandbox_without_the_toolchain_says_what_to_build(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gpuplane.cli import app

    monkeypatch.setenv("GPUPLANE_ENGINE_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--sandbox"])
    assert result.exit_code == 2, result.output
    assert "not built" in result.output and "karpenter-kwok" in result.output and "make engine" in result.output
