"""Reference serving workload: the next-item model behind the Open Inference Protocol v2.

``python -m workloads.serving`` runs the model server (``__main__``); ``python -m
workloads.serving.activator`` runs the local scale-to-zero activator in front of it. Modules:
``protocol`` (OIP parsing and validation, pure), ``batcher`` (dynamic batching), ``model_runner``
(load and predict, the only torch user), ``history`` (pluggable user-history lookup), ``metrics``,
``app`` (HTTP routes). Importing this package imports nothing heavy.
"""
