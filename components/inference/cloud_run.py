"""InferenceEndpoint on Cloud Run with an NVIDIA L4 GPU.

Creates a service account for the server (with read access to the weights' bucket when they
come from ``gs://``, mounted through Cloud Storage FUSE) and a ``cloudrunv2.Service``: min
instances 0 by default, max instances, request concurrency, CPU always allocated (instance-based
billing, required with GPUs), the GPU zonal-redundancy choice, a startup probe on
``/v2/health/ready`` sized to the cold-start budget, internal ingress unless public, and
deletion protection as the stack chooses. Invokers get ``roles/run.invoker``; ``allUsers`` is
never granted. Cloud Run queues requests while an instance starts.

The container runs the endpoint's runtime: the reference server, ``vllm serve`` (weights read
from the Cloud Storage mount, or streamed from gs:// with ``--load-format runai_streamer`` as the
service account, in which case nothing is mounted), or a custom image; command, args, the
container port, the startup probe (readiness path) and the liveness probe follow the runtime.
https://cloud.google.com/run/docs/configuring/services/gpu
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.inference.canary import cloud_run_traffics
from components.inference.planner import server_command
from components.inference.spec import CLOUD_RUN_GPUS, EndpointPlan

if TYPE_CHECKING:
    from components.inference.spec import InferenceEndpointArgs

PROBE_PERIOD_SECONDS = 10
LIVENESS_PERIOD_SECONDS = 30
MODEL_MOUNT = "/models"


def _labels(tags: dict[str, str]) -> dict[str, str]:
    """GCP labels: lowercase keys and values of letters, digits, '-' and '_'."""
    import re

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]

    return {clean(k): clean(v) for k, v in tags.items()}


def create_cloud_run_endpoint(endpoint: pulumi.ComponentResource, name: str, plan: EndpointPlan, args: InferenceEndpointArgs) -> pulumi.Output[str]:
    opts = pulumi.ResourceOptions(parent=endpoint)
    project = args["project"]
    from components.gcp.iam import account_id

    sa = gcp.serviceaccount.Account(
        f"{name}-sa",
        account_id=account_id(name, "run"),
        display_name=f"gpuplane inference endpoint {name}",
        project=project,
        opts=opts,
    )
    volumes: list[gcp.cloudrunv2.ServiceTemplateVolumeArgs] = []
    mounts: list[gcp.cloudrunv2.ServiceTemplateContainerVolumeMountArgs] = []
    model_dir = MODEL_MOUNT
    rt = plan.runtime
    if plan.model_uri:
        bucket, _, prefix = plan.model_uri.removeprefix("gs://").partition("/")
        gcp.storage.BucketIAMMember(
            f"{name}-model-reader",
            bucket=bucket,
            role="roles/storage.objectViewer",
            member=sa.email.apply(lambda e: f"serviceAccount:{e}"),
            opts=opts,
        )
        if rt.weights_loader != "stream":  # the streamer reads the bucket itself
            volumes.append(gcp.cloudrunv2.ServiceTemplateVolumeArgs(name="models", gcs=gcp.cloudrunv2.ServiceTemplateVolumeGcsArgs(bucket=bucket, read_only=True)))
            mounts.append(gcp.cloudrunv2.ServiceTemplateContainerVolumeMountArgs(name="models", mount_path=MODEL_MOUNT))
            model_dir = f"{MODEL_MOUNT}/{prefix}".rstrip("/")
    failures = max(1, math.ceil(plan.timeouts.startup_probe_seconds / PROBE_PERIOD_SECONDS))
    command, container_args = server_command(plan, model_dir)
    service = gcp.cloudrunv2.Service(
        f"{name}-service",
        name=name,
        location=plan.region,
        project=project,
        ingress="INGRESS_TRAFFIC_ALL" if plan.public else "INGRESS_TRAFFIC_INTERNAL_ONLY",
        deletion_protection=plan.deletion_protection,
        labels=_labels(plan.tags),
        invoker_iam_disabled=False,
        traffics=cloud_run_traffics(plan.extra.get("canary")),
        template=gcp.cloudrunv2.ServiceTemplateArgs(
            service_account=sa.email,
            timeout=f"{plan.timeouts.request_timeout_seconds}s",
            max_instance_request_concurrency=plan.target_concurrency,
            gpu_zonal_redundancy_disabled=not plan.zonal_redundancy,
            node_selector=gcp.cloudrunv2.ServiceTemplateNodeSelectorArgs(accelerator=CLOUD_RUN_GPUS[plan.accelerator or "L4"]),
            scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(min_instance_count=plan.min_scale, max_instance_count=plan.max_scale),
            labels=_labels(plan.tags),
            volumes=volumes or None,
            containers=[
                gcp.cloudrunv2.ServiceTemplateContainerArgs(
                    image=plan.image,
                    commands=command,
                    args=container_args or None,
                    ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=rt.port, name="http1"),
                    envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in sorted(plan.env.items())] or None,
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        limits={"cpu": f"{plan.cpu:g}", "memory": f"{plan.memory_gib:g}Gi", "nvidia.com/gpu": str(plan.gpus)},
                        cpu_idle=False,
                        startup_cpu_boost=True,
                    ),
                    startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path=rt.readiness_path, port=rt.port),
                        period_seconds=PROBE_PERIOD_SECONDS,
                        timeout_seconds=5,
                        failure_threshold=failures,
                    ),
                    # The reference endpoint keeps today's shape (startup probe only).
                    liveness_probe=None
                    if rt.kind == "reference"
                    else gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(path=rt.liveness_path, port=rt.port),
                        period_seconds=LIVENESS_PERIOD_SECONDS,
                        timeout_seconds=5,
                        failure_threshold=3,
                    ),
                    volume_mounts=mounts or None,
                )
            ],
        ),
        opts=opts,
    )
    for i, member in enumerate(args.get("invokers") or []):
        if member in ("allUsers", "allAuthenticatedUsers"):
            continue  # public unauthenticated access is never granted by gpuplane
        gcp.cloudrunv2.ServiceIamMember(
            f"{name}-invoker-{i}",
            name=service.name,
            location=plan.region,
            project=project,
            role="roles/run.invoker",
            member=member,
            opts=opts,
        )
    result: Any = service.uri
    return result
