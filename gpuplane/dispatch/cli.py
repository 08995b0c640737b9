"""``gpuplane dispatch run``: the cost-aware MultiKueue dispatcher against a manager cluster.

Any input error exits with status 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(help="The cost-aware MultiKueue dispatcher (External mode).", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """The cost-aware MultiKueue dispatcher (External mode)."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def load_policy_config(path: Path | None) -> tuple[object, dict[str, str]]:
    """(Residency, bucket -> region) from a policy-pack config file (allowed-regions, training-data-colocated)."""
    from gpuplane.dispatch.ranking import Residency

    if path is None:
        return Residency(), {}
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        _fail(f"--policy-config {path}: {e}. To fix: pass a policy config JSON file, e.g. policies/config/multicloud.json.")
    coloc = cfg.get("training-data-colocated") or {}
    buckets = coloc.get("bucketRegions", {}) if isinstance(coloc, dict) else {}
    return Residency.from_policy_config(cfg, str(path)), dict(buckets)


@app.command()
def run(
    kubeconfig: Annotated[Path, typer.Option(help="Kubeconfig of the MultiKueue manager cluster.")],
    policy_config: Annotated[Path | None, typer.Option(help="Policy config JSON (allowed-regions, training-data-colocated).")] = None,
    interval_seconds: Annotated[float, typer.Option(help="Seconds between passes.")] = 5.0,
    patience_seconds: Annotated[float, typer.Option(help="Seconds a nominated worker may take to admit a job before it is moved.")] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (status 1 if a job could not be dispatched).")] = False,
) -> None:
    """Nominate worker clusters for pending MultiKueue workloads by price, notice, free quota and data distance."""
    from components.catalog import load_catalog
    from gpuplane.dispatch.controller import Dispatcher
    from gpuplane.dispatch.kube import KubeClient, Unreachable

    try:
        manager = KubeClient(kubeconfig.read_text(), name="manager")
    except (OSError, ValueError, KeyError, StopIteration) as e:
        _fail(f"--kubeconfig {kubeconfig}: {e}. To fix: pass the manager cluster's kubeconfig.")
    residency, buckets = load_policy_config(policy_config)
    d = Dispatcher(manager, load_catalog(), residency, bucket_regions=buckets, patience_seconds=patience_seconds)  # type: ignore[arg-type]
    if once:
        try:
            p = d.step()
        except Unreachable as e:
            _fail(f"manager: {e}")
        for key, names in p.nominated.items():
            typer.echo(f"{key} -> {', '.join(names)}")
        for err in p.errors:
            typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1 if p.errors else 0)
    d.run(interval_seconds, echo=typer.echo)
