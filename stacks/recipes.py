"""Recipes: which components a stack combines, as plain functions of ``StackConfig``.

Kept apart from the library (torchtitan keeps run recipes out of its package): a platform team
edits these, or writes its own, without touching ``components/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.batch_job import BatchJob, BatchJobArgs
from components.cluster import KubernetesCluster, KubernetesClusterArgs
from components.feature_store import FeatureStore, FeatureStoreArgs
from components.inference import InferenceEndpoint, InferenceEndpointArgs
from components.model_pipeline import ModelPipeline, ModelPipelineArgs
from components.model_registry import ModelRegistry, ModelRegistryArgs
from components.node_pool import GpuNodePool, GpuNodePoolArgs
from components.observability import Observability, ObservabilityArgs
from components.training import SpotTrainingCluster, SpotTrainingClusterArgs
from components.training_job import TrainingJob, TrainingJobArgs
from components.two_tier import TwoTierEndpoint, TwoTierEndpointArgs
from stacks.config import (
    BatchJobConfig,
    ClusterConfig,
    GpuPoolConfig,
    InferenceEndpointConfig,
    PipelineCanaryConfig,
    StackConfig,
    TwoTierEndpointConfig,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The folder holding Pulumi.yaml (``stacks/`` is its ``main``)."""


@dataclass
class Platform:
    """What a stack built, for outputs and for later recipes."""

    cluster: KubernetesCluster
    pools: dict[str, GpuNodePool] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def cluster_args(cfg: ClusterConfig, stack: StackConfig) -> KubernetesClusterArgs:
    args: KubernetesClusterArgs = {"cloud": cfg.cloud, "tags": dict(stack.tags)}
    if cfg.cloud != "existing":
        args["region"] = cfg.region or ""
        args["private_endpoint"] = cfg.private_endpoint
        args["private_nodes"] = cfg.private_nodes
        args["system_node_count"] = cfg.system_node_count
        args["deletion_protection"] = stack.environment == "prod"
        if cfg.zones:
            args["zones"] = list(cfg.zones)
        if cfg.kubernetes_version:
            args["kubernetes_version"] = cfg.kubernetes_version
    if cfg.cloud == "aws" and cfg.autoscaler:
        args["autoscaler"] = cfg.autoscaler
    if cfg.cloud == "gcp":
        args["project"] = cfg.project or ""
        if cfg.release_channel:
            args["release_channel"] = cfg.release_channel
    if cfg.cloud == "existing" and cfg.context:
        args["context"] = cfg.context
    if cfg.chart_source:
        args["chart_source"] = chart_source(cfg.chart_source)
    return args


def chart_source(value: str) -> str:
    """A mirror URL as it is; a folder resolved against the project folder (Pulumi's Kubernetes provider
    would resolve a relative chart path against its own working directory)."""
    if "://" in value:
        return value
    return str((PROJECT_DIR / value).resolve())


def pool_args(cfg: GpuPoolConfig, cluster: KubernetesCluster) -> GpuNodePoolArgs:
    args: GpuNodePoolArgs = {
        "cluster": cluster,
        "accelerator": cfg.accelerator,
        "capacity_type": cfg.capacity_type,
        "min_nodes": cfg.min_nodes,
        "max_nodes": cfg.max_nodes,
        "disk_size_gib": cfg.disk_size_gib,
        "compact_placement": cfg.compact_placement,
        "efa": cfg.efa,
        "role": cfg.role,
    }
    if cfg.tags:
        args["tags"] = dict(cfg.tags)
    if cfg.accelerators_per_node:
        args["accelerators_per_node"] = cfg.accelerators_per_node
    if cfg.instance_type:
        args["instance_type"] = cfg.instance_type
    if cfg.zones:
        args["zones"] = list(cfg.zones)
    if cfg.labels:
        args["labels"] = dict(cfg.labels)
    if cfg.gpu_sharing:
        sharing: dict[str, Any] = {"strategy": cfg.gpu_sharing.strategy}
        if cfg.gpu_sharing.replicas:
            sharing["replicas"] = cfg.gpu_sharing.replicas
        if cfg.gpu_sharing.mig_profile:
            sharing["mig_profile"] = cfg.gpu_sharing.mig_profile
        args["gpu_sharing"] = sharing  # type: ignore[typeddict-item]
    return args


