"""FeatureStore on Google Cloud under the mock runtime: Feast on Datastore/Bigtable + BigQuery, and Vertex AI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi

from components.cluster import KubernetesCluster
from components.feature_store import FeatureStore
from gpuplane.engine.runtime import ProgramRun
from tests.helpers import run, validate_all_core_objects

TOKEN = "gpuplane:index:FeatureStore"
GOLDEN = Path(__file__).parent / "golden"
PROJECT = "acme-ml"


def _run(store_args: dict[str, Any], with_cluster: bool = True) -> ProgramRun:
    def program() -> None:
        extra: dict[str, Any] = {}
        if with_cluster:
            extra = {"cluster": KubernetesCluster("ml", {"cloud": "gcp", "region": "us-central1", "project": PROJECT}), "image": "img:1"}
        store = FeatureStore("fs", {**extra, **store_args})  # type: ignore[typeddict-item]
        pulumi.export("yaml", store.feature_store_yaml)
        pulumi.export("resources", store.resources)
        pulumi.export("offline", store.offline_uri)

    return run(program)


def test_feast_on_gcp_with_datastore_creates_private_storage_bigquery_and_an_identity() -> None:
    r = _run({"target": "gcp"})
    component = r.one(TOKEN, "fs")
    gcp_children = sorted(c.name for c in r.children_of(component.urn) if c.type.startswith("gcp:"))
    assert gcp_children == sorted(
        ["fs-bucket", "fs-dataset", "fs-datastore", "fs-feast-gsa", "fs-feast-wi", "fs-feast-bucket", "fs-feast-dataset",
         "fs-feast-bigquery-jobuser", "fs-feast-datastore-user"]
        + [f"fs-{v}-bq" for v in ("user-last-items", "user-activity", "item-popularity")]
    )
    bucket = r.one("gcp:storage/bucket:Bucket", "fs-bucket").inputs
    assert (bucket["publicAccessPrevention"], bucket["uniformBucketLevelAccess"], bucket["location"]) == ("enforced", True, "US-CENTRAL1")
    database = r.one("gcp:firestore/database:Database", "fs-datastore").inputs
    assert (database["name"], database["type"], database["locationId"]) == ("fs-features", "DATASTORE_MODE", "us-central1")
    table = r.one("gcp:bigquery/table:Table", "fs-user-last-items-bq").inputs
    external = table["externalDataConfiguration"]
    assert external["sourceFormat"] == "PARQUET" and external["sourceUris"] == ["gs://fs-bucket/features/user_last_items/*.parquet"]
    schema = json.loads(external["schema"])
    assert [(f["name"], f["type"], f["mode"]) for f in schema][-1] == ("last_items", "INT64", "REPEATED")
    assert r.one("gcp:bigquery/datasetIamMember:DatasetIamMember", "fs-feast-dataset").inputs["role"] == "roles/bigquery.dataEditor"
    assert "iam.gke.io/gcp-service-account" in r.one("kubernetes:core/v1:ServiceAccount", "fs-sa").inputs["metadata"]["annotations"]
    assert r.outputs["yaml"] == (GOLDEN / "gcp-datastore.yaml").read_text().replace("fs-bucket-1a2b", "fs-bucket")
    assert r.outputs["offline"] == "bq://acme-ml.fs"
    command = r.one("kubernetes:batch/v1:CronJob", "fs-materialize").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-4:] == ["--source", "bigquery", "--source-option", "dataset=acme-ml.fs"]
    assert validate_all_core_objects(r) >= 6


def test_feast_on_gcp_with_bigtable_autoscales_an_ssd_instance() -> None:
    r = _run({"target": "gcp", "online_store": "bigtable", "online_min_nodes": 2, "online_max_nodes": 5, "deletion_protection": True})
    instance = r.one("gcp:bigtable/instance:Instance", "fs-bigtable").inputs
    assert instance["name"] == "fs-feast" and instance["deletionProtection"] is True
    cluster = instance["clusters"][0]
    assert (cluster["zone"], cluster["storageType"]) == ("us-central1-a", "SSD")
    assert cluster["autoscalingConfig"] == {"minNodes": 2, "maxNodes": 5, "cpuTarget": 60}
    assert r.one("gcp:projects/iAMMember:IAMMember", "fs-feast-bigtable-user").inputs["role"] == "roles/bigtable.user"
    assert r.outputs["yaml"] == (GOLDEN / "gcp-bigtable.yaml").read_text().replace("fs-bucket-1a2b", "fs-bucket")


def test_vertex_feature_store_has_a_group_per_view_its_features_and_synced_online_views() -> None:
    r = _run({"target": "gcp", "engine": "managed", "region": "us-central1", "gcp_project": PROJECT,
              "materialize_schedule": "30 2 * * *", "kms_key_name": "projects/acme-ml/locations/us-central1/keyRings/r/cryptoKeys/k"},
             with_cluster=False)
    assert not [x for x in r.resources if x.type.startswith("kubernetes:")]
    online = r.one("gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore", "fs-online").inputs
    assert online["name"] == "fs_online" and online["bigtable"]["autoScaling"] == {"minNodeCount": 1, "maxNodeCount": 3, "cpuUtilizationTarget": 60}
    assert online["encryptionSpec"]["kmsKeyName"].endswith("/cryptoKeys/k")
    group = r.one("gcp:vertex/aiFeatureGroup:AiFeatureGroup", "fs-user-activity-group").inputs
    assert group["name"] == "fs_user_activity" and group["region"] == "us-central1"
    assert group["bigQuery"] == {"bigQuerySource": {"inputUri": "bq://acme-ml.fs.user_activity_vertex"}, "entityIdColumns": ["user_id"]}
    features = sorted(x.inputs["name"] for x in r.by_type("gcp:vertex/aiFeatureGroupFeature:AiFeatureGroupFeature") if x.name.startswith("fs-user-activity-"))
    assert features == ["distinct_items", "events_24h", "events_7d", "purchases_7d"]
    view = r.one("gcp:vertex/aiFeatureOnlineStoreFeatureview:AiFeatureOnlineStoreFeatureview", "fs-user-activity-view").inputs
    assert view["syncConfig"] == {"cron": "30 2 * * *"} and view["featureOnlineStore"] == "fs_online"
    assert view["featureRegistrySource"]["featureGroups"][0]["featureIds"] == ["events_24h", "events_7d", "purchases_7d", "distinct_items"]
    bq_view = r.one("gcp:bigquery/table:Table", "fs-user-activity-vertex-bq").inputs["view"]
    assert bq_view["query"] == "SELECT *, event_timestamp AS feature_timestamp FROM `acme-ml.fs.user_activity`" and bq_view["useLegacySql"] is False
    assert r.outputs["yaml"] is None and r.outputs["resources"]["feature_groups"] == ["fs_user_last_items", "fs_user_activity", "fs_item_popularity"]


def test_vertex_optimized_serving_is_private_behind_private_service_connect() -> None:
    r = _run({"target": "gcp", "engine": "managed", "region": "us-central1", "gcp_project": PROJECT, "online_store": "optimized"}, with_cluster=False)
    online = r.one("gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore", "fs-online").inputs
    assert online["optimized"] == {} and "bigtable" not in online
    psc = online["dedicatedServingEndpoint"]["privateServiceConnectConfig"]
    assert psc == {"enablePrivateServiceConnect": True, "projectAllowlists": [PROJECT]}
