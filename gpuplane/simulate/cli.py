"""``gpuplane simulate``: the cost and cold-start simulator on the command line.

Commands on a ``typer.Typer`` app named ``app`` (the main CLI mounts it as ``simulate``):

- ``inference``: simulate a synthetic or real trace under every policy family, write
  ``report.md``, ``report.json`` and ``frontier.png`` under ``--out`` and print a table;
- ``training``: expected time and cost of a checkpointed job on spot vs on-demand;
- ``dispatch``: replay a job trace across worker clusters under MultiKueue dispatch policies.

Any input error exits with status 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from gpuplane.simulate.policies import HistogramKeepAlive, KnativeKeepAlive, PolicyError, ServerlessPerRequest
from gpuplane.simulate.prices import PriceError, PriceSpec, price_spec
from gpuplane.simulate.report import savings_bound, write_report
from gpuplane.simulate.service import ColdStart, ServiceModel, ServiceModelError
from gpuplane.simulate.sweep import FAMILIES, SweepSpec, run_sweep
from gpuplane.simulate.traffic import (
    Trace,
    TraceFormatError,
    TrafficSpec,
    TrafficSpecError,
    read_azure_functions,
    read_timestamps,
    synthetic_trace,
)
from gpuplane.simulate.training import SpotJob, TrainingModelError, estimate

app = typer.Typer(
    help="Simulate serving cost and cold starts, and spot training cost.", no_args_is_help=True, add_completion=False
)
_INPUT_ERRORS = (
    TraceFormatError,
    TrafficSpecError,
    PriceError,
    PolicyError,
    ServiceModelError,
    TrainingModelError,
    ValueError,
    OSError,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        _fail(f"{option}={text!r} is not a comma-separated list of numbers, e.g. 0,60,300,900")
    if not values:
        _fail(f"{option} is empty; give at least one value")
    return values


def _prices(
    cloud: str, gpu: str, instance_type: str | None, region: str, capacity: str, usd_per_gpu_hour: float | None
) -> PriceSpec:
    if instance_type is None:
        from components.catalog import load_catalog

        if capacity not in ("on_demand", "spot", "capacity_block"):
            _fail(f"--capacity {capacity!r} is not a capacity type. To fix: use on_demand or spot")
        offers = load_catalog().find_offerings(
            cloud=cloud,
            accelerator=gpu,
            count=1,
            region=region,
            capacity=capacity,  # type: ignore[arg-type]
        )
        offers = [o for o in offers if o.instance_type.service in ("ec2", "compute")]
        if not offers:
            _fail(
                f"no {capacity} {cloud} offering with one {gpu} in {region}. To fix: pick another --gpu/--region, or pass --instance-type or --usd-per-gpu-hour"
            )
        instance_type = offers[0].instance_type.name
    spec = price_spec(
        cloud, instance_type, region, capacity, serverless_gpu=gpu.lower() if gpu.lower() == "l4" else "l4"
    )
    if usd_per_gpu_hour is not None:
        spec = PriceSpec(
            **(
                spec.__dict__
                | {"usd_per_gpu_hour": usd_per_gpu_hour, "label": f"{usd_per_gpu_hour} $/GPU-h (given) / {spec.label}"}
            )
        )
    return spec


@app.command()
def inference(
    trace: Annotated[Path | None, typer.Option(help="Trace file to replay instead of synthetic traffic.")] = None,
    trace_format: Annotated[
        str,
        typer.Option(
            help="Format of --trace: 'azure' (Azure Functions 2019 per-minute counts) or 'timestamps' (seconds, one per line or a 'timestamp' column)."
        ),
    ] = "timestamps",
    top: Annotated[int | None, typer.Option(help="Azure traces: keep only the N busiest functions.")] = None,
    group_by: Annotated[
        str, typer.Option(help="Azure traces: one endpoint per 'function' or per 'app' (the paper's unit).")
    ] = "function",
    duration_hours: Annotated[float, typer.Option(help="Synthetic trace length in hours.")] = 24.0,
    mean_rps: Annotated[float, typer.Option(help="Synthetic mean request rate, all endpoints together (req/s).")] = 2.0,
    peak_to_mean: Annotated[
        float, typer.Option(help="Synthetic diurnal peak/mean rate ratio (1.43–2.5 ↔ 30–60 % savings bound).")
    ] = 2.0,
    cv: Annotated[float, typer.Option(help="Coefficient of variation of inter-arrival gaps (1 = Poisson).")] = 1.0,
    endpoints: Annotated[int, typer.Option(help="Synthetic endpoints sharing the traffic (Zipf popularity).")] = 1,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of endpoint popularity.")] = 1.0,
    bursts_per_day: Annotated[float, typer.Option(help="Mean bursts per day (0 = none).")] = 0.0,
    burst_duration_s: Annotated[float, typer.Option(help="Length of a burst in seconds.")] = 600.0,
    burst_multiplier: Annotated[float, typer.Option(help="Rate multiplier during a burst.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed (synthetic traffic, Azure minute spreading).")] = 0,
    service_time_ms: Annotated[float, typer.Option(help="Service time of one request in milliseconds.")] = 500.0,
    concurrency: Annotated[
        int, typer.Option(help="Requests one replica serves at once (also the autoscaling target).")
    ] = 4,
    node_provisioning_s: Annotated[
        float, typer.Option(help="Cold-start phase: GPU node provisioning, seconds.")
    ] = 75.0,
    image_pull_s: Annotated[float, typer.Option(help="Cold-start phase: image pull, seconds.")] = 45.0,
    model_load_s: Annotated[
        float, typer.Option(help="Cold-start phase: process init and weight load, seconds.")
    ] = 20.0,
    serverless_start_s: Annotated[
        float, typer.Option(help="Cold-start phase of a serverless instance before the model load, seconds.")
    ] = 5.0,
    cloud: Annotated[str, typer.Option(help="Cloud for node prices: aws or gcp.")] = "aws",
    gpu: Annotated[
        str, typer.Option(help="Accelerator of one replica; the cheapest one-GPU instance in the catalog is used.")
    ] = "L4",
    instance_type: Annotated[
        str | None, typer.Option(help="Instance/machine type to price instead of the cheapest with --gpu.")
    ] = None,
    region: Annotated[str, typer.Option(help="Region for node prices.")] = "us-east-1",
    capacity: Annotated[str, typer.Option(help="Capacity type for node prices: on_demand or spot.")] = "on_demand",
    usd_per_gpu_hour: Annotated[float | None, typer.Option(help="Override the node price per GPU-hour.")] = None,
    slo_ms: Annotated[float, typer.Option(help="Latency SLO in milliseconds (cold-start waits included).")] = 2000.0,
    slo_target: Annotated[float, typer.Option(help="Fraction of requests that must meet --slo-ms.")] = 0.99,
    keep_alive_s: Annotated[
        str, typer.Option(help="Comma-separated keep-alive settings to sweep, seconds.")
    ] = "0,60,300,900,3600",
    min_scale: Annotated[str, typer.Option(help="Comma-separated min-scale values to sweep.")] = "0,1",
    families: Annotated[str, typer.Option(help=f"Comma-separated policy families ({', '.join(FAMILIES)}).")] = ",".join(
        FAMILIES
    ),
    out: Annotated[Path, typer.Option(help="Directory for report.md, report.json and frontier.png.")] = Path(
        "out/simulate"
    ),
    two_tier: Annotated[
        bool,
        typer.Option(
            help="Also search the two-tier policy (steady replicas + spill threshold, serverless burst tier) against static-for-peak, Knative-only and serverless-only; writes two_tier.png."
        ),
    ] = False,
) -> None:
    """Compare serving policies on one trace and recommend the cheapest that meets the SLO."""
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        tr: Trace
        if trace is not None:
            if trace_format == "azure":
                tr = read_azure_functions(trace, top=top, seed=seed, group_by=group_by)
            elif trace_format == "timestamps":
                tr = read_timestamps(trace)
            else:
                _fail(f"--trace-format={trace_format!r} is not known; use 'azure' or 'timestamps'")
        else:
            tr = synthetic_trace(
                TrafficSpec(
                    mean_rps=mean_rps,
                    peak_to_mean=peak_to_mean,
                    cv=cv,
                    duration_s=duration_hours * 3600.0,
                    endpoints=endpoints,
                    zipf_s=zipf,
                    bursts_per_day=bursts_per_day,
                    burst_duration_s=burst_duration_s,
                    burst_multiplier=burst_multiplier,
                    seed=seed,
                )
            )
        if tr.n_requests == 0:
            _fail("the trace holds no request; raise --mean-rps/--duration-hours or check the file")
        service = ServiceModel(
            service_time_s=service_time_ms / 1000.0,
            concurrency=concurrency,
            cold_start=ColdStart(node_provisioning_s, image_pull_s, model_load_s, serverless_start_s),
        )
        service.validate(tr.n_endpoints)
        prices = _prices(cloud, gpu, instance_type, region, capacity, usd_per_gpu_hour)
        fams = tuple(f.strip() for f in families.split(",") if f.strip())
        spec = SweepSpec(
            keep_alives_s=_floats(keep_alive_s, "--keep-alive-s"),
            min_scales=tuple(int(m) for m in _floats(min_scale, "--min-scale")),
            families=fams,
            knative=KnativeKeepAlive(),
            serverless=ServerlessPerRequest(),
            histogram=HistogramKeepAlive(),
        )
        sweep = run_sweep(tr, service, prices, slo_ms=slo_ms, slo_target=slo_target, spec=spec)
        paths = write_report(out, sweep, tr, service, prices)
    except typer.Exit:
        raise
    except _INPUT_ERRORS as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    table = Table(
        title=f"{tr.n_requests:,} requests, {tr.n_endpoints} endpoint(s), {tr.duration_s / 3600:.1f} h — savings bound {savings_bound(sweep):.1%}"
    )
    for col in ("policy", "setting", "GPU-h", "cost $", "savings", "cold waits", "app cold Q3", "p99 ms", "SLO met"):
        table.add_column(col, justify="left" if col in ("policy", "setting") else "right")
    frontier = {id(sweep.results[i]) for i in sweep.frontier}
    for r in sweep.all_results():
        mark = " ★" if id(r) in frontier else (" ◆" if r is sweep.recommended else "")
        style = "bold green" if r is sweep.recommended else None
        table.add_row(
            r.policy + mark,
            r.setting,
            f"{r.gpu_hours:,.1f}",
            f"{r.cost_usd:,.2f}",
            f"{r.savings_vs(sweep.static):.1%}",
            f"{r.cold_start_fraction:.2%}",
            f"{r.app_cold_start_q3:.2%}",
            f"{r.p99_ms:,.0f}",
            f"{r.slo_attainment:.2%}",
            style=style,
        )
    console.print(table)
    rec = sweep.recommended
    if rec is not None:
        console.print(
            f"recommended: [bold]{rec.policy}, {rec.setting}[/bold] — {rec.cost_usd:,.2f} USD, {rec.savings_vs(sweep.static):.1%} below static-for-peak"
        )
    else:
        console.print("recommended: none — no setting meets the SLO")
    console.print(sweep.reason)
    console.print(f"wrote {paths['markdown']}, {paths['json']}, {paths['png']}")
    if two_tier:
        _two_tier(console, tr, service, prices, slo_ms, slo_target, out)


def _two_tier(console: Console, tr: Trace, service: ServiceModel, prices: PriceSpec, slo_ms: float,
              slo_target: float, out: Path) -> None:
    """The two-tier search beside the three baselines (gpuplane/simulate/two_tier.py)."""
    from gpuplane.simulate.two_tier import compare, endpoint_args, write_plot

    comparison = compare(tr, service, prices, slo_ms=slo_ms, slo_target=slo_target)
    table = Table(title="two-tier vs static-for-peak, Knative-only, serverless-only")
    for col in ("policy", "setting", "cost $", "p99 ms", "SLO met", "spilled"):
        table.add_column(col, justify="left" if col in ("policy", "setting") else "right")
    frontier = {id(r) for r in comparison.frontier}
    for r in comparison.all_results():
        mark = " ★" if id(r) in frontier else ""
        spilled = r.extra.get("spilled_fraction")
        table.add_row(r.policy + mark, r.setting, f"{r.cost_usd:,.2f}", f"{r.p99_ms:,.0f}", f"{r.slo_attainment:.2%}",
                      "" if spilled is None else f"{spilled:.1%}",
                      style="bold green" if r is comparison.recommended else None)
    console.print(table)
    rec = comparison.recommended
    if rec is None:
        console.print("two-tier: no setting meets the SLO target")
    else:
        console.print(f"two-tier recommended: [bold]{rec.setting}[/bold] — {rec.cost_usd:,.2f} USD; "
                      f"TwoTierEndpoint args {endpoint_args(rec, service)}")
    out.mkdir(parents=True, exist_ok=True)
    if write_plot(out / "two_tier.png", comparison):
        console.print(f"wrote {out / 'two_tier.png'}")


@app.command()
def training(
    work_hours: Annotated[float, typer.Option(help="Failure-free compute time of the job, hours.")] = 100.0,
    preemptions_per_hour: Annotated[float, typer.Option(help="Spot preemption rate λ per running hour.")] = 0.05,
    checkpoint_minutes: Annotated[float, typer.Option(help="Time to write one checkpoint, minutes.")] = 3.0,
    interval_hours: Annotated[
        float | None, typer.Option(help="Work between checkpoints, hours (default: Young/Daly sqrt(2·C·MTBF)).")
    ] = None,
    restart_minutes: Annotated[float, typer.Option(help="Restart overhead after a preemption, minutes.")] = 6.0,
    notice_s: Annotated[
        float | None, typer.Option(help="Preemption notice, seconds (default: the cloud's, from the catalog).")
    ] = None,
    notice_save_success: Annotated[
        float | None,
        typer.Option(
            help="Probability an emergency checkpoint completes in the notice (default: 1 if it fits, else 0)."
        ),
    ] = None,
    gpus: Annotated[int, typer.Option(help="GPUs the job holds.")] = 8,
    cloud: Annotated[str, typer.Option(help="Cloud for prices and the notice window: aws or gcp.")] = "aws",
    instance_type: Annotated[
        str, typer.Option(help="Instance type whose spot and on-demand prices are used (per GPU).")
    ] = "p5.48xlarge",
    region: Annotated[str, typer.Option(help="Region for prices.")] = "us-east-1",
    spot_usd_per_gpu_hour: Annotated[float | None, typer.Option(help="Override the spot price per GPU-hour.")] = None,
    on_demand_usd_per_gpu_hour: Annotated[
        float | None, typer.Option(help="Override the on-demand price per GPU-hour.")
    ] = None,
    monte_carlo: Annotated[int, typer.Option(help="Monte-Carlo runs to check the analytic time (0 = none).")] = 2000,
    seed: Annotated[int, typer.Option(help="Monte-Carlo seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Expected completion time and cost of a checkpointed job on spot vs on-demand."""
    try:
        spot, od, notice = spot_usd_per_gpu_hour, on_demand_usd_per_gpu_hour, notice_s
        if spot is None or od is None or notice is None:
            try:
                from components.catalog import load_catalog
            except ImportError:
                _fail(
                    "components.catalog is not importable; pass --spot-usd-per-gpu-hour, --on-demand-usd-per-gpu-hour and --notice-s"
                )
            cat = load_catalog()
            it = cat.instance_type(cloud, instance_type)
            if it is None:
                _fail(
                    f"{cloud} instance type {instance_type!r} is not in the catalog. To fix: pick one from the catalog or pass the prices"
                )
            if spot is None:
                p = cat.price(cloud, instance_type, region, "spot")
                if p is None:
                    _fail(
                        f"{cloud} {instance_type} has no spot price in {region}. To fix: pass --spot-usd-per-gpu-hour"
                    )
                spot = p / it.gpus
            if od is None:
                p = cat.price(cloud, instance_type, region, "on_demand")
                if p is None:
                    _fail(
                        f"{cloud} {instance_type} has no on-demand price in {region}. To fix: pass --on-demand-usd-per-gpu-hour"
                    )
                od = p / it.gpus
            if notice is None:
                notice = float(cat.notice_seconds(cloud))
        job = SpotJob(
            work_hours=work_hours,
            preemptions_per_hour=preemptions_per_hour,
            checkpoint_hours=checkpoint_minutes / 60.0,
            interval_hours=interval_hours,
            restart_hours=restart_minutes / 60.0,
            notice_s=notice,
            notice_save_success=notice_save_success,
            gpus=gpus,
            spot_usd_per_gpu_hour=spot,
            on_demand_usd_per_gpu_hour=od,
        )
        est = estimate(job, monte_carlo_runs=monte_carlo, seed=seed)
    except typer.Exit:
        raise
    except _INPUT_ERRORS as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if as_json:
        typer.echo(json.dumps({"job": job.__dict__, "estimate": est.to_dict()}, indent=2))
        return
    table = Table(
        title=f"{work_hours:g} work-hours on {gpus} GPUs, λ = {preemptions_per_hour:g}/h, notice {notice:g} s"
    )
    table.add_column("")
    table.add_column("spot", justify="right")
    table.add_column("on-demand", justify="right")
    table.add_row("expected hours", f"{est.spot_hours:,.2f}", f"{est.on_demand_hours:,.2f}")
    table.add_row("cost USD", f"{est.spot_cost_usd:,.2f}", f"{est.on_demand_cost_usd:,.2f}")
    table.add_row("price $/GPU-h", f"{spot:.4f}", f"{od:.4f}")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    yd = f"{est.young_daly_hours * 60:.1f} min" if est.young_daly_hours is not None else "n/a (no preemptions)"
    lines = [
        f"checkpoint every {est.interval_hours * 60:.1f} min of work (Young/Daly sqrt(2·C·MTBF) = {yd}); "
        f"emergency save in the notice: {'yes' if est.save_success >= 1 else 'no' if est.save_success <= 0 else f'p = {est.save_success:g}'}",
        f"expected preemptions {est.expected_preemptions:.2f}; spot saves {est.savings:.1%} vs on-demand",
    ]
    if est.monte_carlo_hours is not None:
        lines.append(
            f"Monte-Carlo ({monte_carlo} runs): {est.monte_carlo_hours:,.2f} ± {est.monte_carlo_stderr_hours:.2f} h (analytic {est.spot_hours:,.2f} h)"
        )
    for line in lines:
        typer.echo(line)