def gpu_platform(stack: StackConfig, name: str) -> Platform:
    """A cluster and its GPU pools: the foundation every reference stack starts from."""
    cluster = KubernetesCluster(name, cluster_args(stack.cluster, stack))
    platform = Platform(cluster=cluster)
    for pool in stack.gpu_pools:
        platform.pools[pool.name] = GpuNodePool(pool.name, pool_args(pool, cluster))
    return platform


def endpoint_args(cfg: InferenceEndpointConfig, stack: StackConfig, platform: Platform) -> InferenceEndpointArgs:
    args: InferenceEndpointArgs = {
        "platform": cfg.platform,
        "model_name": cfg.model_name,
        "model_size_gib": cfg.model_size_gib,
        "image_size_gib": cfg.image_size_gib,
        "min_scale": cfg.min_scale,
        "max_scale": cfg.max_scale,
        "target_concurrency": cfg.target_concurrency,
        "scale_down_delay_seconds": cfg.scale_down_delay_seconds,
        "hold_requests": cfg.hold_requests,
        "public": cfg.public,
        "tags": dict(stack.tags),
    }
    optional = {
        "image": cfg.image,
        "runtime": cfg.runtime.component_args() if cfg.runtime else None,
        "gpus": cfg.gpus,
        "model_uri": cfg.model_uri,
        "auth": cfg.auth,
        "cpu": cfg.cpu,
        "memory_gib": cfg.memory_gib,
        "sagemaker_mode": cfg.sagemaker_mode,
    }
    args.update({k: v for k, v in optional.items() if v is not None})  # type: ignore[typeddict-item]
    if cfg.platform == "knative":
        args["cluster"] = platform.cluster
        args["knative"] = cfg.knative
        args["prepull_image"] = cfg.prepull_image
        if cfg.pool:
            args["pool"] = platform.pools[cfg.pool]
    else:
        args["region"] = cfg.region or stack.cluster.region or ""
    if cfg.platform == "cloud-run":
        args["project"] = cfg.project or stack.cluster.project or ""
        args["zonal_redundancy"] = cfg.zonal_redundancy
        args["deletion_protection"] = stack.environment == "prod"
    return args


def inference(stack: StackConfig, platform: Platform) -> dict[str, InferenceEndpoint]:
    """The stack's scale-to-zero endpoints (knative ones read user histories from the feature store)."""
    store = platform.extras.get("feature_store")
    endpoints = {}
    for e in stack.inference_endpoints:
        args = endpoint_args(e, stack, platform)
        if e.platform == "knative" and stack.model_pipeline is not None and stack.model_pipeline.endpoint == e.name:
            args["rollout_managed_by"] = "pipeline"  # the pipeline's canary owns the served revision
        if store is not None and e.platform == "knative" and stack.feature_store and stack.feature_store.serve_endpoints and store.plan.target != "local":
            args["feature_server_url"] = store.online_endpoint
        endpoints[e.name] = InferenceEndpoint(e.name, args)
    platform.extras["endpoints"] = endpoints
    return endpoints


def two_tier_args(cfg: TwoTierEndpointConfig, stack: StackConfig, platform: Platform) -> TwoTierEndpointArgs:
    args: TwoTierEndpointArgs = {
        "cluster": platform.cluster,
        "pool": platform.pools[cfg.pool],
        "image": cfg.image,
        "burst_platform": cfg.burst_platform,
        "model_name": cfg.model_name,
        "model_size_gib": cfg.model_size_gib,
        "image_size_gib": cfg.image_size_gib,
        "steady_replicas": cfg.steady_replicas,
        "target_concurrency": cfg.target_concurrency,
        "burst_max_scale": cfg.burst_max_scale,
        "scale_down_delay_seconds": cfg.scale_down_delay_seconds,
        "hold_requests": cfg.hold_requests,
        "router_replicas": cfg.router_replicas,
        "tags": dict(stack.tags),
    }
    optional = {
        "burst_image": cfg.burst_image,
        "model_uri": cfg.model_uri,
        "burst_model_uri": cfg.burst_model_uri,
        "steady_max_replicas": cfg.steady_max_replicas,
        "spill_threshold": cfg.spill_threshold,
        "burst_region": cfg.burst_region,
        "burst_project": cfg.burst_project,
        "cpu": cfg.cpu,
        "memory_gib": cfg.memory_gib,
    }
    args.update({k: v for k, v in optional.items() if v is not None})  # type: ignore[typeddict-item]
    return args


