"""The model loop's in-cluster steps and their pure pieces (this package imports nothing of gpuplane's).

- ``gate``: the evaluation gate, a pure function of the challenger's and champion's held-out
  metrics (hit-rate@10, NDCG@10 and the popularity baseline's).
- ``canary``: the canary controller, a pure function of live stats per observation window.
- ``registry``: MLflow tracking + model registry (runs, metrics, registered models, aliases
  ``champion`` and ``challenger``) on any MLflow backend: SQLite and a directory locally,
  Postgres and a bucket on a cluster.
- ``python -m workloads.pipeline.evaluate``: evaluate an exported model on held-out data, log an
  MLflow run, register the model version, alias it ``challenger``.
- ``python -m workloads.pipeline.promote``: the gate as a step; exit 0 promoted, 3 rejected,
  2 bad input; prints and writes a JSON decision.
- ``python -m workloads.pipeline.faults``: the model server with injected infer errors, for the
  rollback drill (a model that fails at serving time).
"""
