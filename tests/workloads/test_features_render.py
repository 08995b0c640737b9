"""feature_store.yaml rendering: every target is accepted by Feast's own config model; errors are complete."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

from workloads.features.__main__ import main
from workloads.features.render import (
    TARGETS,
    TEMPLATES_DIR,
    FeatureStoreYamlError,
    param_specs,
    render_feature_store_yaml,
)

CASES = {
    "local": ("local", {}),
    "kubernetes": ("kubernetes", {"registry": "s3://fs-bucket/feast/registry.pb", "redis_host": "fs-redis.features"}),
    "kubernetes-gcs-tls": (
        "kubernetes",
        {"registry": "gs://fs-bucket/registry.pb", "redis_host": "10.0.0.3", "redis_port": 6380, "redis_ssl": True},
    ),
    "aws-athena": (
        "aws",
        {"registry": "s3://fs/registry.pb", "region": "eu-west-1", "athena_s3_staging_location": "s3://fs/athena"},
    ),
    "aws-file": ("aws", {"registry": "s3://fs/registry.pb", "region": "us-east-1", "offline_store": "file"}),
    "gcp-datastore": ("gcp", {"registry": "gs://fs/registry.pb", "project_id": "my-project-1"}),
    "gcp-bigtable": (
        "gcp",
        {
            "registry": "gs://fs/registry.pb",
            "project_id": "my-project-1",
            "online_store": "bigtable",
            "bigtable_instance": "feast-online",
        },
    ),
}


CONFLICTING_PROTO = "pulumi.runtime.proto.status_pb2"
REPO_CONFIG_CHECK = """
import json, sys, yaml
from feast.repo_config import RepoConfig
config = RepoConfig(**yaml.safe_load(sys.stdin.read()))
print(json.dumps([config.project, config.registry.path]))
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_yaml_is_accepted_by_feasts_repo_config(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    target, params = CASES[case]
    if target == "gcp" and importlib.util.find_spec("google.cloud.bigquery") is None:
        pytest.skip("Feast's BigQuery config needs google-cloud-bigquery, which this environment lacks")
    monkeypatch.setenv("FEAST_USAGE", "False")
    monkeypatch.setenv("FEAST_REDIS_PASSWORD", "s3cret")
    text = render_feature_store_yaml(target, **params)
    if target == "gcp" and CONFLICTING_PROTO in sys.modules:
        # Feast's BigQuery store imports google.rpc.status_pb2, which cannot share a process with
        # the Pulumi provider SDK's copy of the same proto (both define google.rpc.Status); another
        # test in this worker loaded the latter, so Feast's config model runs in a fresh process.
        checked = subprocess.run([sys.executable, "-c", REPO_CONFIG_CHECK], input=os.path.expandvars(text), text=True,
                                 capture_output=True, timeout=120, env={**os.environ, "FEAST_USAGE": "False"})
        assert checked.returncode == 0, checked.stderr[-2000:]
        project, registry = json.loads(checked.stdout.splitlines()[-1])
        assert (project, registry) == ("gpuplane", params.get("registry", "data/registry.db"))
        assert yaml.safe_load(text)["online_store"]["type"] == params.get("online_store", "datastore")
        return
    from feast.repo_config import RepoConfig

    config = RepoConfig(**yaml.safe_load(os.path.expandvars(text)))  # what feast's load_repo_config does
    assert config.project == "gpuplane"
    assert config.registry.path == params.get("registry", "data/registry.db")
    expected_online = {"local": "sqlite", "kubernetes": "redis", "aws": "dynamodb"}.get(
        target, params.get("online_store", "datastore")
    )
    assert yaml.safe_load(text)["online_store"]["type"] == expected_online
    if target == "kubernetes":
        assert "password=s3cret" in config.online_store.connection_string
        assert "s3cret" not in text and "${FEAST_REDIS_PASSWORD}" in text


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(FeatureStoreYamlError) as err:
        render_feature_store_yaml("aws", registry="gs://wrong/registry.pb", colour="blue")
    message = str(err.value)
    for fragment in (
        "parameter 'colour' is not used by target 'aws'",
        "parameter 'region' is required for target 'aws'",
        "registry='gs://wrong/registry.pb' does not match",
        "athena_s3_staging_location is required when offline_store='athena'",
    ):
        assert fragment in message


@pytest.mark.parametrize(
    ("target", "params", "fragment"),
    [
        ("mars", {}, "target='mars' is unknown"),
        ("gcp", {"registry": "gs://b/r", "project_id": "p-12345", "online_store": "bigtable"}, "bigtable_instance is required"),
        ("local", {"project": "my-project"}, "project='my-project' does not match"),  # Feast+SQLite reject '-'
        ("kubernetes", {"registry": "s3://b/r", "redis_host": "r", "redis_ssl": "yes"}, "redis_ssl='yes' is not one of"),
        ("kubernetes", {"registry": "s3://b/r", "redis_host": "r\nevil: 1"}, "redis_host="),
    ],
)
def test_invalid_parameters_are_rejected_with_the_value_and_the_rule(target: str, params: dict, fragment: str) -> None:
    with pytest.raises(FeatureStoreYamlError, match=r"feature_store\.yaml") as err:
        render_feature_store_yaml(target, **params)
    assert fragment in str(err.value)


def test_every_parameter_is_documented_and_has_a_default_or_is_required() -> None:
    for target in TARGETS:
        for name, spec in param_specs()[target].items():
            assert spec.get("doc"), f"{target}.{name} has no doc"
            assert ("default" in spec) != bool(spec.get("required")), f"{target}.{name}: default xor required"


def test_cli_renders_with_typed_values(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["render", "--target", "kubernetes", "--set", "registry=s3://b/r.pb", "--set", "redis_host=redis"]
    assert main([*args, "--set", "redis_port=6380", "--set", "redis_ssl=true"]) == 0
    assert '"redis:6380,password=${FEAST_REDIS_PASSWORD},ssl=true"' in capsys.readouterr().out
    assert main(["render", "--target", "aws"]) == 2
    assert "parameter 'registry' is required" in capsys.readouterr().err


def test_feast_repository_builds_every_view_of_the_shared_definition() -> None:
    """feature_views.yaml is the one definition: features.py exposes exactly its views and fields."""
    from workloads.features.repo import features

    spec = yaml.safe_load((TEMPLATES_DIR / "feature_views.yaml").read_text())
    views = {v.name: v for v in features.OBJECTS if type(v).__name__ == "FeatureView"}
    assert list(views) == list(spec["feature_views"])
    for name, view in spec["feature_views"].items():
        assert [f.name for f in views[name].features] == list(view["features"])
        assert views[name].entities == [view["entity"]]
        assert getattr(features, name) is views[name]


def test_views_can_read_athena_or_bigquery_tables_over_the_bucket_layout() -> None:
    from workloads.features.repo.features import objects, table_path

    athena = {o.name: o for o in objects("s3://fs/features", "athena", {"database": "gpuplane_features"})}
    source = athena["user_activity"].batch_source
    assert (type(source).__name__, source.table, source.database) == ("AthenaSource", "user_activity", "gpuplane_features")
    bigquery = {o.name: o for o in objects("gs://fs/features", "bigquery", {"dataset": "acme-ml.features"})}
    assert bigquery["item_popularity"].batch_source.table == "acme-ml.features.item_popularity"
    assert table_path("s3://fs/features", "user_activity", "athena") == "s3://fs/features/user_activity/data.parquet"
    assert table_path("data", "user_activity") == "data/user_activity.parquet"
