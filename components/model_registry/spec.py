"""ModelRegistry's spec: args, the frozen ``ModelRegistryPlan``, declared features, the pure planner
``plan_model_registry`` and ``RegistryCloud`` (what a cloud backend hands the MLflow server).

Creates nothing. Backends: ``mlflow.py`` (the MLflow server on any cluster, and the existing-cluster
storage), ``aws.py`` (RDS, S3), ``gcp.py`` (Cloud SQL, GCS); component.py's module docstring
describes the implementations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import pulumi

from components.catalog import Catalog, load_catalog
from components.cluster import KubernetesCluster
from components.errors import Problems
from components.features import Feature, FeatureSupport

TYPE_TOKEN = "gpuplane:index:ModelRegistry"
MLFLOW_CHART_REPO = "https://community-charts.github.io/helm-charts"
MLFLOW_CHART = "mlflow"
MLFLOW_CHART_VERSION = "1.11.5"
"""community-charts/helm-charts tag mlflow-1.11.5 (MLflow 3.x server image burakince/mlflow); schemas in
gpuplane/schemas/mlflow-1.11.5."""
MLFLOW_PORT = 80
"""The chart's Service port (the container listens on 5000)."""
POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
DATABASE_USER = "mlflow"
DEFAULT_LOCAL_DIR = "pipeline-output/registry"
"""Where ``gpuplane pipeline`` (its default ``--out pipeline-output``) keeps ``mlflow.db`` and ``artifacts/``."""
DEFAULT_INSTANCE_CLASS = {"aws": "db.t4g.micro", "gcp": "db-custom-1-3840"}
"""Smallest sensible Postgres per cloud: the registry holds run metadata, not artifacts."""
POSTGRES_VERSION = {"aws": "16", "gcp": "POSTGRES_16"}

TARGETS = ("local", "kubernetes", "aws", "gcp")
IMPLEMENTATIONS = {"local": "mlflow-local", "kubernetes": "mlflow-kubernetes", "aws": "mlflow-aws", "gcp": "mlflow-gcp"}
FEATURES: dict[str, FeatureSupport] = {
    "mlflow-local": FeatureSupport(
        "mlflow-local",
        frozenset(),
        {
            Feature.MANAGED_DATABASE: "a laptop runs MLflow on a SQLite file",
            Feature.WORKLOAD_IDENTITY: "local artifacts are files in a directory; there is no cloud identity",
        },
    ),
    "mlflow-kubernetes": FeatureSupport(
        "mlflow-kubernetes",
        frozenset(),
        {
            Feature.MANAGED_DATABASE: "an existing cluster has no managed Postgres gpuplane can create; the chart's in-cluster PostgreSQL StatefulSet is used (backups are the cluster owner's)",
            Feature.WORKLOAD_IDENTITY: "an existing cluster has no cloud identity gpuplane can bind; give credentials_secret for the artifact bucket",
        },
    ),
    "mlflow-aws": FeatureSupport("mlflow-aws", frozenset({Feature.MANAGED_DATABASE, Feature.WORKLOAD_IDENTITY})),
    "mlflow-gcp": FeatureSupport("mlflow-gcp", frozenset({Feature.MANAGED_DATABASE, Feature.WORKLOAD_IDENTITY})),
}

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_BUCKET_URL = re.compile(r"(s3|gs)://([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])(/[A-Za-z0-9_./=-]*)?")
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class DatabaseArgs(TypedDict, total=False):
    """The registry's Postgres (RDS on aws, Cloud SQL on gcp, the chart's StatefulSet on kubernetes)."""

    instance_class: str
    """aws: RDS instance class (default ``db.t4g.micro``); gcp: Cloud SQL tier (default ``db-custom-1-3840``,
    1 vCPU / 3.75 GiB). Not used on kubernetes."""
    storage_gib: int
    """Allocated storage, GiB (RDS gp3, Cloud SQL SSD, or the StatefulSet's volume). Default 20."""
    backup_retention_days: int
    """Automated backups kept this many days (aws / gcp). Default 7."""
    high_availability: bool
    """aws: Multi-AZ; gcp: REGIONAL availability. Default False (dev stacks)."""


