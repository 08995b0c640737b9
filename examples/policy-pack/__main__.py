"""An example CrossGuard pack over gpuplane's components (see README "Write your own policy pack").

The Pulumi CLI runs this file with this folder on ``sys.path``, so the pack's own module imports
as ``gpu_capacity``; ``gpuplane plan --policy-pack examples/policy-pack`` loads it the same way.
"""

from gpu_capacity import on_demand_gpus_bounded
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy

PolicyPack(
    name="acme-gpu-capacity",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="on-demand-gpus-bounded",
            description="Checks whether every on-demand GpuNodePool stays within the on-demand GPU cap.",
            validate=on_demand_gpus_bounded,
            config_schema=PolicyConfigSchema(properties={"maxOnDemandGpus": {"type": "integer", "default": 8}}),
        ),
    ],
)
