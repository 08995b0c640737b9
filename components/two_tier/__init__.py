"""TwoTierEndpoint: a steady Knative tier and a scale-to-zero serverless burst tier behind one router.

Public names of the capability. ``spec.py``: args, plan, ``plan_two_tier``; ``router.py``: the
Envoy router backend; ``component.py``: the ComponentResource.
"""

from components.two_tier.component import TwoTierEndpoint
from components.two_tier.spec import BURST_PLATFORMS, TYPE_TOKEN, TwoTierEndpointArgs, TwoTierPlan, plan_two_tier

__all__ = ["BURST_PLATFORMS", "TYPE_TOKEN", "TwoTierEndpoint", "TwoTierEndpointArgs", "TwoTierPlan", "plan_two_tier"]
