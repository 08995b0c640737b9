"""Drive the real Pulumi CLI (the toolchain's) against the sandbox for a reference stack.

How the pieces run, with nothing downloaded (``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION``):

- the CLI is ``toolchain.bin_dir()/pulumi``; the Kubernetes provider is the toolchain's
  ``pulumi-resource-kubernetes``, found on ``PATH`` (Pulumi uses an ambient plugin on PATH);
- the program: the Python language host (``pulumi-language-python``) cannot be built here (the Go
  module proxy refuses its module; gpuplane/sandbox/toolchain.py records the exact error), so the
  program runs the way Pulumi's Automation API runs an inline program: ``stacks/__main__.py`` in this
  Python process behind the SDK's language-runtime server, which the CLI is pointed at
  (``--client``). Engine, state, diff, provider and policy host are the CLI's own;
- the policy pack: the CLI launches an analyzer given as an executable file directly (it does so for
  binary policy packs), so ``policy_pack_shim`` writes a two-line script that starts
  ``policies/__main__.py`` with this venv's Python beside a copy of ``PulumiPolicy.yaml``; the CLI's
  policy host then talks to the pack over gRPC as it does with any pack;
- the project: a copy of ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` in a scratch folder (the CLI
  writes the passphrase's salt into the stack file; the clone stays untouched), with config overrides
  such as ``gpuplane:cluster.chartSource``.
"""

from __future__ import annotations

import os
import runpy
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from gpuplane.sandbox import toolchain

REPO = Path(__file__).resolve().parents[2]
ENGINE_PROGRAMS = ("pulumi", "pulumi-resource-kubernetes")


def missing_programs() -> list[str]:
    return toolchain.missing(ENGINE_PROGRAMS)


def project_dir(root: Path, stack: str, cluster_overrides: dict[str, Any] | None = None) -> Path:
    """A scratch copy of the project's settings for ``stack`` (with ``gpuplane:cluster`` overrides)."""
    root.mkdir(parents=True, exist_ok=True)
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    project.pop("main", None)
    project.pop("stackConfigDir", None)
    project["runtime"] = "python"  # the program runs in-process (no virtualenv for the CLI to look at)
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    settings = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    if cluster_overrides:
        settings["config"]["gpuplane:cluster"] = {**settings["config"]["gpuplane:cluster"], **cluster_overrides}
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return root


def policy_pack_shim(root: Path) -> Path:
    """An executable analyzer that serves gpuplane's pack (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "policies" / "PulumiPolicy.yaml", root / "PulumiPolicy.yaml")
    shim = root / "pulumi-analyzer-policy-gpuplane"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -u {REPO / 'policies' / '__main__.py'} \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


def component_provider_shim(root: Path) -> Path:
    """An executable ``gpuplane/pulumi-resource-gpuplane`` that serves the component package
    (``provider/__main__.py``) with this venv's Python; its path is what to give the CLI (it runs an
    executable as a binary plugin, where ``provider/`` itself, PulumiPlugin.yaml with runtime python,
    would need the Python language host this toolchain cannot build)."""
    folder = root / "gpuplane"
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "pulumi-resource-gpuplane"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -u {REPO / 'provider' / '__main__.py'} \"$@\"\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


def stacks_program() -> None:
    """``stacks/__main__.py`` as the language host runs it (its folder is the working directory)."""
    cwd = os.getcwd()
    os.chdir(REPO / "stacks")
    try:
        runpy.run_path(str(REPO / "stacks" / "__main__.py"), run_name="__main__")
    finally:
        os.chdir(cwd)


def engine_env(sandbox_env: dict[str, str]) -> dict[str, str]:
    keep = ("KUBECONFIG", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_HOME", "PATH", "HOME")
    env = {k: sandbox_env[k] for k in keep if k in sandbox_env}
    env.update(PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    return env


def select_stack(stack: str, work_dir: Path, sandbox_env: dict[str, str]) -> Any:
    """An Automation API stack on the sandbox's backend, running ``stacks/__main__.py`` in-process."""
    from pulumi import automation as auto

    env = engine_env(sandbox_env)
    os.environ.update(env)  # the in-process program and the CLI share them
    command = auto.PulumiCommand(root=str(toolchain.bin_dir().parent), skip_version_check=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=env, pulumi_command=command,
                                      pulumi_home=env.get("PULUMI_HOME"))
    return auto.create_or_select_stack(stack_name=stack, project_name="gpuplane", program=stacks_program,
                                       opts=opts)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.engine.pulumi_lane ACTION --stack S --work DIR [--chart-source DIR]`` with a
    sandbox's env exported (``eval $(gpuplane sandbox env)``): one CLI operation in a fresh process;
    prints the change summary and the seconds the operation took (benchmarks/engine_vs_plan.py)."""
    import argparse
    import json
    import time

    parser = argparse.ArgumentParser(prog="python -m tests.engine.pulumi_lane")
    parser.add_argument("action", choices=("preview", "up", "refresh", "destroy"))
    parser.add_argument("--stack", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--chart-source")
    args = parser.parse_args(argv)
    overrides = {"chartSource": args.chart_source} if args.chart_source else None
    work = project_dir(args.work, args.stack, overrides)
    stack = select_stack(args.stack, work, dict(os.environ))
    started = time.perf_counter()
    result = getattr(stack, args.action)()
    seconds = time.perf_counter() - started
    summary = getattr(result, "change_summary", None) or getattr(getattr(result, "summary", None), "resource_changes", None)
    print(json.dumps({"action": args.action, "seconds": round(seconds, 2), "changes": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
