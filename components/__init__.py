"""gpuplane's component library: ``from components import GpuNodePool, InferenceEndpoint, ...``.

Names are loaded lazily so that ``components.catalog`` (used by policies and the cost model)
does not pull in the Pulumi provider SDKs.

Layout (components/README.md): one folder per capability (``cluster``, ``node_pool``,
``training``, ``training_job``, ``federation``, ``inference``, ``two_tier``, ``feature_store``, ``model_registry``,
``model_pipeline``, ``observability``, ``batch_job``, ``edge``), each with ``spec.py``, one module per backend and
``component.py``; ``aws``, ``gcp`` and ``kubernetes`` hold building blocks the capabilities share;
``catalog``, ``errors`` and ``features`` are the bottom layer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KubernetesCluster": "components.cluster",
    "KubernetesClusterArgs": "components.cluster",
    "GpuNodePool": "components.node_pool",
    "GpuNodePoolArgs": "components.node_pool",
    "SpotTrainingCluster": "components.training",
    "SpotTrainingClusterArgs": "components.training",
    "TrainingJob": "components.training_job",
    "TrainingJobArgs": "components.training_job",
    "TrainingFederation": "components.federation",
    "TrainingFederationArgs": "components.federation",
    "InferenceEndpoint": "components.inference",
    "InferenceEndpointArgs": "components.inference",
    "TwoTierEndpoint": "components.two_tier",
    "FeatureStore": "components.feature_store",
    "FeatureStoreArgs": "components.feature_store",
    "Observability": "components.observability",
    "ObservabilityArgs": "components.observability",
    "ModelRegistry": "components.model_registry",
    "ModelRegistryArgs": "components.model_registry",
    "ModelPipeline": "components.model_pipeline",
    "ModelPipelineArgs": "components.model_pipeline",
    "BatchJob": "components.batch_job",
    "BatchJobArgs": "components.batch_job",
    "EdgeDeployment": "components.edge",
    "EdgeDeploymentArgs": "components.edge",
    "ComponentInputError": "components.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
