"""Render ``feature_store.yaml`` for one deployment target from the jinja2 templates.

Contract:

- ``render_feature_store_yaml(target, **params) -> str`` is pure: no Feast import, no file
  writes, no environment reads. ``target`` is one of ``TARGETS`` (local, kubernetes, aws, gcp).
- The templates (``templates/<target>.yaml.j2``) and their parameters (``templates/params.yaml``:
  doc, default or required, choices, pattern, required_when) are data. The FeatureStore Pulumi
  component reads the same files, so a stack renders exactly what the local pipeline renders.
- Every problem (unknown target, unknown parameter, missing parameter, a value outside its
  choices or pattern) is collected and raised once as ``FeatureStoreYamlError``, naming the
  parameter, the value received and the fix.
- Secrets never appear in the output: the Redis password is referenced as ``${VAR}``, which
  Feast expands from the environment when it loads the file.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATES_DIR = Path(__file__).parent / "templates"
"""Folder of ``<target>.yaml.j2`` templates and ``params.yaml``."""

TARGETS: tuple[str, ...] = ("local", "kubernetes", "aws", "gcp")


class FeatureStoreYamlError(ValueError):
    """Parameters that cannot render a valid feature_store.yaml; lists every problem."""


@functools.cache
def param_specs() -> dict[str, dict[str, dict[str, Any]]]:
    """Parameter specs per target (common ones merged in), as read from ``params.yaml``."""
    raw = yaml.safe_load((TEMPLATES_DIR / "params.yaml").read_text())
    return {target: {**raw["common"], **raw["targets"][target]} for target in TARGETS}


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; values are constrained by params.yaml patterns.
    )


def resolve_params(target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Apply defaults and validate ``params`` for ``target``; raise one error listing all problems."""
    if target not in TARGETS:
        raise FeatureStoreYamlError(f"feature_store.yaml: target={target!r} is unknown. Use one of {list(TARGETS)}.")
    specs = param_specs()[target]
    problems: list[str] = []
    for key in sorted(set(params) - set(specs)):
        problems.append(f"parameter {key!r} is not used by target {target!r} (known: {sorted(specs)})")
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        if key in params and params[key] is not None:
            values[key] = params[key]
        elif spec.get("required"):
            problems.append(f"parameter {key!r} is required for target {target!r}: {spec['doc'].rstrip('.')}")
        else:
            values[key] = spec.get("default")
    for key, spec in specs.items():
        if key not in values:
            continue
        value = values[key]
        if "choices" in spec and value not in spec["choices"]:
            problems.append(f"{key}={value!r} is not one of {spec['choices']}")
            continue
        if "pattern" in spec and not re.fullmatch(spec["pattern"], str(value)):
            problems.append(f"{key}={value!r} does not match {spec['pattern']!r} ({spec['doc'].rstrip('.')})")
        for other, when in (spec.get("required_when") or {}).items():
            if values.get(other) == when and value in ("", None):
                problems.append(f"{key} is required when {other}={when!r}: {spec['doc'].rstrip('.')}")
    if problems:
        raise FeatureStoreYamlError(
            f"feature_store.yaml for target {target!r}: " + "; ".join(problems) + ". Fix the parameters listed."
        )
    return values


def render_feature_store_yaml(target: str, **params: Any) -> str:
    """Render ``feature_store.yaml`` for ``target`` (see ``templates/params.yaml`` for parameters)."""
    values = resolve_params(target, params)
    text = _environment().get_template(f"{target}.yaml.j2").render(**values)
    yaml.safe_load(text)  # a template bug must fail here, not inside Feast on a pod
    return text
