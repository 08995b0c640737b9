"""InferenceEndpoint on Cloud Run with an NVIDIA L4 GPU.

Creates a service account for the server (with read access to the weights' bucket when they
come from ``gs://``, mounted through Cloud Storage FUSE) and a ``cloudrunv2.Service``: min
instances 0 by default, max instances, request concurrency, CPU always allocated (instance-based
billing, required with GPUs), the GPU zonal-redundancy choice, a startup probe on
``/v2/health/ready`` sized to the cold-start budget, internal ingress unless public, and
deletion protection as the stack chooses. Invokers get ``roles/run.invoker``; ``allUsers`` is
never granted. Cloud Run queues requests while an instance starts.
https://cloud.google.com/run/docs/configuring/services/gpu
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_gcp as gcp

from components.inference import CLOUD_RUN_GPUS, READINESS_PATH, SERVING_PORT, EndpointPlan, server_args

if TYPE_CHECKING:
    from components.inference import InferenceEndpointArgs

PROBE_PERIOD_SECONDS = 10
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
    if plan.model_uri:
        bucket, _, prefix = plan.model_uri.removeprefix("gs://").partition("/")
        gcp.storage.BucketIAMMember(
            f"{name}-model-reader",
            bucket=bucket,
            role="roles/storage.objectViewer",
            member=sa.email.apply(lambda e: f"serviceAccount:{e}"),
            opts=opts,
        )
        volumes.append(gcp.cloudrunv2.ServiceTemplateVolumeArgs(name="models", gcs=gcp.cloudrunv2.ServiceTemplateVolumeGcsArgs(bucket=bucket, read_only=True)))
        mounts.append(gcp.cloudrunv2.ServiceTemplateContainerVolumeMountArgs(name="models", mount_path=MODEL_MOUNT))
        model_dir = f"{MODEL_MOUNT}/{prefix}".rstrip("/")
    failures = max(1, math.ceil(plan.timeouts.startup_probe_seconds / PROBE_PERIOD_SECONDS))
    service = gcp.cloudrunv2.Service(
        f"{name}-service",
        name=name,
        location=plan.region,
        project=project,
        ingress="INGRESS_TRAFFIC_ALL" if plan.public else "INGRESS_TRAFFIC_INTERNAL_ONLY",
        deletion_protection=plan.deletion_protection,
        labels=_labels(plan.tags),
        invoker_iam_disabled=False,
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
                    image=args["image"],
                    args=server_args(plan, model_dir),
                    ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=SERVING_PORT, name="http1"),
                    envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in sorted(plan.env.items())] or None,
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        limits={"cpu": f"{plan.cpu:g}", "memory": f"{plan.memory_gib:g}Gi", "nvidia.com/gpu": str(plan.gpus)},
                        cpu_idle=False,
                        startup_cpu_boost=True,
                    ),
                    startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path=READINESS_PATH, port=SERVING_PORT),
                        period_seconds=PROBE_PERIOD_SECONDS,
                        timeout_seconds=5,
                        failure_threshold=failures,
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
