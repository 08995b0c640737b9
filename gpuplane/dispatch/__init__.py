"""The cost-aware MultiKueue dispatcher: ``ranking.py`` (pure decision), ``kube.py`` (a small API client),
``controller.py`` (the External-mode loop), ``cli.py`` (``gpuplane dispatch run``).

It belongs to ``gpuplane`` (the runtime side), not ``components`` (which create resources and never
talk to clusters) nor ``workloads`` (which import nothing of ours): it reads the catalog and the
policy config.
"""

from gpuplane.dispatch.ranking import Decision, JobRequest, Residency, Score, WorkerState, rank

__all__ = ["Decision", "JobRequest", "Residency", "Score", "WorkerState", "rank"]
