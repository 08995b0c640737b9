"""A reference fleet for the edge tests: two plants (k3s sites and a KubeEdge line), a Greengrass line."""

from __future__ import annotations

import copy
from typing import Any

D = "sha256:" + "a" * 64
OLD = "sha256:" + "b" * 64
IMG = "sha256:" + "c" * 64
L1, L2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
TRT = "sha256:" + "d" * 64


def args(**over: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "model": {"uri": f"oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/edge/recommender@{D}", "digest": D, "size_mib": 12.0, "quantization": "int8"},
        "previous_model": {"uri": f"oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/edge/recommender@{OLD}", "digest": OLD, "size_mib": 40.0},
        "image": {"ref": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/edge/server@{IMG}",
                  "layers": [{"digest": L1, "size_mib": 30.0}, {"digest": L2, "size_mib": 90.0}]},
        "tensorrt_image": {"ref": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/edge/server-trt@{TRT}", "size_mib": 900.0},
        "runtime": "tensorrt",
        "groups": [
            {"name": "plant-a", "region": "eu-north", "sites": [
                {"name": "a-line-1", "kind": "kubernetes", "kubeconfig": "KUBECONFIG-A1", "bandwidth_mbps": 20, "gpu": "jetson-orin-nano",
                 "link_window_utc": "01:00-05:00", "window_bandwidth_mbps": 100, "cached": [L1]},
                {"name": "a-line-2", "kind": "kubernetes", "kubeconfig": "KUBECONFIG-A2", "bandwidth_mbps": 10, "cached": [L1, L2]},
            ]},
            {"name": "plant-b", "sites": [
                {"name": "b-line-1", "kind": "kubeedge", "kubeconfig": "KUBECONFIG-B", "node_group": "line-1", "bandwidth_mbps": 5},
                {"name": "b-line-2", "kind": "kubeedge", "kubeconfig": "KUBECONFIG-B", "node_group": "line-2", "bandwidth_mbps": 5, "gpu": "jetson-nano"},
            ]},
        ],
        "rollout": {"waves": [{"name": "canary", "sites": ["a-line-2"]}, {"percent": 50}, {"percent": 100}],
                    "gate": {"p99_latency_ms": 50, "min_agreement": 0.95}},
    }
    for k, v in over.items():
        a[k] = v
    return copy.deepcopy(a)
