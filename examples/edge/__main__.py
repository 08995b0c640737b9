"""Reference fleet for ``EdgeDeployment``: ``gpuplane plan --cwd examples/edge --stack factories``.

An industrial analytics firm trains a recommender next to its data (workloads/training), exports it
to ONNX with int8 quantization (``python -m workloads.training.export --format onnx --quantize int8``)
and ships it to three lines: two k3s plants (one with a Jetson Orin Nano, so TensorRT), a KubeEdge
cluster whose node groups are production lines, and Greengrass core devices. The rollout goes
canary plant, then half the fleet, then all of it, each wave gated on the device (p99 and top-10
agreement with the cloud model). The stack's ``promotedWaves`` says how far it has got.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from components import EdgeDeployment  # noqa: E402

config = pulumi.Config()
MODEL = "sha256:5f1c3a0d9e8b7c6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988"
PREVIOUS = "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9f"
REGISTRY = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
tags = {"team": "edge-ml", "cost-center": "cc-plants"}
# Node groups of one cluster share its kubeconfig: pass the same value (one Output) to each site.
plant_b = config.require_secret("kubeconfigPlantB")

fleet = EdgeDeployment(
    "recs",
    {
        "model": {"uri": f"s3://acme-edge-models/recommender/{MODEL[7:]}.onnx", "digest": MODEL, "size_mib": 6.2, "quantization": "int8"},
        "previous_model": {"uri": f"s3://acme-edge-models/recommender/{PREVIOUS[7:]}.onnx", "digest": PREVIOUS, "size_mib": 24.5},
        "source_cloud": "aws",
        "source_region": "eu-central-1",
        "image": {
            "ref": f"{REGISTRY}/edge/server@sha256:" + "3" * 64,
            "layers": [{"digest": "sha256:" + "4" * 64, "size_mib": 28.0}, {"digest": "sha256:" + "5" * 64, "size_mib": 61.0}],
        },
        "tensorrt_image": {"ref": f"{REGISTRY}/edge/server-tensorrt@sha256:" + "6" * 64, "size_mib": 1450.0},
        "runtime": "tensorrt",
        "max_outage_hours": 48,
        "groups": [
            {"name": "plant-a", "region": "eu-north", "sites": [
                {"name": "plant-a-1", "kind": "kubernetes", "kubeconfig": config.require_secret("kubeconfigPlantA1"), "bandwidth_mbps": 50,
                 "gpu": "jetson-orin-nano", "link_window_utc": "01:00-05:00", "window_bandwidth_mbps": 200, "cached": ["sha256:" + "4" * 64]},
                {"name": "plant-a-2", "kind": "kubernetes", "kubeconfig": config.require_secret("kubeconfigPlantA2"), "bandwidth_mbps": 20,
                 "credential_validity_hours": 8760, "cached": ["sha256:" + "4" * 64, "sha256:" + "5" * 64]},
            ]},
            {"name": "plant-b", "region": "eu-central", "sites": [
                {"name": "plant-b-line-1", "kind": "kubeedge", "kubeconfig": plant_b, "node_group": "line-1",
                 "bandwidth_mbps": 10, "devices": 4, "link_window_utc": "22:00-04:00"},
                {"name": "plant-b-line-2", "kind": "kubeedge", "kubeconfig": plant_b, "node_group": "line-2",
                 "bandwidth_mbps": 10, "devices": 4, "gpu": "jetson-xavier-nx", "link_window_utc": "22:00-04:00"},
            ]},
            {"name": "line-c", "region": "eu-south", "max_outage_hours": 72, "sites": [
                {"name": "line-c", "kind": "greengrass", "thing_group_arn": config.require("thingGroupLineC"), "bandwidth_mbps": 4, "devices": 25,
                 "results_buffer_mib": 1024, "results_kib_per_second": 2},
            ]},
        ],
        "rollout": {
            "waves": [{"name": "canary", "sites": ["plant-a-2"]}, {"name": "half", "percent": 50}, {"name": "all", "percent": 100}],
            "promoted_waves": config.get_int("promotedWaves") if config.get_int("promotedWaves") is not None else 3,
            "gate": {"p99_latency_ms": 40, "min_agreement": 0.97},
            "max_unavailable_percent": 20,
        },
        "tags": tags,
    },
)

pulumi.export("siteModels", fleet.site_models)
pulumi.export("siteRuntimes", fleet.site_runtimes)
