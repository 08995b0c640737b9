"""FeatureStore: online and offline stores for gpuplane's one feature definition.

Implementations (chosen by ``target`` and ``engine``):

- ``feast-local`` (``target="local"``): creates nothing; renders the ``feature_store.yaml`` that
  ``python -m workloads.features materialize`` uses (SQLite online store, parquet files).
- ``feast-kubernetes`` (components/kubernetes/feature_store.py) on any ``KubernetesCluster``:
  Redis as an in-cluster StatefulSet with a persistent volume and password auth (a generated
  Secret), or a given Redis endpoint; feature tables and the Feast registry on a bucket (S3 on
  EKS, GCS on GKE, or a given bucket URL); the Feast feature server as a private Deployment
  behind a ClusterIP Service; a materialisation CronJob.
- ``feast-aws`` (components/aws/feature_store.py): DynamoDB online tables, S3 offline files
  (or Athena over Glue tables on them), registry on S3, a KMS key for all of it, and the same
  in-cluster server and CronJob on EKS running as an IRSA role.
- ``feast-gcp`` (components/gcp/feature_store.py): Datastore (a Firestore database in Datastore
  mode) or Bigtable online, BigQuery offline (external tables over parquet on GCS), registry on
  GCS, and the server and CronJob on GKE running as a Workload Identity service account.
- ``sagemaker-feature-store`` (``target="aws", engine="managed"``): one SageMaker FeatureGroup
  per feature view, online and offline (S3, Iceberg, Glue catalog), KMS-encrypted.
- ``vertex-feature-store`` (``target="gcp", engine="managed"``): a Vertex AI Feature Online
  Store, one feature group per view over BigQuery, its features, and one online feature view
  per group synced on a schedule.

The feature definition is data, ``workloads/features/templates/feature_views.yaml``, and
``feature_store.yaml`` is rendered from the jinja2 templates beside it (``<target>.yaml.j2``,
parameters in ``params.yaml``): the same files the local pipeline uses. This module reads them
as data and never imports workload code. Encrypted at rest and private by default: no public
endpoint is created, buckets block public access, secrets stay in Secrets.

``plan_feature_store`` is pure (args + cluster facts + catalog -> frozen plan) and raises one
``ComponentInputError`` listing every problem before any child resource exists.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, TypedDict

import jinja2
import pulumi
import yaml

from components.catalog import Catalog, load_catalog
from components.cluster import ClusterFacts, KubernetesCluster
from components.errors import ComponentInputError, Problem, Problems
from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:FeatureStore"
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "workloads" / "features" / "templates"
"""The workload's templates and feature definition, read as data."""
FEATURE_SERVER_PORT = 6566
REDIS_PORT = 6379
REDIS_IMAGE = "redis:7.4.2-alpine"
REDIS_PASSWORD_ENV = "FEAST_REDIS_PASSWORD"
CONFIG_DIR = "/etc/feast"

TARGETS = ("local", "kubernetes", "aws", "gcp")
ONLINE_STORES: dict[tuple[str, str], tuple[str, ...]] = {
    ("local", "feast"): ("sqlite",),
    ("kubernetes", "feast"): ("redis",),
    ("aws", "feast"): ("dynamodb",),
    ("gcp", "feast"): ("datastore", "bigtable"),
    ("aws", "managed"): ("sagemaker",),
    ("gcp", "managed"): ("bigtable", "optimized"),
}
"""Online stores per (target, engine); the first is the default."""
OFFLINE_STORES: dict[tuple[str, str], tuple[str, ...]] = {
    ("local", "feast"): ("file",),
    ("kubernetes", "feast"): ("file",),
    ("aws", "feast"): ("file", "athena"),
    ("gcp", "feast"): ("bigquery",),
    ("aws", "managed"): ("s3",),
    ("gcp", "managed"): ("bigquery",),
}
IMPLEMENTATIONS = {
    ("local", "feast"): "feast-local",
    ("kubernetes", "feast"): "feast-kubernetes",
    ("aws", "feast"): "feast-aws",
    ("gcp", "feast"): "feast-gcp",
    ("aws", "managed"): "sagemaker-feature-store",
    ("gcp", "managed"): "vertex-feature-store",
}
LOCAL_FEATURES = FeatureSupport(
    "feast-local",
    frozenset(),
    {Feature.MANAGED_ONLINE_STORE: "a laptop has no managed feature store; Feast runs on SQLite and parquet files"},
)


