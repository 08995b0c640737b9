"""The Feast repository of gpuplane: entities, sources, feature views and services (Feast 0.67).

The definition itself is data, ``feature_views.yaml`` (beside this file in a repository
directory, or in ``workloads/features/templates/``), which the FeatureStore Pulumi component
reads too; this file turns it into Feast objects. It imports only Feast, PyYAML and the
standard library, so it works in both roles:

- imported as ``workloads.features.repo.features`` by the pipeline, which calls
  ``FeatureStore.apply(objects(offline_root))`` (the Python form of ``feast apply``);
- copied with the YAML into a repository directory next to a rendered ``feature_store.yaml``,
  where ``feast apply`` / ``feast serve`` find the module-level objects as in any Feast repo.

Sources are the parquet tables written by ``workloads.features.transform``: by default
``data/<view>.parquet`` relative to the repository (Feast resolves relative paths against the
repo path); ``objects(offline_root)`` re-roots them, e.g. on ``s3://bucket/features``. Decayed
windows get explicit zero rows, so no view needs a TTL (``ttl=0``: the latest row at or before
a timestamp is the value) and online reads never expire.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float64, Int64, String

SPEC_FILE = "feature_views.yaml"
DTYPES: dict[str, Any] = {"int64": Int64, "float64": Float64, "string": String, "int64_list": Array(Int64)}
VALUE_TYPES = {"int64": ValueType.INT64, "string": ValueType.STRING}
NO_TTL = timedelta(seconds=0)


def _spec_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / SPEC_FILE, here.parent / "templates" / SPEC_FILE):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{SPEC_FILE} is neither beside {__file__} nor in ../templates/")


SPEC: dict[str, Any] = yaml.safe_load(_spec_path().read_text())

ENTITIES: dict[str, Entity] = {
    name: Entity(
        name=name,
        join_keys=[e["join_key"]],
        value_type=VALUE_TYPES[e["dtype"]],
        description=e["description"],
    )
    for name, e in SPEC["entities"].items()
}


SOURCES = ("file", "athena", "bigquery")
"""Offline source kinds: parquet files (local or on a bucket), Athena over Glue tables on S3,
BigQuery (external tables over parquet on GCS). The FeatureStore component creates the Glue
and BigQuery tables over ``{offline_root}/{view}/``; ``table_path`` gives the layout."""


def table_path(offline_root: str, name: str, source: str = "file") -> str:
    """Where the transform writes view ``name``: a file for file sources, a prefix of parquet
    files for Athena and BigQuery tables (which are defined over a folder)."""
    root = offline_root.rstrip("/")
    return f"{root}/{name}.parquet" if source == "file" else f"{root}/{name}/data.parquet"


def _source(name: str, offline_root: str, source: str, options: dict[str, str]) -> Any:
    common = dict(
        name=f"{name}_source",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Snapshots of {name}, written by workloads.features.transform.",
    )
    if source == "file":
        return FileSource(path=table_path(offline_root, name), **common)
    if source == "athena":
        from feast.infra.offline_stores.contrib.athena_offline_store.athena_source import AthenaSource

        return AthenaSource(table=name, database=options["database"], data_source=options.get("data_source", "AwsDataCatalog"), **common)
    if source == "bigquery":
        from feast.infra.offline_stores.bigquery_source import BigQuerySource

        return BigQuerySource(table=f"{options['dataset']}.{name}", **common)  # dataset = "project.dataset"
    raise ValueError(f"source={source!r} is not one of {SOURCES}")


def feature_view(
    name: str, offline_root: str = "data", source: str = "file", options: dict[str, str] | None = None
) -> FeatureView:
    """The feature view ``name`` of the spec, reading its table under ``offline_root``."""
    view = SPEC["feature_views"][name]
    return FeatureView(
        name=name,
        entities=[ENTITIES[view["entity"]]],
        ttl=NO_TTL,
        schema=[
            Field(name=feature, dtype=DTYPES[f["dtype"]], description=f["description"])
            for feature, f in view["features"].items()
        ],
        source=_source(name, offline_root, source, options or {}),
        online=True,
        description=view["description"],
    )


def objects(offline_root: str = "data", source: str = "file", options: dict[str, str] | None = None) -> list[Any]:
    """Everything ``feast apply`` registers, in dependency order, with sources under ``offline_root``.

    ``source``/``options``: ``file``; ``athena`` with ``database`` (and ``data_source``);
    ``bigquery`` with ``dataset`` as ``project.dataset``.
    """
    views = {name: feature_view(name, offline_root, source, options) for name in SPEC["feature_views"]}
    services = [
        FeatureService(
            name="next_item_model",
            features=[views["user_last_items"]],
            description="What the next-item model server reads online for a user_id.",
        ),
        FeatureService(
            name="training",
            features=[views["user_last_items"], views["user_activity"]],
            description="Point-in-time user features for training labels (user_id, event_timestamp).",
        ),
    ]
    return [*ENTITIES.values(), *views.values(), *services]


# Module-level objects, so that `feast apply` run in a repository directory finds them.
OBJECTS = objects()
user, item = ENTITIES["user"], ENTITIES["item"]
user_last_items, user_activity, item_popularity = (o for o in OBJECTS if isinstance(o, FeatureView))
next_item_model, training = (o for o in OBJECTS if isinstance(o, FeatureService))