@app.command()
def dispatch(
    trace: Annotated[Path | None, typer.Option(help="Job trace CSV (job_id,submit_s,flavor,gpus,hours,capacity,data_region,data_gib). Default: a synthetic week.")] = None,
    workers: Annotated[Path | None, typer.Option(help="Workers JSON: [{name, cloud, region, quota: {flavor: gpus}, usd_per_gpu_hour: {flavor: $}}]. Default: the reference federation (catalog prices).")] = None,
    policy: Annotated[list[str] | None, typer.Option(help="Policy to run (repeat): all_at_once, incremental, cost_aware. Default: all three.")] = None,
    days: Annotated[float, typer.Option(help="Synthetic trace length, days.")] = 7.0,
    jobs_per_day: Annotated[float, typer.Option(help="Synthetic trace's mean job arrivals per day.")] = 100.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic trace and the preemption draws.")] = 0,
    incremental_step: Annotated[int, typer.Option(help="Workers added per Incremental round (Kueue default 3).")] = 3,
    patience_s: Annotated[float, typer.Option(help="Seconds cost-aware waits for a full nominee before moving the job.")] = 30.0,
    preemptions_per_hour: Annotated[float, typer.Option(help="Spot preemption rate per running hour.")] = 0.05,
    checkpoint_s: Annotated[float, typer.Option(help="Emergency checkpoint time; a shorter notice loses work.")] = 60.0,
    policy_config: Annotated[Path | None, typer.Option(help="Policy config JSON whose allowed-regions excludes workers.")] = None,
    write_trace: Annotated[Path | None, typer.Option(help="Also write the trace replayed as CSV here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay a job trace against dispatch policies with spot interruptions: cost, wait and completion per policy."""
    from components.catalog import load_catalog
    from gpuplane.dispatch.ranking import Residency
    from gpuplane.simulate.dispatch import (
        POLICIES,
        DispatchSimError,
        SimWorker,
        read_jobs,
        reference_workers,
        simulate_dispatch,
        synthetic_jobs,
        write_jobs,
    )

    cat = load_catalog()
    try:
        ws = reference_workers(cat) if workers is None else _read_workers(workers, cat, SimWorker)
        jobs = read_jobs(trace) if trace is not None else synthetic_jobs(days, jobs_per_day, tuple(sorted({f for w in ws for f in w.quota})), seed=seed)
        if write_trace is not None:
            write_jobs(write_trace, jobs)
        residency = Residency()
        if policy_config is not None:
            residency = Residency.from_policy_config(json.loads(policy_config.read_text()), str(policy_config))
        chosen = policy or list(POLICIES)
        results = [
            simulate_dispatch(jobs, ws, p, cat, residency=residency, incremental_step=incremental_step, patience_s=patience_s,
                              preemptions_per_hour=preemptions_per_hour, checkpoint_s=checkpoint_s, seed=seed)
            for p in chosen
        ]
    except (DispatchSimError, *_INPUT_ERRORS) as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    source = str(trace) if trace is not None else f"synthetic: {days:g} days, {jobs_per_day:g} jobs/day, seed {seed} (gpuplane/simulate/dispatch.py synthetic_jobs)"
    if as_json:
        typer.echo(json.dumps({"trace": source, "jobs": len(jobs), "workers": [w.__dict__ for w in ws], "results": [r.to_dict() for r in results]}, indent=2, default=float))
        return
    table = Table(title=f"{len(jobs):,} jobs on {len(ws)} workers ({source})")
    for col in ("policy", "cost $", "compute $", "egress $", "wait mean h", "wait p95 h", "completion mean h", "completion p95 h", "preemptions", "moved"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in results:
        table.add_row(r.policy, f"{r.cost_usd:,.0f}", f"{r.compute_usd:,.0f}", f"{r.egress_usd:,.0f}", f"{r.wait_mean_h:.2f}", f"{r.wait_p95_h:.2f}",
                      f"{r.completion_mean_h:.2f}", f"{r.completion_p95_h:.2f}", str(r.preemptions), str(r.moves))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    for r in results:
        typer.echo(f"{r.policy}: GPU-hours per worker {r.per_worker_gpu_hours}")


def _read_workers(path: Path, cat: object, cls: type) -> list:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        _fail(f"--workers {path}: {e}. To fix: pass a JSON list of workers.")
    out = []
    for i, w in enumerate(raw if isinstance(raw, list) else []):
        missing = [k for k in ("name", "cloud", "region", "quota", "usd_per_gpu_hour") if k not in w]
        if missing:
            _fail(f"--workers {path}: worker [{i}] lacks {missing}. To fix: give name, cloud, region, quota and usd_per_gpu_hour.")
        out.append(cls(w["name"], w["cloud"], w["region"], cat.notice_seconds(w["cloud"]), dict(w["quota"]), dict(w["usd_per_gpu_hour"])))  # type: ignore[attr-defined]
    if not out:
        _fail(f"--workers {path}: no workers. To fix: list at least one.")
    return out


def main() -> None:  # pragma: no cover - convenience entry for `python -m gpuplane.simulate.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
