"""SpotTrainingCluster's planner: ``plan_training_cluster`` turns args, cluster facts and the catalog
into a frozen ``TrainingClusterPlan`` (pools per capacity type, queues, teams, bucket, grace period).

Pure and table-tested: it collects every problem and raises one ``ComponentInputError`` before any
child exists. Each training pool is planned through GpuNodePool's own planner, so a pool that
``GpuNodePool`` would reject is rejected here, with the same reason. Creates nothing.
"""

from __future__ import annotations

import re
from typing import Any

from components.catalog import Catalog, load_catalog
from components.cluster import ClusterFacts
from components.errors import ComponentInputError, Problems
from components.features import Feature, FeatureSupport
from components.node_pool import GpuNodePoolArgs, plan_node_pool
from components.node_pool import feature_support as node_pool_features
from components.training.spec import (
    BUCKET_URL,
    CAPACITY_NAMES,
    DEFAULT_FALLBACK,
    DEFAULT_NONCURRENT_RETENTION_DAYS,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_SERVICE_ACCOUNT,
    LABEL_TRAINING_POOL,
    BucketPlan,
    CapacityPoolPlan,
    CheckpointBucketArgs,
    SpotTrainingClusterArgs,
    TeamArgs,
    TeamPlan,
    TrainingClusterPlan,
    TrainingPoolArgs,
    TrainingPoolPlan,
    default_grace_seconds,
    dns_label,
    feature_support,
    grace_margin_seconds,
    implementation_of,
    is_int,
)


def _interruption_handling(facts: ClusterFacts, spot: bool) -> str:
    if not spot:
        return "none"
    if facts.cloud == "aws":
        return "karpenter-interruption-queue" if facts.uses_karpenter else "aws-node-termination-handler"
    if facts.cloud == "gcp":
        return "gke-graceful-node-shutdown"
    return "none"


_POOL_KEYS = set(TrainingPoolArgs.__annotations__)
_TEAM_KEYS = set(TeamArgs.__annotations__)
_BUCKET_KEYS = set(CheckpointBucketArgs.__annotations__)
_CLUSTER_KEYS = set(SpotTrainingClusterArgs.__annotations__)
_NODE_POOL_KEYS = ("accelerator", "accelerators_per_node", "instance_type", "max_nodes", "min_nodes", "zones", "disk_size_gib", "efa", "compact_placement")


