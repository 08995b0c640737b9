"""ModelRegistry: an MLflow tracking server and model registry (local, any cluster, AWS, GCP).

Public names of the capability. ``spec.py``: args, plan, ``plan_model_registry``; backends
``mlflow.py``, ``aws.py``, ``gcp.py``; ``component.py``: the ComponentResource.
"""

from components.model_registry.component import ModelRegistry
from components.model_registry.spec import (
    FEATURES,
    TYPE_TOKEN,
    DatabaseArgs,
    ModelRegistryArgs,
    ModelRegistryPlan,
    feature_support,
    plan_model_registry,
)

__all__ = [
    "FEATURES",
    "TYPE_TOKEN",
    "DatabaseArgs",
    "ModelRegistry",
    "ModelRegistryArgs",
    "ModelRegistryPlan",
    "feature_support",
    "plan_model_registry",
]