class ModelRegistryArgs(TypedDict, total=False):
    """Arguments of ``ModelRegistry``."""

    target: Required[Literal["local", "kubernetes", "aws", "gcp"]]
    """Where the registry lives: ``local`` (SQLite + a directory, nothing created), ``kubernetes`` (in-cluster
    Postgres on any cluster), ``aws`` (RDS + S3 on EKS) or ``gcp`` (Cloud SQL + GCS on GKE). Required."""
    cluster: NotRequired[KubernetesCluster]
    """Where the MLflow server runs. Required except for ``local``; an EKS cluster for ``aws``, a GKE cluster for
    ``gcp``."""
    namespace: NotRequired[str]
    """Kubernetes namespace of the server (created by the registry). Default ``mlflow``."""
    local_dir: NotRequired[str]
    """local: the directory holding ``mlflow.db`` and ``artifacts/``. Default ``pipeline-output/registry`` (what
    ``gpuplane pipeline`` uses with its default ``--out``)."""
    database: NotRequired[DatabaseArgs]
    """The Postgres behind the registry; see DatabaseArgs. Default: the smallest instance, 20 GiB, 7 days of backups."""
    artifact_bucket: NotRequired[str]
    """An existing bucket URL (``s3://name[/prefix]`` or ``gs://name[/prefix]``) for model artifacts instead of
    creating a private encrypted one. Required on kubernetes."""
    credentials_secret: NotRequired[str]
    """kubernetes: a Secret in the namespace whose keys become the server's environment, for a bucket workload
    identity does not cover (MinIO: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ENDPOINT_URL). Default: none."""
    server_replicas: NotRequired[int]
    """MLflow server replicas. Default 1."""
    region: NotRequired[str]
    """aws / gcp: region of the database and bucket. Default: the cluster's region."""
    gcp_project: NotRequired[str]
    """gcp: project id. Default: the cluster's project."""
    kms_key_arn: NotRequired[pulumi.Input[str]]
    """aws: an existing KMS key for the database and bucket instead of creating one (with rotation)."""
    kms_key_name: NotRequired[pulumi.Input[str]]
    """gcp: a Cloud KMS key for CMEK on the bucket and Cloud SQL instance. Default: Google-managed encryption."""
    deletion_protection: NotRequired[bool]
    """Protect the database (and keep the bucket's objects on delete). Default False; stacks set it for prod."""
    tags: NotRequired[dict[str, str]]
    """Tags (AWS) or labels (GCP, Kubernetes) on every taggable child, merged over the cluster's."""


@dataclass(frozen=True)
class DatabasePlan:
    engine: str
    """``rds-postgres``, ``cloud-sql-postgres``, ``in-cluster-postgres`` or ``sqlite``."""
    instance_class: str | None
    storage_gib: int
    backup_retention_days: int
    high_availability: bool
    version: str | None


@dataclass(frozen=True)
class ArtifactsPlan:
    create: bool
    scheme: Literal["s3", "gs", "file"]
    bucket: str | None
    """The given bucket (no scheme), None when created (named at creation) or local."""
    prefix: str
    """Path inside the bucket (no leading or trailing '/'); may be empty."""

    def uri(self, bucket_name: str) -> str:
        return f"{self.scheme}://{bucket_name}" + (f"/{self.prefix}" if self.prefix else "")