class RedisArgs(TypedDict, total=False):
    """The Redis online store of the kubernetes target."""

    endpoint: str
    """``host:port`` of an existing Redis to use instead of creating one in the cluster. Default: create a StatefulSet."""
    password: pulumi.Input[str]
    """Redis password (a secret). Required with ``endpoint``; default for the in-cluster Redis: generated (pulumi_random)."""
    tls: bool
    """Connect over TLS. Default False (the in-cluster Redis is reached only inside the cluster)."""
    storage_gib: int
    """Persistent volume size of the in-cluster Redis, GiB. Default 10."""
    storage_class: str
    """Storage class of that volume (pick an encrypted one). Default: the cluster's default class."""
    memory_gib: float
    """Memory limit of the in-cluster Redis, GiB. Default 2."""


class FeatureStoreArgs(TypedDict, total=False):
    """Arguments of ``FeatureStore``."""

    target: Required[Literal["local", "kubernetes", "aws", "gcp"]]
    """Where the store lives: ``local`` (SQLite + files, nothing created), ``kubernetes`` (Redis in any cluster),
    ``aws`` or ``gcp``. Required."""
    engine: NotRequired[Literal["feast", "managed"]]
    """``feast`` (Feast on the target's stores) or ``managed`` (SageMaker Feature Store on aws, Vertex AI Feature
    Store on gcp). Default ``feast``."""
    project: NotRequired[str]
    """Feast project name (letters, digits, underscores); also prefixes table and group names. Default: the resource
    name with ``-`` turned into ``_``."""
    cluster: NotRequired[KubernetesCluster]
    """Where the Feast feature server and the materialisation CronJob run. Required for engine ``feast`` on
    kubernetes, aws (an EKS cluster, for IRSA) and gcp (a GKE cluster, for Workload Identity)."""
    image: NotRequired[pulumi.Input[str]]
    """Container image with gpuplane's ``features`` extra (Feast 0.67 and the target's client libraries) for the
    server and the CronJob. Required wherever a cluster is used."""
    region: NotRequired[str]
    """aws / gcp: region of the stores, checked against the catalog. Default: the cluster's region."""
    gcp_project: NotRequired[str]
    """gcp: Google Cloud project id. Default: the cluster's project when it is a plain string."""
    namespace: NotRequired[str]
    """Kubernetes namespace of the server, CronJob and Redis (created by the store). Default: the resource name."""
    online_store: NotRequired[Literal["redis", "dynamodb", "datastore", "bigtable", "sagemaker", "optimized"]]
    """Online store; allowed per target: kubernetes ``redis``; aws ``dynamodb`` (managed: ``sagemaker``); gcp
    ``datastore`` or ``bigtable`` (managed: ``bigtable`` or ``optimized``). Default: the first of those."""
    offline_store: NotRequired[Literal["file", "athena", "bigquery", "s3"]]
    """Offline store; aws feast: ``file`` (parquet on S3) or ``athena`` (Glue tables over it); others fixed.
    Default: ``file`` on kubernetes and aws, ``bigquery`` on gcp."""
    offline_bucket: NotRequired[str]
    """An existing bucket (``s3://name`` or ``gs://name``) for the offline tables and the registry, instead of
    creating a private encrypted one. Required for the kubernetes target on an existing (non-cloud) cluster."""
    events_uri: NotRequired[str]
    """Where the materialisation job reads the event log (a ``workloads.data.generate`` directory). Default
    ``<bucket>/events``."""
    credentials_secret: NotRequired[str]
    """kubernetes target: a Secret in the namespace whose keys become the pods' environment, for a bucket that
    workload identity does not cover (MinIO: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL and
    FEAST_S3_ENDPOINT_URL). Default: none."""
    redis: NotRequired[RedisArgs]
    """kubernetes target: the Redis online store. Default: an in-cluster StatefulSet with a generated password."""
    server_replicas: NotRequired[int]
    """Feast feature server replicas. Default 2."""
    materialize_schedule: NotRequired[str]
    """Cron schedule of materialisation (CronJob; Vertex feature view sync). Default ``0 * * * *`` (hourly)."""
    online_min_nodes: NotRequired[int]
    """Bigtable online stores: fewest nodes (autoscaling). Default 1."""
    online_max_nodes: NotRequired[int]
    """Bigtable online stores: most nodes (autoscaling). Default 3."""
    kms_key_arn: NotRequired[pulumi.Input[str]]
    """aws: an existing KMS key to encrypt with instead of creating one (with rotation). Default: create."""
    kms_key_name: NotRequired[pulumi.Input[str]]
    """gcp: a Cloud KMS key for CMEK on the bucket, dataset, Bigtable and Vertex store (grant the service agents
    ``roles/cloudkms.cryptoKeyEncrypterDecrypter`` first). Default: Google-managed encryption."""
    deletion_protection: NotRequired[bool]
    """Protect tables, databases and instances from deletion. Default False."""
    tags: NotRequired[dict[str, str]]
    """Tags (AWS) or labels (GCP, Kubernetes) on every taggable child, merged over the cluster's tags."""


