"""Test helpers: run programs under the mock runtime, validate Kubernetes objects, golden files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate

from gpuplane.engine.runtime import ProgramRun, RecordedResource, run_program

K8S_VERSION = "1.33.0"
UPDATE_GOLDEN = os.environ.get("GPUPLANE_UPDATE_GOLDEN") == "1"

# pulumi-kubernetes token -> (apiVersion, kind) for core objects we validate.
_CORE_GROUPS = {"core": "", "apps": "apps", "batch": "batch", "rbac.authorization.k8s.io": "rbac.authorization.k8s.io",
                "policy": "policy", "networking.k8s.io": "networking.k8s.io", "scheduling.k8s.io": "scheduling.k8s.io",
                "autoscaling": "autoscaling", "storage.k8s.io": "storage.k8s.io"}


def run(program: Callable[[], Any], *, stack: str = "test", config: dict[str, Any] | None = None) -> ProgramRun:
    return run_program(program, project="gpuplane", stack=stack, config=config)


def k8s_object(resource: RecordedResource) -> dict[str, Any] | None:
    """The Kubernetes object a pulumi-kubernetes core resource would apply, or None for CRDs/Helm."""
    parts = resource.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    group_version, kind = parts[1], parts[2]
    group, _, version = group_version.rpartition("/")
    if group not in _CORE_GROUPS or kind.endswith("List") or kind.endswith("Patch"):
        return None
    api_version = version if group == "core" else f"{_CORE_GROUPS[group]}/{version}"
    obj = {k: v for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj


def validate_k8s(obj: dict[str, Any]) -> None:
    """Strict schema validation against the Kubernetes OpenAPI schema of K8S_VERSION."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def validate_all_core_objects(run_: ProgramRun) -> int:
    """Validate every core Kubernetes object in a run; returns how many were checked."""
    n = 0
    for r in run_.resources:
        obj = k8s_object(r)
        if obj is None:
            continue
        try:
            validate_k8s(obj)
        except kubernetes_validate.ValidationError as e:  # type: ignore[attr-defined]
            raise AssertionError(f"{r.urn}: {e}") from e
        n += 1
    return n


def golden(path: Path, actual: str) -> None:
    """Compare with a golden file; rewrite it when GPUPLANE_UPDATE_GOLDEN=1."""
    if UPDATE_GOLDEN or not path.exists():
        if not UPDATE_GOLDEN:
            raise AssertionError(f"golden file {path} is missing; run with GPUPLANE_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text()
    assert actual == expected, f"{path} differs from the rendered text; rerun with GPUPLANE_UPDATE_GOLDEN=1 if the change is intended"