@dataclass(frozen=True)
class ModelRegistryPlan:
    name: str
    target: str
    implementation: str
    cloud: str
    region: str | None
    gcp_project: str | None
    namespace: str
    local_dir: str
    database: DatabasePlan
    artifacts: ArtifactsPlan
    server_replicas: int
    credentials_secret: str | None
    deletion_protection: bool
    tags: dict[str, str]
    features: FeatureSupport
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def release_name(self) -> str:
        return self.name

    @property
    def service_account(self) -> str:
        return f"{self.name}-server"

    @property
    def tracking_uri(self) -> str:
        """The URI clients pass as ``--tracking-uri`` / ``MLFLOW_TRACKING_URI``."""
        if self.target == "local":
            return f"sqlite:///{self.local_dir}/mlflow.db"
        # The chart's fullname is the release name when it contains the chart name.
        return f"http://{self.service_host}:{MLFLOW_PORT}"

    @property
    def service_host(self) -> str:
        svc = self.name if MLFLOW_CHART in self.name else f"{self.name}-{MLFLOW_CHART}"
        return f"{svc[:63].rstrip('-')}.{self.namespace}.svc.cluster.local"

    def summary(self) -> dict[str, Any]:
        """The plan as the component's registered ``gpuplane`` input (read by policies and the cost model)."""
        return {
            "implementation": self.implementation,
            "target": self.target,
            "cloud": self.cloud,
            "region": self.region,
            "namespace": self.namespace if self.target != "local" else None,
            "trackingUri": self.tracking_uri,
            "database": {
                "engine": self.database.engine,
                "instanceClass": self.database.instance_class,
                "storageGib": self.database.storage_gib,
                "highAvailability": self.database.high_availability,
                "encrypted": self.database.engine in ("rds-postgres", "cloud-sql-postgres") or None,
                "public": False if self.target != "local" else None,
            },
            "artifacts": {
                "created": self.artifacts.create,
                "scheme": self.artifacts.scheme,
                "bucket": self.artifacts.bucket,
                "encrypted": True if self.artifacts.create else None,
                "public": False if self.artifacts.create else None,
            },
            "chart": {"name": MLFLOW_CHART, "version": MLFLOW_CHART_VERSION, "repo": MLFLOW_CHART_REPO},
            "deletionProtection": self.deletion_protection,
            "tags": dict(self.tags),
        }


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_KEYS = set(ModelRegistryArgs.__annotations__)
_DB_KEYS = set(DatabaseArgs.__annotations__)


