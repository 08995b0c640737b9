"""The ``gpuplane`` command line.

    gpuplane plan --stack aws-dev            # resource tree, offline
    gpuplane plan --stack aws-dev --format json --out plan.json
    gpuplane plan --cwd ../infra --stack dev --policy-pack ../our-policies   # your own project and pack
    gpuplane stacks                          # the reference stacks
    gpuplane simulate inference --help       # scale-to-zero cost and cold starts
    gpuplane demo                            # the whole reference pipeline, locally
    gpuplane catalog refresh --from FILE --source TEXT   # price rows from a public price file
    gpuplane sandbox up                      # a local cluster with simulated GPU nodes
    gpuplane edge demo                       # edge sites on loopback, a model rolled out in gated waves

Exit codes: 0 success, 1 a mandatory policy violation or invalid plan, 2 a config or usage
error (one line on stderr, no traceback).
"""

from __future__ import annotations

import gc
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from gpuplane.errors import err, fail, one_line  # noqa: F401  (re-exported: sub-commands import them from here)


class _LazyTyper(typer.Typer):
    """A Typer app whose optional sub-command groups (``_mount_optional``: the simulator pulls in
    numpy, ...) are mounted when the command tree is first built, not when this module is
    imported — and not at all when ``main()`` runs a core command such as ``gpuplane plan``."""

    _ready = False
    _mounted = False
    skip_optional = False

    @property  # type: ignore[override]
    def registered_groups(self) -> list[Any]:
        self._mount()
        return self._groups

    @registered_groups.setter
    def registered_groups(self, value: list[Any]) -> None:
        self._groups = value

    @property  # type: ignore[override]
    def registered_commands(self) -> list[Any]:
        self._mount()
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        self._commands = value

    def _mount(self) -> None:
        if self._ready and not self._mounted and not self.skip_optional:
            self._mounted = True
            _mount_optional(self)


