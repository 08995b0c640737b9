"""FeatureStore backend ``feast-kubernetes``: Feast on any KubernetesCluster, its bucket where gpuplane can make one.

On EKS it creates an S3 bucket (``components/aws/s3.py``) with a KMS key and an IRSA role for the
store's pods (s3.py); on GKE a GCS bucket and a Workload Identity service account (gcs.py); on
any other cluster it uses the given bucket URL. Redis, the Feast feature server and the
materialisation CronJob are feast.py's. Assumes the plan validated the args.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.feature_store.feast import create_feast_runtime, create_namespace_and_account, create_redis
from components.feature_store.spec import FeatureStoreArgs, FeatureStorePlan


def create_kubernetes_store(
    component: pulumi.ComponentResource, name: str, plan: FeatureStorePlan, args: FeatureStoreArgs
) -> dict[str, Any]:
    """The kubernetes target: bucket and identity by the cluster's cloud, Redis, the Feast runtime."""
    cluster = args["cluster"]
    bucket = plan.bucket
    assert bucket is not None  # planned: created on EKS/GKE, required (offline_bucket) elsewhere
    sa_name = f"{name}-feast"
    annotations: Any = None
    if cluster.facts.cloud == "aws":
        # Imported here: a store on another cloud's cluster never loads this cloud's SDK.
        from components.aws.s3 import create_bucket
        from components.feature_store.s3 import bucket_access_role, create_kms_key

        if bucket.create:
            key_arn = create_kms_key(component, name, plan, args)
            bucket_name: pulumi.Output[str] = create_bucket(component, name, plan, key_arn).bucket
        else:
            key_arn, bucket_name = None, pulumi.Output.from_input(bucket.given or "")
        role = bucket_access_role(component, name, plan, cluster, sa_name, bucket_name, key_arn)
        annotations = role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
    elif cluster.facts.cloud == "gcp":
        from components.feature_store.gcs import bucket_access_identity
        from components.feature_store.gcs import create_bucket as create_gcs_bucket

        bucket_name = create_gcs_bucket(component, name, plan, args).name if bucket.create else pulumi.Output.from_input(bucket.given or "")
        annotations = bucket_access_identity(component, name, plan, cluster, sa_name, bucket_name).annotations
    else:
        bucket_name = pulumi.Output.from_input(bucket.given or "")
    bucket_url = bucket_name.apply(bucket.url)
    ns, sa = create_namespace_and_account(component, name, plan, cluster, annotations)
    redis = create_redis(component, name, plan, cluster, args, ns)
    yaml_text = bucket_url.apply(lambda url: plan.render_yaml(url) or "")
    create_feast_runtime(component, name, plan, cluster, args, yaml_text=yaml_text, bucket_url=bucket_url, depends_on=[ns, sa, *redis])
    return {
        "feature_store_yaml": yaml_text,
        "registry_uri": bucket_url.apply(lambda url: f"{url}/feast/registry.pb"),
        "offline_uri": bucket_url.apply(lambda url: f"{url}/features"),
        "resources": {"redis": f"{plan.redis.host}:{plan.redis.port}" if plan.redis else None, "namespace": plan.namespace},
    }
