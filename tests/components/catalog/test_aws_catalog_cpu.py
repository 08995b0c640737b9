"""CPU-only EC2 rows in the catalog (system nodes): priceable, invisible to GPU lookups."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.catalog import DATA_DIR, Catalog, CatalogError, load_catalog


def test_system_instance_types_are_priced_in_every_aws_region():
    cat = load_catalog()
    for name in ("m6i.large", "m6i.xlarge"):
        it = cat.instance_type("aws", name)
        assert it is not None and it.gpus == 0 and it.accelerator == "" and it.service == "ec2", name
        for region in cat.region_names("aws"):
            assert cat.price("aws", name, region) is not None, f"{name} has no on-demand price in {region}"
    assert cat.price("aws", "m6i.xlarge", "us-east-1") == pytest.approx(2 * cat.price("aws", "m6i.large", "us-east-1"))


def test_gpu_lookups_never_return_cpu_rows():
    cat = load_catalog()
    assert all(o.instance_type.gpus > 0 for o in cat.find_offerings("aws"))
    assert all(o.instance_type.gpus > 0 for o in cat.find_offerings())
    assert cat.gpu_counts("aws", "H100") == [8]
    assert "" not in {o.instance_type.accelerator for o in cat.find_offerings("aws", region="us-east-1")}


def test_cpu_offerings_are_found_only_when_asked_for_with_zero_gpus():
    cat = load_catalog()
    names = {o.instance_type.name for o in cat.find_offerings("aws", count=0, region="eu-west-1")}
    assert names == {"m6i.large", "m6i.xlarge"}


def _catalog_with_row(tmp_path: Path, row: str) -> tuple[Path, int]:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "aws_instance_types.csv"
    text = path.read_text()
    path.write_text(text + row + "\n")
    return data, text.count("\n") + 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("c7i.large,ec2,,1,2,4,0,x86_64", "on a row with no accelerator"),
        ("ml.c7i.large,sagemaker,,0,2,4,0,x86_64", "column 'accelerator' is blank"),
        ("x9.large,ec2,L4,0,2,4,0,x86_64", "column 'gpus' = 0 must be at least 1"),
    ],
)
def test_accelerator_and_gpu_count_must_agree(tmp_path, row, message):
    data, line = _catalog_with_row(tmp_path, row)
    with pytest.raises(CatalogError) as exc:
        Catalog(data)
    assert f"aws_instance_types.csv:{line}:" in str(exc.value)
    assert message in str(exc.value)
