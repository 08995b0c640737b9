"""FeatureStore on Kubernetes (and the local target) under the mock runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError
from components.feature_store import FeatureStore
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run, validate_all_core_objects

TOKEN = "gpuplane:index:FeatureStore"
GOLDEN = Path(__file__).parent / "golden"


def _run(cluster_args: dict[str, Any], store_args: dict[str, Any]) -> ProgramRun:
    def program() -> None:
        cluster = KubernetesCluster("ml", cluster_args)
        store = FeatureStore("fs", {"cluster": cluster, "image": "ghcr.io/acme/gpuplane:1.0", **store_args})  # type: ignore[typeddict-item]
        pulumi.export("yaml", store.feature_store_yaml)
        pulumi.export("endpoint", store.online_endpoint)
        pulumi.export("registry", store.registry_uri)

    return run(program)


def _children(r: ProgramRun) -> list[tuple[str, str]]:
    component = r.one(TOKEN, "fs")
    return sorted((c.type, c.name) for c in r.children_of(component.urn))


@pytest.fixture(scope="module")
def existing() -> ProgramRun:
    return _run({"cloud": "existing"}, {"target": "kubernetes", "offline_bucket": "s3://acme-features", "credentials_secret": "minio-creds",
                                        "redis": {"password": "given-secret", "storage_class": "encrypted-ssd"}})


def test_existing_cluster_store_creates_redis_and_the_feast_runtime_only(existing: ProgramRun) -> None:
    assert _children(existing) == [
        ("kubernetes:apps/v1:Deployment", "fs-server"),
        ("kubernetes:apps/v1:StatefulSet", "fs-redis"),
        ("kubernetes:batch/v1:CronJob", "fs-materialize"),
        ("kubernetes:core/v1:ConfigMap", "fs-config"),
        ("kubernetes:core/v1:Namespace", "fs-ns"),
        ("kubernetes:core/v1:Secret", "fs-redis-auth"),
        ("kubernetes:core/v1:Service", "fs-redis-svc"),
        ("kubernetes:core/v1:Service", "fs-server-svc"),
        ("kubernetes:core/v1:ServiceAccount", "fs-sa"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "fs-redis-netpol"),
        ("kubernetes:policy/v1:PodDisruptionBudget", "fs-server-pdb"),
    ]
    provider = existing.one("pulumi:providers:kubernetes").urn
    for child in existing.children_of(existing.one(TOKEN, "fs").urn):
        assert child.provider and child.provider.startswith(provider), f"{child.urn} does not use the cluster's provider"
    assert validate_all_core_objects(existing) >= 10


def test_feature_server_is_private_non_root_and_reads_the_password_from_the_secret(existing: ProgramRun) -> None:
    service = existing.one("kubernetes:core/v1:Service", "fs-server-svc").inputs
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 6566
    deployment = existing.one("kubernetes:apps/v1:Deployment", "fs-server").inputs
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/acme/gpuplane:1.0"
    assert container["command"][:5] == ["feast", "-c", "/etc/feast", "serve", "--host"]
    assert {"name": "FEAST_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "fs-redis-auth", "key": "password"}}} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "minio-creds"}}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "fs-feast" and deployment["spec"]["replicas"] == 2
    assert len(deployment["spec"]["template"]["metadata"]["annotations"]["gpuplane.dev/config-sha256"]) == 64
    for r in existing.resources:  # the password lives in the Secret only
        if r.name != "fs-redis-auth":
            assert "given-secret" not in json.dumps(r.inputs), f"{r.urn} carries the Redis password"


def test_redis_is_persistent_password_protected_and_reachable_only_from_the_store(existing: ProgramRun) -> None:
    sts = existing.one("kubernetes:apps/v1:StatefulSet", "fs-redis").inputs
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--requirepass", "$(FEAST_REDIS_PASSWORD)"] and "--appendonly" in container["args"]
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "10Gi" and claim["storageClassName"] == "encrypted-ssd"
    assert existing.one("kubernetes:core/v1:Secret", "fs-redis-auth").inputs["stringData"] == {"password": "given-secret"}
    policy = existing.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "fs-redis-netpol").inputs["spec"]
    assert policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {"gpuplane.dev/feature-store": "fs"}


def test_cronjob_materializes_from_the_bucket_with_the_rendered_yaml(existing: ProgramRun) -> None:
    cron = existing.one("kubernetes:batch/v1:CronJob", "fs-materialize").inputs["spec"]
    assert cron["schedule"] == "0 * * * *" and cron["concurrencyPolicy"] == "Forbid"
    command = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == [
        "python", "-m", "workloads.features", "materialize", "--data", "s3://acme-features/events", "--repo-dir", "/tmp/repo",
        "--feature-store-yaml", "/etc/feast/feature_store.yaml", "--offline-root", "s3://acme-features/features",
    ]
    config = existing.one("kubernetes:core/v1:ConfigMap", "fs-config").inputs["data"]["feature_store.yaml"]
    assert config == existing.outputs["yaml"]
    assert existing.outputs["endpoint"] == "http://fs-feature-server.fs.svc.cluster.local:6566"
    assert existing.outputs["registry"] == "s3://acme-features/feast/registry.pb"


def test_on_eks_the_store_creates_an_encrypted_private_bucket_and_an_irsa_role() -> None:
    r = _run({"cloud": "aws", "region": "us-east-1"}, {"target": "kubernetes"})
    names = {name for _, name in _children(r)}
    assert {"fs-key", "fs-bucket", "fs-bucket-sse", "fs-bucket-public-block", "fs-feast-role", "fs-redis-password"} <= names
    sse = r.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "fs-bucket-sse").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    block = r.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "fs-bucket-public-block").inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    policy = json.loads(r.one("aws:iam/rolePolicy:RolePolicy", "fs-feast-role-policy").inputs["policy"])
    resources = [s["Resource"] for s in policy["Statement"]]
    assert "arn:aws:s3:::fs-bucket" in resources and "*" not in json.dumps(resources).replace("/*", "")
    sa = r.one("kubernetes:core/v1:ServiceAccount", "fs-sa").inputs
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/fs-feast-role")
    assert r.outputs["yaml"] == (GOLDEN / "kubernetes-eks.yaml").read_text().replace("fs-bucket-1a2b", "fs-bucket")
    assert r.one("random:index/randomPassword:RandomPassword", "fs-redis-password").inputs["special"] is False


def test_on_gke_the_store_creates_a_gcs_bucket_and_a_workload_identity() -> None:
    r = _run({"cloud": "gcp", "region": "us-central1", "project": "acme-ml"}, {"target": "kubernetes", "server_replicas": 1})
    bucket = r.one("gcp:storage/bucket:Bucket", "fs-bucket").inputs
    assert bucket["publicAccessPrevention"] == "enforced" and bucket["uniformBucketLevelAccess"] is True
    assert r.one("gcp:storage/bucketIAMMember:BucketIAMMember", "fs-feast-bucket").inputs["role"] == "roles/storage.objectAdmin"
    assert "iam.gke.io/gcp-service-account" in r.one("kubernetes:core/v1:ServiceAccount", "fs-sa").inputs["metadata"]["annotations"]
    assert not r.by_type("kubernetes:policy/v1:PodDisruptionBudget")  # one replica: no budget to keep


def test_local_target_creates_nothing_and_outputs_the_local_yaml() -> None:
    def program() -> None:
        store = FeatureStore("local", {"target": "local", "project": "gpuplane"})
        pulumi.export("yaml", store.feature_store_yaml)
        pulumi.export("endpoint", store.online_endpoint)

    r = run(program)
    assert [x.type for x in r.resources] == [TOKEN]
    assert r.outputs["yaml"] == (GOLDEN / "local.yaml").read_text()
    assert r.outputs["endpoint"] == "http://127.0.0.1:6566"
    assert r.one(TOKEN).inputs["gpuplane"]["implementation"] == "feast-local"


def test_invalid_args_register_nothing() -> None:
    created: list[str] = []

    def program() -> None:
        cluster = KubernetesCluster("ml", {"cloud": "existing"})
        created.append("cluster")
        FeatureStore("fs", {"target": "kubernetes", "cluster": cluster, "image": "i"})

    with pytest.raises(ComponentInputError, match="offline_bucket = None: is required on an existing cluster"):
        run(program)
    assert created == ["cluster"]