def two_tier(stack: StackConfig, platform: Platform) -> dict[str, TwoTierEndpoint]:
    """The stack's two-tier endpoints: a steady tier on a pool, a serverless burst tier, one router address."""
    endpoints = {t.name: TwoTierEndpoint(t.name, two_tier_args(t, stack, platform)) for t in stack.two_tier_endpoints}
    platform.extras["two_tier_endpoints"] = endpoints
    return endpoints


def training(stack: StackConfig, platform: Platform, name: str) -> tuple[SpotTrainingCluster | None, dict[str, TrainingJob]]:
    """A spot training cluster on the platform's cluster, and the stack's reference jobs."""
    cfg = stack.training
    if cfg is None:
        return None, {}
    pools: list[dict[str, Any]] = []
    for p in cfg.pools:
        pool: dict[str, Any] = {"name": p.name, "accelerator": p.accelerator, "max_nodes": p.max_nodes, "efa": p.efa}
        if p.accelerators_per_node:
            pool["accelerators_per_node"] = p.accelerators_per_node
        if p.instance_type:
            pool["instance_type"] = p.instance_type
        if p.compact_placement is not None:
            pool["compact_placement"] = p.compact_placement
        if p.node_vcpus is not None and p.node_memory_gib is not None:
            pool.update(node_vcpus=p.node_vcpus, node_memory_gib=p.node_memory_gib)
        pools.append(pool)
    teams = [
        {"name": t.name, **({"namespace": t.namespace} if t.namespace else {}), **({"gpu_quota": dict(t.gpu_quota)} if t.gpu_quota else {})}
        for t in cfg.teams
    ]
    args: SpotTrainingClusterArgs = {
        "cluster": platform.cluster,
        "pools": pools,  # type: ignore[typeddict-item]
        "teams": teams,  # type: ignore[typeddict-item]
        "checkpoint_bucket": {"url": cfg.checkpoint_bucket_url} if cfg.checkpoint_bucket_url else {"retention_days": cfg.checkpoint_retention_days},
        "tags": {**stack.tags, **cfg.tags},
    }
    if cfg.capacity_fallback:
        args["capacity_fallback"] = list(cfg.capacity_fallback)  # type: ignore[typeddict-item]
    if cfg.data_buckets:
        args["data_buckets"] = list(cfg.data_buckets)
    cluster = SpotTrainingCluster(name, args)
    jobs: dict[str, TrainingJob] = {}
    for j in cfg.jobs:
        job: TrainingJobArgs = {"training_cluster": cluster, "team": j.team, "image": j.image, "nodes": j.nodes, "preset": j.preset, "max_restarts": j.max_restarts}
        if j.pool:
            job["pool"] = j.pool
        if j.gpus_per_node:
            job["gpus_per_node"] = j.gpus_per_node
        if j.data_url:
            job["data_url"] = j.data_url
        elif j.generate_data:
            job["data_command"] = ["python", "-m", "workloads.data.generate", "--out", "/data"]
        if j.extra_args:
            job["extra_args"] = list(j.extra_args)
        jobs[j.name] = TrainingJob(j.name, job)
    platform.extras["training"] = (cluster, jobs)
    return cluster, jobs


