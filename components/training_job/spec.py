"""TrainingJob's spec: one gang-scheduled torchrun job (a JobSet) in a team's Kueue LocalQueue.

N nodes x G GPUs, torchrun with a static rendezvous on pod 0 (a headless Service), exit code
75 (preempted after a checkpoint) restarts the pod without counting as a failure, anything else
restarts the whole gang up to ``max_restarts``. The job is checked against its
``SpotTrainingCluster`` (team, pool, fit, grace period, data bucket) before anything exists.
The JobSet body itself is rendered by the Kubernetes backend, kueue.py. Creates nothing;
the ``TrainingJob`` ComponentResource is in component.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NotRequired, Required, TypedDict

import pulumi

from components.errors import ComponentInputError, Problem, Problems
from components.training import (
    BUCKET_URL,
    DEFAULT_MASTER_PORT,
    DEFAULT_MAX_RESTARTS,
    NODE_CPU_FRACTION,
    NODE_MEMORY_FRACTION,
    SHM_FRACTION,
    SpotTrainingCluster,
    TeamPlan,
    TrainingClusterPlan,
    TrainingPoolPlan,
    dns_label,
    is_int,
)

JOB_TYPE_TOKEN = "gpuplane:index:TrainingJob"



class TrainingJobArgs(TypedDict, total=False):
    """Arguments of ``TrainingJob``."""

    training_cluster: Required[SpotTrainingCluster]
    """The SpotTrainingCluster whose queue the job is submitted to."""
    team: Required[str]
    """The submitting team (its namespace, LocalQueue, service account and bucket prefix)."""
    image: Required[pulumi.Input[str]]
    """Container image with the training workload (workloads/training/Dockerfile). Its ENTRYPOINT
    must take torchrun's arguments and keep the exit codes 0 / 75 (preempted) / 2 (usage), as
    the reference image's ``python -m workloads.training.launch`` does."""
    command: NotRequired[list[str]]
    """ENTRYPOINT override for other images, e.g. ``["python", "-m", "workloads.training.launch"]``.
    Plain ``["torchrun"]`` works but turns exit 75 into 1 (preemptions then count as failures).
    Default: the image's ENTRYPOINT."""
    pool: NotRequired[str]
    """The pool to run on. Default: the cluster's only pool (required when it has several)."""
    nodes: NotRequired[int]
    """Nodes (pods) in the gang. Default 1."""
    gpus_per_node: NotRequired[int]
    """GPUs per pod (torchrun processes per node). Default: all the pool's GPUs per node."""
    preset: NotRequired[str]
    """Workload preset (``--preset``). Default ``tiny``."""
    data_dir: NotRequired[str]
    """The dataset directory inside the container (``--data``). Default ``/data``."""
    data_url: NotRequired[str]
    """``s3://`` / ``gs://`` URL of a ``workloads.data.generate`` directory; an init container copies it into
    ``data_dir`` with the team's workload identity. Its bucket must be in the cluster's ``data_buckets``.
    Default: none (use ``data_command``, the image or a volume)."""
    data_command: NotRequired[list[str]]
    """Command of an init container (same image) that writes ``data_dir`` into an emptyDir,
    e.g. ``["python", "-m", "workloads.data.generate", "--out", "/data"]``. Default: none
    (the image or a volume provides the data)."""
    export_dir: NotRequired[str]
    """Where rank 0 writes the exported model (``--export-dir``; an emptyDir). Default ``/outputs``."""
    checkpoint_url: NotRequired[pulumi.Input[str]]
    """Checkpoint location. Default: ``<cluster bucket>/<team>/<job name>``; required without a cluster bucket."""
    extra_args: NotRequired[list[str]]
    """More workload flags, e.g. ``["--max-steps", "2000"]``."""
    env: NotRequired[dict[str, str]]
    """Extra environment variables."""
    max_restarts: NotRequired[int]
    """Gang restarts after real failures before the JobSet fails (preemptions do not count). Default 10."""
    master_port: NotRequired[int]
    """Rendezvous port on pod 0. Default 29500."""
    termination_grace_period_seconds: NotRequired[int]
    """Override of the cluster's grace period (at most the cloud's notice). Default: the cluster's."""
    ttl_seconds_after_finished: NotRequired[int]
    """Delete the finished JobSet after this many seconds. Default: keep it."""


