"""The gpuplane platform program: ``pulumi up`` on a stack of this repo.

Reads the typed stack config (stacks/config.py) and builds the platform through the recipes
(stacks/recipes.py). ``gpuplane plan`` runs this same file under the mock runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

# `pulumi up` runs this file with stacks/ as the working directory; make the repo importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from stacks.config import load_config  # noqa: E402
from stacks.recipes import (  # noqa: E402
    batch_jobs,
    feature_store,
    gpu_platform,
    inference,
    model_loop,
    observability,
    training,
    two_tier,
)

config = load_config()
platform = gpu_platform(config, name=f"{pulumi.get_stack()}-cluster")
store = feature_store(config, platform, name=f"{pulumi.get_stack()}-features")
endpoints = inference(config, platform)
two_tier_endpoints = two_tier(config, platform)
training_cluster, training_jobs = training(config, platform, name=f"{pulumi.get_stack()}-train")
registry, pipeline = model_loop(config, platform, name=f"{pulumi.get_stack()}-models")
monitoring = observability(config, platform, name=f"{pulumi.get_stack()}-observability")
batches = batch_jobs(config, platform)

pulumi.export("cloud", platform.cluster.facts.cloud)
pulumi.export("region", platform.cluster.facts.region)
pulumi.export("clusterName", platform.cluster.cluster_name)
pulumi.export("gpuPools", {name: pool.plan.summary() for name, pool in platform.pools.items()})
pulumi.export("endpoints", {name: e.url for name, e in endpoints.items()})
if two_tier_endpoints:
    pulumi.export("twoTierEndpoints", {name: e.url for name, e in two_tier_endpoints.items()})
if training_cluster is not None:
    pulumi.export("checkpointBucket", training_cluster.checkpoint_url)
    pulumi.export("trainingQueues", {t.name: f"{t.namespace}/{t.local_queue}" for t in training_cluster.plan.teams})
    pulumi.export("trainingJobs", {n: j.jobset_name for n, j in training_jobs.items()})
if store is not None:
    pulumi.export("featureStore", {"onlineEndpoint": store.online_endpoint, "registry": store.registry_uri, "featureStoreYaml": store.feature_store_yaml})
if registry is not None:
    pulumi.export("modelRegistry", {"trackingUri": registry.tracking_uri, "artifactUri": registry.artifact_uri})
if pipeline is not None:
    pulumi.export("modelPipeline", {"implementation": pipeline.plan.implementation, "namespace": pipeline.plan.namespace, "trigger": pipeline.plan.trigger.kind})
if monitoring is not None:
    pulumi.export("observability", {"grafana": monitoring.grafana_service, "dashboards": monitoring.dashboards, "alerts": monitoring.alerts})
if batches:
    pulumi.export("batchJobs", {n: {"tasks": j.tasks, "usdPerRun": j.usd_per_run, "launch": j.launch} for n, j in batches.items()})
