"""Observability: metrics, dashboards and alerts as code for one cluster (kube-prometheus-stack).

Public names of the capability. ``spec.py``: args, plan, ``plan_observability``; backend
``prometheus.py``; ``component.py``: the ComponentResource.
"""

from components.observability.component import Observability
from components.observability.spec import FEATURES, TYPE_TOKEN, ObservabilityArgs, ObservabilityPlan, plan_observability

__all__ = ["FEATURES", "TYPE_TOKEN", "Observability", "ObservabilityArgs", "ObservabilityPlan", "plan_observability"]
