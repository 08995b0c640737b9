"""InferenceEndpoint: a model endpoint that scales to zero and holds requests while it cold-starts.

Implementations (``platform``):

- ``knative`` (components/inference/knative.py) on any ``KubernetesCluster``: a Knative
  Service (min-scale 0 by default) whose activator holds requests while a revision scales
  from zero, on a ``GpuNodePool`` (GPU requests, tolerations, node selector) or on CPU; Knative
  installed through its operator, or declared present.
- ``cloud-run`` (components/inference/cloud_run.py): Cloud Run with an L4 GPU, min instances 0.
- ``sagemaker`` (components/inference/sagemaker.py): real-time inference components scaled to zero
  (``sagemaker_mode="inference-components"``) or asynchronous inference scaled to zero on its
  backlog (``sagemaker_mode="async"``).

Serving runtimes (``runtime``): gpuplane's reference OIP server (default), vLLM (``vllm serve``
with its OpenAI-compatible API on port 8000, readiness on ``/health``, tensor parallel size = the
replica's GPUs), or a ``custom`` image (command, args, port, probes, protocol of your choosing).
Each platform honours a runtime or declares what it lacks (SageMaker starts containers as
``docker run IMAGE serve`` and calls ``/ping`` and ``/invocations`` on 8080: vLLM runs there only
from a SageMaker build of its image, configured through ``SM_VLLM_*`` variables).

The cold-start budget has five phases: node provisioning, image pull, weight fetch (bucket to a
local volume), weight load (into GPU memory) and engine start (process, CUDA init, vLLM's
compile and CUDA-graph capture). Weight phases are the model's size over the bandwidth of the
path the platform offers (components/catalog/data/storage_bandwidth.csv, each row with its
source); engine start is a per-runtime catalog fact. Every timeout that could cut a cold start short
(Knative progress deadline and revision timeout, startup probes, SageMaker health-check and
download timeouts) is derived from it — the failure users report when a GPU node start outlasts
a default deadline (knative/serving#13208, kserve/kserve#1247).

Private by default: public only with ``public=True`` and an authentication mechanism.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.inference.planner import plan_endpoint
from components.inference.spec import TYPE_TOKEN, EndpointPlan, InferenceEndpointArgs


class InferenceEndpoint(pulumi.ComponentResource):
    """A scale-to-zero model endpoint; see the module docstring for the implementations.

    Outputs: ``url`` (in-cluster URL, Cloud Run URI or SageMaker endpoint name),
    ``cold_start_budget_seconds`` (total), ``cold_start_budget`` (every phase, in seconds, and
    the storage paths it was derived from), ``implementation``, ``runtime`` and ``protocol``.
    Attribute ``plan``.
    """

    plan: EndpointPlan
    url: pulumi.Output[str]
    """In-cluster URL (Knative), Cloud Run URI or SageMaker endpoint name."""
    cold_start_budget_seconds: pulumi.Output[int]
    """Planned worst-case cold start (node, image, weights, engine), in seconds."""
    implementation: pulumi.Output[str]
    """How the endpoint is served: ``knative``, ``cloud-run`` or ``sagemaker-<mode>`` (e.g. ``sagemaker-async``)."""
    cold_start_budget: pulumi.Output[dict[str, Any]]
    """Every cold-start phase in seconds (nodeProvision, imagePull, weightsFetch, weightsLoad, engineStart, total) and its basis (runtime, model size, storage paths)."""
    runtime: pulumi.Output[str]
    """The model server: ``reference``, ``vllm`` or ``custom``."""
    protocol: pulumi.Output[str]
    """The API clients speak to it: ``oip``, ``openai``, ``tgi``, ``triton`` or ``other``."""

    def __init__(self, name: str, args: InferenceEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_endpoint(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        if plan.platform == "knative":
            from components.inference.knative import create_knative_endpoint

            self.url = create_knative_endpoint(self, name, plan, args["cluster"], args.get("pool"), args)
        elif plan.platform == "cloud-run":
            from components.inference.cloud_run import create_cloud_run_endpoint

            self.url = create_cloud_run_endpoint(self, name, plan, args)
        else:
            from components.inference.sagemaker import create_sagemaker_endpoint

            self.url = create_sagemaker_endpoint(self, name, plan, args)
        self.cold_start_budget_seconds = pulumi.Output.from_input(plan.budget.total_seconds)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.cold_start_budget = pulumi.Output.from_input(plan.budget.to_json())
        self.runtime = pulumi.Output.from_input(plan.runtime.kind)
        self.protocol = pulumi.Output.from_input(plan.runtime.protocol)
        self.register_outputs(
            {
                "url": self.url,
                "cold_start_budget_seconds": self.cold_start_budget_seconds,
                "cold_start_budget": self.cold_start_budget,
                "implementation": self.implementation,
                "runtime": self.runtime,
                "protocol": self.protocol,
            }
        )

