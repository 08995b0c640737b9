"""The feature store workload: one Feast feature definition, its batch transform and its readers.

Modules (none imports Feast at import time; ``import feast`` costs seconds and must stay off a
model server's cold start):

- ``transform``: event log -> point-in-time feature tables (parquet).
- ``render``: ``feature_store.yaml`` per target (local, kubernetes, aws, gcp) from the jinja2
  templates in ``templates/``, which the FeatureStore Pulumi component renders too.
- ``templates/feature_views.yaml``: the feature definition as data (entities user and item;
  views user_last_items, user_activity, item_popularity), read by ``repo/features.py`` (the
  Feast repository, which adds the feature services) and by the FeatureStore component.
- ``pipeline``: ``materialize_local`` (transform, ``feast apply``, materialise into SQLite),
  ``historical_features`` (training), ``online_features`` (in-process reads).
- ``server``: runs ``feast serve`` as a subprocess on loopback.
- ``client``: ``FeastHistoryClient``, an httpx client of the feature server's
  ``/get-online-features`` returning each user's last items, with an optional TTL cache.

Command line: ``python -m workloads.features materialize --data DIR --repo-dir DIR``.
"""
