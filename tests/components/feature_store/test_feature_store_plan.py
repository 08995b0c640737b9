"""plan_feature_store: a pure planner, table-tested (no Pulumi runtime needed for most cases)."""

from __future__ import annotations

from typing import Any

import pytest

from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError
from components.feature_store import load_feature_views, plan_feature_store


class _FakeCluster(KubernetesCluster):
    """A KubernetesCluster with plan-time facts only (the planner reads nothing else)."""

    def __init__(self, cloud: str, region: str | None = None, project: str | None = None) -> None:  # no super(): nothing registers
        zones = {"us-east-1": ("us-east-1a", "us-east-1b"), "us-central1": ("us-central1-a",)}.get(region or "", ())
        self.facts = ClusterFacts(cloud=cloud, name="ml", region=region, zones=zones, autoscaler="none", tags={"team": "ml"})  # type: ignore[arg-type]
        self.project = project


EKS, GKE, EXISTING = _FakeCluster("aws", "us-east-1"), _FakeCluster("gcp", "us-central1", "acme-ml"), _FakeCluster("kubernetes")


def _plan(**args: Any):
    return plan_feature_store("fs", args)  # type: ignore[arg-type]


def _problems(**args: Any) -> list[str]:
    with pytest.raises(ComponentInputError) as err:
        _plan(**args)
    assert str(err.value).startswith("FeatureStore 'fs' has ")
    return [f"{p.path}: {p.message} To fix: {p.fix}" for p in err.value.problems]


@pytest.mark.parametrize(
    ("args", "implementation", "online", "offline", "cloud"),
    [
        ({"target": "local"}, "feast-local", "sqlite", "file", "local"),
        ({"target": "kubernetes", "cluster": EKS, "image": "i"}, "feast-kubernetes", "redis", "file", "aws"),
        ({"target": "kubernetes", "cluster": EXISTING, "image": "i", "offline_bucket": "gs://b-1"}, "feast-kubernetes", "redis", "file", "kubernetes"),
        ({"target": "aws", "cluster": EKS, "image": "i"}, "feast-aws", "dynamodb", "file", "aws"),
        ({"target": "aws", "cluster": EKS, "image": "i", "offline_store": "athena"}, "feast-aws", "dynamodb", "athena", "aws"),
        ({"target": "gcp", "cluster": GKE, "image": "i"}, "feast-gcp", "datastore", "bigquery", "gcp"),
        ({"target": "gcp", "cluster": GKE, "image": "i", "online_store": "bigtable"}, "feast-gcp", "bigtable", "bigquery", "gcp"),
        ({"target": "aws", "engine": "managed", "region": "us-east-1"}, "sagemaker-feature-store", "sagemaker", "s3", "aws"),
        ({"target": "gcp", "engine": "managed", "region": "us-central1", "gcp_project": "acme-ml"}, "vertex-feature-store", "bigtable", "bigquery", "gcp"),
    ],
)
def test_each_target_and_engine_picks_its_implementation_and_default_stores(args, implementation, online, offline, cloud) -> None:
    plan = _plan(**args)
    assert (plan.implementation, plan.online_store, plan.offline_store, plan.cloud) == (implementation, online, offline, cloud)
    summary = plan.summary()
    assert summary["encrypted"] is True and summary["public"] is False and summary["implementation"] == implementation
    assert summary["online"] == (f"vertex-{online}" if implementation == "vertex-feature-store" else online)
    assert [v.name for v in plan.views] == ["user_last_items", "user_activity", "item_popularity"]


def test_defaults_come_from_the_cluster_and_the_name() -> None:
    plan = _plan(target="aws", cluster=EKS, image="i")
    assert (plan.region, plan.project, plan.namespace, plan.server_replicas) == ("us-east-1", "fs", "fs", 2)
    assert plan.tags == {"team": "ml"} and plan.bucket is not None and plan.bucket.create and plan.bucket.scheme == "s3"
    assert plan.online_endpoint == "http://fs-feature-server.fs.svc.cluster.local:6566"
    gcp = _plan(target="gcp", cluster=GKE, image="i")
    assert gcp.gcp_project == "acme-ml" and gcp.bucket.scheme == "gs"  # type: ignore[union-attr]
    assert _plan(target="aws", engine="managed", region="us-east-1").online_endpoint is None
    assert _plan(target="local").online_endpoint == "http://127.0.0.1:6566"


