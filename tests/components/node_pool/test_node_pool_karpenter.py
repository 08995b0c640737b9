"""Karpenter GpuNodePools on an existing cluster that runs Karpenter (components/node_pool/existing.py) and the
NodePool spec every Karpenter backend shares (components/node_pool/karpenter.py), checked against the NodePool
CRD: the pinned schema in gpuplane/schemas (AWS provider v1.6.3) and, when the Go module cache has it, the
sigs.k8s.io/karpenter v1.14.1 CRD the sandbox installs."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.catalog import load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError
from components.node_pool import GpuNodePool, plan_node_pool
from components.node_pool.karpenter import duration, karpenter_node_pool_spec
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run

REPO = Path(__file__).resolve().parents[3]
EXISTING = ClusterFacts(cloud="kubernetes", name="sandbox", region=None, zones=(), autoscaler="none")
EKS = ClusterFacts(cloud="aws", name="c", region="us-east-1", zones=("us-east-1a",), autoscaler="karpenter")
KWOK = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}
KARP = {"node_class": KWOK, "region": "us-east-1"}


def _plan(args: dict[str, Any], facts: ClusterFacts = EXISTING):
    return plan_node_pool("gpu-l4", {"accelerator": "L4", **args}, facts)  # type: ignore[arg-type, typeddict-item]


def test_existing_cluster_with_karpenter_plans_a_nodepool_from_the_catalog():
    plan = _plan({"capacity_type": "spot", "max_nodes": 3, "karpenter": KARP, "scale_down_delay_seconds": 20})
    catalog = load_catalog()
    assert (plan.implementation, plan.cloud, plan.region) == ("karpenter", "aws", "us-east-1")
    assert plan.node_class == KWOK and plan.scale_down_delay_seconds == 20
    assert plan.candidate_instance_types == ("g6.2xlarge", "g6.xlarge")
    assert plan.zones == catalog.offering("aws", "g6.xlarge", "us-east-1").zones  # type: ignore[union-attr]
    assert plan.instance_type is not None and plan.instance_type.name == "g6.xlarge"  # the cheapest spot offer
    assert plan.usd_per_node_hour == catalog.price("aws", "g6.xlarge", "us-east-1", "spot")
    assert plan.scheduling.node_selector == {"gpuplane.dev/pool": "gpu-l4"}
    assert plan.summary()["createsNodes"] is True


def test_existing_cluster_without_karpenter_is_unchanged():
    plan = _plan({})
    assert plan.implementation == "existing-device-plugin" and plan.node_class is None
    assert plan.scheduling.node_selector == {"nvidia.com/gpu.present": "true"}


@pytest.mark.parametrize(
    "facts,args,expected",
    [
        (EKS, {"karpenter": KARP}, ["karpenter", "applies to existing clusters only"]),
        (EXISTING, {"karpenter": {"region": "us-east-1"}}, ["karpenter.node_class", "needs group, kind and name"]),
        (EXISTING, {"karpenter": {"node_class": {**KWOK, "kind": ""}, "region": "us-east-1"}}, ["karpenter.node_class"]),
        (EXISTING, {"karpenter": {"node_class": KWOK, "region": "mars-1"}}, ["karpenter.region", "'mars-1'", "us-east-1"]),
        (EXISTING, {"karpenter": {"node_class": KWOK, "region": "us-east-1", "cloud": "azure"}}, ["karpenter.cloud"]),
        (EXISTING, {"karpenter": {**KARP, "zone": "a"}}, ["karpenter.zone", "is not a field of karpenter"]),
        (EXISTING, {"scale_down_delay_seconds": 60}, ["scale_down_delay_seconds", "only to Karpenter pools"]),
        (EXISTING, {"karpenter": KARP, "scale_down_delay_seconds": -1}, ["scale_down_delay_seconds", "0 or more"]),
        (EXISTING, {"karpenter": KARP, "priority": 101}, ["priority", "weight range"]),
        (EXISTING, {"karpenter": KARP, "gpu_sharing": {"strategy": "time-slicing"}}, ["karpenter does not support time-slicing"]),
    ],
)
def test_bad_karpenter_input_is_rejected_with_the_field(facts, args, expected):
    with pytest.raises(ComponentInputError) as e:
        _plan(args, facts)
    for text in expected:
        assert text in str(e.value)


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (20, "20s"), (90, "90s"), (300, "5m"), (7200, "2h"), (3660, "61m")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_shared_spec_refers_to_the_given_node_class_and_delay():
    plan = _plan({"capacity_type": "spot", "max_nodes": 3, "karpenter": KARP, "scale_down_delay_seconds": 20})
    spec = karpenter_node_pool_spec(plan, KWOK)
    assert spec["template"]["spec"]["nodeClassRef"] == KWOK
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "20s"}
    assert spec["limits"] == {"nvidia.com/gpu": 3}
    reqs = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"]["values"] == ["g6.2xlarge", "g6.xlarge"]
    assert reqs["karpenter.sh/capacity-type"]["values"] == ["spot"]
    assert spec["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert "weight" not in spec


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the CRD's structural schema does not declare (the API server would prune them silently)."""
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for k, v in value.items():
            if k not in schema["properties"]:
                out.append(f"{path}.{k}")
            else:
                out += _unknown_fields(v, schema["properties"][k], f"{path}.{k}")
    elif isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += _unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out


