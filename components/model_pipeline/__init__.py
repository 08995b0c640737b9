"""ModelPipeline: retrain on new data, evaluate, gate, canary, then promote or roll back.

Public names of the capability. ``spec.py``: args, plan, ``plan_model_pipeline``; backends
``argo.py`` (every target on a cluster), ``aws.py``, ``gcp.py`` (event sources and identities);
``component.py``: the ComponentResource.
"""

from components.model_pipeline.component import ModelPipeline
from components.model_pipeline.spec import (
    FEATURES,
    TYPE_TOKEN,
    CanaryArgs,
    GateArgs,
    ModelPipelineArgs,
    ModelPipelinePlan,
    TriggerArgs,
    feature_support,
    local_steps,
    plan_canary,
    plan_model_pipeline,
)

__all__ = [
    "FEATURES",
    "TYPE_TOKEN",
    "CanaryArgs",
    "GateArgs",
    "ModelPipeline",
    "ModelPipelineArgs",
    "ModelPipelinePlan",
    "TriggerArgs",
    "feature_support",
    "local_steps",
    "plan_canary",
    "plan_model_pipeline",
]
