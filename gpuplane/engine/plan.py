"""The offline plan engine: what a stack will create, with no CLI, plugin or cloud account.

1. read ``stacks/Pulumi.<stack>.yaml`` and set it as the program's config;
2. run ``stacks/__main__.py`` under the mock runtime (gpuplane.engine.runtime);
3. validate what it registered: core Kubernetes objects against the OpenAPI schema, AWS enum
   values against botocore's service models;
4. (policy evaluation and pricing are added on top by gpuplane.engine.policy / .cost).

A config or input error becomes ``PlanError`` with exit code 2 and a one-line reason; anything
else is a bug and propagates.
"""

from __future__ import annotations

import runpy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpuplane.engine.runtime import ProgramRun, run_program

REPO_ROOT = Path(__file__).resolve().parents[2]


class PlanError(Exception):
    """A stack cannot be planned because of its config or inputs (exit code 2)."""

    exit_code = 2


@dataclass
class StackPlan:
    project: str
    stack: str
    config: dict[str, Any]
    """The stack's config values, decoded from YAML (``{"ns:key": value}``)."""
    run: ProgramRun
    kubernetes_objects_checked: int = 0
    validation_problems: list[str] = field(default_factory=list)
    """Schema/enum problems: a non-empty list means the real API would reject the plan."""
    elapsed_seconds: float = 0.0
    schemas: Any = None
    """``gpuplane.engine.schemas.SchemaReport``: custom resources and Helm values checked upstream-strict."""

    @property
    def resources(self) -> list[Any]:
        return self.run.resources

    def usage(self) -> dict[str, Any]:
        return dict(self.config.get("gpuplane:usage") or {})

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape: project, stack, resources, outputs (+ validation)."""
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.run.resources],
            "outputs": self.run.outputs,
            "validation": {
                "kubernetes_objects_checked": self.kubernetes_objects_checked,
                "custom_resources_checked": self.schemas.custom_resources_checked if self.schemas else 0,
                "helm_releases_checked": self.schemas.helm_releases_checked if self.schemas else 0,
                "unchecked": list(self.schemas.unchecked) if self.schemas else [],
                "problems": list(self.validation_problems),
            },
        }


def project_name(root: Path = REPO_ROOT) -> str:
    data = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return str(data.get("name", "gpuplane"))


def stacks_dir(root: Path = REPO_ROOT) -> Path:
    data = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return root / str(data.get("stackConfigDir", "stacks"))


def available_stacks(root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir(root).glob("Pulumi.*.yaml"))


def read_stack_config(stack: str, root: Path = REPO_ROOT, config_file: Path | None = None) -> dict[str, Any]:
    """The ``config:`` map of a stack file, or PlanError naming the stacks that exist."""
    path = config_file or stacks_dir(root) / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise PlanError(f"no stack '{stack}': {path} does not exist. Stacks: {', '.join(available_stacks(root)) or 'none'}.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML ({e}).") from None
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise PlanError(f"{path}: 'config' must be a mapping of 'namespace:key: value'.")
    return dict(config)


def plan_stack(
    stack: str,
    *,
    root: Path = REPO_ROOT,
    config_file: Path | None = None,
    config: dict[str, Any] | None = None,
    validate: bool = True,
) -> StackPlan:
    """Run the stack program offline and return what it would create.

    ``config`` replaces the stack file's config (used for generated stacks and tests).
    """
    from components.errors import ComponentInputError
    from stacks.config import StackConfigError

    started = time.perf_counter()
    values = dict(config) if config is not None else read_stack_config(stack, root, config_file)
    main = root / "stacks" / "__main__.py"
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        run = run_program(lambda: runpy.run_path(str(main), run_name="__main__"), project=project_name(root), stack=stack, config=values)
    except (StackConfigError, ComponentInputError) as e:
        raise PlanError(f"stack '{stack}': {e}") from None
    plan = StackPlan(project=run.project, stack=stack, config=values, run=run)
    if validate:
        from gpuplane.engine.schemas import validate_schemas
        from gpuplane.engine.validate import validate_aws_enums, validate_kubernetes

        plan.kubernetes_objects_checked, problems = validate_kubernetes(run)
        plan.schemas = validate_schemas(run.resources)
        plan.validation_problems = problems + plan.schemas.problems + validate_aws_enums(run)
    plan.elapsed_seconds = time.perf_counter() - started
    return plan
