"""The ``gpuplane pipeline`` command (registered in ``gpuplane/cli.py``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer


def pipeline_command(
    out: Path = typer.Option(Path("pipeline-output"), "--out", help="Folder for the registry, data, models, logs "
                             "and pipeline-report.md / .json (cleared of a previous run's outputs)."),
    tiny: bool = typer.Option(False, "--tiny", help="Small data, 30-step models, no Feast, a 4 s canary window "
                              "(about a minute)."),
    canary_percent: float | None = typer.Option(None, "--canary-percent", help="Share of requests the challenger "
                                                "gets while it is judged, 0 < P < 100 (default 20; --tiny 25)."),
    canary_window: float | None = typer.Option(None, "--canary-window", help="Seconds the canary must stay in "
                                               "bounds before 100% (default 8; --tiny 4)."),
    max_error_rate: float | None = typer.Option(None, "--max-error-rate", help="Largest canary 5xx share, e.g. "
                                                "0.01 (default 0.01; --tiny 0.02)."),
    max_p99_ms: float | None = typer.Option(None, "--max-p99-ms", help="Largest canary p99 latency in ms."),
    metric: str | None = typer.Option(None, "--metric", help="Gate metric: ndcg_at_10 (default) or hit_rate_at_10."),
    margin: float | None = typer.Option(None, "--margin", help="Absolute improvement over the champion the "
                                        "challenger must exceed (default 0.002)."),
    drills: bool = typer.Option(True, "--drills/--no-drills", help="Also run the shuffled-label model (the gate "
                                "rejects it) and the faulty server (the canary rolls it back)."),
    features: bool | None = typer.Option(None, "--features/--no-features", help="Re-materialise Feast features for "
                                         "each new window (default: on, off with --tiny)."),
) -> None:
    """Run the model loop locally: new data → retrain → evaluate → MLflow → gate → canary → 100% or rollback.

    Prints each stage with its time and decision; requests flow through the router the whole
    time. Writes pipeline-report.md and pipeline-report.json (every decision with its metrics,
    stage times from new data to 100%, latency and 5xx per period). Exit 0 when every check in
    the report holds, 1 when one does not or a stage failed, 2 on bad options.
    """
    from gpuplane.pipeline import FULL, TINY, run_loop
    from workloads.pipeline.canary import CanaryInputError
    from workloads.pipeline.gate import GateInputError

    cfg = TINY if tiny else FULL
    canary_overrides: dict[str, Any] = {k: v for k, v in (
        ("percent", canary_percent), ("window_seconds", canary_window), ("max_error_rate", max_error_rate),
        ("max_p99_ms", max_p99_ms)) if v is not None}
    gate_overrides: dict[str, Any] = {k: v for k, v in (("metric", metric), ("margin", margin)) if v is not None}
    canary = replace(cfg.canary, **canary_overrides)
    gate = replace(cfg.gate, **gate_overrides)
    cfg = replace(cfg, canary=canary, gate=gate, worse_drill=drills, fault_drill=drills,
                  features=cfg.features if features is None else features)
    try:
        cfg.validate()
    except (CanaryInputError, GateInputError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report = run_loop(out, cfg)
    failed = report.failed_checks()
    if report.error or failed:
        typer.echo("failed: " + "; ".join(([report.error] if report.error else []) + failed), err=True)
        raise typer.Exit(1)
    raise typer.Exit(0)