@dataclass(frozen=True)
class TrainingJobPlan:
    name: str
    team: TeamPlan
    pool: TrainingPoolPlan
    nodes: int
    gpus_per_node: int
    cpu_per_pod: int
    memory_gib_per_pod: int
    shm_gib: int
    preset: str
    data_dir: str
    data_command: tuple[str, ...]
    command: tuple[str, ...]
    """ENTRYPOINT override; empty: the image's."""
    export_dir: str
    extra_args: tuple[str, ...]
    env: dict[str, str]
    max_restarts: int
    master_port: int
    termination_grace_period_seconds: int
    ttl_seconds_after_finished: int | None
    cloud: str
    region: str | None
    uses_bucket: bool
    """Whether the checkpoint URL comes from the cluster's bucket (else: given)."""
    tags: dict[str, str] = field(default_factory=dict)
    """The training cluster's tags (team, cost-center), for policies and cost attribution."""
    extra: dict[str, Any] = field(default_factory=dict)
    data_url: str | None = None
    """Where the init container copies the dataset from (None: ``data_command``, image or volume)."""

    @property
    def replicated_job(self) -> str:
        return "worker"

    @property
    def subdomain(self) -> str:
        return self.name

    @property
    def master_addr(self) -> str:
        """Pod 0 of job 0: ``<jobset>-<replicatedJob>-0-0.<subdomain>`` (JobSet's DNS hostnames)."""
        return f"{self.name}-{self.replicated_job}-0-0.{self.subdomain}"

    def summary(self, image: Any = None, checkpoint_url: Any = None) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "team": self.team.name,
            "namespace": self.team.namespace,
            "queue": self.team.local_queue,
            "clusterQueue": self.team.cluster_queue,
            "pool": self.pool.name,
            "accelerator": self.pool.accelerator,
            "nodes": self.nodes,
            "gpusPerNode": self.gpus_per_node,
            "gpus": self.nodes * self.gpus_per_node,
            "cpuPerNode": self.cpu_per_pod,
            "memoryGibPerNode": self.memory_gib_per_pod,
            "image": image,
            "checkpointUrl": checkpoint_url,
            "dataUrl": self.data_url,
            "serviceAccount": self.team.service_account,
            "maxRestarts": self.max_restarts,
            "terminationGracePeriodSeconds": self.termination_grace_period_seconds,
            "masterAddr": self.master_addr,
            "capacityFallback": [c.capacity for c in self.pool.capacities],
            "tags": dict(self.tags),
        }


_JOB_KEYS = set(TrainingJobArgs.__annotations__)