def plan_model_registry(name: str, args: ModelRegistryArgs, catalog: Catalog | None = None) -> ModelRegistryPlan:
    """Validate the args and decide database, artifacts and identity; raise once listing every problem."""
    catalog = catalog or load_catalog()
    p = Problems("ModelRegistry", name)
    for key in sorted(set(args) - _KEYS):
        p.add(key, args[key], "is not an argument of ModelRegistry.", f"use one of {sorted(_KEYS)}.")  # type: ignore[literal-required]
    raw_target = args.get("target")
    if raw_target not in TARGETS:
        p.add("target", raw_target, "is not a registry target.", f"use one of {list(TARGETS)}.")
        p.raise_if_any()
    target = str(raw_target)
    implementation = IMPLEMENTATIONS[target]
    if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 40:
        p.add("name", name, "is not a valid registry name: lower-case letters, digits and '-', at most 40 characters.", "rename it, e.g. 'models'.")

    cluster = args.get("cluster")
    facts = cluster.facts if isinstance(cluster, KubernetesCluster) else None
    if target == "local":
        if cluster is not None:
            p.add("cluster", getattr(cluster, "_name", cluster), "is not used by the local target (MLflow runs on this machine).", "drop it, or use target 'kubernetes'.")
    elif facts is None:
        p.add("cluster", cluster, f"is required for target {target!r} and must be a KubernetesCluster (the MLflow server runs there).", "pass the cluster.")
    elif target in ("aws", "gcp") and facts.cloud != target:
        p.add("cluster", facts.name, f"is a {facts.cloud} cluster; target {target!r} needs {'an EKS' if target == 'aws' else 'a GKE'} cluster for workload identity.", f"pass a cloud={target!r} cluster, or use target 'kubernetes'.")

    namespace = args.get("namespace", "mlflow")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
        p.add("namespace", namespace, "is not a valid namespace.", "use lower-case letters, digits and '-'.")
        namespace = "mlflow"
    local_dir = args.get("local_dir", DEFAULT_LOCAL_DIR)
    if target != "local" and "local_dir" in args:
        p.add("local_dir", local_dir, "applies only to the local target.", "remove it.")
    if not isinstance(local_dir, str) or not local_dir or local_dir.endswith("/"):
        p.add("local_dir", local_dir, "must be a directory path without a trailing '/'.", f"give e.g. {DEFAULT_LOCAL_DIR!r}.")
        local_dir = DEFAULT_LOCAL_DIR

    # -- region and project -----------------------------------------------------------------
    region: str | None = None
    if target in ("aws", "gcp"):
        region = args.get("region") or (facts.region if facts else None)
        if catalog.region(target, region or "") is None:
            p.add("region", region, f"is not a {target} region in the catalog.", f"use one of {catalog.region_names(target)}.")
        elif facts and facts.region and region != facts.region:
            p.add("region", region, f"differs from the cluster's region {facts.region}; the database must sit in the cluster's network.", f"set it to {facts.region!r} or drop it.")
    elif "region" in args:
        p.add("region", args.get("region"), f"applies only to aws and gcp (target is {target!r}).", "remove it.")
    gcp_project: str | None = None
    if target == "gcp":
        given = args.get("gcp_project")
        if given is None and cluster is not None and isinstance(getattr(cluster, "project", None), str):
            given = cluster.project  # type: ignore[assignment]
        if not isinstance(given, str) or not _GCP_PROJECT.fullmatch(given):
            p.add("gcp_project", given, "is required for gcp and must be a project id.", "set it, or create the cluster with a plain-string project.")
        else:
            gcp_project = given
    for key, cloud in (("kms_key_arn", "aws"), ("kms_key_name", "gcp")):
        if key in args and target != cloud:
            p.add(key, "...", f"applies only to target {cloud!r}.", "remove it.")

    # -- database -----------------------------------------------------------------------------
    db_args: dict[str, Any] = dict(args.get("database") or {})
    for key in sorted(set(db_args) - _DB_KEYS):
        p.add(f"database.{key}", db_args[key], "is not a field of DatabaseArgs.", f"use one of {sorted(_DB_KEYS)}.")
    if target == "local" and db_args:
        p.add("database", db_args, "does not apply to the local target (SQLite).", "remove it.")
    if target == "kubernetes" and "storage_gib" in db_args:
        p.add("database.storage_gib", db_args["storage_gib"], "does not apply to the chart's in-cluster PostgreSQL (its volume keeps the chart's default size).", "remove it.")
    storage = db_args.get("storage_gib", 20)
    if not _is_int(storage) or not 10 <= storage <= 16384:
        p.add("database.storage_gib", storage, "must be a whole number of GiB from 10 to 16384.", "leave it unset for 20.")
        storage = 20
    backups = db_args.get("backup_retention_days", 7)
    if not _is_int(backups) or not 1 <= backups <= 35:
        p.add("database.backup_retention_days", backups, "must be 1 to 35 days (RDS's range; Cloud SQL keeps that many backups).", "leave it unset for 7.")
        backups = 7
    instance_class = db_args.get("instance_class", DEFAULT_INSTANCE_CLASS.get(target))
    if target == "kubernetes" and "instance_class" in db_args:
        p.add("database.instance_class", instance_class, "does not apply to the in-cluster Postgres.", "remove it.")
        instance_class = None
    elif target == "aws" and not (isinstance(instance_class, str) and instance_class.startswith("db.")):
        p.add("database.instance_class", instance_class, "is not an RDS instance class.", "use e.g. 'db.t4g.micro' or 'db.t4g.small'.")
    elif target == "gcp" and not (isinstance(instance_class, str) and re.fullmatch(r"db-(f1-micro|g1-small|custom-\d+-\d+|perf-optimized-N-\d+)", instance_class)):
        p.add("database.instance_class", instance_class, "is not a Cloud SQL tier.", "use e.g. 'db-custom-1-3840' or 'db-g1-small'.")
    engine = {"local": "sqlite", "kubernetes": "in-cluster-postgres", "aws": "rds-postgres", "gcp": "cloud-sql-postgres"}[target]
    ha = bool(db_args.get("high_availability", False))
    requested: list[tuple[Feature, str, object]] = []
    if ha:
        requested.append((Feature.MANAGED_DATABASE, "database.high_availability", True))
    database = DatabasePlan(engine, instance_class if target in ("aws", "gcp") else None, storage, backups, ha, POSTGRES_VERSION.get(target))

    # -- artifacts ----------------------------------------------------------------------------
    given_bucket = args.get("artifact_bucket")
    want_scheme = {"aws": "s3", "gcp": "gs"}.get(target)
    artifacts = ArtifactsPlan(create=False, scheme="file", bucket=None, prefix="")
    if target == "local":
        if given_bucket is not None:
            p.add("artifact_bucket", given_bucket, "does not apply to the local target (artifacts go to local_dir/artifacts).", "remove it.")
    elif given_bucket is not None:
        m = _BUCKET_URL.fullmatch(given_bucket) if isinstance(given_bucket, str) else None
        if m is None:
            p.add("artifact_bucket", given_bucket, "is not a bucket URL.", "write it as s3://name[/prefix] or gs://name[/prefix].")
        elif want_scheme and m.group(1) != want_scheme:
            p.add("artifact_bucket", given_bucket, f"is on {m.group(1)}://, but the {target} server's identity reaches {want_scheme}:// buckets.", f"give an {want_scheme}:// bucket or drop it to create one.")
        else:
            artifacts = ArtifactsPlan(create=False, scheme=m.group(1), bucket=m.group(2), prefix=(m.group(3) or "").strip("/"))  # type: ignore[arg-type]
    elif target == "kubernetes":
        p.add("artifact_bucket", None, "is required on kubernetes: gpuplane creates buckets only where it can bind workload identity (EKS, GKE).", "give an s3:// or gs:// bucket (MinIO works with credentials_secret).")
    else:
        artifacts = ArtifactsPlan(create=True, scheme=want_scheme, bucket=None, prefix="")  # type: ignore[arg-type]
    creds = args.get("credentials_secret")
    if creds is not None:
        if target != "kubernetes":
            p.add("credentials_secret", creds, "applies only to the kubernetes target (aws and gcp use workload identity).", "remove it.")
        elif not isinstance(creds, str) or not _DNS_LABEL.fullmatch(creds):
            p.add("credentials_secret", creds, "is not a valid Secret name.", "give the name of a Secret in the namespace.")
    replicas = args.get("server_replicas", 1)
    if not _is_int(replicas) or replicas < 1:
        p.add("server_replicas", replicas, "must be a whole number of at least 1.", "leave it unset for 1.")
        replicas = 1
    features = FEATURES[implementation]
    p.extend(features.check(requested))
    p.raise_if_any()
    return ModelRegistryPlan(
        name=name,
        target=target,
        implementation=implementation,
        cloud={"local": "local", "aws": "aws", "gcp": "gcp"}.get(target, facts.cloud if facts else "kubernetes"),
        region=region,
        gcp_project=gcp_project,
        namespace=namespace,
        local_dir=local_dir,
        database=database,
        artifacts=artifacts,
        server_replicas=replicas,
        credentials_secret=creds,
        deletion_protection=bool(args.get("deletion_protection", False)),
        tags={**(facts.tags if facts else {}), **dict(args.get("tags") or {})},
        features=features,
        extra={k: args[k] for k in ("kms_key_arn", "kms_key_name") if k in args},  # type: ignore[literal-required]
    )


@dataclass
class RegistryCloud:
    """What a cloud implementation made for the Kubernetes side."""

    artifact_uri: pulumi.Output[str]
    """Where the server writes artifacts (``s3://bucket[/prefix]`` / ``gs://...``)."""
    database_host: pulumi.Output[str] | None = None
    """A managed Postgres host; None: the chart's in-cluster PostgreSQL."""
    database_password: pulumi.Output[str] | None = None
    service_account_annotations: pulumi.Input[dict[str, str]] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def feature_support(implementation: str) -> FeatureSupport:
    return FEATURES[implementation]


