"""``gpuplane edge demo``: simulated edge sites on loopback, rollouts in waves gated on each site.

    gpuplane edge demo                                  # uses demo-output/{model,data} from `make demo`
    gpuplane edge demo --model-dir DIR --data DIR --out edge-output --sites 6 --groups 3

Without ``--model-dir`` and without ``demo-output/model``, a tiny model is trained first (about 15 s on
a laptop core) into ``OUT/reference``. Exit codes: 0 every check held, 1 one failed (named), 2 a usage
problem (one line: the flag, the value, the fix).
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Edge inference: simulated sites serving ONNX models, rolled out in gated waves.")

DEFAULT_MODEL_DIR = Path("demo-output/model")
DEFAULT_DATA_DIR = Path("demo-output/data")


def train_reference(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A small event log and the tiny preset trained on it for 60 steps: (data dir, export dir)."""
    from workloads.data.generate import GenerateConfig, generate
    from workloads.training.config import parse_args
    from workloads.training.train import run

    data, export = root / "data", root / "model"
    if not (data / "meta.json").exists():
        generate(data, GenerateConfig(users=400, items=200, days=7, seed=seed))
    if not (export / "metrics.json").exists():
        run(parse_args(["--preset", "tiny", "--data", str(data), "--export-dir", str(export), "--batch-size", "32",
                        "--max-steps", "60", "--lr-decay-steps", "60", "--threads", "1", "--seed", str(seed),
                        "--log-every", "60"]), log=lambda m: None)
    return data, export


@app.command()
def demo(
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Training export (model.safetensors + config.json); "
                                          f"default {DEFAULT_MODEL_DIR}, or a tiny model trained here."),
    data: Path | None = typer.Option(None, "--data", help="The data it was trained on (held-out users make the "
                                     f"gate's sample); default {DEFAULT_DATA_DIR}."),
    out: Path = typer.Option(Path("edge-output"), "--out", help="Output folder (models, site caches and logs, reports)."),
    sites: int = typer.Option(6, "--sites", help="Simulated sites (at least 3)."),
    groups: int = typer.Option(3, "--groups", help="Groups the sites are spread over (1..sites)."),
    max_p99_ms: float = typer.Option(100.0, "--max-p99-ms", help="Gate: p99 on-device inference time bound per site."),
    min_agreement: float = typer.Option(0.9, "--min-agreement", help="Gate: least top-10 agreement with the cloud model."),
) -> None:
    """Roll a bad model (rolled back at the canary) and a good one (in waves, one site cut off) out to local sites."""
    from gpuplane.errors import fail

    problems = []
    if sites < 3:
        problems.append(f"--sites={sites}: at least 3 (a canary, a site to cut off, one more)")
    elif not 1 <= groups <= sites:
        problems.append(f"--groups={groups}: between 1 and --sites ({sites})")
    if max_p99_ms <= 0 or not 0 <= min_agreement <= 1:
        problems.append(f"--max-p99-ms={max_p99_ms} must be > 0 and --min-agreement={min_agreement} in [0, 1]")
    if model_dir is not None and not (model_dir / "model.safetensors").is_file():
        problems.append(f"--model-dir={model_dir}: no model.safetensors there. To fix: run `make demo` (writes "
                        f"{DEFAULT_MODEL_DIR}) or leave --model-dir out to train a tiny model here")
    if model_dir is not None and data is None:
        problems.append("--data: needed with --model-dir (the held-out users of the data it was trained on)")
    if data is not None and not (data / "events.parquet").is_file():
        problems.append(f"--data={data}: no events.parquet there. To fix: pass the training data directory "
                        "(`python -m workloads.data.generate --out DIR`)")
    if problems:
        raise fail("; ".join(problems))

    from rich.console import Console

    from gpuplane.edge.demo import EdgeDemoConfig, Gate, run_edge_demo

    console = Console()
    if model_dir is None:
        if (DEFAULT_MODEL_DIR / "model.safetensors").is_file() and (data or DEFAULT_DATA_DIR).joinpath("events.parquet").is_file():
            model_dir, data = DEFAULT_MODEL_DIR, data or DEFAULT_DATA_DIR
        else:
            console.print(f"no {DEFAULT_MODEL_DIR} (make demo): training a tiny reference model into {out / 'reference'} ...")
            data, model_dir = train_reference(out / "reference")
    assert data is not None
    cfg = EdgeDemoConfig(sites=sites, groups=groups, gate=Gate(max_p99_ms=max_p99_ms, min_agreement=min_agreement))
    report = run_edge_demo(out, model_dir, data, cfg, console=console)
    failed = report.failed_checks()
    if failed:
        console.print("[red bold]failed:[/red bold] " + "; ".join(c.name for c in failed))
        raise typer.Exit(1)
