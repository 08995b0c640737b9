"""FeatureStore: online and offline stores for gpuplane's one feature definition (Feast or managed).

Public names of the capability. ``spec.py`` and ``planner.py``: args, plans, declared features,
``plan_feature_store``; backends ``kubernetes.py`` (with ``feast.py``, ``s3.py``, ``gcs.py``),
``aws.py`` (Feast on AWS, SageMaker Feature Store), ``gcp.py`` (Feast on GCP, Vertex AI Feature
Store); ``component.py``: the ComponentResource.
"""

from components.feature_store.component import FeatureStore
from components.feature_store.planner import plan_feature_store
from components.feature_store.spec import (
    FEATURE_SERVER_PORT,
    IMPLEMENTATIONS,
    TEMPLATES_DIR,
    TYPE_TOKEN,
    FeatureStoreArgs,
    FeatureStorePlan,
    FeatureViewSpec,
    RedisArgs,
    feature_support,
    load_feature_views,
    render_feature_store_yaml,
)

__all__ = [
    "FEATURE_SERVER_PORT",
    "IMPLEMENTATIONS",
    "TEMPLATES_DIR",
    "TYPE_TOKEN",
    "FeatureStore",
    "FeatureStoreArgs",
    "FeatureStorePlan",
    "FeatureViewSpec",
    "RedisArgs",
    "feature_support",
    "load_feature_views",
    "plan_feature_store",
    "render_feature_store_yaml",
]
