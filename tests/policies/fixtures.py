"""Compliant resources for policy tests, and helpers to mutate them one field at a time."""

from __future__ import annotations

import copy
from typing import Any

from policies.resources import ResourceView

STACK = "test"
PROJECT = "gpuplane"


def urn(type_: str, name: str, parents: tuple[str, ...] = (), stack: str = STACK) -> str:
    chain = "$".join((*parents, type_))
    return f"urn:pulumi:{stack}::{PROJECT}::{chain}::{name}"


def view(
    type_: str, props: dict[str, Any], name: str = "r", *, parents: tuple[str, ...] = (), stack: str = STACK, **kw: Any
) -> ResourceView:
    return ResourceView(type=type_, props=props, urn=urn(type_, name, parents, stack), name=name, **kw)


def component(cls: str, summary: dict[str, Any], name: str = "c", **kw: Any) -> ResourceView:
    return view(f"gpuplane:index:{cls}", {"gpuplane": summary}, name, **kw)


def mutate(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``path`` (dotted; ``-`` deletes) set to ``value``."""
    out = copy.deepcopy(data)
    cur: Any = out
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    if value == "-":
        del cur[parts[-1]]
    elif isinstance(cur, list):
        cur[int(parts[-1])] = value
    else:
        cur[parts[-1]] = value
    return out


TAGS = {"team": "ml-platform", "cost-center": "cc-4711"}


def pool_summary(**over: Any) -> dict[str, Any]:
    s = {
        "implementation": "eks-managed-node-group",
        "cloud": "aws",
        "region": "us-east-1",
        "zones": ["us-east-1a"],
        "accelerator": "L4",
        "acceleratorsPerNode": 1,
        "instanceType": "g6.xlarge",
        "capacityType": "spot",
        "minNodes": 0,
        "maxNodes": 4,
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        "labels": {"gpuplane.dev/pool": "p"},
        "gpuSharing": None,
        "compactPlacement": False,
        "efa": False,
        "createsNodes": True,
        "tags": dict(TAGS),
    }
    s.update(over)
    return s


def training_pool_summary(**over: Any) -> dict[str, Any]:
    base = {
        "accelerator": "H100",
        "acceleratorsPerNode": 8,
        "instanceType": "p5.48xlarge",
        "maxNodes": 2,
        "compactPlacement": True,
        "efa": True,
        "labels": {"gpuplane.dev/role": "training"},
    }
    return pool_summary(**{**base, **over})


def endpoint_summary(**over: Any) -> dict[str, Any]:
    s = {
        "platform": "cloud-run",
        "implementation": "cloud-run-gpu",
        "cloud": "gcp",
        "region": "us-central1",
        "accelerator": "L4",
        "instanceType": None,
        "gpus": 1,
        "cpu": 4,
        "memoryGib": 16,
        "minScale": 0,
        "maxScale": 2,
        "scaleDownDelaySeconds": 300,
        "coldStartBudget": {"totalSeconds": 240},
        "timeouts": {"startupProbeSeconds": 240, "progressDeadlineSeconds": 360, "requestTimeoutSeconds": 300},
        "readinessPath": "/v2/health/ready",
        "public": False,
        "auth": "iam",
        "zonalRedundancy": False,
        "deletionProtection": True,
        "tags": dict(TAGS),
    }
    s.update(over)
    return s


def training_cluster_summary(**over: Any) -> dict[str, Any]:
    s = {
        "implementation": "eks",
        "cloud": "aws",
        "region": "us-east-1",
        "capacityFallback": ["spot", "on_demand"],
        "pools": [],
        "checkpointBucket": {"url": "s3://ckpt", "created": True, "encrypted": True, "public": False},
        "terminationGracePeriodSeconds": 110,
        "noticeSeconds": 120,
        "tags": dict(TAGS),
    }
    s.update(over)
    return s


def cluster_summary(**over: Any) -> dict[str, Any]:
    s = {
        "cloud": "aws",
        "region": "us-east-1",
        "zones": ["us-east-1a", "us-east-1b"],
        "autoscaler": "cluster-autoscaler",
        "systemNodeCount": 2,
        "systemInstanceType": "m6i.large",
        "deletionProtection": False,
        "tags": dict(TAGS),
    }
    s.update(over)
    return s


def pod_template(**spec_over: Any) -> dict[str, Any]:
    spec = {
        "containers": [{"name": "main", "image": "ghcr.io/x/y:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
    }
    spec.update(spec_over)
    return {"metadata": {"name": "w", "namespace": "ml"}, "spec": {"template": {"spec": spec}}}
