"""Catalog prices against a public price file: drift report, refresh with source and date, age check.

The drift test reads the SkyPilot catalog subset kept beside the repository
(``../shared/reference-data/prices/``, or ``$GPUPLANE_REFERENCE_DATA/prices``) and fails listing
every catalog row that drifted from it; the other tests use small files written here, so they run
on a clean clone."""

from __future__ import annotations

import csv
import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.catalog import DATA_DIR, Catalog
from gpuplane.catalog_prices import app, apply_refresh, drift, read_price_file, stale_rows


def _reference_prices() -> Path | None:
    roots = [os.environ.get("GPUPLANE_REFERENCE_DATA"), Path(__file__).resolve().parents[2].parent / "shared" / "reference-data"]
    for root in roots:
        if root and (Path(root) / "prices" / "aws-vms.csv").is_file():
            return Path(root) / "prices"
    return None


REF = _reference_prices()
AWS_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch\n"
GCP_HEADER = "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n"


@pytest.mark.skipif(REF is None, reason="reference price files not found (../shared/reference-data/prices or $GPUPLANE_REFERENCE_DATA)")
def test_catalog_has_no_drift_from_the_reference_price_files():
    assert REF is not None
    prices = read_price_file(REF / "aws-vms.csv")
    read_price_file(REF / "gcp-vms.csv", into=prices)
    read_price_file(REF / "gcp-accelerators.csv", into=prices)
    changes = drift(prices, tolerance=0.005)
    assert not changes, "catalog rows drifted from the reference prices (run `gpuplane catalog refresh`):\n" + "\n".join(
        f"{'/'.join(c.key)}: catalog {c.old:g}, file {c.new:g} ({c.rel:+.1%})" for c in changes)
    # and the June 2025 cut is in: p5.48xlarge us-east-1 on demand is 55.04, not the 98.32 of before
    assert Catalog(DATA_DIR).price("aws", "p5.48xlarge", "us-east-1") == pytest.approx(55.04)


def test_every_price_row_names_a_url_or_a_dataset_with_its_commit_never_a_document_outside_the_repo():
    cat = Catalog(DATA_DIR)
    sources = [r.source for r in cat.price_rows.values()] + [s.source for s in cat.serverless.values()]
    bad = [s for s in sources if "REFERENCE.md" in s or not ("https://" in s or "@" in s or ".google.com/" in s)]
    assert not bad, bad[:5]


def test_spot_is_not_a_fixed_fraction_of_on_demand():
    cat = Catalog(DATA_DIR)
    ratios = {round(o.price("spot") / o.price("on_demand"), 2)  # type: ignore[operator]
              for o in cat.offerings.values() if o.cloud == "aws" and o.price("spot")}
    assert len(ratios) > 20, ratios  # per region and zone, from the dataset: ratios spread 0.1 .. 1.0