def plan_training_job(name: str, args: TrainingJobArgs, cluster_plan: TrainingClusterPlan) -> TrainingJobPlan:
    """Check the job against the training cluster (team, pool, fit, grace) and size its pods."""
    p = Problems("TrainingJob", name)
    for key in sorted(set(args) - _JOB_KEYS):
        p.add(key, args[key], "is not an argument of TrainingJob.", f"use one of {sorted(_JOB_KEYS)}.")  # type: ignore[literal-required]
    # Pod hostnames are <jobset>-worker-<job>-<pod>, a DNS label of at most 63 characters.
    dns_label(p, "name", name, "job name", max_len=40)
    team_name = args.get("team")
    team = cluster_plan.team(team_name or "")
    if team is None:
        p.add("team", team_name, f"is not a team of SpotTrainingCluster {cluster_plan.name!r}, so it has no queue there.", f"use one of {[t.name for t in cluster_plan.teams]}, or add the team to the cluster's teams.")
    pool_name = args.get("pool")
    if pool_name is None:
        if len(cluster_plan.pools) == 1:
            pool_name = cluster_plan.pools[0].name
        else:
            p.add("pool", None, f"is required: the cluster has {len(cluster_plan.pools)} pools.", f"use one of {[x.name for x in cluster_plan.pools]}.")
    pool = cluster_plan.pool(pool_name or "")
    if pool is None and pool_name is not None:
        p.add("pool", pool_name, f"is not a pool of SpotTrainingCluster {cluster_plan.name!r}.", f"use one of {[x.name for x in cluster_plan.pools]}.")
    if not args.get("image"):
        p.add("image", args.get("image"), "is required.", "give the training image, built from workloads/training/Dockerfile.")
    nodes = args.get("nodes", 1)
    if not is_int(nodes) or nodes < 1:
        p.add("nodes", nodes, "must be a whole number of at least 1.", "give the number of nodes in the gang.")
        nodes = 1
    gpus = args.get("gpus_per_node", pool.gpus_per_node if pool else 1)
    if not is_int(gpus) or gpus < 1:
        p.add("gpus_per_node", gpus, "must be a whole number of at least 1.", "give the GPUs (torchrun processes) per node.")
        gpus = 1
    if pool is not None:
        if gpus > pool.gpus_per_node:
            p.add("gpus_per_node", gpus, f"does not fit pool {pool.name!r}, whose nodes have {pool.gpus_per_node} x {pool.accelerator}.", f"use at most {pool.gpus_per_node}, or more nodes.")
        elif nodes > pool.max_nodes:
            p.add(
                "nodes",
                nodes,
                f"x {gpus} GPUs = {nodes * gpus} is beyond pool {pool.name!r}, which grows to {pool.max_nodes} nodes ({pool.max_nodes * pool.gpus_per_node} GPUs) per capacity type; the gang could never be admitted.",
                f"use at most {pool.max_nodes} nodes, or raise the pool's max_nodes.",
            )
    notice = cluster_plan.notice_seconds
    grace = args.get("termination_grace_period_seconds", cluster_plan.termination_grace_period_seconds)
    if not is_int(grace) or grace < 1:
        p.add("termination_grace_period_seconds", grace, "must be a whole number of seconds, at least 1.", "leave it unset to use the cluster's.")
        grace = cluster_plan.termination_grace_period_seconds
    elif grace > notice:
        p.add("termination_grace_period_seconds", grace, f"is longer than the {cluster_plan.facts.cloud} preemption notice of {notice} s; the node disappears first.", f"set it to at most {notice} (the cluster uses {cluster_plan.termination_grace_period_seconds}).")
    uses_bucket = args.get("checkpoint_url") is None
    if uses_bucket and cluster_plan.bucket is None:
        p.add("checkpoint_url", None, f"is required: SpotTrainingCluster {cluster_plan.name!r} has no checkpoint bucket, and a restarted pod starts from scratch without one.", "give an s3:// or gs:// URL, or add checkpoint_bucket to the cluster.")
    max_restarts = args.get("max_restarts", DEFAULT_MAX_RESTARTS)
    if not is_int(max_restarts) or max_restarts < 0:
        p.add("max_restarts", max_restarts, "must be a whole number, at least 0.", f"leave it unset for {DEFAULT_MAX_RESTARTS}.")
        max_restarts = DEFAULT_MAX_RESTARTS
    port = args.get("master_port", DEFAULT_MASTER_PORT)
    if not is_int(port) or not 1024 <= port <= 65535:
        p.add("master_port", port, "must be a port from 1024 to 65535.", f"leave it unset for {DEFAULT_MASTER_PORT}.")
        port = DEFAULT_MASTER_PORT
    ttl = args.get("ttl_seconds_after_finished")
    if ttl is not None and (not is_int(ttl) or ttl < 0):
        p.add("ttl_seconds_after_finished", ttl, "must be a whole number of seconds, at least 0.", "remove it to keep finished JobSets.")
        ttl = None
    env = args.get("env") or {}
    reserved_env = {"MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK"}
    for key in sorted(set(env) & reserved_env):
        p.add(f"env.{key}", env[key], "is set by the job itself (torchrun rendezvous).", "remove it.")
    data_command = args.get("data_command") or []
    if not isinstance(data_command, list) or not all(isinstance(x, str) for x in data_command):
        p.add("data_command", data_command, "must be a list of strings.", "give e.g. ['python', '-m', 'workloads.data.generate', '--out', '/data'].")
        data_command = []
    data_url = args.get("data_url")
    if data_url is not None:
        m = BUCKET_URL.match(data_url) if isinstance(data_url, str) else None
        if m is None:
            p.add("data_url", data_url, "is not an s3:// or gs:// URL.", "give the bucket URL of a workloads.data.generate directory.")
        elif cluster_plan.facts.cloud in ("aws", "gcp") and m.group(2) not in cluster_plan.data_buckets:
            p.add("data_url", data_url, f"bucket '{m.group(2)}' is not one of the training cluster's data_buckets {list(cluster_plan.data_buckets)}.", "add it to the SpotTrainingCluster's data_buckets, so the team's identity may read it.")
        if data_command:
            p.add("data_command", data_command, "and data_url both provide the dataset.", "keep one of them.")
    command = args.get("command") or []
    if not isinstance(command, list) or not all(isinstance(x, str) and x for x in command):
        p.add("command", command, "must be a list of non-empty strings.", "give e.g. ['python', '-m', 'workloads.training.launch'], or leave it unset for the image's ENTRYPOINT.")
        command = []
    for key in ("data_dir", "export_dir"):
        v = args.get(key)  # type: ignore[misc]
        if v is not None and (not isinstance(v, str) or not v.startswith("/") or v in ("/", "/dev/shm")):
            p.add(key, v, "must be an absolute directory inside the container (not / or /dev/shm).", "give e.g. '/data'.")
    p.raise_if_any()
    if team is None or pool is None:  # unreachable: both were reported above; narrows the types
        raise ComponentInputError("TrainingJob", name, [Problem("team/pool", (team_name, pool_name), "could not be resolved.", "check team and pool.")])
    share = gpus / pool.gpus_per_node
    cpu = max(1, math.floor(pool.vcpus_per_node * NODE_CPU_FRACTION * share))
    memory = max(1, math.floor(pool.memory_gib_per_node * NODE_MEMORY_FRACTION * share))
    return TrainingJobPlan(
        name=name,
        team=team,
        pool=pool,
        nodes=nodes,
        gpus_per_node=gpus,
        cpu_per_pod=cpu,
        memory_gib_per_pod=memory,
        shm_gib=max(1, math.floor(memory * SHM_FRACTION)),
        preset=args.get("preset", "tiny"),
        data_dir=args.get("data_dir", "/data"),
        data_command=tuple(data_command),
        command=tuple(command),
        export_dir=args.get("export_dir", "/outputs"),
        extra_args=tuple(args.get("extra_args") or ()),
        env=dict(env),
        max_restarts=max_restarts,
        master_port=port,
        termination_grace_period_seconds=grace,
        ttl_seconds_after_finished=ttl,
        cloud=cluster_plan.facts.cloud,
        region=cluster_plan.facts.region,
        uses_bucket=uses_bucket,
        tags=dict(cluster_plan.tags),
        data_url=data_url,
    )


__all__ = ["TrainingJobArgs", "TrainingJobPlan", "plan_training_job"]
