"""ModelPipeline: retrain on fresh data, evaluate, gate, and roll out the winner as a canary.

On a cluster (``target`` ``kubernetes``, ``aws`` or ``gcp``) the loop is Argo Events + Argo
Workflows from pinned Helm charts (argo-helm ``argo-events`` 2.4.22, ``argo-workflows`` 1.0.18),
not a home-made controller (components/model_pipeline/argo.py):

- an event source for new data: ``bucket-events`` (AWS: S3 ``ObjectCreated`` notifications to an
  SQS queue with a queue policy, read by an Argo ``sqs`` EventSource through IRSA; GCP: a GCS
  ``OBJECT_FINALIZE`` notification to a Pub/Sub topic, read by a ``pubSub`` EventSource through
  Workload Identity) or ``schedule`` (an Argo ``calendar`` EventSource, any cluster);
- an EventBus (JetStream) and a Sensor whose trigger creates a Workflow from the WorkflowTemplate;
- the WorkflowTemplate's steps: ``train`` (a resource template creating the ``TrainingJob``'s
  JobSet, labelled with the team's Kueue queue, so it is gang-admitted on the spot training
  cluster; succeeded / failed by the JobSet's terminal state), ``evaluate`` (registers the
  challenger in the ``ModelRegistry`` with its held-out metrics), ``promote`` (the gate: exit 0
  promoted, 3 rejected; a rejection ends the run with the champion in place), then, with an
  ``endpoint`` on Knative: ``champion`` (reads the serving revision), ``canary`` (a JSON patch:
  a new revision named after the run with the challenger's weights, traffic split champion /
  challenger by revision tags), ``bake`` (waits ``window_seconds``), ``verify`` (Prometheus:
  the challenger revision's 5xx rate and p99 from Knative's queue-proxy metrics), then ``full``
  (100% to the challenger) or ``rollback`` (100% back to the champion).

The workload contract of the steps (workloads/pipeline, in the training image):
``python -m workloads.pipeline.evaluate --model-dir DIR --data DIR --tracking-uri URI
--model-name NAME --run-name RUN --output PATH`` (the step fetches the export and the data into
local directories first) and ``python -m workloads.pipeline.promote --tracking-uri URI
--model-name NAME --metric M --margin X --output PATH`` (exit 0 promoted, 3 rejected).

``target="local"`` creates nothing: the plan names what ``gpuplane pipeline`` runs on this machine.
Each run trains from scratch into its own checkpoint prefix (a preempted run resumes from it);
warm starts are the local loop's choice. ``plan_model_pipeline`` is pure and raises one
``ComponentInputError`` listing every problem before any child exists.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.model_pipeline.spec import (
    TYPE_TOKEN,
    CloudPart,
    ModelPipelineArgs,
    ModelPipelinePlan,
    plan_model_pipeline,
)


class ModelPipeline(pulumi.ComponentResource):
    """The model loop; see the module docstring.

    Outputs: ``implementation``, ``workflow_template`` (name; None locally), ``event_source``
    (``sqs://queue-url``, ``pubsub://topic``, ``calendar:<cron>`` or None), ``namespace``.
    Attribute: ``plan``.
    """

    plan: ModelPipelinePlan
    implementation: pulumi.Output[str]
    """How the loop runs (the target's implementation)."""
    namespace: pulumi.Output[str]
    """The namespace of the pipeline's objects."""
    workflow_template: pulumi.Output[str | None]
    """The Argo WorkflowTemplate's name; None locally."""
    event_source: pulumi.Output[str | None]
    """What triggers a retrain: ``sqs://queue-url``, ``pubsub://topic``, ``calendar:<cron>`` or None."""

    def __init__(self, name: str, args: ModelPipelineArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_model_pipeline(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        if plan.target == "local":
            outputs: dict[str, Any] = {"workflow_template": None, "event_source": None}
        else:
            from components.model_pipeline.argo import create_pipeline

            create_cloud: CloudPart | None = None  # an existing cluster: calendar only, no cloud wiring
            if plan.cloud == "aws":
                from components.model_pipeline.aws import create_pipeline_cloud as aws_cloud

                create_cloud = aws_cloud
            elif plan.cloud == "gcp":
                from components.model_pipeline.gcp import create_pipeline_cloud as gcp_cloud

                create_cloud = gcp_cloud
            outputs = create_pipeline(self, name, plan, args, create_cloud)
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.namespace = pulumi.Output.from_input(plan.namespace)
        self.workflow_template = pulumi.Output.from_input(outputs.get("workflow_template"))
        self.event_source = pulumi.Output.from_input(outputs.get("event_source"))
        self.register_outputs({**outputs, "implementation": self.implementation, "namespace": self.namespace,
                               "workflow_template": self.workflow_template, "event_source": self.event_source})
