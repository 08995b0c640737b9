"""SpotTrainingCluster, the component: validate, plan, create the GPU pools, then dispatch.

It creates one ``GpuNodePool`` child per (pool, capacity type), the cloud part of its backend
(``eks.py`` / ``gke.py``: checkpoint bucket, identities, interruption handling; ``kueue.py`` for
an existing cluster) and the Kubernetes part every backend shares (``kueue.py``: Kueue, JobSet
controller, queues, team service accounts). It assumes ``planner.py`` validated every argument.
"""

from __future__ import annotations

import pulumi

from components.cluster import KubernetesCluster
from components.errors import ComponentInputError, Problem
from components.node_pool import GpuNodePool, GpuNodePoolArgs
from components.training.planner import plan_training_cluster
from components.training.spec import CLUSTER_TYPE_TOKEN, SpotTrainingClusterArgs, TrainingClusterPlan


class SpotTrainingCluster(pulumi.ComponentResource):
    """Spot GPU pools with fallback, Kueue queues, JobSet, a checkpoint bucket and identities.

    Outputs: ``checkpoint_url`` (``s3://``/``gs://`` bucket URL or None), ``queues`` (team ->
    LocalQueue name), ``service_accounts`` (team -> ``namespace/name``). Attributes: ``plan``,
    ``cluster``, ``node_pools`` (GpuNodePool children by name), ``ready`` (resources a
    TrainingJob waits for: the Kueue/JobSet releases and the team's queue objects).
    """

    plan: TrainingClusterPlan
    cluster: KubernetesCluster
    node_pools: dict[str, GpuNodePool]
    checkpoint_url: pulumi.Output[str | None]
    """The checkpoint bucket's URL (``s3://`` or ``gs://``); None without a bucket."""
    queues: pulumi.Output[dict[str, str]]
    """Kueue LocalQueue name per team."""
    service_accounts: pulumi.Output[dict[str, str]]
    """Kubernetes service account (``namespace/name``) per team, bound to the cloud identity."""
    cloud_env: dict[str, str]
    """Environment every training pod on this cluster gets (e.g. ``AWS_REGION``)."""
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: SpotTrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        cluster = args.get("cluster")
        if not isinstance(cluster, KubernetesCluster):
            raise ComponentInputError("SpotTrainingCluster", name, [Problem("cluster", cluster, "is not a KubernetesCluster.", "pass the KubernetesCluster to train on.")])
        plan = plan_training_cluster(name, args, cluster.facts)  # raises before anything is registered
        # The summary must not wait on a child's output (children register only after this
        # component does), so a created bucket appears in it by resource name; see summary().
        super().__init__(CLUSTER_TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan, self.cluster = plan, cluster
        self.node_pools = {
            c.node_pool_name: GpuNodePool(c.node_pool_name, GpuNodePoolArgs(cluster=cluster, **c.node_pool_args), opts=pulumi.ResourceOptions(parent=self))  # type: ignore[typeddict-item]
            for pool in plan.pools
            for c in pool.capacities
        }
        if plan.implementation == "eks":
            from components.training.eks import create_cloud_resources
        elif plan.implementation == "gke":
            from components.training.gke import create_cloud_resources  # type: ignore[assignment]
        else:
            from components.training.kueue import create_cloud_resources  # type: ignore[assignment]
        cloud = create_cloud_resources(self, name, plan, cluster)
        from components.training.kueue import create_training_platform

        self.checkpoint_url = cloud.checkpoint_url
        self.cloud_env = dict(cloud.env)
        self.ready = create_training_platform(self, name, plan, cluster, cloud)
        self.queues = pulumi.Output.from_input({t.name: t.local_queue for t in plan.teams})
        self.service_accounts = pulumi.Output.from_input({t.name: f"{t.namespace}/{t.service_account}" for t in plan.teams})
        self.register_outputs(
            {
                "checkpoint_url": self.checkpoint_url,
                "queues": self.queues,
                "service_accounts": self.service_accounts,
            }
        )

    def checkpoint_url_for(self, team: str, job: str) -> pulumi.Output[str | None]:
        """Where a team's job keeps its checkpoints: ``<bucket>/<team>/<job>`` (None without a bucket)."""
        return self.checkpoint_url.apply(lambda url: f"{url}/{team}/{job}" if url else None)
