"""FeatureStore on AWS under the mock runtime: Feast on DynamoDB + S3 (+ Athena), and SageMaker Feature Store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.cluster import KubernetesCluster
from components.feature_store import FeatureStore
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run, validate_all_core_objects

TOKEN = "gpuplane:index:FeatureStore"
GOLDEN = Path(__file__).parent / "golden"
VIEWS = ("user-last-items", "user-activity", "item-popularity")


def _run(store_args: dict[str, Any], with_cluster: bool = True) -> ProgramRun:
    def program() -> None:
        extra: dict[str, Any] = {}
        if with_cluster:
            extra = {"cluster": KubernetesCluster("ml", {"cloud": "aws", "region": "us-east-1", "tags": {"team": "ml"}}), "image": "img:1"}
        store = FeatureStore("fs", {**extra, **store_args})  # type: ignore[typeddict-item]
        pulumi.export("yaml", store.feature_store_yaml)
        pulumi.export("resources", store.resources)
        pulumi.export("offline", store.offline_uri)

    return run(program)


@pytest.fixture(scope="module")
def athena() -> ProgramRun:
    return _run({"target": "aws", "offline_store": "athena", "deletion_protection": True})


def test_feast_on_aws_creates_encrypted_tables_bucket_glue_athena_and_an_irsa_role(athena: ProgramRun) -> None:
    component = athena.one(TOKEN, "fs")
    cloud_children = sorted(c.name for c in athena.children_of(component.urn) if c.type.startswith("aws:"))
    assert cloud_children == sorted(
        ["fs-key", "fs-bucket", "fs-bucket-sse", "fs-bucket-public-block", "fs-bucket-ownership", "fs-bucket-versioning",
         "fs-glue-db", "fs-athena", "fs-feast-role", "fs-feast-role-policy"]
        + [f"fs-{v}-table" for v in VIEWS] + [f"fs-{v}-glue" for v in VIEWS]
    )
    assert athena.one("aws:kms/key:Key", "fs-key").inputs["enableKeyRotation"] is True
    assert validate_all_core_objects(athena) >= 6


def test_dynamodb_tables_are_named_as_feast_names_them_and_encrypted_with_the_key(athena: ProgramRun) -> None:
    table = athena.one("aws:dynamodb/table:Table", "fs-user-last-items-table").inputs
    assert table["name"] == "fs.user_last_items" and table["hashKey"] == "entity_id"
    assert table["attributes"] == [{"name": "entity_id", "type": "S"}] and table["billingMode"] == "PAY_PER_REQUEST"
    assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:fs-key"}
    assert table["pointInTimeRecovery"]["enabled"] is True and table["deletionProtectionEnabled"] is True
    assert table["tags"] == {"team": "ml"}


def test_glue_tables_follow_the_feature_definition_and_athena_results_are_encrypted(athena: ProgramRun) -> None:
    glue = athena.one("aws:glue/catalogTable:CatalogTable", "fs-user-last-items-glue").inputs
    assert glue["databaseName"] == "fs" and glue["storageDescriptor"]["location"] == "s3://fs-bucket/features/user_last_items/"
    assert [(c["name"], c["type"]) for c in glue["storageDescriptor"]["columns"]] == [
        ("user_id", "bigint"), ("event_timestamp", "timestamp"), ("created_timestamp", "timestamp"), ("last_items", "array<bigint>")
    ]
    workgroup = athena.one("aws:athena/workgroup:Workgroup", "fs-athena").inputs["configuration"]
    assert workgroup["enforceWorkgroupConfiguration"] is True
    assert workgroup["resultConfiguration"]["encryptionConfiguration"]["encryptionOption"] == "SSE_KMS"


def test_irsa_policy_names_exactly_the_stores_tables_bucket_key_and_workgroup(athena: ProgramRun) -> None:
    policy = json.loads(athena.one("aws:iam/rolePolicy:RolePolicy", "fs-feast-role-policy").inputs["policy"])
    by_service = {s["Action"][0].split(":")[0]: s["Resource"] for s in policy["Statement"]}
    assert by_service["dynamodb"] == sorted(f"arn:aws:dynamodb:us-east-1:123456789012:fs.{v}" for v in ("item_popularity", "user_activity", "user_last_items"))
    assert by_service["athena"] == "arn:aws:athena:us-east-1:123456789012:workgroup/fs-feast"
    assert by_service["kms"] == "arn:aws:kms:us-east-1:123456789012:fs-key"
    trust = json.loads(athena.one("aws:iam/role:Role", "fs-feast-role").inputs["assumeRolePolicy"])
    assert "system:serviceaccount:fs:fs-feast" in json.dumps(trust)


def test_cronjob_reads_athena_sources_and_the_yaml_matches_the_golden_file(athena: ProgramRun) -> None:
    cron = athena.one("kubernetes:batch/v1:CronJob", "fs-materialize").inputs["spec"]
    container = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-4:] == ["--source", "athena", "--source-option", "database=fs"]
    assert {"name": "AWS_REGION", "value": "us-east-1"} in container["env"]
    assert athena.outputs["yaml"] == (GOLDEN / "aws-athena.yaml").read_text().replace("fs-bucket-1a2b", "fs-bucket")
    assert athena.outputs["resources"]["dynamodb_tables"] == ["fs.user_last_items", "fs.user_activity", "fs.item_popularity"]


def test_given_kms_key_and_bucket_are_used_instead_of_created() -> None:
    r = _run({"target": "aws", "offline_bucket": "s3://acme-features", "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/abc"})
    created = {c.name for c in r.children_of(r.one(TOKEN, "fs").urn)}
    assert "fs-key" not in created and "fs-bucket" not in created
    table = r.one("aws:dynamodb/table:Table", "fs-user-activity-table").inputs
    assert table["serverSideEncryption"]["kmsKeyArn"] == "arn:aws:kms:us-east-1:111122223333:key/abc"
    assert "path: s3://acme-features/feast/registry.pb" in r.outputs["yaml"]
    assert not r.by_type("aws:glue/catalogDatabase:CatalogDatabase")  # offline_store file: no Athena


def test_sagemaker_feature_groups_are_online_and_offline_and_encrypted() -> None:
    r = _run({"target": "aws", "engine": "managed", "region": "us-east-1"}, with_cluster=False)
    assert not [x for x in r.resources if x.type.startswith("kubernetes:")]
    group = r.one("aws:sagemaker/featureGroup:FeatureGroup", "fs-user-last-items-group").inputs
    assert group["featureGroupName"] == "fs-user_last_items".replace("_", "-")
    assert (group["recordIdentifierFeatureName"], group["eventTimeFeatureName"]) == ("user_id", "event_timestamp")
    assert group["featureDefinitions"] == [
        {"featureName": "user_id", "featureType": "Integral"},
        {"featureName": "event_timestamp", "featureType": "String"},
        {"featureName": "last_items", "featureType": "String"},
    ]
    assert group["onlineStoreConfig"]["enableOnlineStore"] is True
    assert group["onlineStoreConfig"]["securityConfig"]["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:fs-key"
    offline = group["offlineStoreConfig"]
    assert offline["s3StorageConfig"]["s3Uri"] == "s3://fs-bucket/sagemaker" and offline["tableFormat"] == "Iceberg"
    assert group["roleArn"].endswith(":role/fs-sagemaker-role")
    trust = json.loads(r.one("aws:iam/role:Role", "fs-sagemaker-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert r.outputs["yaml"] is None and r.outputs["offline"] == "s3://fs-bucket/sagemaker"
    assert r.outputs["resources"]["feature_groups"] == ["fs-user-last-items", "fs-user-activity", "fs-item-popularity"]


ENUMS = {  # (resource type, input path) -> botocore (service, shape): as strict as the AWS API
    ("aws:dynamodb/table:Table", ("billingMode",)): ("dynamodb", "BillingMode"),
    ("aws:dynamodb/table:Table", ("attributes", 0, "type")): ("dynamodb", "ScalarAttributeType"),
    ("aws:sagemaker/featureGroup:FeatureGroup", ("onlineStoreConfig", "storageType")): ("sagemaker", "StorageType"),
    ("aws:sagemaker/featureGroup:FeatureGroup", ("offlineStoreConfig", "tableFormat")): ("sagemaker", "TableFormat"),
    ("aws:athena/workgroup:Workgroup", ("configuration", "resultConfiguration", "encryptionConfiguration", "encryptionOption")): ("athena", "EncryptionOption"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", ("rule", "objectOwnership")): ("s3", "ObjectOwnership"),
    ("aws:s3/bucketVersioning:BucketVersioning", ("versioningConfiguration", "status")): ("s3", "BucketVersioningStatus"),
}


def test_enum_values_are_ones_the_aws_api_accepts(athena: ProgramRun) -> None:
    from gpuplane.engine.aws_enums import allowed_values

    managed = _run({"target": "aws", "engine": "managed", "region": "us-east-1"}, with_cluster=False)
    checked = 0
    for r in [*athena.resources, *managed.resources]:
        for (typ, path), (service, shape) in ENUMS.items():
            if r.type != typ:
                continue
            value: Any = r.inputs
            for step in path:
                value = value[step]
            assert value in allowed_values(service, shape), f"{r.urn}: {'.'.join(map(str, path))}={value!r}"
            checked += 1
        if r.type == "aws:sagemaker/featureGroup:FeatureGroup":
            for definition in r.inputs["featureDefinitions"]:
                assert definition["featureType"] in allowed_values("sagemaker", "FeatureType"), r.urn
    assert checked >= 12