# --------------------------------------------------------------------------------------------
# The feature definition and the feature_store.yaml templates (data shared with workloads/).


@dataclass(frozen=True)
class FeatureField:
    name: str
    dtype: str
    """``int64``, ``float64``, ``string`` or ``int64_list``."""
    description: str


@dataclass(frozen=True)
class FeatureViewSpec:
    name: str
    entity: str
    join_key: str
    join_dtype: str
    description: str
    features: tuple[FeatureField, ...]


@functools.cache
def load_feature_views(path: str = str(TEMPLATES_DIR / "feature_views.yaml")) -> tuple[FeatureViewSpec, ...]:
    """The feature views of ``feature_views.yaml``, in file order."""
    raw = yaml.safe_load(Path(path).read_text())
    views = []
    for name, view in raw["feature_views"].items():
        entity = raw["entities"][view["entity"]]
        views.append(
            FeatureViewSpec(
                name=name,
                entity=view["entity"],
                join_key=entity["join_key"],
                join_dtype=entity["dtype"],
                description=view["description"],
                features=tuple(FeatureField(f, d["dtype"], d["description"]) for f, d in view["features"].items()),
            )
        )
    return tuple(views)


@functools.cache
def _param_specs() -> dict[str, dict[str, dict[str, Any]]]:
    raw = yaml.safe_load((TEMPLATES_DIR / "params.yaml").read_text())
    return {t: {**raw["common"], **raw["targets"][t]} for t in TARGETS}


def yaml_problems(target: str, params: dict[str, Any]) -> list[str]:
    """What is wrong with template parameters (the rules of ``params.yaml``); empty when fine."""
    specs = _param_specs()[target]
    problems = [f"parameter {k!r} is not used by target {target!r}" for k in sorted(set(params) - set(specs))]
    values = {k: params.get(k, s.get("default")) for k, s in specs.items()}
    for key, spec in specs.items():
        value = values[key]
        if value is None and spec.get("required"):
            problems.append(f"parameter {key!r} is required for target {target!r}")
        elif "choices" in spec and value not in spec["choices"]:
            problems.append(f"{key}={value!r} is not one of {spec['choices']}")
        elif "pattern" in spec and value is not None and not re.fullmatch(spec["pattern"], str(value)):
            problems.append(f"{key}={value!r} does not match {spec['pattern']!r}")
        for other, when in (spec.get("required_when") or {}).items():
            if values.get(other) == when and value in ("", None):
                problems.append(f"{key} is required when {other}={when!r}")
    return problems


def render_feature_store_yaml(target: str, params: dict[str, Any]) -> str:
    """Render ``<target>.yaml.j2`` with ``params`` (defaults from ``params.yaml``); pure."""
    problems = yaml_problems(target, params)
    if problems:
        raise ValueError(f"feature_store.yaml for {target!r}: " + "; ".join(problems))
    values = {k: params.get(k, s.get("default")) for k, s in _param_specs()[target].items()}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML; values are constrained by the params.yaml patterns
    )
    return env.get_template(f"{target}.yaml.j2").render(**values)


# --------------------------------------------------------------------------------------------
# The plan.


@dataclass(frozen=True)
class RedisPlan:
    create: bool
    """True: an in-cluster StatefulSet; False: the given endpoint."""
    host: str
    port: int
    tls: bool
    storage_gib: int
    storage_class: str | None
    memory_gib: float
    generate_password: bool


@dataclass(frozen=True)
class BucketPlan:
    create: bool
    """True: create a private, encrypted bucket; False: use ``given``."""
    scheme: Literal["s3", "gs"]
    given: str | None = None
    """The given bucket name (no scheme), when not created."""

    def url(self, bucket_name: str) -> str:
        return f"{self.scheme}://{bucket_name}"


