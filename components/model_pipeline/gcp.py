"""ModelPipeline on GCP: GCS -> Pub/Sub event wiring and the Workload Identity of the Argo pods.

Creates, as children of the pipeline (bucket-events triggers): a Pub/Sub topic, the publisher
grant for the project's Cloud Storage service agent on that topic only, the bucket notification
(``OBJECT_FINALIZE``, JSON payload, filtered by the data prefix), and a pull subscription (7 days
retention, 5 minute ack deadline). Identities (GKE Workload Identity): one for the EventSource pod
(subscriber on that subscription only) and one for the workflow pods (object viewer on the data
and checkpoint buckets, object creator on the endpoint's model bucket for the rollout).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.model_pipeline.spec import EVENT_NAME, ModelPipelinePlan, PipelineCloud

if TYPE_CHECKING:
    from components.training import SpotTrainingCluster


def _clean(text: str) -> str:
    """GCP label keys and values: lowercase letters, digits, '_' and '-'."""
    return re.sub(r"[^a-z0-9_-]", "_", str(text).lower())[:63]


def create_pipeline_cloud(
    component: pulumi.ComponentResource, name: str, plan: ModelPipelinePlan, tc: SpotTrainingCluster, checkpoint: pulumi.Output[Any], endpoint: dict[str, str] | None
) -> PipelineCloud:
    from components.gcp.iam import workload_identity_sa

    opts = pulumi.ResourceOptions(parent=component)
    cluster = tc.cluster
    project = cluster.project
    t = plan.trigger
    wf = workload_identity_sa(component, f"{name}-workflow", cluster, plan.namespace, plan.service_account, ())
    grants: list[pulumi.Resource] = [wf.binding]
    buckets = {"data": pulumi.Output.from_input(t.bucket), "checkpoints": checkpoint.apply(lambda u: str(u).removeprefix("gs://").split("/", 1)[0])}
    for role_name, bucket in buckets.items():
        grants.append(gcp.storage.BucketIAMMember(f"{name}-workflow-{role_name}", gcp.storage.BucketIAMMemberArgs(bucket=bucket, role="roles/storage.objectViewer", member=wf.member), opts=opts))
    if endpoint and endpoint["model_uri"].startswith("gs://"):
        model_bucket = endpoint["model_uri"].removeprefix("gs://").split("/", 1)[0]
        grants.append(gcp.storage.BucketIAMMember(f"{name}-workflow-models", gcp.storage.BucketIAMMemberArgs(bucket=model_bucket, role="roles/storage.objectCreator", member=wf.member), opts=opts))
    cloud = PipelineCloud(event_source=None, workflow_annotations=wf.annotations, depends_on=grants)
    if t.kind != "bucket-events":
        return cloud
    labels = {**{_clean(k): _clean(v) for k, v in plan.tags.items()}, "gpuplane-pipeline": _clean(name)}
    topic = gcp.pubsub.Topic(f"{name}-topic", gcp.pubsub.TopicArgs(project=project, labels=labels), opts=opts)
    number = gcp.organizations.get_project_output(project_id=project).number
    agent = number.apply(lambda n: f"serviceAccount:service-{n}@gs-project-accounts.iam.gserviceaccount.com")
    publisher = gcp.pubsub.TopicIAMMember(f"{name}-topic-publisher", gcp.pubsub.TopicIAMMemberArgs(topic=topic.id, role="roles/pubsub.publisher", member=agent, project=project), opts=opts)
    notification = gcp.storage.Notification(
        f"{name}-bucket-notification",
        gcp.storage.NotificationArgs(bucket=t.bucket, topic=topic.id, payload_format="JSON_API_V1", event_types=["OBJECT_FINALIZE"], object_name_prefix=f"{t.prefix}/" if t.prefix else None),
        opts=pulumi.ResourceOptions(parent=component, depends_on=[publisher]),
    )
    subscription = gcp.pubsub.Subscription(
        f"{name}-subscription",
        gcp.pubsub.SubscriptionArgs(topic=topic.id, project=project, ack_deadline_seconds=300, message_retention_duration="604800s", labels=labels),
        opts=opts,
    )
    es = workload_identity_sa(component, f"{name}-events", cluster, plan.namespace, plan.event_source_service_account, ())
    sub_grant = gcp.pubsub.SubscriptionIAMMember(
        f"{name}-events-subscriber", gcp.pubsub.SubscriptionIAMMemberArgs(subscription=subscription.name, role="roles/pubsub.subscriber", member=es.member, project=project), opts=opts
    )
    # The subscription only, no topic: given both, Argo Events 1.9 reads the subscription's config to
    # check its topic (pkg/eventsources/sources/gcppubsub/start.go: "verify topic", which needs
    # pubsub.subscriptions.get); roles/pubsub.subscriber on the subscription grants consume, not get,
    # so the source would fail with PermissionDenied. An existing subscription needs nothing extra.
    cloud.event_source = {"pubSub": {EVENT_NAME: {"projectID": project, "subscriptionID": subscription.name, "jsonBody": True}}}
    cloud.event_source_annotations = es.annotations
    cloud.description = topic.id.apply(lambda i: f"pubsub:{i}")
    cloud.depends_on += [es.binding, sub_grant, notification]
    return cloud
