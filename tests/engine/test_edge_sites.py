"""EdgeDeployment's Kubernetes-sites backend under the real Pulumi CLI and Kubernetes provider, onto two
sandboxes as two edge sites (each its own cluster, reached by its own kubeconfig through its own provider).

`pulumi up` with wave 1 promoted: both sites get their Namespace, ConfigMap, model-cache claim, Deployment
and Service; the canary site serves the new model, the other keeps the previous one. A second `pulumi up`
with wave 2 promoted changes only the second site's objects (the canary's resourceVersions stay).
The program runs in-process behind the Automation API (tests/engine/pulumi_lane.py explains why).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuplane.sandbox import cluster, toolchain
from tests.engine import pulumi_lane

pytestmark = pytest.mark.engine

NEW = "sha256:" + "e" * 64
OLD = "sha256:" + "0" * 64
IMAGE = "registry.local/edge/server@sha256:" + "c" * 64
SPACING = 20  # base ports 20 apart: a sandbox with controllers takes up to 12 ports


def _free_base(start: int) -> int:
    for base in range(start, 60000, SPACING):
        if all(cluster.port_free(p) for p in range(base, base + SPACING)):
            return base
    raise RuntimeError("no free block of loopback ports")


def _program(kubeconfigs: dict[str, str], promoted: int):
    def program() -> None:
        import pulumi

        from components import EdgeDeployment

        fleet = EdgeDeployment("recs", {
            "model": {"uri": f"oci://registry.local/edge/recommender@{NEW}", "digest": NEW, "size_mib": 6.0, "quantization": "int8"},
            "previous_model": {"uri": f"oci://registry.local/edge/recommender@{OLD}", "digest": OLD, "size_mib": 24.0},
            "image": {"ref": IMAGE, "size_mib": 90.0},
            "groups": [{"name": "plants", "sites": [
                {"name": site, "kind": "kubernetes", "kubeconfig": path, "bandwidth_mbps": 20, "cpu": 0.25, "memory_mib": 256}
                for site, path in kubeconfigs.items()
            ]}],
            "rollout": {"waves": [{"name": "canary", "sites": ["site-a"]}, {"percent": 100}], "promoted_waves": promoted,
                        "gate": {"p99_latency_ms": 50, "min_agreement": 0.95}},
            "tags": {"team": "edge-ml", "cost-center": "cc-1"},
        })
        pulumi.export("siteModels", fleet.site_models)

    return program


def _stack(work: Path, env: dict[str, str], program) -> Any:
    from pulumi import automation as auto

    work.mkdir(parents=True, exist_ok=True)
    (work / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "edge-lane", "runtime": "python"}))
    engine_env = pulumi_lane.engine_env(env)
    os.environ.update(engine_env)
    command = auto.PulumiCommand(root=str(toolchain.bin_dir().parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(work), env_vars=engine_env, pulumi_command=command, pulumi_home=engine_env.get("PULUMI_HOME"))
    return auto.create_or_select_stack(stack_name="edge", project_name="edge-lane", program=program, opts=opts)


def _objects(sb) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in ("deployment", "configmap", "service", "persistentvolumeclaim"):
        got = json.loads(sb.kubectl("get", kind, "-n", "edge-inference", "-l", "app.kubernetes.io/name=recs", "-o", "json").stdout)
        for item in got["items"]:
            out[f"{item['kind']}/{item['metadata']['name']}"] = item
    return out


def test_two_sandboxes_as_two_edge_sites_then_wave_two_changes_only_its_site(sandboxes, tmp_path: Path) -> None:
    if pulumi_lane.missing_programs():
        why = f"Pulumi programs not built: {', '.join(pulumi_lane.missing_programs())}; run `make engine`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    start, _stop = sandboxes
    a = start("edge-a", _free_base(27443))
    b = start("edge-b", _free_base(a.port + SPACING))
    kubeconfigs = {"site-a": a.env["KUBECONFIG"], "site-b": b.env["KUBECONFIG"]}

    up = _stack(tmp_path / "project", a.env, _program(kubeconfigs, promoted=1)).up()
    assert up.summary.result == "succeeded", up.stdout[-3000:]
    first = {"site-a": _objects(a), "site-b": _objects(b)}
    for site, objects in first.items():
        assert set(objects) == {"Deployment/recs", "ConfigMap/recs", "Service/recs", "PersistentVolumeClaim/recs-model-cache"}, (site, sorted(objects))
    dep_a, dep_b = first["site-a"]["Deployment/recs"], first["site-b"]["Deployment/recs"]
    assert dep_a["spec"]["template"]["metadata"]["annotations"]["gpuplane.dev/model-digest"] == NEW
    assert dep_b["spec"]["template"]["metadata"]["annotations"]["gpuplane.dev/model-digest"] == OLD
    assert dep_a["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "recs"}}]
    cm_a, cm_b = first["site-a"]["ConfigMap/recs"]["data"], first["site-b"]["ConfigMap/recs"]["data"]
    assert (cm_a["EDGE_SITE"], cm_a["EDGE_MODEL_DIGEST"], cm_a["EDGE_FALLBACK_MODEL_DIGEST"], cm_a["EDGE_RUNTIME"]) == ("site-a", NEW, OLD, "onnxruntime")
    assert (cm_b["EDGE_SITE"], cm_b["EDGE_MODEL_DIGEST"], cm_b["EDGE_PRESTAGE_MODEL_DIGEST"]) == ("site-b", OLD, NEW)
    assert up.outputs["siteModels"].value == {"site-a": NEW, "site-b": OLD}

    up2 = _stack(tmp_path / "project", a.env, _program(kubeconfigs, promoted=2)).up()
    assert up2.summary.result == "succeeded", up2.stdout[-3000:]
    changes = up2.summary.resource_changes or {}
    second = {"site-a": _objects(a), "site-b": _objects(b)}
    versions = {site: {k: o["metadata"]["resourceVersion"] for k, o in objs.items()} for site, objs in first.items()}
    after = {site: {k: o["metadata"]["resourceVersion"] for k, o in objs.items()} for site, objs in second.items()}
    assert after["site-a"] == versions["site-a"], "wave 2 touched the canary site"
    assert after["site-b"]["Deployment/recs"] != versions["site-b"]["Deployment/recs"]
    assert after["site-b"]["ConfigMap/recs"] != versions["site-b"]["ConfigMap/recs"]
    assert second["site-b"]["Deployment/recs"]["spec"]["template"]["metadata"]["annotations"]["gpuplane.dev/model-digest"] == NEW
    assert second["site-b"]["ConfigMap/recs"]["data"]["EDGE_MODEL_DIGEST"] == NEW
    # Exactly site-b's ConfigMap (updated in place: enable_config_map_mutable) and Deployment, plus the
    # component itself (its plan summary input); nothing created, replaced or deleted.
    assert changes.get("update", 0) == 3 and set(changes) <= {"update", "same"}, changes
    updated = set(re.findall(r"~\s+\S+\s+(\S+)\s+updat", up2.stdout))
    assert updated == {"recs", "recs-site-b-config", "recs-site-b-server"}, up2.stdout[-3000:]  # recs: the component's plan summary
    print(f"\nedge sites on sandboxes {a.port} and {b.port}: up {up.summary.resource_changes}, wave 2 {changes}: {sorted(updated)}")