app = _LazyTyper(
    name="gpuplane",
    help="AI compute infrastructure as code: plan stacks offline, price them, check policy, simulate scale-to-zero.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"




@app.command()
def plan(
    stack: str = typer.Option(..., "--stack", "-s", help="Stack name: Pulumi.<stack>.yaml in the project's stackConfigDir (see `gpuplane stacks`)."),
    cwd: Path | None = typer.Option(None, "--cwd", "-C", help="Plan the Pulumi Python project in this folder (the nearest Pulumi.yaml at or above it), as `pulumi -C`. Default: the current folder's project, else this repository's stacks."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table (a resource tree), json (machines) or markdown (a PR comment)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the output to this file instead of stdout."),
    config_file: Path | None = typer.Option(None, "--config-file", help="Plan this Pulumi.<stack>.yaml-style file instead of the stack's own."),
    policy_pack: Path | None = typer.Option(None, "--policy-pack", help="Run this CrossGuard Python policy pack (a folder with PulumiPolicy.yaml and __main__.py) instead of gpuplane's, in-process, as `pulumi preview --policy-pack`."),
    policy_config: Path | None = typer.Option(None, "--policy-pack-config", "--policy-config", help="Policy pack config JSON (as `pulumi preview --policy-pack-config`). Default: policies/config/<stack>.json for this repository's stacks; the pack's defaults otherwise."),
    compare_to: str | None = typer.Option(None, "--compare-to", help="Show the cost change against another stack, or a saved `--format json` plan file."),
) -> None:
    """Run a Pulumi Python program offline (Pulumi mock runtime) and show what it would create.

    Needs no cloud account and no Pulumi CLI. Plans this repository's stacks, or any Pulumi Python project with --cwd. Core Kubernetes objects are validated against the Kubernetes OpenAPI schema, AWS enum values against botocore's service models; the policy pack runs and the plan is priced.
    """
    from gpuplane import render
    from gpuplane.engine.cost import assess_plan
    from gpuplane.engine.plan import PlanError, find_project, plan_stack
    from gpuplane.engine.policy import load_policy_pack

    try:
        project = find_project(cwd)
        pack = load_policy_pack(policy_pack) if policy_pack is not None else None
        result = plan_stack(stack, config_file=config_file, project=project)
        checks = assess_plan(result, policy_config, compare_to, pack=pack)
    except PlanError as e:
        raise fail(str(e), e.exit_code) from None
    except ValueError as e:  # PolicyConfigError, PolicyPackError, UsageError, unreadable --compare-to file
        raise fail(str(e)) from None
    if format is Format.json:
        text = render.to_json(result, checks.to_json())
    elif format is Format.markdown:
        text = checks.markdown(result)
    else:
        text = ""
    if out is not None:
        if format is Format.table:
            console = Console(file=out.open("w"), width=160, no_color=True)
            render.print_tree(result, console)
            checks.print_summary(console)
        else:
            out.write_text(text)
        err.print(f"wrote {out} ({len(result.resources)} resources, {result.elapsed_seconds:.2f} s)")
    elif format is Format.table:
        render.print_tree(result)
        checks.print_summary(Console())
        err.print(f"[dim]planned in {result.elapsed_seconds:.2f} s[/dim]")
    else:
        sys.stdout.write(text)
    if result.validation_problems or checks.policy.mandatory:
        raise typer.Exit(1)


@app.command()
def stacks(
    cwd: Path | None = typer.Option(None, "--cwd", "-C", help="List the stacks of the Pulumi project in this folder."),
) -> None:
    """List a project's stacks (Pulumi.<name>.yaml in its stackConfigDir): this repository's reference stacks by default."""
    from gpuplane.engine.plan import PlanError, find_project

    try:
        project = find_project(cwd)
    except PlanError as e:
        raise fail(str(e), e.exit_code) from None
    for name in project.stacks():
        typer.echo(name)


@app.command()
def capabilities(
    reasons: bool = typer.Option(False, "--reasons", help="List the reason behind every unsupported feature."),
) -> None:
    """Show which optional features each implementation supports (spot, MIG, EFA, scale to zero, ...)."""
    from components.capabilities import all_supports, markdown

    typer.echo(markdown(), nl=False)
    if reasons:
        for component, supports in all_supports().items():
            for support in supports:
                for feature, why in sorted(support.missing.items(), key=lambda kv: kv[0].value):
                    typer.echo(f"- {component} / {support.implementation} / {feature.value}: {why}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for every output of the demo."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data, fewer training steps, a 20 s day, no feature-server check."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Instead: the reference TrainingJob on a local sandbox, scheduled "
                                 "by the real Kueue, JobSet and Karpenter (gpuplane/demo/sandbox.py; needs `make engine`)."),
) -> None:
    """Run the reference pipeline locally, with progress output.

    Plans every reference stack offline (resource tree, cost, violations); generates events;
    materialises features with Feast; trains the tiny model through an injected preemption
    (exit 75, resume); serves it behind the scale-to-zero activator while a synthetic day of
    traffic is replayed in about a minute; compares static-for-peak with scale-to-zero cost;
    writes report.md and report.png. Exits 1 naming the step that failed.
    """
    if sandbox:
        from gpuplane.demo.sandbox import run_sandbox_demo

        raise typer.Exit(run_sandbox_demo(typer.echo))
    from gpuplane.demo import run_demo

    code = run_demo(out, quick=quick)
    raise typer.Exit(code)


_CORE_COMMANDS = frozenset({"plan", "stacks", "capabilities", "demo"})
"""Commands defined in this module: ``main()`` runs them without mounting the optional groups."""


def _mount_optional(app: typer.Typer) -> None:
    """Sub-command groups and commands that live in their own modules (one registration each).

    Called once, when the command tree is first built (``_LazyTyper``), so their imports cost
    nothing to ``gpuplane plan``."""
    try:
        from gpuplane.simulate.cli import app as simulate_app
    except ImportError:  # pragma: no cover - present in the package
        pass
    else:
        app.add_typer(simulate_app, name="simulate", help="Simulate scale-to-zero inference and spot training cost before deploying.")
    from gpuplane.features import app as features_app

    app.add_typer(features_app, name="features", help="Run a stack's feature store pipeline locally (Feast on SQLite).")
    from gpuplane.offers import offers_command

    app.command("offers")(offers_command)
    from gpuplane.catalog_prices import app as catalog_app

    app.add_typer(catalog_app, name="catalog", help="Keep the catalog's prices current: refresh from a public price file, drift, age check.")
    from gpuplane.dispatch.cli import app as dispatch_app

    app.add_typer(dispatch_app, name="dispatch", help="The cost-aware MultiKueue dispatcher: pick worker clusters by price, notice, quota and data distance.")
    from gpuplane.pipeline.cli import pipeline_command

    app.command("pipeline")(pipeline_command)
    from gpuplane.edge.cli import app as edge_app

    app.add_typer(edge_app, name="edge", help="Edge inference: simulated sites serving ONNX models, rolled out in gated waves.")
    _mount_sandbox(app)


def _mount_sandbox(app: typer.Typer) -> None:
    from gpuplane.sandbox.cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox", help="A local Kubernetes cluster with simulated GPU nodes, from the real programs.")


app._ready = True


def main() -> None:
    args = sys.argv[1:]
    command = args[0] if args else None
    app.skip_optional = command in _CORE_COMMANDS or command == "sandbox"
    if command == "sandbox":
        # `eval $(gpuplane sandbox env)` and `up` stay quick: only the sandbox group is imported.
        _mount_sandbox(app)
    if command == "plan":
        # A plan is a short-lived process: its imports and its run make millions of long-lived
        # objects and few cycles, and the cyclic collector's full passes over them cost about a
        # third of the wall time (see gpuplane.engine.runtime._collector_paused).
        gc.disable()
    app()


if __name__ == "__main__":
    main()
