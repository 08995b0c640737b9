"""Sweep, Pareto frontier, recommendation, reports, price adapter and the CLI."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpuplane.simulate import (
    PriceSpec,
    ServiceModel,
    SweepSpec,
    TrafficSpec,
    endpoint_args,
    pareto_frontier,
    price_spec,
    run_sweep,
    synthetic_trace,
)
from gpuplane.simulate.cli import app
from gpuplane.simulate.report import write_report


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 1)), min_size=1, max_size=40))
def test_frontier_points_are_exactly_the_non_dominated_ones(points: list[tuple[float, float]]) -> None:
    front = set(pareto_frontier(points))

    def dominated(i: int) -> bool:
        c, f = points[i]
        return any((c2 <= c and f2 <= f) and (c2 < c or f2 < f) for c2, f2 in points)

    for i in range(len(points)):
        if i in front:
            assert not dominated(i)
        elif not dominated(i):  # an exact duplicate of a frontier point
            assert points[i] in [points[j] for j in front]


@pytest.fixture(scope="module")
def small():
    tr = synthetic_trace(TrafficSpec(mean_rps=0.5, peak_to_mean=2.5, duration_s=12 * 3600, endpoints=3, seed=2))
    svc = ServiceModel(service_time_s=0.5, concurrency=4)
    spec = SweepSpec(keep_alives_s=(0.0, 300.0, 1800.0), min_scales=(0, 1))
    return tr, svc, run_sweep(tr, svc, PriceSpec(), slo_ms=2000.0, slo_target=0.99, spec=spec)


def test_sweep_recommends_the_cheapest_setting_meeting_the_slo(small) -> None:
    _, _, sw = small
    assert len(sw.results) == 3 * 2 + 3 * 2 + 3
    meeting = [r for r in (sw.static, *sw.results) if r.slo_attainment >= 0.99]  # the oracle is a bound, not a choice
    assert sw.recommended.slo_attainment >= 0.99
    assert sw.recommended.cost_usd == min(r.cost_usd for r in meeting)
    front = [sw.results[i] for i in sw.frontier]
    assert [r.cost_usd for r in front] == sorted(r.cost_usd for r in front)


def test_report_files_are_written_and_consistent(small, tmp_path) -> None:
    tr, svc, sw = small
    paths = write_report(tmp_path, sw, tr, svc, PriceSpec())
    data = json.loads(paths["json"].read_text())
    assert data["trace"]["requests"] == tr.n_requests
    assert data["recommended"]["policy"] == sw.recommended.policy
    assert 0 <= data["savings_bound"] <= 1
    assert set(data["recommended"]["inference_endpoint_args"]) >= {"min_scale", "target_concurrency"}
    md = paths["markdown"].read_text()
    assert "Recommended:" in md and "| static-peak |" in md and "★" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_endpoint_args_map_the_knobs(small) -> None:
    _, svc, sw = small
    kn = next(
        r
        for r in sw.results
        if r.policy == "knative" and r.params["min_scale"] == 1 and r.params["scale_down_delay_s"] == 300.0
    )
    assert endpoint_args(kn, svc, static_replicas=3) == {
        "min_scale": 1,
        "target_concurrency": 4,
        "scale_down_delay_seconds": 300,
        "max_scale": 3,
    }
    sl = next(r for r in sw.results if r.policy == "serverless" and r.params["min_instances"] == 0)
    assert endpoint_args(sl, svc)["scale_down_delay_seconds"] == int(sl.params["idle_timeout_s"])


def test_price_adapter_reads_the_catalog_defaults() -> None:
    p = price_spec()
    assert p.usd_per_gpu_hour == pytest.approx(0.8048)
    assert p.gpu_usd_per_second == pytest.approx(0.0001867)
    assert p.serverless_usd_per_second * 3600 == pytest.approx(1.0465, abs=1e-3)


def test_price_adapter_names_a_missing_row() -> None:
    with pytest.raises(ValueError, match="not in the catalog"):
        price_spec(instance_type="g9.imaginary")


runner = CliRunner()


def test_cli_inference_writes_the_report(tmp_path) -> None:
    res = runner.invoke(
        app,
        [
            "inference",
            "--duration-hours",
            "6",
            "--mean-rps",
            "0.5",
            "--endpoints",
            "2",
            "--keep-alive-s",
            "0,600",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "recommended:" in res.output
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "report.json", "frontier.png"}


def test_cli_inference_replays_a_timestamp_trace(tmp_path) -> None:
    f = tmp_path / "ts.csv"
    f.write_text("\n".join(str(10.0 * i) for i in range(500)) + "\n")
    res = runner.invoke(app, ["inference", "--trace", str(f), "--keep-alive-s", "60", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["trace"]["requests"] == 500


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--peak-to-mean", "0.5"], "peak_to_mean=0.5"),
        (["--keep-alive-s", "a,b"], "--keep-alive-s='a,b'"),
        (["--trace", "/nonexistent.csv"], "no such file"),
        (["--trace-format", "parquet", "--trace", "x"], "--trace-format='parquet'"),
        (["--concurrency", "0"], "concurrency=0"),
    ],
)
def test_cli_input_errors_exit_2_with_one_line(tmp_path, args: list[str], fragment: str) -> None:
    res = runner.invoke(app, ["inference", "--duration-hours", "1", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], res.output


def test_cli_training_json() -> None:
    res = runner.invoke(app, ["training", "--work-hours", "50", "--monte-carlo", "200", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["estimate"]["spot_hours"] > 50 and data["estimate"]["on_demand_hours"] == 50
    assert data["job"]["notice_s"] == 120  # the AWS notice window, from the catalog


def test_cli_training_error_is_one_line() -> None:
    res = runner.invoke(app, ["training", "--gpus", "0", "--monte-carlo", "0"])
    assert res.exit_code == 2 and res.output.startswith("error: SpotJob: gpus=0")
