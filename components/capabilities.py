"""Every implementation's declared optional features, as one table per component.

The README's capability tables are generated from here (``gpuplane capabilities``) and a test
keeps them in step with the code.
"""

from __future__ import annotations

from components.features import FeatureSupport


def all_supports() -> dict[str, list[FeatureSupport]]:
    """Component name -> the FeatureSupport of each of its implementations."""
    from components import (
        batch_job,
        edge,
        feature_store,
        inference,
        model_pipeline,
        model_registry,
        node_pool,
        observability,
        training,
    )

    return {
        "GpuNodePool": [node_pool.feature_support(i) for i in node_pool.IMPLEMENTATIONS],
        "SpotTrainingCluster": [training.feature_support(i) for i in ("eks", "gke", "kubernetes")],
        "InferenceEndpoint": list(inference.FEATURES.values()),
        "FeatureStore": [
            feature_store.feature_support(i)
            for i in ("feast-local", "feast-kubernetes", "feast-aws", "sagemaker-feature-store", "feast-gcp", "vertex-feature-store")
        ],
        "Observability": [observability.FEATURES],
        "ModelRegistry": list(model_registry.FEATURES.values()),
        "ModelPipeline": list(model_pipeline.FEATURES.values()),
        "BatchJob": list(batch_job.FEATURES.values()),
        "EdgeDeployment": list(edge.FEATURES.values()),
    }


def markdown() -> str:
    """One Markdown table per component: rows are features, columns implementations."""
    out: list[str] = []
    for component, supports in all_supports().items():
        features = sorted({f for s in supports for f in (*s.supported, *s.missing)}, key=lambda f: f.value)
        out.append(f"**{component}**\n")
        out.append("| feature | " + " | ".join(s.implementation for s in supports) + " |")
        out.append("| --- |" + " :---: |" * len(supports))
        for f in features:
            cells = ["yes" if s.supports(f) else ("no¹" if f in s.missing else "—") for s in supports]
            out.append(f"| {f.value} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("¹ Each \"no\" carries its reason in the code, and asking for it fails with that reason before anything is created.")
    return "\n".join(out) + "\n"
