"""GpuNodePool on GKE (components/node_pool/gke.py), under mocks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import components.node_pool.spec as node_pool_module
from components.catalog import DATA_DIR, load_catalog
from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.node_pool import GpuNodePool
from components.node_pool.gke import disk_type
from components.node_pool.spec import GKE_FEATURES as FEATURES
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run

PROJECT = "acme-ml"
NODE_POOL = "gcp:container/nodePool:NodePool"
NODE_SA = f"ml-nodes@{PROJECT}.iam.gserviceaccount.com"


def _run_pool(pool_args: dict[str, Any], region: str = "us-central1") -> ProgramRun:
    def program() -> None:
        c = KubernetesCluster("ml", {"cloud": "gcp", "region": region, "project": PROJECT, "tags": {"team": "ml"}})
        GpuNodePool("gpu", {"cluster": c, **pool_args})

    return run(program)


def _pool(r: ProgramRun) -> dict[str, Any]:
    return r.one(NODE_POOL, "gpu-pool").inputs


def test_gke_pool_creates_one_node_pool_and_no_device_plugin() -> None:
    r = _run_pool({"accelerator": "L4", "max_nodes": 3, "labels": {"workload": "serving"}})
    component = r.one("gpuplane:index:GpuNodePool", "gpu")
    children = r.children_of(component.urn)
    assert [(c.type, c.name) for c in children] == [(NODE_POOL, "gpu-pool")]
    # GKE runs the NVIDIA device plugin itself: no Helm release, no Kubernetes object anywhere
    assert not [x.urn for x in r.resources if x.type.startswith("kubernetes:")]
    pool = children[0]
    assert pool.ignore_changes == ["initialNodeCount", "nodeCount"]
    p = pool.inputs
    assert p["cluster"] == "ml-cluster" and p["location"] == "us-central1" and p["project"] == PROJECT
    assert p["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert p["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 3, "locationPolicy": "BALANCED"}
    assert "minNodeCount" not in p["autoscaling"] and "maxNodeCount" not in p["autoscaling"]
    assert p["initialNodeCount"] == 0 and "nodeCount" not in p
    assert "placementPolicy" not in p
    assert p["management"] == {"autoRepair": True, "autoUpgrade": True}
    cfg = p["nodeConfig"]
    assert cfg["machineType"] == "g2-standard-4"
    assert cfg["spot"] is False
    assert cfg["guestAccelerators"] == [
        {"type": "nvidia-l4", "count": 1, "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
    ]
    assert cfg["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert cfg["labels"] == {
        "workload": "serving",
        "gpuplane.dev/pool": "gpu",
        "gpuplane.dev/accelerator": "L4",
        "gpuplane.dev/capacity-type": "on-demand",
    }
    assert (cfg["diskSizeGb"], cfg["diskType"]) == (200, "pd-balanced")
    assert cfg["serviceAccount"] == NODE_SA
    assert cfg["oauthScopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert cfg["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert cfg["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
    assert cfg["resourceLabels"] == {"team": "ml", "gpuplane-pool": "gpu"}


def test_spot_compact_h100_pool_is_one_zone_compact_and_location_policy_any() -> None:
    r = _run_pool(
        {
            "accelerator": "H100",
            "accelerators_per_node": 8,
            "capacity_type": "spot",
            "compact_placement": True,
            "max_nodes": 4,
            "taints": [{"key": "dedicated", "value": "training", "effect": "NoExecute"}],
        }
    )
    p = _pool(r)
    assert p["nodeLocations"] == ["us-central1-a"]
    assert p["placementPolicy"] == {"type": "COMPACT"}
    assert p["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 4, "locationPolicy": "ANY"}
    cfg = p["nodeConfig"]
    assert cfg["spot"] is True
    assert cfg["machineType"] == "a3-highgpu-8g"
    assert cfg["guestAccelerators"][0]["type"] == "nvidia-h100-80gb" and cfg["guestAccelerators"][0]["count"] == 8
    assert cfg["taints"] == [{"key": "dedicated", "value": "training", "effect": "NO_EXECUTE"}]
    assert cfg["labels"]["gpuplane.dev/capacity-type"] == "spot"


def test_iac_owned_count_sets_node_count_per_zone_and_keeps_it_in_the_diff() -> None:
    r = _run_pool(
        {
            "accelerator": "L4",
            "min_nodes": 4,
            "max_nodes": 6,
            "zones": ["us-central1-a", "us-central1-b"],
            "replicas_managed_by": "iac",
        }
    )
    pool = r.one(NODE_POOL, "gpu-pool")
    assert pool.inputs["nodeCount"] == 2 and "initialNodeCount" not in pool.inputs
    assert pool.inputs["autoscaling"]["totalMinNodeCount"] == 4
    assert pool.ignore_changes == ["initialNodeCount"]


@pytest.mark.parametrize(
    ("accelerator", "sharing", "expected"),
    [
        ("L4", None, {}),
        (
            "L4",
            {"strategy": "time-slicing", "replicas": 4},
            {"gpuSharingConfig": {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 4}},
        ),
        (
            "L4",
            {"strategy": "mps", "replicas": 8},
            {"gpuSharingConfig": {"gpuSharingStrategy": "MPS", "maxSharedClientsPerGpu": 8}},
        ),
        ("A100-40GB", {"strategy": "mig", "mig_profile": "1g.5gb"}, {"gpuPartitionSize": "1g.5gb"}),
        ("H100", {"strategy": "mig", "mig_profile": "3g.40gb"}, {"gpuPartitionSize": "3g.40gb"}),
    ],
)
def test_sharing_modes_map_to_guest_accelerator_settings(
    accelerator: str, sharing: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    args: dict[str, Any] = {"accelerator": accelerator}
    if sharing:
        args["gpu_sharing"] = sharing
    acc = _pool(_run_pool(args))["nodeConfig"]["guestAccelerators"]
    assert len(acc) == 1
    extra = {k: v for k, v in acc[0].items() if k not in ("type", "count", "gpuDriverInstallationConfig")}
    assert extra == expected
    assert acc[0]["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}


def test_hyperdisk_only_machines_get_a_hyperdisk_boot_disk() -> None:
    assert disk_type("a3-ultragpu-8g") == "hyperdisk-balanced"
    assert disk_type("a3-highgpu-8g") == disk_type("g2-standard-4") == disk_type("a2-highgpu-1g") == "pd-balanced"
    cfg = _pool(_run_pool({"accelerator": "H200", "accelerators_per_node": 8}))["nodeConfig"]
    assert (cfg["machineType"], cfg["diskType"]) == ("a3-ultragpu-8g", "hyperdisk-balanced")


@pytest.fixture
def catalog_without_h200_spot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped catalog minus the spot price of the H200 host, so that offering has no spot."""
    data = tmp_path / "catalog"
    shutil.copytree(DATA_DIR, data)
    prices = data / "gcp_prices.csv"
    rows = prices.read_text().splitlines(keepends=True)
    prices.write_text("".join(r for r in rows if not r.startswith("machine,a3-ultragpu-8g,") or ",spot," not in r))
    catalog = load_catalog(str(data))
    assert "spot" not in catalog.offering("gcp", "a3-ultragpu-8g", "us-central1").usd_per_hour  # type: ignore[union-attr]
    monkeypatch.setattr(node_pool_module, "load_catalog", lambda data_dir=None: catalog)


