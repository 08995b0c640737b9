"""FeatureStore's planner: ``plan_feature_store`` (args + catalog -> a frozen ``FeatureStorePlan``).

Pure and table-tested: it checks target, engine, stores, Redis, bucket, schedule and project,
collects every problem and raises one ``ComponentInputError`` before any child resource exists;
the rendered ``feature_store.yaml`` is checked against the templates' parameter spec. Creates nothing.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from components.catalog import Catalog, load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError, Problem, Problems
from components.feature_store.spec import (
    IMPLEMENTATIONS,
    OFFLINE_STORES,
    ONLINE_STORES,
    REDIS_PASSWORD_ENV,
    REDIS_PORT,
    TARGETS,
    BucketPlan,
    FeatureStoreArgs,
    FeatureStorePlan,
    RedisArgs,
    RedisPlan,
    bigtable_instance_id,
    datastore_database_id,
    feature_support,
    load_feature_views,
    sagemaker_group_name,
    yaml_problems,
)
from components.features import Feature

_KNOWN_KEYS = set(FeatureStoreArgs.__annotations__)
_REDIS_KEYS = set(RedisArgs.__annotations__)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_BUCKET_URL = re.compile(r"(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])/?")
_CRON = re.compile(r"(\S+\s+){4}\S+")
_GCP_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
# Only for these targets and engines does each argument mean something.
_APPLIES = {
    "cluster": "engine feast on kubernetes, aws and gcp",
    "image": "engine feast on kubernetes, aws and gcp",
    "namespace": "engine feast on kubernetes, aws and gcp",
    "server_replicas": "engine feast on kubernetes, aws and gcp",
    "events_uri": "engine feast on kubernetes, aws and gcp",
    "redis": "target kubernetes",
    "credentials_secret": "target kubernetes",
    "region": "targets aws and gcp",
    "gcp_project": "target gcp",
    "kms_key_arn": "target aws",
    "kms_key_name": "target gcp",
    "offline_bucket": "targets kubernetes, aws and gcp",
    "online_min_nodes": "bigtable online stores",
    "online_max_nodes": "bigtable online stores",
    "materialize_schedule": "targets kubernetes, aws and gcp",
}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def plan_feature_store(name: str, args: FeatureStoreArgs, catalog: Catalog | None = None) -> FeatureStorePlan:
    """Turn args into a frozen plan, or raise ``ComponentInputError`` listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("FeatureStore", name)
    for key in sorted(set(args) - _KNOWN_KEYS):
        p.add(key, args[key], "is not an argument of FeatureStore.", f"use one of {sorted(_KNOWN_KEYS)}.")  # type: ignore[literal-required]
    target = args.get("target")
    engine = args.get("engine", "feast")
    if target not in TARGETS:
        p.add("target", target, "is not a feature store target.", f"use one of {list(TARGETS)}.")
        p.raise_if_any()
    if engine not in ("feast", "managed"):
        p.add("engine", engine, "is not an engine.", "use 'feast' or 'managed'.")
        engine = "feast"
    impl_key = (str(target), engine)
    implementation = IMPLEMENTATIONS.get(impl_key) or IMPLEMENTATIONS[(str(target), "feast")]
    requested = [(Feature.MANAGED_ONLINE_STORE, "engine", engine)] if engine == "managed" else []
    p.extend(feature_support(implementation).check(requested))
    if impl_key not in IMPLEMENTATIONS:
        p.raise_if_any()  # the feature check above explained why (e.g. managed on kubernetes)
    uses_cluster = engine == "feast" and target != "local"

    # -- which arguments apply --------------------------------------------------------------
    applies = {
        "cluster": uses_cluster, "image": uses_cluster, "namespace": uses_cluster, "server_replicas": uses_cluster,
        "events_uri": uses_cluster, "redis": target == "kubernetes", "credentials_secret": target == "kubernetes",
        "region": target in ("aws", "gcp"), "gcp_project": target == "gcp", "kms_key_arn": target == "aws",
        "kms_key_name": target == "gcp", "offline_bucket": target != "local", "materialize_schedule": target != "local",
    }
    for arg, ok in applies.items():
        if arg in args and not ok:
            p.add(arg, args[arg], f"has no effect here: it applies to {_APPLIES[arg]}.", "remove it.")  # type: ignore[literal-required]

    # -- project and names ----------------------------------------------------------------------
    project = args.get("project", re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_") or "gpuplane")
    if not isinstance(project, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]{0,39}", project):
        p.add("project", project, "is not a valid Feast project name.", "use letters, digits and underscores (at most 40), starting with a letter or digit.")
        project = "gpuplane"
    namespace = args.get("namespace", name)
    if not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace):
        p.add("namespace", namespace, "is not a valid Kubernetes namespace name.", "use lowercase letters, digits and '-' (at most 63).")

    # -- cluster ------------------------------------------------------------------------------
    cluster = args.get("cluster")
    facts: ClusterFacts | None = None
    if uses_cluster:
        if not isinstance(cluster, KubernetesCluster):
            p.add("cluster", cluster, f"{implementation} runs the Feast feature server and materialisation job in a cluster.", "pass a KubernetesCluster.")
        else:
            facts = cluster.facts
            if target in ("aws", "gcp") and facts.cloud != target:
                what = "an EKS cluster (IRSA)" if target == "aws" else "a GKE cluster (Workload Identity)"
                p.add("cluster", facts.name, f"is a {facts.cloud} cluster; target {target} needs {what} for the pods' cloud identity.", f"pass a KubernetesCluster with cloud='{target}', or use target 'kubernetes'.")
        if "image" not in args:
            p.add("image", None, "is required: the server and the CronJob run gpuplane's features workload.", "set it to an image built from workloads/features/Dockerfile (the `features` extra).")

    # -- region ---------------------------------------------------------------------------------
    region: str | None = None
    zones: tuple[str, ...] = ()
    if target in ("aws", "gcp"):
        region = args.get("region") or (facts.region if facts else None)
        known = catalog.region(str(target), region or "")
        if known is None:
            p.add("region", region, f"is not a {target} region in the catalog.", f"use one of {catalog.region_names(str(target))}.")
        else:
            zones = known.zones
        if facts and facts.region and region and region != facts.region:
            p.add("region", region, f"differs from the cluster's region {facts.region}: every online lookup would cross regions.", f"set it to {facts.region!r} or drop it.")
    elif target == "kubernetes" and facts is not None:
        region, zones = facts.region, facts.zones

    gcp_project: str | None = None
    if target == "gcp":
        given = args.get("gcp_project")
        if given is None and cluster is not None and isinstance(getattr(cluster, "project", None), str):
            given = cluster.project  # type: ignore[assignment]
        if not isinstance(given, str) or not _GCP_PROJECT.fullmatch(given):
            p.add("gcp_project", given, "is required for gcp and must be a project id (6-30 lowercase letters, digits, '-').", "set it to the Google Cloud project id.")
        else:
            gcp_project = given

    # -- stores ---------------------------------------------------------------------------------
    online_choices, offline_choices = ONLINE_STORES[impl_key], OFFLINE_STORES[impl_key]
    online = args.get("online_store", online_choices[0])
    if online not in online_choices:
        p.add("online_store", online, f"is not available for {implementation}.", f"use one of {list(online_choices)}.")
        online = online_choices[0]
    offline = args.get("offline_store", offline_choices[0])
    if offline not in offline_choices:
        p.add("offline_store", offline, f"is not available for {implementation}.", f"use one of {list(offline_choices)}.")
        offline = offline_choices[0]
    min_nodes, max_nodes = args.get("online_min_nodes", 1), args.get("online_max_nodes", 3)
    if online != "bigtable":
        for arg in ("online_min_nodes", "online_max_nodes"):
            if arg in args:
                p.add(arg, args[arg], f"applies only to bigtable online stores (this one is {online}).", "remove it.")  # type: ignore[literal-required]
    elif not (_is_int(min_nodes) and _is_int(max_nodes) and 1 <= min_nodes <= max_nodes <= 1000):
        p.add("online_max_nodes", [min_nodes, max_nodes], "needs 1 <= online_min_nodes <= online_max_nodes <= 1000.", "set whole numbers in that order.")
        min_nodes, max_nodes = 1, 3

    # -- bucket ---------------------------------------------------------------------------------
    bucket: BucketPlan | None = None
    if target != "local":
        cloud_of_bucket = str(target) if target != "kubernetes" else (facts.cloud if facts else "")
        scheme: Literal["s3", "gs"] | None = {"aws": "s3", "gcp": "gs"}.get(cloud_of_bucket)  # type: ignore[assignment]
        given_bucket = args.get("offline_bucket")
        if given_bucket is not None:
            m = _BUCKET_URL.fullmatch(given_bucket) if isinstance(given_bucket, str) else None
            if m is None:
                p.add("offline_bucket", given_bucket, "is not a bucket URL.", "write it as s3://name or gs://name (no path).")
            elif scheme and m.group(1) != scheme:
                p.add("offline_bucket", given_bucket, f"is on {m.group(1)}://, but this store's cloud uses {scheme}://.", f"give an {scheme}:// bucket or drop it to create one.")
            else:
                bucket = BucketPlan(create=False, scheme=m.group(1), given=m.group(2))  # type: ignore[arg-type]
        elif scheme is None:
            if facts is not None:
                p.add("offline_bucket", None, "is required on an existing cluster: the component cannot create a bucket on unknown infrastructure.", "give an s3:// or gs:// bucket (MinIO works with credentials_secret).")
        else:
            bucket = BucketPlan(create=True, scheme=scheme)
    creds = args.get("credentials_secret")
    if creds is not None and (not isinstance(creds, str) or not _DNS_LABEL.fullmatch(creds)):
        p.add("credentials_secret", creds, "is not a valid Secret name.", "give the name of a Secret in the namespace.")

    # -- redis ----------------------------------------------------------------------------------
    redis: RedisPlan | None = None
    if target == "kubernetes":
        r: dict[str, Any] = dict(args.get("redis") or {})
        for k in sorted(set(r) - _REDIS_KEYS):
            p.add(f"redis.{k}", r[k], "is not an argument of RedisArgs.", f"use one of {sorted(_REDIS_KEYS)}.")
        endpoint = r.get("endpoint")
        host, port = f"{name}-redis.{namespace}.svc.cluster.local", REDIS_PORT
        if endpoint is not None:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})", str(endpoint))
            if m is None or not 0 < int(m.group(2)) < 65536:
                p.add("redis.endpoint", endpoint, "is not host:port.", "write it like redis.example.internal:6379.")
            else:
                host, port = m.group(1), int(m.group(2))
            if "password" not in r:
                p.add("redis.password", None, "is required with redis.endpoint: the store never talks to Redis without auth.", "pass the endpoint's password (a secret).")
            for k in ("storage_gib", "storage_class", "memory_gib"):
                if k in r:
                    p.add(f"redis.{k}", r[k], "applies only to the in-cluster Redis.", "remove it, or drop redis.endpoint.")
        storage = r.get("storage_gib", 10)
        if not _is_int(storage) or storage < 1:
            p.add("redis.storage_gib", storage, "must be a whole number of GiB, at least 1.", "set the volume size (default 10).")
            storage = 10
        memory = r.get("memory_gib", 2)
        if not isinstance(memory, int | float) or isinstance(memory, bool) or memory <= 0:
            p.add("redis.memory_gib", memory, "must be a positive number of GiB.", "set the memory limit (default 2).")
            memory = 2
        redis = RedisPlan(
            create=endpoint is None,
            host=host,
            port=port,
            tls=bool(r.get("tls", False)),
            storage_gib=storage,
            storage_class=r.get("storage_class"),
            memory_gib=float(memory),
            generate_password=endpoint is None and "password" not in r,
        )

    # -- server and schedule ------------------------------------------------------------------
    replicas = args.get("server_replicas", 2)
    if not _is_int(replicas) or replicas < 1:
        p.add("server_replicas", replicas, "must be a whole number of at least 1.", "set it (2 keeps lookups up during a node drain).")
        replicas = 2
    schedule = args.get("materialize_schedule", "0 * * * *")
    if not isinstance(schedule, str) or not _CRON.fullmatch(schedule.strip()):
        p.add("materialize_schedule", schedule, "is not a five-field cron schedule.", "write it like '0 * * * *' (hourly).")
        schedule = "0 * * * *"
    events_uri = args.get("events_uri")
    if events_uri is not None and (not isinstance(events_uri, str) or not re.fullmatch(r"(s3|gs)://[a-z0-9][a-z0-9._-]*(/[A-Za-z0-9_./=-]*)?", events_uri)):
        p.add("events_uri", events_uri, "is not a bucket URL.", "write it like s3://bucket/events.")

    # -- names that clouds constrain ------------------------------------------------------------
    views = load_feature_views()
    if implementation == "sagemaker-feature-store":
        for v in views:
            group = sagemaker_group_name(name, v.name)
            if len(group) > 64:
                p.add("name", name, f"makes the SageMaker feature group name {group!r} longer than 64 characters.", "use a shorter resource name.")
                break
    if target == "gcp" and online == "bigtable" and engine == "feast" and not 6 <= len(bigtable_instance_id(name)) <= 33:
        p.add("name", name, "cannot make a Bigtable instance id (6-33 characters).", "use a resource name of 2-26 characters.")
    p.raise_if_any()

    tags = {**(facts.tags if facts else {}), **dict(args.get("tags") or {})}
    plan = FeatureStorePlan(
        name=name,
        target=str(target),
        engine=engine,
        implementation=implementation,
        cloud={"local": "local", "aws": "aws", "gcp": "gcp"}.get(str(target), facts.cloud if facts else "kubernetes"),
        project=project,
        region=region,
        zones=tuple(zones),
        gcp_project=gcp_project,
        namespace=namespace,
        online_store=online,
        offline_store=offline,
        bucket=bucket,
        redis=redis,
        views=views,
        server_replicas=replicas,
        materialize_schedule=schedule.strip(),
        online_min_nodes=min_nodes,
        online_max_nodes=max_nodes,
        deletion_protection=bool(args.get("deletion_protection", False)),
        tags=tags,
        uses_cluster=uses_cluster,
        yaml_params=_yaml_params(name, str(target), engine, project, region, gcp_project, online, offline, redis),
    )
    if engine == "feast":
        example = bucket.url("example-bucket") if bucket else "s3://example-bucket"
        problems = yaml_problems(plan.target, {k: v.replace("{bucket}", example) if isinstance(v, str) else v for k, v in plan.yaml_params.items()})
        if problems:  # a parameter the checks above let through: still one error, before anything exists
            raise ComponentInputError("FeatureStore", name, [Problem("feature_store.yaml", plan.yaml_params, "; ".join(problems), "fix the arguments named.")])
    return plan


def _yaml_params(
    name: str, target: str, engine: str, project: str, region: str | None, gcp_project: str | None,
    online: str, offline: str, redis: RedisPlan | None,
) -> dict[str, Any]:
    if engine != "feast":
        return {}
    if target == "local":
        return {"project": project}
    params: dict[str, Any] = {"project": project}
    if target == "kubernetes":
        assert redis is not None  # planned above for this target
        params.update(registry="{bucket}/feast/registry.pb", redis_host=redis.host, redis_port=redis.port, redis_ssl=redis.tls, redis_password_env=REDIS_PASSWORD_ENV)
    elif target == "aws":
        params.update(registry="{bucket}/feast/registry.pb", region=region, offline_store=offline)
        if offline == "athena":
            params.update(athena_database=project.lower(), athena_workgroup=f"{name}-feast", athena_s3_staging_location="{bucket}/athena-results")
    else:
        params.update(registry="{bucket}/feast/registry.pb", project_id=gcp_project, online_store=online, bigquery_dataset=project, bigquery_location=region)
        if online == "bigtable":
            params["bigtable_instance"] = bigtable_instance_id(name)
        else:
            params.update(datastore_namespace=project, datastore_database=datastore_database_id(name))
    return params


