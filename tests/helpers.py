"""Test helpers: run programs under the mock runtime, validate Kubernetes objects, golden files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate

from gpuplane.engine.runtime import ProgramRun, run_program
from gpuplane.engine.validate import KUBERNETES_VERSION, k8s_object, validate_kubernetes

UPDATE_GOLDEN = os.environ.get("GPUPLANE_UPDATE_GOLDEN") == "1"

__all__ = ["golden", "k8s_object", "run", "validate_all_core_objects", "validate_k8s"]


def run(program: Callable[[], Any], *, stack: str = "test", config: dict[str, Any] | None = None) -> ProgramRun:
    """Run ``program`` under the mock runtime (fresh loop and settings) and return every registration."""
    return run_program(program, project="gpuplane", stack=stack, config=config)


def validate_k8s(obj: dict[str, Any]) -> None:
    """Strict schema validation of one object against the Kubernetes OpenAPI schema."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def validate_all_core_objects(run_: ProgramRun) -> int:
    """Validate every core Kubernetes object in a run; returns how many were checked."""
    checked, problems = validate_kubernetes(run_)
    assert not problems, "\n".join(problems)
    return checked


def golden(path: Path, actual: str) -> None:
    """Compare with a golden file; rewrite it when GPUPLANE_UPDATE_GOLDEN=1."""
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        raise AssertionError(f"golden file {path} is missing; run with GPUPLANE_UPDATE_GOLDEN=1 to create it")
    assert actual == path.read_text(), f"{path} differs from the rendered text; rerun with GPUPLANE_UPDATE_GOLDEN=1 if the change is intended"
