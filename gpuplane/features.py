"""``gpuplane features``: run a stack's feature store pipeline locally.

    gpuplane features materialize --stack local            # generate data if needed, transform, apply, materialise
    gpuplane features serve --stack local                  # the Feast feature server on loopback

Only stacks whose ``gpuplane:featureStore.target`` is ``local`` run here; cloud targets
materialise with the CronJob the ``FeatureStore`` component deploys. Feast is imported by the
pipeline only when a command runs (its import costs seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(help="Run a stack's feature store pipeline locally (Feast on SQLite and files).", no_args_is_help=True, add_completion=False)


def _local_target(stack: str) -> None:
    from gpuplane.engine.plan import PlanError, read_stack_config
    from stacks.config import StackConfigError, parse_config

    try:
        cfg = parse_config(read_stack_config(stack))
    except (PlanError, StackConfigError) as e:
        typer.echo(f"error: {str(e).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None
    if cfg.feature_store is None:
        typer.echo(f"error: stack '{stack}' has no gpuplane:featureStore. Add one with target: local.", err=True)
        raise typer.Exit(2)
    if cfg.feature_store.target != "local":
        typer.echo(
            f"error: stack '{stack}' keeps its features on '{cfg.feature_store.target}', which materialises in the cluster "
            "(the FeatureStore component's CronJob). Use a stack with target: local.",
            err=True,
        )
        raise typer.Exit(2)


def _progress(line: str) -> None:
    typer.echo(f"[features] {line}", err=True)


@app.command()
def materialize(
    stack: str = typer.Option("local", "--stack", "-s", help="A stack whose featureStore target is local."),
    data: Path = typer.Option(Path("out/data"), "--data", help="Event log (workloads.data.generate); generated here if missing."),
    repo_dir: Path = typer.Option(Path("out/feature-repo"), "--repo-dir", help="Feast repository to write."),
    users: int = typer.Option(1000, min=1, help="Users to generate when --data is missing."),
    items: int = typer.Option(1000, min=1, help="Items to generate when --data is missing."),
    days: int = typer.Option(7, min=1, help="Days of events to generate when --data is missing."),
    seed: int = typer.Option(0, help="Seed of the generated data."),
) -> None:
    """Transform the event log into feature tables, `feast apply`, and materialise into SQLite."""
    _local_target(stack)
    if not (data / "meta.json").exists():
        _progress(f"generating {users} users x {items} items x {days} days into {data}")
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "workloads.data.generate", "--out", str(data), "--users", str(users), "--items", str(items), "--days", str(days), "--seed", str(seed)],
            check=True,
        )
        _progress(f"generated in {time.perf_counter() - t:.1f} s")
    from workloads.features.pipeline import materialize_local

    summary = materialize_local(data, repo_dir, progress=_progress)
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
def serve(
    stack: str = typer.Option("local", "--stack", "-s", help="A stack whose featureStore target is local."),
    repo_dir: Path = typer.Option(Path("out/feature-repo"), "--repo-dir", help="Feast repository written by `materialize`."),
    port: int = typer.Option(6566, help="Port on 127.0.0.1."),
) -> None:
    """Run the Feast feature server on loopback until interrupted (Ctrl-C)."""
    _local_target(stack)
    if not (repo_dir / "feature_store.yaml").exists():
        typer.echo(f"error: {repo_dir} has no feature_store.yaml. Run `gpuplane features materialize` first.", err=True)
        raise typer.Exit(2)
    from workloads.features.server import FeatureServer

    with FeatureServer(repo_dir, port=port) as server:
        _progress(f"feature server at {server.url} (ready in {server.startup_seconds:.1f} s); Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
