"""The model loop's policies: registry storage encrypted and private, pipeline training on spot.

A compliant resource (the props the ModelRegistry component really emits, read from a mock run),
then one mutation per case with the exact message.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies import cost, security, storage
from policies.framework import config_for
from tests.policies.fixtures import component, mutate, view

RDS = "aws:rds/instance:Instance"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"


@pytest.fixture(scope="module")
def emitted() -> dict[str, dict[str, Any]]:
    """The database props ModelRegistry creates on aws and gcp (mock runtime)."""
    from tests.components.model_pipeline.test_model_loop import _loop

    aws = _loop("aws", endpoint=False).one(RDS, "models-db").inputs
    gcp = _loop("gcp", endpoint=False).one(SQL, "models-db").inputs
    return {"aws": dict(aws), "gcp": dict(gcp)}


def _stack(rule: Any, views: list[Any], cfg: dict[str, Any] | None = None) -> list[str]:
    return [m for _, m in rule.check(views, config_for(rule, cfg))]


def test_the_emitted_registry_databases_pass_every_storage_policy(emitted: dict[str, dict[str, Any]]) -> None:
    views = [view(RDS, emitted["aws"], "db"), view(SQL, emitted["gcp"], "sql")]
    assert _stack(storage.STORAGE_ENCRYPTED, views, {"requireCustomerManagedKeys": True}) == [
        "gcp:sql/databaseInstance 'sql' has no customer-managed key (requireCustomerManagedKeys). Set encryptionKeyName."
    ]
    assert _stack(storage.STORAGE_ENCRYPTED, views) == []
    assert _stack(storage.STORAGE_NOT_PUBLIC, views) == []


@pytest.mark.parametrize(
    ("cloud", "path", "value", "rule", "message"),
    [
        ("aws", "storageEncrypted", False, storage.STORAGE_ENCRYPTED,
         "aws:rds/instance 'db' stores its database unencrypted. Set storageEncrypted: true (with kmsKeyId for a customer-managed key)."),
        ("aws", "publiclyAccessible", True, storage.STORAGE_NOT_PUBLIC,
         "aws:rds/instance 'db' is publicly accessible. Set publiclyAccessible: false and reach it from the cluster's subnets."),
        ("gcp", "settings.ipConfiguration.ipv4Enabled", True, storage.STORAGE_NOT_PUBLIC,
         "gcp:sql/databaseInstance 'db' has a public IPv4 address. Set settings.ipConfiguration.ipv4Enabled: false with a privateNetwork."),
        ("gcp", "settings.ipConfiguration.authorizedNetworks", [{"value": "0.0.0.0/0"}], storage.STORAGE_NOT_PUBLIC,
         "gcp:sql/databaseInstance 'db' admits authorized networks ['0.0.0.0/0']. Remove them; connect over the private IP."),
    ],
)
def test_one_mutation_of_a_registry_database_is_one_violation(emitted: dict[str, dict[str, Any]], cloud: str, path: str, value: Any, rule: Any, message: str) -> None:
    bad = mutate(emitted[cloud], path, value)
    assert _stack(rule, [view(RDS if cloud == "aws" else SQL, bad, "db")]) == [message]


def test_production_registry_databases_need_deletion_protection(emitted: dict[str, dict[str, Any]]) -> None:
    cfg = config_for(security.DELETION_PROTECTION, {"production": True})
    assert security.DELETION_PROTECTION.check(view(RDS, emitted["aws"], "db"), cfg) == [
        "aws:rds/instance 'db' is a production database without deletion protection. Set deletionProtection: true."
    ]
    assert security.DELETION_PROTECTION.check(view(RDS, {**emitted["aws"], "deletionProtection": True}, "db"), cfg) == []
    assert security.DELETION_PROTECTION.check(view(SQL, {**emitted["gcp"], "deletionProtection": True}, "sql"), cfg) == []


def _pipeline(order: list[str] | None) -> Any:
    training = None if order is None else {"team": "recs", "queue": "train", "capacityFallback": order}
    return component("ModelPipeline", {"implementation": "argo-aws", "training": training}, "loop")


def test_a_pipeline_that_trains_on_demand_first_violates_training_on_spot() -> None:
    cfg = config_for(cost.TRAINING_ON_SPOT, None)
    assert cost.TRAINING_ON_SPOT.check(_pipeline(["spot", "on_demand"]), cfg) == []
    assert cost.TRAINING_ON_SPOT.check(_pipeline(None), cfg) == []  # the local loop trains as local processes
    assert cost.TRAINING_ON_SPOT.check(_pipeline(["on_demand"]), cfg) == [
        "ModelPipeline 'loop' trains on on_demand capacity first (its training cluster's capacityFallback ['on_demand']). Give the pipeline a SpotTrainingCluster that tries spot first."
    ]


def test_registry_databases_are_priced_from_catalog_rows_hand_computed(emitted: dict[str, dict[str, Any]]) -> None:
    from components.catalog import load_catalog
    from policies.costmodel import Usage, price_resources

    report = price_resources([view(RDS, emitted["aws"], "db"), view(SQL, emitted["gcp"], "sql")], Usage(), load_catalog())
    got = {i.name: i.hourly.expected for i in report.items if i.hourly is not None}
    assert got["db"] == pytest.approx(0.016 + 20 * 0.115 / 730)  # db.t4g.micro + 20 GiB gp3
    assert got["sql"] == pytest.approx(0.0413 + 3.75 * 0.007 + 20 * 0.17 / 730)  # db-custom-1-3840 + 20 GiB SSD
    multi = price_resources([view(RDS, {**emitted["aws"], "multiAz": True}, "db")], Usage(), load_catalog())
    assert multi.items[0].hourly is not None and multi.items[0].hourly.expected == pytest.approx(2 * got["db"])
    odd = price_resources([view(SQL, mutate(emitted["gcp"], "settings.tier", "db-f1-micro"), "sql")], Usage(), load_catalog())
    assert odd.items[0].hourly is None and "db-f1-micro" in odd.items[0].basis  # unknown stays unknown, never zero
