"""MLflow tracking and model registry for the model loop.

One thin class over ``mlflow.MlflowClient`` (the library users already know: runs, metrics,
registered models, aliases). The same code runs against any MLflow backend:

- locally: ``sqlite:///<dir>/mlflow.db`` for runs and the registry, a directory for artifacts;
- on a cluster: ``postgresql://...`` (RDS / Cloud SQL / in-cluster Postgres) and an
  ``s3://`` / ``gs://`` artifact root (ModelRegistry creates both).

A model version is the training export (model.safetensors, config.json, items.json,
metrics.json) logged as the artifacts of its evaluation run under ``model/`` and registered from
``runs:/<run_id>/model``; the aliases ``champion`` (what serves) and ``challenger`` (the last
evaluated candidate) point at versions. Not done here: stages (deprecated by MLflow in favour of
aliases), model flavours (the export is plain files the server reads directly).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
DEFAULT_EXPERIMENT = "gpuplane-model-loop"
DEFAULT_MODEL_NAME = "recommender"
MODEL_ARTIFACT_PATH = "model"


class RegistryError(ValueError):
    """A registry lookup or write failed in a way the caller can fix; the message says how."""


@dataclass(frozen=True)
class Version:
    """One registered model version."""

    name: str
    version: str
    run_id: str
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]


def local_tracking_uri(directory: str | os.PathLike[str]) -> str:
    """The SQLite tracking + registry URI for a local registry in ``directory``."""
    return f"sqlite:///{Path(directory).resolve() / 'mlflow.db'}"


def check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise RegistryError(f"alias {alias!r} is not one the model loop uses; use one of {', '.join(ALIASES)}")


class Registry:
    """Runs, model versions and aliases on one MLflow tracking / registry URI."""

    def __init__(self, tracking_uri: str, artifact_root: str | os.PathLike[str] | None = None,
                 experiment: str = DEFAULT_EXPERIMENT) -> None:
        for name in ("alembic", "mlflow"):  # one line per migration and per store start is noise here
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = None
            if artifact_root is None and tracking_uri.startswith("sqlite:///"):
                # MLflow's default is ./mlruns under whatever the working directory is: keep a
                # local registry's artifacts beside its database instead.
                artifact_root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
            if artifact_root is not None:
                root = str(artifact_root)
                location = root if "://" in root else Path(root).resolve().as_uri()
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)

    # ---- runs

    def log_evaluation(self, model_dir: str | os.PathLike[str], metrics: Mapping[str, float],
                       params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
                       run_name: str | None = None) -> str:
        """One finished run holding ``metrics``, ``params``, ``tags`` and the export as ``model/``."""
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags or {}))
        rid = run.info.run_id
        try:
            from mlflow.entities import Metric, Param

            now = int(time.time() * 1000)
            self.client.log_batch(rid, metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())],
                                  params=[Param(k, str(v)) for k, v in sorted((params or {}).items())])
            self.client.log_artifacts(rid, str(model_dir), MODEL_ARTIFACT_PATH)
        except BaseException:
            self.client.set_terminated(rid, status="FAILED")
            raise
        self.client.set_terminated(rid)
        return rid

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def run_params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    # ---- model versions and aliases

    def register(self, name: str, run_id: str, tags: Mapping[str, str] | None = None) -> Version:
        """Register ``runs:/<run_id>/model`` as a new version of ``name`` (created if missing)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description="gpuplane next-item recommender")
        mv = self.client.create_model_version(name, f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}", run_id,
                                              tags=dict(tags or {}))
        return self.get_version(name, str(mv.version))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        check_alias(alias)
        self.client.delete_registered_model_alias(name, alias)

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, str(version), key, value)

    def aliases(self, name: str) -> dict[str, str]:
        """{alias: version} of ``name``; {} when the model is not registered yet."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        return {str(k): str(v) for k, v in (model.aliases or {}).items()}

    def get_version(self, name: str, version: str) -> Version:
        mv = self.client.get_model_version(name, str(version))
        return Version(name, str(mv.version), str(mv.run_id), str(mv.source), tuple(mv.aliases or ()), dict(mv.tags or {}))

    def by_alias(self, name: str, alias: str) -> Version:
        """The version ``alias`` points at; :class:`RegistryError` naming the aliases set when it is not set."""
        check_alias(alias)
        present = self.aliases(name)
        if alias not in present:
            have = ", ".join(f"{a}→v{v}" for a, v in sorted(present.items())) or "none"
            raise RegistryError(f"registered model {name!r} has no alias {alias!r} (aliases set: {have}); "
                                "register a version with `python -m workloads.pipeline.evaluate` or set the alias")
        return self.get_version(name, present[alias])

    def find_alias(self, name: str, alias: str) -> Version | None:
        """Like :meth:`by_alias`, None when the alias is not set (e.g. no champion yet)."""
        check_alias(alias)
        present = self.aliases(name)
        return self.get_version(name, present[alias]) if alias in present else None

    def download(self, name: str, version: str, dst: str | os.PathLike[str]) -> Path:
        """Copy a version's export files into ``dst`` itself (created); return it."""
        import shutil

        import mlflow.artifacts

        out = Path(dst)
        out.mkdir(parents=True, exist_ok=True)
        staging = out / ".download"
        shutil.rmtree(staging, ignore_errors=True)
        mv = self.get_version(name, version)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(staging),
                                                         tracking_uri=self.tracking_uri))
        for item in local.iterdir():
            os.replace(item, out / item.name)
        shutil.rmtree(staging, ignore_errors=True)
        return out
