"""The catalog rows the cost model added (control planes, system nodes, storage, feature-store
tiers) load through the catalog's own strict loader, carry a source and date, and are found."""

from __future__ import annotations

import csv
import shutil

import pytest

from components.catalog import DATA_DIR, Catalog, CatalogError, load_catalog


def test_every_cloud_region_has_a_control_plane_fee_and_storage_rate():
    cat = load_catalog()
    for cloud, service, store in (("aws", "eks", "s3"), ("gcp", "gke", "gcs")):
        for region in cat.region_names(cloud):
            fee = cat.serverless_rate(cloud, service, "cluster-hour", region)
            assert fee is not None and fee.usd == pytest.approx(0.10), f"{cloud} {region}: no {service} fee"
            assert cat.serverless_rate(cloud, store, "gib-month", region) is not None, (
                f"{cloud} {region}: no {store} rate"
            )
    for region in cat.region_names("gcp"):
        assert cat.serverless_rate("gcp", "system-node", "e2-standard-4-hour", region) is not None


def test_feature_store_tiers_are_marked_approximate_with_source_and_date():
    cat = load_catalog()
    rows = [
        r
        for r in cat.serverless.values()
        if r.service in ("bigtable", "vertex-feature-store", "dynamodb", "sagemaker-feature-store")
    ]
    assert {r.service for r in rows} == {"bigtable", "vertex-feature-store", "dynamodb", "sagemaker-feature-store"}
    for r in rows:
        assert "approximate" in r.source and r.fetched_at, r


def test_loader_rejects_a_placeholder_in_the_new_rows(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "serverless_prices.csv"
    with path.open("a", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerow(
            ["gcp", "gke", "cluster-hour-placeholder", "us-central1", "999.0", "bad row", "2025-05-01"]
        )
    with pytest.raises(CatalogError, match="placeholder price"):
        Catalog(data)
