"""InferenceEndpoint: a model endpoint that scales to zero and holds requests while it cold-starts.

Public names of the capability; other capabilities (TwoTierEndpoint, ModelPipeline,
Observability) import only these. ``spec.py``, ``planner.py``, ``canary.py``: args, plans, the
pure planners; backends ``knative.py``, ``cloud_run.py``, ``sagemaker.py``; ``component.py``:
the ComponentResource.
"""

from components.inference.canary import EndpointCanary, EndpointCanaryArgs, plan_endpoint_canary
from components.inference.component import InferenceEndpoint
from components.inference.planner import (
    plan_endpoint,
    plan_runtime,
    runtime_features,
    server_args,
    server_command,
    vllm_args,
)
from components.inference.spec import (
    BUDGET_PHASES,
    CLOUD_RUN_GPUS,
    CLOUD_RUN_INSTANCE_START_SECONDS,
    FEATURES,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    SAGEMAKER_INSTANCE_START_SECONDS,
    SERVING_PORT,
    TYPE_TOKEN,
    VLLM_IMAGE,
    ColdStartBudget,
    ColdStartBudgetArgs,
    EndpointPlan,
    InferenceEndpointArgs,
    RuntimePlan,
    ServingRuntimeArgs,
    Timeouts,
    plan_cold_start,
    weight_paths,
)

__all__ = [
    "BUDGET_PHASES",
    "CLOUD_RUN_GPUS",
    "CLOUD_RUN_INSTANCE_START_SECONDS",
    "FEATURES",
    "LIVENESS_PATH",
    "METRICS_PATH",
    "READINESS_PATH",
    "SAGEMAKER_INSTANCE_START_SECONDS",
    "SERVING_PORT",
    "TYPE_TOKEN",
    "VLLM_IMAGE",
    "ColdStartBudget",
    "ColdStartBudgetArgs",
    "EndpointCanary",
    "EndpointCanaryArgs",
    "EndpointPlan",
    "InferenceEndpoint",
    "InferenceEndpointArgs",
    "RuntimePlan",
    "ServingRuntimeArgs",
    "Timeouts",
    "plan_cold_start",
    "plan_endpoint",
    "plan_endpoint_canary",
    "plan_runtime",
    "runtime_features",
    "server_args",
    "server_command",
    "vllm_args",
    "weight_paths",
]