def test_every_problem_is_reported_in_one_error_before_anything_exists() -> None:
    problems = _problems(
        target="aws", cluster=GKE, region="mars-1", project="bad-name", server_replicas=0,
        materialize_schedule="hourly", redis={"endpoint": "x:1"}, colour="blue",
    )
    text = "\n".join(problems)
    for fragment in (
        "colour: is not an argument of FeatureStore.",
        "redis: has no effect here: it applies to target kubernetes.",
        "project: is not a valid Feast project name.",
        "cluster: is a gcp cluster; target aws needs an EKS cluster (IRSA)",
        "image: is required",
        "region: is not a aws region in the catalog.",
        "server_replicas: must be a whole number of at least 1.",
        "materialize_schedule: is not a five-field cron schedule.",
    ):
        assert fragment in text, f"missing {fragment!r} in:\n{text}"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"target": "kubernetes", "engine": "managed", "cluster": EKS, "image": "i"},
         "engine: feast-kubernetes does not support managed-online-store: a generic cluster has no managed feature store"),
        ({"target": "local", "engine": "managed"}, "feast-local does not support managed-online-store"),
        ({"target": "kubernetes", "cluster": EXISTING, "image": "i"}, "offline_bucket: is required on an existing cluster"),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "offline_bucket": "gs://b-1"}, "offline_bucket: is on gs://, but this store's cloud uses s3://."),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "offline_bucket": "s3://b/prefix/x"}, "offline_bucket: is not a bucket URL."),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "redis": {"endpoint": "cache.internal:6380"}},
         "redis.password: is required with redis.endpoint"),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "redis": {"endpoint": "nohost"}}, "redis.endpoint: is not host:port."),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "redis": {"endpoint": "r:6379", "password": "p", "storage_gib": 5}},
         "redis.storage_gib: applies only to the in-cluster Redis."),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "redis": {"storage_gib": 0}}, "redis.storage_gib: must be a whole number"),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "redis": {"size": 3}}, "redis.size: is not an argument of RedisArgs."),
        ({"target": "aws", "cluster": EKS, "image": "i", "region": "us-west-2"}, "region: differs from the cluster's region us-east-1"),
        ({"target": "aws", "cluster": EKS, "image": "i", "online_store": "redis"}, "online_store: is not available for feast-aws."),
        ({"target": "gcp", "cluster": GKE, "image": "i", "offline_store": "file"}, "offline_store: is not available for feast-gcp."),
        ({"target": "gcp", "engine": "managed", "region": "us-central1"}, "gcp_project: is required for gcp"),
        ({"target": "gcp", "cluster": GKE, "image": "i", "online_store": "bigtable", "online_min_nodes": 4, "online_max_nodes": 2},
         "online_max_nodes: needs 1 <= online_min_nodes <= online_max_nodes"),
        ({"target": "gcp", "cluster": GKE, "image": "i", "online_min_nodes": 2}, "online_min_nodes: applies only to bigtable online stores"),
        ({"target": "local", "region": "us-east-1"}, "region: has no effect here: it applies to targets aws and gcp."),
        ({"target": "aws", "engine": "managed", "region": "us-east-1", "image": "i"}, "image: has no effect here"),
        ({"target": "kubernetes", "image": "i"}, "cluster: feast-kubernetes runs the Feast feature server"),
        ({"target": "kubernetes", "cluster": EKS, "image": "i", "namespace": "Feature_Store"}, "namespace: is not a valid Kubernetes namespace name."),
        ({"target": "moon"}, "target: is not a feature store target."),
    ],
)
def test_invalid_arguments_are_rejected_with_the_path_and_the_fix(args: dict[str, Any], fragment: str) -> None:
    problems = _problems(**args)
    assert any(fragment in p for p in problems), problems
    assert all("To fix: " in p and not p.endswith("To fix: ") for p in problems)


def test_sagemaker_group_names_must_fit_64_characters() -> None:
    with pytest.raises(ComponentInputError, match="longer than 64 characters"):
        plan_feature_store("x" * 50, {"target": "aws", "engine": "managed", "region": "us-east-1"})


def test_redis_plan_for_in_cluster_and_given_endpoints() -> None:
    inside = _plan(target="kubernetes", cluster=EKS, image="i").redis
    assert inside is not None and (inside.create, inside.host, inside.port, inside.generate_password) == (True, "fs-redis.fs.svc.cluster.local", 6379, True)
    given = _plan(target="kubernetes", cluster=EKS, image="i", redis={"endpoint": "cache.internal:6380", "password": "s", "tls": True}).redis
    assert given is not None and (given.create, given.host, given.port, given.tls, given.generate_password) == (False, "cache.internal", 6380, True, False)


def test_the_feature_definition_is_read_from_the_workload_data_file() -> None:
    views = {v.name: v for v in load_feature_views()}
    assert views["user_last_items"].join_key == "user_id"
    assert [(f.name, f.dtype) for f in views["user_last_items"].features] == [("last_items", "int64_list")]
    assert views["item_popularity"].entity == "item"
