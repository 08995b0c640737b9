"""FeatureStore's spec: constants, args, the feature definition loader, ``feature_store.yaml``
rendering, the plan dataclasses, each implementation's declared features and cloud name rules.

The feature definition is data, ``workloads/features/templates/feature_views.yaml``, and
``feature_store.yaml`` is rendered from the jinja2 templates beside it (``<target>.yaml.j2``,
parameters in ``params.yaml``): the same files the local pipeline uses. This module reads them
as data and never imports workload code. Creates nothing; ``planner.py`` holds
``plan_feature_store``, and component.py's module docstring describes the implementations.
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

from components.cluster import KubernetesCluster
from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:FeatureStore"
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "workloads" / "features" / "templates"
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


FEAST_KUBERNETES_FEATURES = FeatureSupport(
    "feast-kubernetes",
    frozenset(),
    {Feature.MANAGED_ONLINE_STORE: "a generic cluster has no managed feature store; use target 'aws' or 'gcp' with engine 'managed'"},
)

FEAST_AWS_FEATURES = FeatureSupport("feast-aws", frozenset({Feature.MANAGED_ONLINE_STORE}))
"""Engine feast on aws always has a managed online store (DynamoDB); engine managed picks SageMaker."""

SAGEMAKER_FEATURES = FeatureSupport("sagemaker-feature-store", frozenset({Feature.MANAGED_ONLINE_STORE}))

FEAST_GCP_FEATURES = FeatureSupport("feast-gcp", frozenset({Feature.MANAGED_ONLINE_STORE}))
"""Engine feast on gcp always has a managed online store (Datastore or Bigtable); engine managed picks Vertex."""

VERTEX_FEATURES = FeatureSupport("vertex-feature-store", frozenset({Feature.MANAGED_ONLINE_STORE}))



def feature_support(implementation: str) -> FeatureSupport:
    """The declared features of a FeatureStore implementation."""
    return {
        "feast-local": LOCAL_FEATURES,
        "feast-kubernetes": FEAST_KUBERNETES_FEATURES,
        "feast-aws": FEAST_AWS_FEATURES,
        "sagemaker-feature-store": SAGEMAKER_FEATURES,
        "feast-gcp": FEAST_GCP_FEATURES,
    }.get(implementation, VERTEX_FEATURES)


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
