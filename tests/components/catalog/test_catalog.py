"""The GPU catalog: every shipped file loads, bad rows are rejected with file and line, lookups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.catalog import DATA_DIR, Catalog, CatalogError, load_catalog


def test_every_shipped_file_loads_and_cross_checks():
    cat = Catalog(DATA_DIR)
    assert {"H100", "H200", "A100-40GB", "A100-80GB", "L4", "L40S", "A10G"} <= set(cat.accelerators)
    for family in ("p4d", "p4de", "p5", "p5e", "p5en", "g5", "g6", "g6e"):
        assert any(name.startswith(family + ".") for (c, name) in cat.instance_types if c == "aws"), family
    for family in ("a2-highgpu", "a2-ultragpu", "a3-highgpu", "g2-standard"):
        assert any(name.startswith(family) for (c, name) in cat.instance_types if c == "gcp"), family
    for (cloud, *_), row in cat.price_rows.items():
        assert row.source and row.fetched_at, (cloud, row)
    for offering in cat.offerings.values():
        spot, od = offering.price("spot"), offering.price("on_demand")
        assert od is not None and od > 0
        assert spot is None or spot <= od


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _append(path: Path, line: str) -> int:
    text = path.read_text()
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n")
    return text.count("\n") + 1


BAD_ROWS = [
    ("aws_prices.csv", "g5.xlarge,us-east-1,spot,0.5,x,2025-05-01", "duplicate key"),
    ("aws_prices.csv", "ml.g5.xlarge,us-east-1,spot,9.9,x,2025-05-01", "is above its on-demand price"),
    ("aws_prices.csv", "g6e.xlarge,us-east-1,capacity_block,700.0,x,2025-05-01", "placeholder price"),
    ("aws_prices.csv", "g6e.12xlarge,us-east-1,capacity_block,-1,x,2025-05-01", "must be positive"),
    ("aws_prices.csv", "g6e.48xlarge,us-east-1,capacity_block,,x,2025-05-01", "is blank"),
    ("aws_instance_types.csv", "x9.large,ec2,B300,8,96,1024,0,x86_64", "unknown accelerator 'B300'"),
    ("gcp_prices.csv", "accelerator,H100,us-central1,spot,99.0,x,2025-05-01", "duplicate key"),
    ("aws_offerings.csv", "g5.xlarge,us-east-9,us-east-9a", "unknown aws region"),
]


@pytest.mark.parametrize(("file", "row", "message"), BAD_ROWS, ids=[m for _, _, m in BAD_ROWS])
def test_bad_row_is_rejected_naming_file_and_line(tmp_path, file, row, message):
    data = _copy(tmp_path)
    line = _append(data / file, row)
    with pytest.raises(CatalogError) as exc:
        Catalog(data)
    assert f"{file}:{line}:" in str(exc.value)
    assert message in str(exc.value)


def test_offerings_of_an_accelerator_and_count_by_cloud_region_and_spot():
    cat = load_catalog()
    offers = cat.find_offerings("aws", "H100", 8, "us-east-1", "spot")
    assert [o.instance_type.name for o in offers] == ["p5.48xlarge"]
    assert offers[0].price("spot") < offers[0].price("on_demand")
    assert cat.find_offerings("aws", "H100", 8, "eu-central-1") == []
    assert cat.gpu_counts("aws", "H100") == [8]
    assert cat.gpu_counts("gcp", "A100-40GB") == [1, 2, 4, 8]


def test_gcp_price_is_host_plus_gpus():
    cat = load_catalog()
    host = cat.price_rows[("gcp", "machine", "a2-highgpu-8g", "us-central1", "on_demand")].usd_per_hour
    gpu = cat.price_rows[("gcp", "accelerator", "A100-40GB", "us-central1", "on_demand")].usd_per_hour
    assert cat.price("gcp", "a2-highgpu-8g", "us-central1") == pytest.approx(host + 8 * gpu)


def test_accelerator_facts_and_notice_windows():
    cat = load_catalog()
    assert cat.gpu_memory_gib("H200") == 141
    assert cat.gpu_peak_tflops("H100") == 989
    assert "1g.10gb" in cat.accelerator("H100").mig_profiles
    assert not cat.accelerator("L4").supports_mig
    assert cat.notice_seconds("aws") == 120 and cat.notice_seconds("gcp") == 30
    with pytest.raises(KeyError, match="known: "):
        cat.accelerator("H900")


def test_region_distance_is_symmetric_and_plausible():
    cat = load_catalog()
    a, b = cat.region("aws", "us-east-1"), cat.region("gcp", "us-east4")
    assert a is not None and b is not None
    assert a.distance_km(b) == pytest.approx(b.distance_km(a))
    assert a.distance_km(b) < 100  # both in northern Virginia
    assert cat.region("aws", "eu-west-1").distance_km(a) > 5000
