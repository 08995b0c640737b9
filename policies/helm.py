"""Render a Helm release's chart so the pod policies see the pods it would create.

Contract: ``render(view)`` takes a ``kubernetes:helm.sh/v3:Release`` (or ``helm.sh/v4:Chart``)
view and returns a ``Rendered``: the manifests ``helm template`` prints for the release's chart,
version, values and namespace, or the reason it could not render them (no helm binary, no local
chart archive, helm failed). Nothing is fetched from the network: the chart must be a local
archive ``<chart>-<version>.tgz`` (``v`` prefix tolerated) in one of ``chart_dirs()``:
``$GPUPLANE_CHART_DIRS`` (``:``-separated), then ``shared/charts`` next to the repository or any
folder above it. helm is ``shutil.which("helm")``, else ``$GPUPLANE_HELM``, else the engine
cache's ``~/.cache/gpuplane/engine/*/bin/helm``. Renders are cached by their inputs (helm, chart
archive size and mtime, release name, namespace, values, Kubernetes version) in the process and
under ``~/.cache/gpuplane/helm-template/`` (``$GPUPLANE_CACHE_DIR``).
When a chart refuses values that are not known at plan time (empty or unknown outputs), it is
rendered again with placeholders in their place.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from policies.podsecurity import as_dict
from policies.resources import UNKNOWN, ResourceView

KUBE_VERSION = os.environ.get("GPUPLANE_HELM_KUBE_VERSION", "1.33.0")
"""Capabilities.KubeVersion for rendering (helm template's own default, 1.20, fails current charts)."""
RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Rendered:
    manifests: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    """Why the chart was not rendered (None when it was)."""


def is_release(view: ResourceView) -> bool:
    return view.type in RELEASE_TYPES


def helm_binary() -> str | None:
    found = shutil.which("helm") or os.environ.get("GPUPLANE_HELM")
    if found and Path(found).is_file():
        return found
    cached = sorted(glob.glob(os.path.expanduser("~/.cache/gpuplane/engine/*/bin/helm")))
    return cached[-1] if cached else None


def chart_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("GPUPLANE_CHART_DIRS", "").split(":") if p]
    dirs += [d / "shared" / "charts" for d in (ROOT, *ROOT.parents)]
    return [d for d in dirs if d.is_dir()]


def chart_archive(chart: str, version: str) -> Path | None:
    name = chart.rstrip("/").rsplit("/", 1)[-1]
    for d in chart_dirs():
        for v in dict.fromkeys((version, version.lstrip("v"), f"v{version.lstrip('v')}")):
            p = d / f"{name}-{v}.tgz"
            if p.is_file():
                return p
    return None


def release_facts(view: ResourceView) -> tuple[str, str, str, str, dict[str, Any]]:
    """(release name, chart, version, namespace, values) of a release."""
    p = view.props
    name, ns = p.get("name"), p.get("namespace")
    return (
        name if isinstance(name, str) and name else view.name,
        str(p.get("chart") or ""),
        str(p.get("version") or ""),
        ns if isinstance(ns, str) and ns else "default",
        as_dict(p.get("values")),
    )


def _cache_file(helm: str, archive: str, name: str, ns: str, values_json: str) -> Path:
    st = Path(archive).stat()
    key = json.dumps([helm, archive, st.st_size, st.st_mtime_ns, name, ns, values_json, KUBE_VERSION])
    root = Path(os.environ.get("GPUPLANE_CACHE_DIR") or Path.home() / ".cache" / "gpuplane") / "helm-template"
    return root / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


@lru_cache(maxsize=256)
def _template(helm: str, archive: str, name: str, ns: str, values_json: str) -> Rendered:
    """``helm template`` once per input set: in this process (lru_cache) and on disk (the same chart,
    values and helm render the same manifests, so a second plan does not pay for it again)."""
    cache = _cache_file(helm, archive, name, ns, values_json)
    try:
        return Rendered(manifests=json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    rendered = _helm_template(helm, archive, name, ns, values_json)
    if rendered.problem is None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(rendered.manifests, default=str))
            tmp.replace(cache)
        except OSError:
            pass  # an unwritable cache only costs time
    return rendered


def _helm_template(helm: str, archive: str, name: str, ns: str, values_json: str) -> Rendered:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(values_json)
        values_file = f.name
    try:
        proc = subprocess.run(
            [
                helm,
                "template",
                name,
                archive,
                "--namespace",
                ns,
                "--values",
                values_file,
                "--kube-version",
                KUBE_VERSION,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Rendered(problem=f"helm template failed ({' '.join(str(e).split())})")
    finally:
        os.unlink(values_file)
    if proc.returncode != 0:
        return Rendered(problem=f"helm template failed: {' '.join(proc.stderr.split())[:300]}")
    try:
        docs = [
            d
            for d in yaml.safe_load_all(proc.stdout)
            if isinstance(d, dict) and d.get("kind") != "CustomResourceDefinition"
        ]
    except yaml.YAMLError as e:
        return Rendered(problem=f"helm template printed invalid YAML ({' '.join(str(e).split())[:200]})")
    return Rendered(manifests=docs)


def render(view: ResourceView) -> Rendered:
    name, chart, version, ns, values = release_facts(view)
    if not chart or not version:
        return Rendered(problem="the release does not pin chart and version")
    archive = chart_archive(chart, version)
    if archive is None:
        where = ", ".join(str(d) for d in chart_dirs()) or "no chart folder found"
        return Rendered(problem=f"no local archive {chart.rsplit('/', 1)[-1]}-{version}.tgz (looked in {where})")
    helm = helm_binary()
    if helm is None:
        return Rendered(
            problem="no helm binary (not on PATH, GPUPLANE_HELM unset, none in ~/.cache/gpuplane/engine/*/bin)"
        )
    rendered = _template(helm, str(archive), name, ns, json.dumps(values, sort_keys=True, default=str))
    filled = _fill(values)
    if rendered.problem is not None and filled != values:
        # Outputs not known at plan time (a database endpoint) arrive empty or unknown, and a chart
        # may `required` them: render again with placeholders, which change no pod's security fields.
        retry = _template(helm, str(archive), name, ns, json.dumps(filled, sort_keys=True, default=str))
        if retry.problem is None:
            return retry
    return rendered


PLACEHOLDER = "gpuplane-unknown-at-plan"


def _fill(value: Any) -> Any:
    """``value`` with every empty string and unknown replaced by ``PLACEHOLDER``."""
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v) for v in value]
    if value is UNKNOWN or value == "":
        return PLACEHOLDER
    return value
