"""TrainingFederation: a Kueue MultiKueue manager and mirrored worker clusters across clouds.

Public names of the capability. ``spec.py``: args, plan, names; ``manifests.py``: pure manifests
and the mirror check; ``planner.py``: ``plan_federation``; ``multikueue.py``: the resources;
``component.py``: the ComponentResource. The cost-aware dispatcher that picks a worker per job
is a runtime program (gpuplane/dispatch), not a resource.
"""

from components.federation.component import TrainingFederation
from components.federation.manifests import (
    kubeconfig_secret_manifest,
    manager_objects,
    mirror_mismatches,
    worker_objects,
)
from components.federation.planner import catalog_usd_per_gpu_hour, plan_federation
from components.federation.spec import (
    ANNOTATION_ACCELERATOR,
    ANNOTATION_CAPACITY,
    ANNOTATION_CLOUD,
    ANNOTATION_NOTICE,
    ANNOTATION_PRICES,
    ANNOTATION_REGION,
    DISPATCHER_NAMES,
    FEDERATION_TYPE_TOKEN,
    MULTIKUEUE_CONTROLLER,
    FederationPlan,
    FlavorPlan,
    TrainingFederationArgs,
)

__all__ = [
    "ANNOTATION_ACCELERATOR",
    "ANNOTATION_CAPACITY",
    "ANNOTATION_CLOUD",
    "ANNOTATION_NOTICE",
    "ANNOTATION_PRICES",
    "ANNOTATION_REGION",
    "DISPATCHER_NAMES",
    "FEDERATION_TYPE_TOKEN",
    "MULTIKUEUE_CONTROLLER",
    "FederationPlan",
    "FlavorPlan",
    "TrainingFederation",
    "TrainingFederationArgs",
    "catalog_usd_per_gpu_hour",
    "kubeconfig_secret_manifest",
    "manager_objects",
    "mirror_mismatches",
    "plan_federation",
    "worker_objects",
]
