"""The one feature definition of gpuplane: entities, sources and feature views (Feast 0.67).

This file is the Feast repository. It imports only Feast, so it works in both roles:

- imported as ``workloads.features.repo.features`` by the pipeline, which calls
  ``FeatureStore.apply(OBJECTS)`` (the Python form of ``feast apply``);
- copied into a repository directory next to a rendered ``feature_store.yaml``, where
  ``feast apply`` / ``feast materialize`` / ``feast serve`` find it as any Feast repo file.

Sources are parquet files written by ``workloads.features.transform`` under ``data/`` relative
to the repository directory (Feast resolves relative file paths against the repo path), one
row per entity per snapshot at which a value changed. Because decayed windows get explicit zero
rows, no feature view needs a TTL (``ttl=0``: the latest row at or before a timestamp is the
value), which keeps point-in-time joins exact and online reads never expired.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Int64

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A shopper; user_id of the event log.",
)
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="A catalogue item; item_id of the event log (1..M, 0 is padding).",
)


def _source(table: str) -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=f"data/{table}.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Snapshots of {table}, written by workloads.features.transform.",
    )


NO_TTL = timedelta(seconds=0)

user_last_items = FeatureView(
    name="user_last_items",
    entities=[user],
    ttl=NO_TTL,
    schema=[
        Field(
            name="last_items",
            dtype=Array(Int64),
            description="The user's most recent item ids (all event types), oldest first, at most history_length.",
        )
    ],
    source=_source("user_last_items"),
    online=True,
    description="A user's recent items: the next-item model's input.",
)
user_activity = FeatureView(
    name="user_activity",
    entities=[user],
    ttl=NO_TTL,
    schema=[
        Field(name="events_24h", dtype=Int64, description="Events in the 24 hours before the snapshot."),
        Field(name="events_7d", dtype=Int64, description="Events in the 7 days before the snapshot."),
        Field(name="purchases_7d", dtype=Int64, description="Purchases in the 7 days before the snapshot."),
        Field(name="distinct_items", dtype=Int64, description="Distinct items the user ever touched."),
    ],
    source=_source("user_activity"),
    online=True,
    description="How active a user is.",
)
item_popularity = FeatureView(
    name="item_popularity",
    entities=[item],
    ttl=NO_TTL,
    schema=[
        Field(name="events_7d", dtype=Int64, description="Events on the item in the 7 days before the snapshot."),
        Field(name="purchases_7d", dtype=Int64, description="Purchases of the item in the 7 days before the snapshot."),
    ],
    source=_source("item_popularity"),
    online=True,
    description="How popular an item is.",
)

next_item_model = FeatureService(
    name="next_item_model",
    features=[user_last_items],
    description="What the next-item model server reads online for a user_id.",
)
training = FeatureService(
    name="training",
    features=[user_last_items, user_activity],
    description="Point-in-time user features for training labels (user_id, event_timestamp).",
)

OBJECTS = [user, item, user_last_items, user_activity, item_popularity, next_item_model, training]
"""Everything ``feast apply`` registers, in dependency order."""
