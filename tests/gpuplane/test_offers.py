"""`gpuplane offers`: fitting offerings ranked by $/h, with notice window and distance."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from components.catalog import load_catalog
from gpuplane.offers import OffersError, find_offers, offers_command

CAT = load_catalog()


def test_eight_h100_on_spot_cheapest_first_with_notice():
    offers = find_offers(CAT, "H100", 8, spot=True)
    assert offers and all(o.accelerator == "H100" and o.nodes * o.gpus_per_node == 8 for o in offers)
    prices = [round(o.usd_per_hour, 2) for o in offers]
    assert prices == sorted(prices)
    p5 = next(o for o in offers if o.instance_type == "p5.48xlarge" and o.region == "us-east-1")
    assert p5.usd_per_hour == pytest.approx(21.1543) and p5.notice_seconds == 120 and p5.nodes == 1
    assert {o.notice_seconds for o in offers if o.cloud == "gcp"} == {30}
    assert all(o.service != "sagemaker" for o in offers)


def test_region_globs_near_region_and_clouds():
    offers = find_offers(CAT, "L4", 1, regions=["us-*"], near_region="us-central1", clouds=["gcp"])
    assert offers and all(o.region.startswith("us-") and o.cloud == "gcp" for o in offers)
    assert next(o for o in offers if o.region == "us-central1").distance_km == pytest.approx(0.0)
    keys = [(round(o.usd_per_hour, 2), o.distance_km) for o in offers]
    assert keys == sorted(keys)  # by $/h to the cent, then nearest first
    assert all(o.notice_seconds is None for o in offers)  # on-demand


def test_gpu_prefix_matches_every_size_and_bad_arguments_fail_clearly():
    assert {o.accelerator for o in find_offers(CAT, "a100", 8)} == {"A100-40GB", "A100-80GB"}
    with pytest.raises(OffersError, match="--gpu 'B300' is not in the catalog"):
        find_offers(CAT, "B300", 1)
    with pytest.raises(OffersError, match="--near-region 'mars-1'"):
        find_offers(CAT, "L4", 1, near_region="mars-1")
    with pytest.raises(OffersError, match="--count 0"):
        find_offers(CAT, "L4", 0)
    assert {(o.gpus_per_node, o.nodes) for o in find_offers(CAT, "H100", 3)} == {(1, 3)}  # only 1-GPU nodes make 3


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("offers")(offers_command)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_command_json_and_table():
    runner = CliRunner()
    result = runner.invoke(
        _app(),
        [
            "offers",
            "--gpu",
            "H100",
            "--count",
            "8",
            "--spot",
            "--regions",
            "us-*,europe-*",
            "--near-region",
            "us-central1",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["capacity"] == "spot" and data["offers"][0]["usdPerHour"] <= data["offers"][-1]["usdPerHour"]
    assert {"noticeSeconds", "distanceKm", "usdPerGpuHour"} <= set(data["offers"][0])
    table = runner.invoke(_app(), ["offers", "--gpu", "L4", "--near-region", "us-east-1"])
    assert table.exit_code == 0 and "km to us-east-1" in table.output and "g6.xlarge" in table.output
    bad = runner.invoke(_app(), ["offers", "--gpu", "nope"])
    assert bad.exit_code == 2