def feature_store(stack: StackConfig, platform: Platform, name: str) -> FeatureStore | None:
    """The stack's feature store: one feature definition (workloads/features) on its target."""
    cfg = stack.feature_store
    if cfg is None:
        return None
    args: FeatureStoreArgs = {"target": cfg.target, "engine": cfg.engine, "tags": dict(stack.tags), "deletion_protection": stack.environment == "prod"}
    if cfg.target != "local":
        args["cluster"] = platform.cluster
    optional = {
        "image": cfg.image,
        "online_store": cfg.online_store,
        "offline_store": cfg.offline_store,
        "offline_bucket": cfg.offline_bucket,
        "materialize_schedule": cfg.materialize_schedule,
        "server_replicas": cfg.server_replicas,
    }
    args.update({k: v for k, v in optional.items() if v is not None})  # type: ignore[typeddict-item]
    store = FeatureStore(name, args)
    platform.extras["feature_store"] = store
    return store


def model_loop(stack: StackConfig, platform: Platform, name: str) -> tuple[ModelRegistry | None, ModelPipeline | None]:
    """The model loop: an MLflow registry and the pipeline that retrains, gates and rolls out into it."""
    rc = stack.model_registry
    if rc is None:
        return None, None
    args: ModelRegistryArgs = {"target": rc.target, "tags": dict(stack.tags), "deletion_protection": stack.environment == "prod"}
    if rc.target != "local":
        args["cluster"] = platform.cluster
    if rc.namespace:
        args["namespace"] = rc.namespace
    if rc.artifact_bucket:
        args["artifact_bucket"] = rc.artifact_bucket
    if rc.credentials_secret:
        args["credentials_secret"] = rc.credentials_secret
    database = {k: v for k, v in {"instance_class": rc.instance_class, "storage_gib": rc.storage_gib}.items() if v is not None}
    if rc.high_availability:
        database["high_availability"] = True
    if database:
        args["database"] = database  # type: ignore[typeddict-item]
    registry = ModelRegistry(f"{name}-registry", args)
    platform.extras["model_registry"] = registry
    pc = stack.model_pipeline
    if pc is None:
        return registry, None
    trigger: dict[str, Any] = {"kind": pc.trigger.kind, "data_url": pc.trigger.data_url}
    trigger.update({k: v for k, v in {"schedule": pc.trigger.schedule, "suffix": pc.trigger.suffix}.items() if v is not None})
    cluster_kind = {"aws": "aws", "gcp": "gcp"}.get(platform.cluster.facts.cloud, "kubernetes")
    p_args: ModelPipelineArgs = {
        "target": "local" if rc.target == "local" else cluster_kind,  # type: ignore[typeddict-item]
        "registry": registry,
        "trigger": trigger,  # type: ignore[typeddict-item]
        "model_name": pc.model_name,
        "gate": {"metric": pc.metric, "min_improvement": pc.min_improvement},
        "tags": dict(stack.tags),
    }
    training = platform.extras.get("training")
    if rc.target != "local" and training is not None and stack.training is not None:
        tc = training[0]
        p_args["training_cluster"] = tc
        p_args["team"] = pc.team or stack.training.teams[0].name
        p_args["image"] = pc.image or (stack.training.jobs[0].image if stack.training.jobs else "")
        p_args["nodes"] = pc.nodes
        p_args["preset"] = pc.preset
        p_args["extra_args"] = list(pc.extra_args)
        if pc.pool:
            p_args["pool"] = pc.pool
    endpoints = platform.extras.get("endpoints") or {}
    if pc.endpoint:
        p_args["endpoint"] = endpoints[pc.endpoint]
        c = pc.canary or PipelineCanaryConfig()
        canary: dict[str, Any] = {"percent": c.percent, "window_seconds": c.window_seconds, "max_error_rate": c.max_error_rate, "max_p99_ms": c.max_p99_ms}
        if c.prometheus_url:
            canary["prometheus_url"] = c.prometheus_url
        p_args["canary"] = canary  # type: ignore[typeddict-item]
    if pc.replicate_to:
        p_args["replicate_to"] = [{"url": r.url, "region": r.region, "model_size_gib": r.model_size_gib} for r in pc.replicate_to]
    pipeline = ModelPipeline(pc.name, p_args)
    platform.extras["model_pipeline"] = pipeline
    return registry, pipeline