def plan_training_cluster(name: str, args: SpotTrainingClusterArgs, facts: ClusterFacts, catalog: Catalog | None = None) -> TrainingClusterPlan:
    """Validate the args and decide pools, queues, bucket and grace period; raise once listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("SpotTrainingCluster", name)
    impl = implementation_of(facts)
    support = feature_support(impl)
    for key in sorted(set(args) - _CLUSTER_KEYS):
        p.add(key, args[key], "is not an argument of SpotTrainingCluster.", f"use one of {sorted(_CLUSTER_KEYS)}.")  # type: ignore[literal-required]
    dns_label(p, "name", name, "training cluster name", max_len=40)

    # -- capacity fallback ---------------------------------------------------------------------
    default_fallback = list(DEFAULT_FALLBACK) if facts.cloud in ("aws", "gcp") else ["on_demand"]
    fallback_arg = args.get("capacity_fallback", default_fallback)
    fallback: list[str] = []
    if not isinstance(fallback_arg, (list, tuple)) or not fallback_arg:
        p.add("capacity_fallback", fallback_arg, "must list at least one capacity type.", "give e.g. ['spot', 'on_demand'].")
    else:
        for i, cap in enumerate(fallback_arg):
            if cap not in CAPACITY_NAMES:
                p.add(f"capacity_fallback[{i}]", cap, "is not a capacity type.", f"use {list(CAPACITY_NAMES)}.")
            elif cap in fallback:
                p.add(f"capacity_fallback[{i}]", cap, "appears twice.", "list each capacity type once, in the order to try them.")
            else:
                fallback.append(cap)
    spot = "spot" in fallback
    requested: list[tuple[Feature, str, object]] = [(Feature.GANG_SCHEDULING, "teams", "kueue")]
    if spot:
        requested.append((Feature.SPOT, "capacity_fallback", list(fallback)))
        if support.supports(Feature.SPOT):  # one message is enough where spot itself is missing
            requested.append((Feature.INTERRUPTION_HANDLING, "capacity_fallback", list(fallback)))
    if "reserved" in fallback:
        requested.append((Feature.RESERVED_CAPACITY, "capacity_fallback", list(fallback)))

    # -- checkpoint bucket ---------------------------------------------------------------------
    bucket: BucketPlan | None = None
    bucket_args = args.get("checkpoint_bucket")
    if bucket_args is not None:
        if not isinstance(bucket_args, dict):
            p.add("checkpoint_bucket", bucket_args, "must be a dict.", "give {} to create a bucket or {'url': 's3://...'} to use one.")
        else:
            bucket = _plan_bucket(p, bucket_args, facts, requested)
    elif spot:
        p.add(
            "checkpoint_bucket",
            None,
            "is required with spot capacity: a preempted job resumes only from a checkpoint outside the node.",
            "add checkpoint_bucket={} to create one, or {'url': 's3://...' / 'gs://...'} to use an existing bucket.",
        )
    p.extend(support.check(requested))

    # -- grace period --------------------------------------------------------------------------
    notice = catalog.notice_seconds(facts.cloud)
    grace = args.get("termination_grace_period_seconds", default_grace_seconds(notice))
    if not is_int(grace) or grace < 1:
        p.add("termination_grace_period_seconds", grace, "must be a whole number of seconds, at least 1.", f"leave it unset for {default_grace_seconds(notice)} s.")
        grace = default_grace_seconds(notice)
    elif grace > notice:
        p.add(
            "termination_grace_period_seconds",
            grace,
            f"is longer than the {facts.cloud} preemption notice of {notice} s: the node is gone before the pod's grace period ends, so a checkpoint taken late is lost.",
            f"set it to at most {notice} (default {default_grace_seconds(notice)}, which leaves {grace_margin_seconds(notice)} s for the drain).",
        )

    # -- pools ---------------------------------------------------------------------------------
    pools: list[TrainingPoolPlan] = []
    pool_args = args.get("pools")
    if not isinstance(pool_args, list) or not pool_args:
        p.add("pools", pool_args, "must list at least one GPU pool.", "give e.g. [{'name': 'h100', 'accelerator': 'H100', 'max_nodes': 2}].")
        pool_args = []
    seen_pools: set[str] = set()
    for i, spec in enumerate(pool_args):
        path = f"pools[{i}]"
        if not isinstance(spec, dict):
            p.add(path, spec, "must be a dict.", "give {'name': ..., 'accelerator': ...}.")
            continue
        for key in sorted(set(spec) - _POOL_KEYS):
            p.add(f"{path}.{key}", spec[key], "is not a field of a training pool.", f"use one of {sorted(_POOL_KEYS)}.")  # type: ignore[literal-required]
        pname = spec.get("name")
        if not dns_label(p, f"{path}.name", pname, "pool name", max_len=20):
            continue
        if pname in seen_pools:
            p.add(f"{path}.name", pname, "is used by another pool.", "give every pool its own name.")
            continue
        seen_pools.add(pname)  # type: ignore[arg-type]
        _check_node_labels(p, path, spec, facts)
        # Capacity types the implementation lacks were reported above; plan node pools for the rest.
        node_fallback = [c for c in fallback if c == "on_demand" or (c == "spot" and support.supports(Feature.SPOT))]
        plan = _plan_pool(p, name, path, spec, node_fallback, facts, catalog)
        if plan is not None:
            pools.append(plan)

    if facts.cloud not in ("aws", "gcp") and len(pools) > 1:
        # One flavor per pool: pools that select the same nodes would let Kueue admit an H100 job onto L4s.
        by_selector: dict[tuple[tuple[str, str], ...], str] = {}
        index = {spec.get("name"): i for i, spec in enumerate(pool_args) if isinstance(spec, dict)}
        for pool in pools:
            selector = tuple(sorted(pool.node_selector.items()))
            if selector in by_selector:
                i = index[pool.name]
                p.add(
                    f"pools[{i}].node_labels",
                    pool_args[i].get("node_labels"),
                    f"select the same nodes as pool {by_selector[selector]!r} ({dict(selector)}): on an existing cluster a pool's "
                    "flavor and jobs find its nodes only by these labels, so Kueue could admit one pool's job onto the other's nodes.",
                    "give each pool node_labels its nodes alone carry, e.g. {'nvidia.com/gpu.product': 'NVIDIA-L4'}.",
                )
            by_selector.setdefault(selector, pool.name)

    # -- teams and queues ----------------------------------------------------------------------
    sa_name = args.get("service_account_name", DEFAULT_SERVICE_ACCOUNT)
    dns_label(p, "service_account_name", sa_name, "service account name")
    team_args = args.get("teams", [{"name": "training", "namespace": "training"}])
    teams_raw: list[tuple[str, str, dict[str, int]]] = []
    if not isinstance(team_args, list) or not team_args:
        p.add("teams", team_args, "must list at least one team.", "give e.g. [{'name': 'recs'}], or leave it unset for one 'training' team.")
        team_args = []
    seen_teams: set[str] = set()
    seen_ns: dict[str, str] = {}
    for i, team in enumerate(team_args):
        path = f"teams[{i}]"
        if not isinstance(team, dict):
            p.add(path, team, "must be a dict.", "give {'name': ..., 'namespace': ..., 'gpu_quota': {...}}.")
            continue
        for key in sorted(set(team) - _TEAM_KEYS):
            p.add(f"{path}.{key}", team[key], "is not a field of a team.", f"use one of {sorted(_TEAM_KEYS)}.")  # type: ignore[literal-required]
        tname = team.get("name")
        if not dns_label(p, f"{path}.name", tname, "team name", max_len=20):
            continue
        if tname in seen_teams:
            p.add(f"{path}.name", tname, "is used by another team.", "give every team its own name.")
            continue
        seen_teams.add(tname)  # type: ignore[arg-type]
        ns = team.get("namespace", tname)
        if dns_label(p, f"{path}.namespace", ns, "namespace"):
            if ns in seen_ns:
                p.add(f"{path}.namespace", ns, f"is already team {seen_ns[ns]!r}'s namespace; each team's service account and identity live in its own.", "give each team its own namespace.")
            seen_ns[str(ns)] = str(tname)
        quota = team.get("gpu_quota") or {}
        if not isinstance(quota, dict):
            p.add(f"{path}.gpu_quota", quota, "must map pool names to GPU counts.", "give e.g. {'h100': 16}.")
            quota = {}
        clean: dict[str, int] = {}
        for pool_name, gpus in quota.items():
            pool_plan = next((x for x in pools if x.name == pool_name), None)
            if pool_name not in seen_pools:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, "names no pool of this training cluster.", f"use one of {sorted(seen_pools)}.")
            elif not is_int(gpus) or gpus < 0:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, "must be a whole number of GPUs, at least 0.", "give the GPUs the team is guaranteed.")
            elif pool_plan is not None and gpus % pool_plan.gpus_per_node:
                p.add(f"{path}.gpu_quota.{pool_name}", gpus, f"is not a multiple of the pool's {pool_plan.gpus_per_node} GPUs per node, so part of it could never be used.", f"use a multiple of {pool_plan.gpus_per_node}.")
            else:
                clean[pool_name] = gpus
        teams_raw.append((tname, ns, clean))  # type: ignore[arg-type]
    per_team = any(q for _, _, q in teams_raw)
    shared_queue: str | None = None
    if per_team:
        for pool in pools:
            total = sum(q.get(pool.name, 0) for _, _, q in teams_raw)
            capacity = pool.max_nodes * pool.gpus_per_node
            if total > capacity:
                p.add(
                    "teams[*].gpu_quota",
                    {t: q.get(pool.name, 0) for t, _, q in teams_raw},
                    f"guarantee {total} GPUs of pool {pool.name!r}, which holds only {capacity} ({pool.max_nodes} nodes x {pool.gpus_per_node}) per capacity type.",
                    f"lower the quotas or raise pools[{pool.name}].max_nodes.",
                )
            elif total < capacity:
                shared_queue = f"{name}-shared"
    teams = tuple(
        TeamPlan(
            name=t,
            namespace=ns,
            local_queue=name,
            cluster_queue=f"{name}-{t}" if per_team else name,
            gpu_quota=q,
            service_account=sa_name,
        )
        for t, ns, q in teams_raw
    )
    data_buckets: list[str] = []
    scheme = {"aws": "s3", "gcp": "gs"}.get(facts.cloud)
    for i, url in enumerate(args.get("data_buckets") or []):
        m = BUCKET_URL.fullmatch(url) if isinstance(url, str) else None
        if m is None or scheme is None or m.group(1) != scheme:
            fix = f"give {scheme}://<bucket>." if scheme else "drop it: an existing cluster has no workload identity to grant."
            p.add(f"data_buckets[{i}]", url, f"is not a bucket this {facts.cloud} cluster's identities can be granted.", fix)
            continue
        data_buckets.append(m.group(2))
    annotations = args.get("service_account_annotations") or {}
    if not isinstance(annotations, dict):
        p.add("service_account_annotations", annotations, "must be a dict of strings.", "give e.g. {'eks.amazonaws.com/role-arn': '...'}.")
        annotations = {}
    p.raise_if_any()
    return TrainingClusterPlan(
        name=name,
        implementation=impl,
        facts=facts,
        capacity_fallback=tuple(fallback),
        pools=tuple(pools),
        teams=teams,
        per_team_queues=per_team,
        cohort=name if per_team else None,
        shared_queue=shared_queue,
        bucket=bucket,
        notice_seconds=notice,
        termination_grace_period_seconds=grace,
        interruption_handling=_interruption_handling(facts, spot),
        install_kueue=bool(args.get("install_kueue", True)),
        install_jobset=bool(args.get("install_jobset", True)),
        service_account_annotations=dict(annotations),
        tags={**facts.tags, **dict(args.get("tags") or {})},
        data_buckets=tuple(data_buckets),
    )


def _check_node_labels(p: Problems, path: str, spec: TrainingPoolArgs, facts: ClusterFacts) -> None:
    labels = spec.get("node_labels")
    if labels is None:
        return
    if facts.cloud in ("aws", "gcp"):
        p.add(f"{path}.node_labels", labels, f"applies only to an existing cluster: on {facts.cloud} gpuplane labels the nodes it creates "
              f"({LABEL_TRAINING_POOL}=<pool>).", "remove it.")
    elif not isinstance(labels, dict) or not labels or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in labels.items()):
        p.add(f"{path}.node_labels", labels, "must map label keys to values.", "give e.g. {'nvidia.com/gpu.product': 'NVIDIA-L4'}.")


def _plan_bucket(p: Problems, b: CheckpointBucketArgs, facts: ClusterFacts, requested: list[tuple[Feature, str, object]]) -> BucketPlan:
    for key in sorted(set(b) - _BUCKET_KEYS):
        p.add(f"checkpoint_bucket.{key}", b[key], "is not a field of checkpoint_bucket.", f"use one of {sorted(_BUCKET_KEYS)}.")  # type: ignore[literal-required]
    cloud_scheme = {"aws": "s3", "gcp": "gs"}.get(facts.cloud)
    url = b.get("url")
    scheme = cloud_scheme or "s3"
    if url is not None:
        m = re.match(r"^(s3|gs)://([a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9])/?$", url) if isinstance(url, str) else None
        if m is None:
            p.add("checkpoint_bucket.url", url, "is not a bucket URL.", "give s3://<bucket> or gs://<bucket> (no path: each team writes under <bucket>/<team>/).")
        else:
            scheme = m.group(1)
            if cloud_scheme and scheme != cloud_scheme:
                p.add("checkpoint_bucket.url", url, f"is a {scheme}:// bucket but the cluster runs on {facts.cloud}, whose workload identity grants {cloud_scheme}:// access.", f"use a {cloud_scheme}:// bucket.")
            url = f"{scheme}://{m.group(2)}"
        for key in ("retention_days", "noncurrent_retention_days", "encryption", "kms_key", "force_destroy"):
            if key in b:
                p.add(f"checkpoint_bucket.{key}", b[key], "applies only to a bucket gpuplane creates; the given bucket keeps its own settings.", "remove it, or drop url to create a bucket.")  # type: ignore[literal-required]
    else:
        requested.append((Feature.CHECKPOINT_BUCKET, "checkpoint_bucket", b))
    retention = b.get("retention_days", DEFAULT_RETENTION_DAYS)
    if not is_int(retention) or retention < 1:
        p.add("checkpoint_bucket.retention_days", retention, "must be a whole number of days, at least 1.", f"leave it unset for {DEFAULT_RETENTION_DAYS}.")
    noncurrent = b.get("noncurrent_retention_days", DEFAULT_NONCURRENT_RETENTION_DAYS)
    if not is_int(noncurrent) or noncurrent < 1:
        p.add("checkpoint_bucket.noncurrent_retention_days", noncurrent, "must be a whole number of days, at least 1.", f"leave it unset for {DEFAULT_NONCURRENT_RETENTION_DAYS}.")
    default_enc = "kms" if facts.cloud == "aws" else "managed"
    enc = b.get("encryption", default_enc)
    encryption: str | None = None
    if enc not in ("kms", "managed"):
        p.add("checkpoint_bucket.encryption", enc, "is not an encryption mode.", "use 'kms' or 'managed'.")
    elif url is None:
        if facts.cloud == "aws":
            encryption = "aws:kms" if enc == "kms" else "AES256"
        else:
            encryption = "cmek" if enc == "kms" else "google-managed"
            if enc == "kms" and not b.get("kms_key"):
                p.add("checkpoint_bucket.kms_key", None, "is required for CMEK on GCS (gpuplane does not create GCP key rings: they can never be deleted).", "give an existing projects/.../cryptoKeys/... key, or use encryption='managed'.")
    if b.get("kms_key") is not None and enc != "kms":
        p.add("checkpoint_bucket.kms_key", b.get("kms_key"), "is only used with encryption='kms'.", "remove it or set encryption='kms'.")
    return BucketPlan(
        create=url is None,
        url=url,
        scheme=scheme,
        encryption=encryption,
        kms_key=b.get("kms_key"),
        retention_days=retention if is_int(retention) else DEFAULT_RETENTION_DAYS,
        noncurrent_retention_days=noncurrent if is_int(noncurrent) else DEFAULT_NONCURRENT_RETENTION_DAYS,
        force_destroy=bool(b.get("force_destroy", False)),
    )


def _node_pool_support(facts: ClusterFacts) -> FeatureSupport:
    impl = {"aws": "karpenter" if facts.uses_karpenter else "eks-managed-node-group", "gcp": "gke-node-pool"}.get(facts.cloud, "existing-device-plugin")
    return node_pool_features(impl)


def _plan_pool(p: Problems, name: str, path: str, spec: TrainingPoolArgs, fallback: list[str], facts: ClusterFacts, catalog: Catalog) -> TrainingPoolPlan | None:
    pname = spec["name"]
    capacities: list[CapacityPoolPlan] = []
    node_capacities = fallback or ["on_demand"]
    ok = True
    max_nodes = spec.get("max_nodes", 1)
    compact_default = is_int(max_nodes) and max_nodes > 1 and _node_pool_support(facts).supports(Feature.COMPACT_PLACEMENT)
    for rank, cap in enumerate(node_capacities):
        np_name = f"{name}-{pname}-{cap.replace('_', '-')}"
        np_args: dict[str, Any] = {k: spec[k] for k in _NODE_POOL_KEYS if k in spec}  # type: ignore[literal-required]
        np_args["capacity_type"] = cap
        if "compact_placement" not in spec and compact_default:
            # A multi-node gang talks all-to-all: keep its nodes close where the pool can.
            np_args["compact_placement"] = True
        np_args["priority"] = 10 * (len(node_capacities) - rank)
        if facts.cloud in ("aws", "gcp"):
            # Existing clusters keep their owner's labels: their pool selects nodes by GPU presence.
            np_args["labels"] = {LABEL_TRAINING_POOL: pname}
        elif isinstance(spec.get("node_labels"), dict) and spec.get("node_labels"):
            # ... plus the owner's labels that tell this pool's nodes apart (GpuNodePool selects by them).
            np_args["labels"] = dict(spec["node_labels"])
        if facts.tags:
            np_args["tags"] = dict(facts.tags)
        try:
            node_plan = plan_node_pool(np_name, GpuNodePoolArgs(**np_args), facts, catalog)  # type: ignore[typeddict-item]
        except ComponentInputError as err:
            ok = False
            for prob in err.problems:
                # Problems of the capacity-independent fields are reported once, for the first capacity type.
                if rank == 0 or prob.path == "capacity_type" or prob.path.startswith("cluster.region"):
                    p.add(f"{path}.{prob.path}" + (f" ({cap})" if rank else ""), prob.value, prob.message, prob.fix)
            continue
        capacities.append(
            CapacityPoolPlan(
                pool=pname,
                capacity=cap,
                node_pool_name=np_name,
                node_pool_args=np_args,
                node_plan=node_plan,
                flavor=np_name,
                priority=np_args["priority"],
                max_nodes=node_plan.max_nodes,
                gpus=0,
                vcpus=0,
                memory_gib=0.0,
            )
        )
    if not ok or not capacities:
        return None
    first = capacities[0].node_plan
    vcpus = spec.get("node_vcpus", first.scheduling.vcpus_per_node)
    memory = spec.get("node_memory_gib", first.scheduling.memory_gib_per_node)
    if first.instance_type is None and ("node_vcpus" not in spec or "node_memory_gib" not in spec):
        p.add(f"{path}.node_vcpus", spec.get("node_vcpus"), "and node_memory_gib are required on an existing cluster, whose node shapes are not in the catalog (they size pod requests and queue quotas).", "give the vCPUs and memory (GiB) of the pool's GPU nodes.")
        return None
    if not is_int(vcpus) or vcpus < 1:
        p.add(f"{path}.node_vcpus", vcpus, "must be a whole number of at least 1.", "give the nodes' vCPUs.")
        return None
    if not isinstance(memory, (int, float)) or isinstance(memory, bool) or memory <= 0:
        p.add(f"{path}.node_memory_gib", memory, "must be a positive number of GiB.", "give the nodes' memory.")
        return None
    gpn = first.scheduling.allocatable_per_node
    sized = tuple(
        CapacityPoolPlan(**{**c.__dict__, "gpus": c.max_nodes * gpn, "vcpus": c.max_nodes * vcpus, "memory_gib": c.max_nodes * float(memory)}) for c in capacities
    )
    return TrainingPoolPlan(
        name=pname,
        accelerator=first.accelerator.name,
        gpus_per_node=gpn,
        vcpus_per_node=vcpus,
        memory_gib_per_node=float(memory),
        max_nodes=first.max_nodes,
        capacities=sized,
        node_selector=({**first.scheduling.node_selector} if first.implementation == "existing-device-plugin" else {LABEL_TRAINING_POOL: pname}),
        tolerations=first.scheduling.tolerations,
        instance_type=first.instance_type.name if first.instance_type else None,
    )