@dataclass(frozen=True)
class FeatureStorePlan:
    name: str
    target: str
    engine: str
    implementation: str
    cloud: str
    """Where resources are created: ``local``, ``kubernetes`` (an existing cluster), ``aws`` or ``gcp``."""
    project: str
    region: str | None
    zones: tuple[str, ...]
    gcp_project: str | None
    namespace: str
    online_store: str
    offline_store: str
    bucket: BucketPlan | None
    redis: RedisPlan | None
    views: tuple[FeatureViewSpec, ...]
    server_replicas: int
    materialize_schedule: str
    online_min_nodes: int
    online_max_nodes: int
    deletion_protection: bool
    tags: dict[str, str]
    uses_cluster: bool
    yaml_params: dict[str, Any] = field(default_factory=dict)
    """Template parameters; ``{bucket}`` in a value stands for the bucket URL (``s3://name``), known once
    the bucket exists."""

    @property
    def server_name(self) -> str:
        return f"{self.name}-feature-server"

    @property
    def online_endpoint(self) -> str | None:
        """The feature server URL a model server uses (``--feature-server-url``)."""
        if self.target == "local":
            return f"http://127.0.0.1:{FEATURE_SERVER_PORT}"
        if self.uses_cluster:
            return f"http://{self.server_name}.{self.namespace}.svc.cluster.local:{FEATURE_SERVER_PORT}"
        return None

    @property
    def offline_source(self) -> str:
        """Feast source kind of the views: ``file``, ``athena`` or ``bigquery``."""
        return {"athena": "athena", "bigquery": "bigquery"}.get(self.offline_store, "file")

    @property
    def athena_database(self) -> str:
        return self.project.lower()

    @property
    def bigquery_dataset(self) -> str:
        return self.project

    def dynamodb_table(self, view: str) -> str:
        return f"{self.project}.{view}"

    def render_yaml(self, bucket_url: str = "") -> str | None:
        """``feature_store.yaml`` for this plan (None for managed engines), given the bucket's URL."""
        if self.engine != "feast":
            return None
        params = {k: v.replace("{bucket}", bucket_url) if isinstance(v, str) else v for k, v in self.yaml_params.items()}
        return render_feature_store_yaml(self.target, params)

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
            "implementation": self.implementation,
            "target": self.target,
            "engine": self.engine,
            "cloud": self.cloud,
            "region": self.region,
            "project": self.project,
            "namespace": self.namespace if self.uses_cluster else None,
            "onlineStore": self.online_store,
            # The cost model's vocabulary (policies/resources.py): vertex stores are "vertex-<serving>".
            "online": f"vertex-{self.online_store}" if self.implementation == "vertex-feature-store" else self.online_store,
            "offlineStore": self.offline_store,
            "bucket": None if self.bucket is None else ("create" if self.bucket.create else f"{self.bucket.scheme}://{self.bucket.given}"),
            "redis": None if self.redis is None else ("in-cluster" if self.redis.create else "endpoint"),
            "featureViews": [v.name for v in self.views],
            "serverReplicas": self.server_replicas if self.uses_cluster else 0,
            "materializeSchedule": self.materialize_schedule,
            "onlineNodes": self.online_min_nodes if self.online_store == "bigtable" else None,
            "onlineMaxNodes": self.online_max_nodes if self.online_store == "bigtable" else None,
            "encrypted": True,
            "public": False,
            "deletionProtection": self.deletion_protection,
            "tags": dict(self.tags),
        }


def feature_support(implementation: str) -> FeatureSupport:
    """The declared features of a FeatureStore implementation."""
    if implementation == "feast-local":
        return LOCAL_FEATURES
    if implementation == "feast-kubernetes":
        from components.kubernetes import feature_store as k8s_fs

        return k8s_fs.FEATURES
    if implementation in ("feast-aws", "sagemaker-feature-store"):
        from components.aws import feature_store as aws_fs

        return aws_fs.FEAST_FEATURES if implementation == "feast-aws" else aws_fs.SAGEMAKER_FEATURES
    from components.gcp import feature_store as gcp_fs

    return gcp_fs.FEAST_FEATURES if implementation == "feast-gcp" else gcp_fs.VERTEX_FEATURES


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
            p.add("image", None, "is required: the server and the CronJob run gpuplane's features workload.", "set it to an image built with the `features` extra (workloads/Dockerfile).")

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


