"""TrainingFederation, the component: validate and plan (the mirror check included), then create.

It creates what ``multikueue.py`` creates on the manager and on every worker not declared as
managed elsewhere, and nothing cloud-side: the clusters, their GPU pools and their identities are
the KubernetesClusters' and GpuNodePools' (or SpotTrainingClusters') the caller passes in.
"""

from __future__ import annotations

import pulumi

from components.federation.planner import plan_federation
from components.federation.spec import FEDERATION_TYPE_TOKEN, FederationPlan, TrainingFederationArgs


class TrainingFederation(pulumi.ComponentResource):
    """A Kueue MultiKueue manager and mirrored workers; jobs submitted to the manager run on a worker.

    Outputs: ``queues`` (team -> LocalQueue ``namespace/name`` on the manager), ``admission_check``,
    ``workers`` (worker -> cloud/region), ``dispatcher_name``. Attributes: ``plan``, ``ready``
    (resources per cluster: ``manager`` and each worker name).
    """

    plan: FederationPlan
    ready: dict[str, list[pulumi.Resource]]
    queues: pulumi.Output[dict[str, str]]
    """The LocalQueue (``namespace/name``) per team on the manager; a job labelled with it is dispatched."""
    admission_check: pulumi.Output[str]
    """The MultiKueue AdmissionCheck's name."""
    workers: pulumi.Output[dict[str, str]]
    """Each worker's ``cloud/region``."""
    dispatcher_name: pulumi.Output[str]
    """The Kueue ``multiKueue.dispatcherName`` the manager runs with."""

    def __init__(self, name: str, args: TrainingFederationArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_federation(name, args)  # raises before anything is registered
        super().__init__(FEDERATION_TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        from components.federation.multikueue import create_federation

        clusters = {w["name"]: w["cluster"] for w in args["workers"]}
        self.ready = create_federation(self, name, plan, args["manager"], clusters)
        self.queues = pulumi.Output.from_input({t.name: f"{t.namespace}/{plan.queue}" for t in plan.teams})
        self.admission_check = pulumi.Output.from_input(plan.admission_check)
        self.workers = pulumi.Output.from_input({w.name: f"{w.cloud}/{w.region or ''}" for w in plan.workers})
        self.dispatcher_name = pulumi.Output.from_input(plan.dispatcher_name)
        self.register_outputs(
            {
                "queues": self.queues,
                "admission_check": self.admission_check,
                "workers": self.workers,
                "dispatcher_name": self.dispatcher_name,
            }
        )