def _data(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _rows(path: Path) -> dict[tuple[str, ...], dict[str, str]]:
    return {(r["instance_type"], r["region"], r["capacity"]): r for r in csv.DictReader(path.open())}


def test_refresh_writes_the_file_figure_source_and_date_and_spot_is_the_zone_median(tmp_path):
    data = _data(tmp_path)
    price_file = tmp_path / "vms.csv"
    price_file.write_text(AWS_HEADER + "".join(
        f'p5.48xlarge,H100,8.0,192.0,2048.0,"{{}}",50.0,{spot},us-east-1,use1-az{i},x86_64\n' for i, spot in enumerate([9.0, 12.0, 30.0])))
    result = apply_refresh(read_price_file(price_file), "test dataset @abc123", "2026-11-30", data)
    rows = _rows(data / "aws_prices.csv")
    od, spot = rows[("p5.48xlarge", "us-east-1", "on_demand")], rows[("p5.48xlarge", "us-east-1", "spot")]
    assert (od["usd_per_hour"], od["fetched_at"]) == ("50", "2026-11-30") and od["source"].startswith("test dataset @abc123")
    assert spot["usd_per_hour"] == "12" and "median of 3 zones (min 9, max 30)" in spot["source"]
    assert {c.key for c in result.changes} == {("aws", "p5.48xlarge", "us-east-1", "on_demand"), ("aws", "p5.48xlarge", "us-east-1", "spot")}
    untouched = rows[("p5.48xlarge", "us-east-2", "on_demand")]
    assert untouched == _rows(DATA_DIR / "aws_prices.csv")[("p5.48xlarge", "us-east-2", "on_demand")]
    assert Catalog(data).price("aws", "p5.48xlarge", "us-east-1", "spot") == 12.0


def test_refresh_skips_spot_above_on_demand_and_suspect_gcp_gpu_rows(tmp_path):
    data = _data(tmp_path)
    aws = tmp_path / "aws.csv"
    aws.write_text(AWS_HEADER + 'g6.xlarge,L4,1.0,4.0,16.0,"{}",0.80,0.95,us-east-1,use1-az1,x86_64\n')
    gcp = tmp_path / "gcp.csv"
    gcp.write_text(GCP_HEADER + ",,,H100,1,{},us-central1,us-central1-a,4.2,3.0\n,,,H100,1,{},europe-west4,europe-west4-a,12.7,2.9\n")
    prices = read_price_file(aws)
    read_price_file(gcp, into=prices)
    result = apply_refresh(prices, "test", "2026-11-30", data)
    assert "above the row's on-demand" in result.skipped[("aws", "g6.xlarge", "us-east-1", "spot")]
    assert "another SKU" in result.skipped[("gcp", "accelerator", "H100", "us-central1", "on_demand")]
    cat = Catalog(data)
    assert cat.price_rows[("gcp", "accelerator", "H100", "europe-west4", "on_demand")].usd_per_hour == 12.7
    assert cat.price_rows[("gcp", "accelerator", "H100", "us-central1", "on_demand")] == \
        Catalog(DATA_DIR).price_rows[("gcp", "accelerator", "H100", "us-central1", "on_demand")]


def test_refresh_from_an_aws_bulk_price_list(tmp_path):
    data = _data(tmp_path)
    bulk = tmp_path / "index.csv"
    bulk.write_text(
        '"FormatVersion","v1.0"\n"Disclaimer","x"\n"Publication Date","2026-11-30T00:00:00Z"\n"Version","1"\n"OfferCode","AmazonEC2"\n'
        '"SKU","TermType","PricePerUnit","Unit","Instance Type","Region Code","Tenancy","Operating System","Pre Installed S/W","CapacityStatus"\n'
        '"A","OnDemand","0.7","Hrs","g6.xlarge","us-east-1","Shared","Linux","NA","Used"\n'
        '"B","OnDemand","9.9","Hrs","g6.xlarge","us-east-1","Shared","Windows","NA","Used"\n'
        '"C","Reserved","0.4","Hrs","g6.xlarge","us-east-1","Shared","Linux","NA","Used"\n')
    apply_refresh(read_price_file(bulk), "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.csv", "2026-11-30", data)
    assert Catalog(data).price("aws", "g6.xlarge", "us-east-1") == 0.7


def test_cli_refresh_drift_and_check(tmp_path):
    data = _data(tmp_path)
    price_file = tmp_path / "vms.csv"
    price_file.write_text(AWS_HEADER + 'g5.xlarge,A10G,1.0,4.0,16.0,"{}",2.0,,us-east-1,use1-az1,x86_64\n')
    runner = CliRunner()
    r = runner.invoke(app, ["drift", "--from", str(price_file), "--catalog-dir", str(data)])
    assert r.exit_code == 1 and "aws/g5.xlarge/us-east-1/on_demand" in r.output
    r = runner.invoke(app, ["refresh", "--from", str(price_file), "--catalog-dir", str(data), "--source", "x", "--date", "yesterday"])
    assert r.exit_code == 2 and "--date = 'yesterday'" in r.output
    r = runner.invoke(app, ["refresh", "--from", str(price_file), "--catalog-dir", str(data), "--source", "https://example.test/p.csv", "--date", "2026-12-01"])
    assert r.exit_code == 0 and "updated 1 rows (1 with a new figure)" in r.output, r.output
    assert runner.invoke(app, ["drift", "--from", str(price_file), "--catalog-dir", str(data)]).exit_code == 0
    days = (date.today() - date(2026, 12, 1)).days
    r = runner.invoke(app, ["check", "--max-age-days", str(days + 1), "--catalog-dir", str(data)])
    assert "aws/g5.xlarge/us-east-1/on_demand" not in r.output  # just refreshed
    old = stale_rows(days, data_dir=data)
    assert old and all(age > days for _, _, age in old)
    r = runner.invoke(app, ["check", "--max-age-days", "100000", "--catalog-dir", str(data)])
    assert r.exit_code == 0 and "0 price rows older than 100000 days" in r.output
