"""Batch inference of the reference model over the event log, as N tasks of a serverless batch platform.

``task.py`` (one task's shard, chunked and resumable), ``taskenv.py`` (Cloud Run / AWS Batch /
Kubernetes task-index variables), ``manifest.py`` (plan and exactly-once manifest), ``dataset.py``
(objects and items), ``store.py`` (fsspec, atomic writes), ``runner.py`` (the local runner),
``trigger.py`` (the local bucket trigger). Entry point: ``python -m workloads.batch``.
"""