def sagemaker_group_name(name: str, view: str) -> str:
    """SageMaker feature group names allow letters, digits and '-' only."""
    return re.sub(r"[^A-Za-z0-9-]", "-", f"{name}-{view}")


def bigtable_instance_id(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"{name}-feast".lower())


def datastore_database_id(name: str) -> str:
    """A Firestore database id: lowercase letters, digits, '-', 4-63 characters."""
    return re.sub(r"[^a-z0-9-]", "-", f"{name}-features".lower())[:63]


def vertex_id(*parts: str) -> str:
    """Vertex AI resource ids: lowercase letters, digits and underscores, starting with a letter."""
    raw = re.sub(r"[^a-z0-9_]", "_", "_".join(parts).lower())
    return raw if raw[:1].isalpha() else f"f_{raw}"


# --------------------------------------------------------------------------------------------
# The component.


class FeatureStore(pulumi.ComponentResource):
    """Online and offline stores for gpuplane's feature definition; see the module docstring.

    Outputs: ``implementation``, ``feature_store_yaml`` (None for managed engines),
    ``online_endpoint`` (the Feast feature server URL inside the cluster; None for managed),
    ``registry_uri``, ``offline_uri``, ``online_store``, ``offline_store`` and ``resources``
    (cloud names: tables, feature groups, online store). Attribute: ``plan``.
    """

    plan: FeatureStorePlan
    implementation: pulumi.Output[str]
    """How the store is built: ``feast-local``, ``feast-kubernetes``, ``feast-aws``, ``feast-gcp``, ``sagemaker-feature-store`` or ``vertex-feature-store``."""
    feature_store_yaml: pulumi.Output[str | None]
    """Feast ``feature_store.yaml`` for this store; None for managed engines."""
    online_endpoint: pulumi.Output[str | None]
    """The Feast feature server URL inside the cluster; None for managed engines."""
    registry_uri: pulumi.Output[str | None]
    """Where the Feast registry lives (a file path or bucket URI)."""
    offline_uri: pulumi.Output[str | None]
    """Where the offline store keeps its data (a path, bucket URI or dataset)."""
    online_store: pulumi.Output[str]
    """The online store kind, e.g. ``redis``, ``dynamodb``, ``bigtable``."""
    offline_store: pulumi.Output[str]
    """The offline store kind, e.g. ``file``, ``athena``, ``bigquery``."""
    resources: pulumi.Output[dict[str, Any]]
    """Cloud names of what was created: tables, feature groups, the online store."""

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_feature_store(name, args)  # raises before anything is registered
        super().__init__(TYPE_TOKEN, name, {"gpuplane": plan.summary()}, opts)
        self.plan = plan
        result: dict[str, Any] = {}
        if plan.implementation == "feast-local":
            text = plan.render_yaml()
            result = {"feature_store_yaml": text, "registry_uri": "data/registry.db", "offline_uri": "data", "resources": {}}
        elif plan.implementation == "feast-kubernetes":
            from components.kubernetes.feature_store import create_kubernetes_store

            result = create_kubernetes_store(self, name, plan, args)
        elif plan.cloud == "aws":
            from components.aws.feature_store import create_aws_store

            result = create_aws_store(self, name, plan, args)
        else:
            from components.gcp.feature_store import create_gcp_store

            result = create_gcp_store(self, name, plan, args)
        self.feature_store_yaml = pulumi.Output.from_input(result.get("feature_store_yaml"))
        self.online_endpoint = pulumi.Output.from_input(plan.online_endpoint)
        self.registry_uri = pulumi.Output.from_input(result.get("registry_uri"))
        self.offline_uri = pulumi.Output.from_input(result.get("offline_uri"))
        self.resources = pulumi.Output.from_input(result.get("resources", {}))
        self.implementation = pulumi.Output.from_input(plan.implementation)
        self.online_store = pulumi.Output.from_input(plan.online_store)
        self.offline_store = pulumi.Output.from_input(plan.offline_store)
        self.register_outputs(
            {
                "implementation": self.implementation,
                "feature_store_yaml": self.feature_store_yaml,
                "online_endpoint": self.online_endpoint,
                "registry_uri": self.registry_uri,
                "offline_uri": self.offline_uri,
                "online_store": self.online_store,
                "offline_store": self.offline_store,
                "resources": self.resources,
            }
        )
