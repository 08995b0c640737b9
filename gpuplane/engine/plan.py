"""The offline plan engine: what a Pulumi Python program will create, with no CLI, plugin or cloud account.

1. read the project's ``Pulumi.yaml`` (``name``, ``runtime: python``, ``main``,
   ``stackConfigDir``, project-level ``config``) and its ``Pulumi.<stack>.yaml``, and set that
   as the program's config, namespaced the way the Pulumi CLI does (a bare key belongs to the
   project: ``key`` -> ``<project>:key``);
2. run the program (``main``: a folder with ``__main__.py`` or a file) under the mock runtime
   (gpuplane.engine.runtime) as the Python language host would: its folder first on
   ``sys.path`` and as the working directory while it runs, the project name from Pulumi.yaml;
3. validate what it registered: core Kubernetes objects against the OpenAPI schema, custom
   resources and Helm values against their upstream schemas, AWS enum values against
   botocore's service models;
4. (policy evaluation and pricing are added on top by gpuplane.engine.policy / .cost).

The project is this repository's (``REPO_ROOT``: ``stacks/``) unless another is named
(``gpuplane plan --cwd DIR``, ``find_project``). A config or input error becomes ``PlanError``
with exit code 2 and a one-line reason naming the path and the fix; anything else the program
raises is a bug in it and propagates.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpuplane.engine.runtime import ProgramRun, run_program

REPO_ROOT = Path(__file__).resolve().parents[2]
_PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")
SECRET_PLACEHOLDER = "[secret]"
"""What a ``secure:`` config value reads as offline (it cannot be decrypted without the CLI)."""


class PlanError(Exception):
    """A stack cannot be planned because of its config or inputs (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Project:
    """A Pulumi project as ``Pulumi.yaml`` describes it."""

    dir: Path
    """The folder that holds Pulumi.yaml."""
    name: str
    main: Path
    """The program: a folder holding ``__main__.py``, or a ``.py`` file."""
    stack_config_dir: Path
    """Where ``Pulumi.<stack>.yaml`` files live (``stackConfigDir``, default the project folder)."""
    config: dict[str, Any] = field(default_factory=dict)
    """Project-level config values (Pulumi.yaml ``config:`` defaults and values), namespaced."""

    @property
    def program(self) -> Path:
        return self.main / "__main__.py" if self.main.is_dir() else self.main

    @property
    def program_dir(self) -> Path:
        """The language host's working directory and first ``sys.path`` entry."""
        return self.main if self.main.is_dir() else self.main.parent

    @property
    def is_repo(self) -> bool:
        """True for this repository's own project (its stacks and policy configs)."""
        return self.dir == REPO_ROOT

    def stack_file(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.stack_config_dir.glob("Pulumi.*.yaml"))


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it: the same values, about 10x faster."""


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER) or {}


def _namespaced(key: Any, project: str) -> str:
    key = str(key)
    return key if ":" in key else f"{project}:{key}"


def load_project(directory: Path = REPO_ROOT) -> Project:
    """The project whose Pulumi.yaml is in ``directory``, or PlanError naming the path and the fix."""
    directory = Path(directory).expanduser().resolve()
    if not directory.is_dir():
        raise PlanError(f"{directory} is not a folder. Pass --cwd with the folder that holds your Pulumi.yaml.")
    path = next((directory / n for n in _PROJECT_FILES if (directory / n).is_file()), None)
    if path is None:
        raise PlanError(
            f"{directory} has no Pulumi.yaml, so it is not a Pulumi project. Run gpuplane plan in the folder that holds "
            "your Pulumi.yaml, or pass --cwd DIR naming it."
        )
    try:
        data = _load_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML ({' '.join(str(e).split())}).") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: must be a mapping with name, runtime and (optionally) main.")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise PlanError(f"{path}: has no 'name'. Add name: <project> (the namespace of the project's config).")
    runtime = data.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise PlanError(
            f"{path}: runtime is {runtime_name!r}; gpuplane plan runs Python programs only (runtime: python). "
            "For a program in another language run `pulumi preview --policy-pack` with the CLI instead."
        )
    main = (directory / str(data.get("main") or ".")).resolve()
    if not main.exists():
        raise PlanError(f"{path}: main {data.get('main')!r} does not exist ({main}). Point main at the program's folder or file.")
    if main.is_dir() and not (main / "__main__.py").is_file():
        raise PlanError(f"{main} has no __main__.py. Put the program in {main / '__main__.py'} or point main at its file.")
    stack_dir = (directory / str(data.get("stackConfigDir") or ".")).resolve()
    config: dict[str, Any] = {}
    raw = data.get("config") or {}
    if isinstance(raw, dict):
        for key, spec in raw.items():
            if isinstance(spec, dict) and ("default" in spec or "value" in spec):
                config[_namespaced(key, name)] = spec.get("value", spec.get("default"))
            elif not isinstance(spec, dict):
                config[_namespaced(key, name)] = spec
    return Project(dir=directory, name=name, main=main, stack_config_dir=stack_dir, config=config)


def find_project(cwd: Path | None = None) -> Project:
    """The project for ``gpuplane plan [--cwd DIR]``: the nearest Pulumi.yaml at or above DIR
    (the current directory when not given), as the Pulumi CLI looks for it.

    Without ``--cwd`` and outside any project, this repository's own project is used when it is
    a source checkout (so ``gpuplane plan --stack aws-dev`` keeps working from anywhere in it).
    """
    start = Path(cwd).expanduser().resolve() if cwd is not None else Path.cwd().resolve()
    if cwd is not None and not start.is_dir():
        raise PlanError(f"--cwd {cwd}: {start} is not a folder. Pass the folder that holds your Pulumi.yaml.")
    for folder in (start, *start.parents):
        if any((folder / n).is_file() for n in _PROJECT_FILES):
            return load_project(folder)
    if cwd is None and (REPO_ROOT / "Pulumi.yaml").is_file():
        return load_project(REPO_ROOT)
    return load_project(start)  # raises: no Pulumi.yaml, naming the folder


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
    source: Project | None = None
    """The project that was planned."""

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
    return load_project(root).name


def stacks_dir(root: Path = REPO_ROOT) -> Path:
    return load_project(root).stack_config_dir


def available_stacks(root: Path = REPO_ROOT) -> list[str]:
    return load_project(root).stacks()


def read_stack_config(
    stack: str, root: Path = REPO_ROOT, config_file: Path | None = None, *, project: Project | None = None
) -> dict[str, Any]:
    """The stack's config (``{"ns:key": value}``): Pulumi.yaml's project config overlaid with the
    ``config:`` map of ``Pulumi.<stack>.yaml`` (or ``config_file``); bare keys take the project's
    namespace. PlanError naming the stacks that exist when the file is missing."""
    proj = project or load_project(root)
    path = Path(config_file) if config_file is not None else proj.stack_file(stack)
    if not path.exists():
        names = ", ".join(proj.stacks()) or "none"
        raise PlanError(
            f"no stack '{stack}': {path} does not exist. Stacks: {names}. Create {path.name} in {path.parent} "
            "(a 'config:' map), or pass --stack with one of those."
        )
    try:
        data = _load_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML ({' '.join(str(e).split())}).") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: must be a mapping with a 'config:' key.")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise PlanError(f"{path}: 'config' must be a mapping of 'namespace:key: value'.")
    merged = dict(proj.config)
    merged.update({_namespaced(k, proj.name): v for k, v in config.items()})
    return merged


def _secrets(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``secure:`` values cannot be decrypted offline: they read as a placeholder, marked secret."""
    out, secret = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = SECRET_PLACEHOLDER
            secret.append(key)
        else:
            out[key] = value
    return out, secret


@contextlib.contextmanager
def _as_language_host(project: Project) -> Iterator[None]:
    """While the program runs: its folder first on ``sys.path`` and as the working directory.

    Afterwards the path and directory are restored, and for a project outside this repository
    the modules imported from its folder are dropped (two projects may both have ``config.py``).
    """
    folder = str(project.program_dir)
    saved_path, saved_cwd = list(sys.path), os.getcwd()
    before = set(sys.modules)
    if project.is_repo and str(REPO_ROOT) not in sys.path:
        saved_path.insert(0, str(REPO_ROOT))  # the repo's stacks import `stacks.*`; keep it importable
    sys.path.insert(0, folder)
    if project.is_repo:
        sys.path.insert(0, str(REPO_ROOT))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        if not project.is_repo:
            root = str(project.dir) + os.sep
            for name in set(sys.modules) - before:
                file = getattr(sys.modules.get(name), "__file__", None) or ""
                if file.startswith(root):
                    del sys.modules[name]


def plan_stack(
    stack: str,
    *,
    root: Path = REPO_ROOT,
    config_file: Path | None = None,
    config: dict[str, Any] | None = None,
    validate: bool = True,
    project: Project | None = None,
) -> StackPlan:
    """Run the project's program offline for ``stack`` and return what it would create.

    ``project`` (``find_project`` / ``load_project``) defaults to the project in ``root``, this
    repository. ``config`` replaces the stack file's config (used for generated stacks and tests).
    Provider SDK modules imported from here on are compiled with postponed annotations
    (gpuplane.engine.sdk_code: the same resources, about half the import time).
    """
    from gpuplane.engine import sdk_code

    sdk_code.install()
    import pulumi

    started = time.perf_counter()
    proj = project or load_project(root)
    values = dict(config) if config is not None else read_stack_config(stack, config_file=config_file, project=proj)
    wire, secret_keys = _secrets(values)
    program = str(proj.program)

    def run_main() -> None:
        runpy.run_path(program, run_name="__main__")

    try:
        with _as_language_host(proj):
            run = run_program(run_main, project=proj.name, stack=stack, config=wire, secret_keys=secret_keys)
    except pulumi.RunError as e:  # StackConfigError, ComponentInputError, a program's own RunError
        raise PlanError(f"stack '{stack}': {e}") from None
    plan = StackPlan(project=run.project, stack=stack, config=values, run=run, source=proj)
    if validate:
        from gpuplane.engine.schemas import validate_schemas
        from gpuplane.engine.validate import validate_aws_enums, validate_kubernetes

        plan.kubernetes_objects_checked, problems = validate_kubernetes(run)
        plan.schemas = validate_schemas(run.resources)
        plan.validation_problems = problems + plan.schemas.problems + validate_aws_enums(run)
    plan.elapsed_seconds = time.perf_counter() - started
    return plan
