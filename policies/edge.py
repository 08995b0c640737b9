"""Edge policy: what ships to an edge site is pinned, and TensorRT runs only where a GPU is asked for.

- ``edge-artifacts-pinned``: a model rolled out to edge sites must be pinned by a ``sha256:``
  digest (an unpinned URI can change under a wave, and a site cannot check what it loaded), the
  edge server image must be a digest reference (``checkImages``, default on: a tag can move
  between waves), and a container told to run TensorRT (``EDGE_RUNTIME=tensorrt``) must request
  an ``nvidia.com/gpu``. Applies to ``EdgeDeployment`` summaries and to any Kubernetes ConfigMap or
  pod template carrying the edge contract (``EDGE_MODEL_URI``, components/edge/spec.py), including
  ones not made by the component.
"""

from __future__ import annotations

import re
from typing import Any

from policies.framework import Config, ResourceRule
from policies.resources import ResourceView, dig, label, pod_specs

EDGE_SITE_LABEL = "gpuplane.dev/edge-site"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {str(e.get("name")): str(e.get("value")) for e in container.get("env") or [] if isinstance(e, dict) and isinstance(e.get("value"), str)}


def _model_problems(where: str, env: dict[str, Any]) -> list[str]:
    if env.get("EDGE_MODEL_URI") and not _DIGEST.match(str(env.get("EDGE_MODEL_DIGEST") or "")):
        return [f"{where}: EDGE_MODEL_URI {env['EDGE_MODEL_URI']!r} has no sha256 digest (EDGE_MODEL_DIGEST {env.get('EDGE_MODEL_DIGEST')!r}). "
                "Give the model's sha256 digest in EDGE_MODEL_DIGEST."]
    return []


def check_edge_artifacts(view: ResourceView, cfg: Config) -> list[str]:
    out: list[str] = []
    images = bool(cfg.get("checkImages", True))
    if view.component == "EdgeDeployment":
        s = view.summary
        digest = dig(s, "model.digest")
        if not _DIGEST.match(str(digest or "")):
            out.append(f"{label(view)}: model {dig(s, 'model.uri')!r} is not pinned (digest {digest!r}). Give its sha256 digest.")
        return out
    if view.type == "kubernetes:core/v1:ConfigMap":
        data = view.props.get("data")
        if isinstance(data, dict):
            out += _model_problems(f"{label(view)} data", data)
        return out
    labels = dig(view.props, "metadata.labels")
    edge_site = isinstance(labels, dict) and EDGE_SITE_LABEL in labels  # made by EdgeDeployment: the contract is in its ConfigMap
    for path, spec in pod_specs(view):
        for i, c in enumerate(spec.get("containers") or [] if isinstance(spec, dict) else []):
            if not isinstance(c, dict):
                continue
            env = _env(c)
            if not ("EDGE_MODEL_URI" in env or "EDGE_RUNTIME" in env or edge_site):
                continue
            where = f"{label(view)} {path}.containers[{i}]"
            out += _model_problems(where, env)
            image = c.get("image")
            if images and isinstance(image, str) and "@sha256:" not in image:
                out.append(f"{where}: image {image!r} is a tag, which can move between waves. Use a digest reference (repo@sha256:...).")
            if env.get("EDGE_RUNTIME") == "tensorrt" and "nvidia.com/gpu" not in (dig(c, "resources.limits") or {}):
                out.append(f"{where}: EDGE_RUNTIME=tensorrt without an nvidia.com/gpu limit; TensorRT needs the site's GPU. "
                           "Add an nvidia.com/gpu limit, or set EDGE_RUNTIME to onnxruntime.")
    return out


EDGE_ARTIFACTS_PINNED = ResourceRule(
    name="edge-artifacts-pinned",
    description="Checks whether edge rollouts ship digest-pinned models and images, and run TensorRT only where a GPU is requested.",
    check=check_edge_artifacts,
    schema={
        "checkImages": {
            "type": "boolean",
            "default": True,
            "description": "Also require the edge server image of every edge pod to be a digest reference.",
        }
    },
)