def gpu_hour_usd(platform: Platform) -> float:
    """On-demand catalog price of one GPU-hour in the stack's priciest GPU pool (0 without pools); the GPU
    dashboard's idle cost uses it, so idle hours are never priced below what the pools bill."""
    from components.catalog import load_catalog

    catalog, prices = load_catalog(), [0.0]
    for pool in platform.pools.values():
        plan = pool.plan
        if plan.instance_type is None or not plan.region or not plan.gpus_per_node:
            continue
        node = catalog.price(plan.cloud, plan.instance_type.name, plan.region, plan.capacity_type)
        if node is not None:
            prices.append(node / plan.gpus_per_node)
    return max(prices)


def observability(stack: StackConfig, platform: Platform, name: str) -> Observability | None:
    """Monitoring for the stack's cluster, when the stack config asks for it."""
    cfg = stack.observability
    if cfg is None:
        return None
    args: ObservabilityArgs = {"cluster": platform.cluster, "gpu_hour_usd": round(gpu_hour_usd(platform), 4)}
    for key, value in cfg.model_dump(exclude_none=True).items():
        args[key] = value  # type: ignore[literal-required]
    return Observability(name, args)


def batch_job_args(cfg: BatchJobConfig, stack: StackConfig, platform: Platform) -> BatchJobArgs:
    args: BatchJobArgs = {
        "platform": cfg.platform,
        "image": cfg.image,
        "dataset_uri": cfg.dataset_uri,
        "output_uri": cfg.output_uri,
        "items": cfg.items,
        "items_per_second": cfg.items_per_second,
        "throughput_basis": cfg.throughput_basis,
        "max_attempts": cfg.max_attempts,
        "model_version": cfg.model_version,
        "reprocess_on_new_model_version": cfg.reprocess_on_new_model_version,
        "tags": {**stack.tags, **cfg.tags},
    }
    optional = {
        "accelerator": cfg.accelerator, "gpus": cfg.gpus, "cpu": cfg.cpu, "memory_gib": cfg.memory_gib, "image_size_gib": cfg.image_size_gib,
        "model_size_gib": cfg.model_size_gib, "spot": cfg.spot, "max_task_seconds": cfg.max_task_seconds, "tasks": cfg.tasks,
        "parallelism": cfg.parallelism, "runs_per_month": cfg.runs_per_month, "sagemaker_mode": cfg.sagemaker_mode,
        "model_uri": cfg.model_uri,
    }
    args.update({k: v for k, v in optional.items() if v is not None})  # type: ignore[typeddict-item]
    if cfg.trigger is not None:
        args["trigger"] = {k: v for k, v in cfg.trigger.model_dump().items() if v is not None}  # type: ignore[typeddict-item]
    cluster = platform.cluster
    if cfg.platform == "kueue":
        tc, _ = platform.extras["training"]
        args.update(training_cluster=tc, team=cfg.team or "")
        if cfg.spot is None:  # the queue's flavors decide: spot when the training cluster tries spot first
            args["spot"] = tc.plan.pools[0].capacities[0].capacity == "spot"
    else:
        args["region"] = cfg.region or stack.cluster.region or ""
    if cfg.platform == "cloud-run":
        args["project"] = cfg.project or stack.cluster.project or ""
    if cfg.platform == "aws-batch" and cluster.subnet_ids_by_zone and cluster.security_group_id is not None:
        # The tasks run in the stack's VPC, on the cluster's private subnets and node security group.
        args["subnet_ids"] = list(cluster.subnet_ids_by_zone.values())  # type: ignore[typeddict-item]
        args["security_group_ids"] = [cluster.security_group_id]  # type: ignore[typeddict-item]
    return args


def batch_jobs(stack: StackConfig, platform: Platform) -> dict[str, BatchJob]:
    """The stack's batch jobs (kueue ones in a training team's queue, after the training recipe ran)."""
    jobs = {j.name: BatchJob(j.name, batch_job_args(j, stack, platform)) for j in stack.batch_jobs}
    platform.extras["batch_jobs"] = jobs
    return jobs