def _crd_schemas() -> list[tuple[str, dict[str, Any]]]:
    pinned = json.loads((REPO / "gpuplane/schemas/karpenter-1.6.3/crd-nodepools.v1.json").read_text())["openAPIV3Schema"]
    out = [("aws provider v1.6.3 (gpuplane/schemas)", pinned)]
    from gpuplane.sandbox.karpenter import module_dir

    moddir = module_dir()
    if moddir is not None:
        crd = yaml.safe_load((moddir / "kwok/charts/crds/karpenter.sh_nodepools.yaml").read_text())
        out.append(("sigs.k8s.io/karpenter v1.14.1", crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))
    return out


@pytest.mark.parametrize("args", [
    {"capacity_type": "spot", "max_nodes": 3, "karpenter": KARP, "scale_down_delay_seconds": 20},
    {"max_nodes": 2, "karpenter": KARP, "priority": 40, "labels": {"team": "a"}},
])
def test_nodepool_matches_the_crd(args):
    plan = _plan(args)
    obj = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu-l4"},
           "spec": karpenter_node_pool_spec(plan, KWOK)}
    for where, schema in _crd_schemas():
        assert _unknown_fields(obj["spec"], schema["properties"]["spec"], "spec") == [], where
        jsonschema.Draft7Validator(schema).validate(obj)


@functools.cache
def _existing_run() -> ProgramRun:
    def program() -> None:
        cluster = KubernetesCluster("sandbox", {"cloud": "existing"})
        GpuNodePool("gpu-l4", {"cluster": cluster, "accelerator": "L4", "capacity_type": "spot", "max_nodes": 2,
                               "karpenter": KARP, "scale_down_delay_seconds": 30})  # type: ignore[typeddict-item]
        GpuNodePool("plain", {"cluster": cluster, "accelerator": "L4"})

    return run(program)


def test_existing_cluster_pool_emits_a_nodepool_with_the_kwok_node_class():
    r = _existing_run()
    pools = r.by_type("kubernetes:karpenter.sh/v1:NodePool")
    assert [p.name for p in pools] == ["gpu-l4-node-pool"]
    spec = pools[0].inputs["spec"]
    assert spec["template"]["spec"]["nodeClassRef"] == KWOK
    assert spec["disruption"]["consolidateAfter"] == "30s"
    assert pools[0].inputs["metadata"]["name"] == "gpu-l4"
    assert not r.by_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"), "gpuplane does not make the node class"
    pool = r.one("gpuplane:index:GpuNodePool", "gpu-l4")
    assert pool.inputs["gpuplane"]["implementation"] == "karpenter"
    assert pools[0].parent == pool.urn, pools[0].urn