@pytest.mark.parametrize(
    ("case", "args", "region", "path", "words"),
    [
        (
            "efa",
            {"accelerator": "H100", "accelerators_per_node": 8, "efa": True},
            "us-central1",
            "efa",
            "gke-node-pool does not support efa",
        ),
        (
            "mig-on-l4",
            {"accelerator": "L4", "gpu_sharing": {"strategy": "mig", "mig_profile": "1g.5gb"}},
            "us-central1",
            "gpu_sharing.strategy",
            "L4 has no MIG",
        ),
        (
            "a100x3",
            {"accelerator": "A100-40GB", "accelerators_per_node": 3},
            "us-central1",
            "accelerators_per_node",
            "not offered for A100-40GB on gcp",
        ),
        (
            "h200-tokyo",
            {"accelerator": "H200", "accelerators_per_node": 8},
            "asia-northeast1",
            "cluster.region",
            "does not offer 8 x H200",
        ),
        (
            "spot-without-spot",
            {"accelerator": "H200", "accelerators_per_node": 8, "capacity_type": "spot"},
            "us-central1",
            "cluster.region",
            "(spot)",
        ),
    ],
)
def test_impossible_requests_fail_once_before_anything_of_the_pool_exists(
    request: pytest.FixtureRequest, case: str, args: dict[str, Any], region: str, path: str, words: str
) -> None:
    if case == "spot-without-spot":
        request.getfixturevalue("catalog_without_h200_spot")
    errors: list[ComponentInputError] = []

    def program() -> None:
        c = KubernetesCluster("ml", {"cloud": "gcp", "region": region, "project": PROJECT})
        try:
            GpuNodePool("gpu", {"cluster": c, **args})
        except ComponentInputError as e:
            errors.append(e)

    r = run(program)
    assert len(errors) == 1, f"{case}: expected one ComponentInputError"
    problems = errors[0].problems
    assert len(problems) == 1, errors[0]
    assert problems[0].path == path and words in str(errors[0]), errors[0]
    assert errors[0].name == "gpu"
    assert not [x.urn for x in r.resources if x.name.startswith("gpu") or x.type == "gpuplane:index:GpuNodePool"]
    assert r.by_type("gcp:container/cluster:Cluster")  # the cluster itself was fine


def test_feature_declaration_names_a_reason_for_efa() -> None:
    rows = {f: (ok, why) for f, ok, why in FEATURES.table()}
    assert rows["efa"][0] == "no" and "GPUDirect" in rows["efa"][1]
    assert all(
        rows[f][0] == "yes" for f in ("spot", "mig", "time-slicing", "mps", "compact-placement", "scale-from-zero")
    )
