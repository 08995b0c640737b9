"""PromQL in dashboards and alert rules, checked with a real parser (``promql-parser`` on PyPI).

``promql-parser`` is the Python binding of the Rust ``promql-parser`` crate (GreptimeDB's, a port
of Prometheus's own grammar); it is a dev dependency, imported only when a check runs.

- ``grafana_to_promql(expr)`` replaces Grafana's template variables (``$__rate_interval``,
  ``$__range``, ``$name``, ``${name}``) by sample values of the right kind, so the text a Grafana
  panel sends is what gets parsed: durations for the interval variables, a regex-safe word
  inside label matchers, a number elsewhere (constants such as ``$gpu_hour_usd``).
- ``check(expr)`` parses it and returns the metric names it selects, or raises ``PromQLError``
  naming the expression and the parser's message.
- ``dashboard_problems(model)`` checks a Grafana dashboard model's shape: a unique ``uid``,
  unique panel ids, every non-row panel with a Prometheus ``datasource`` and ``targets`` with
  unique ``refId`` and an ``expr``, every ``$variable`` defined in ``templating`` (or a Grafana
  global), and every ``expr`` parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

GRAFANA_GLOBALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1d", "__range_s": "86400",
                   "__range_ms": "86400000", "__interval_ms": "60000"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_IN_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class PromQLError(ValueError):
    """An expression the parser rejects."""


def variables_in(text: str) -> set[str]:
    """Names of the Grafana variables ``text`` refers to."""
    return {a or b for a, b in _VARIABLE.findall(text)}


def grafana_to_promql(expr: str) -> str:
    """``expr`` with Grafana variables replaced by sample values (see the module docstring)."""
    def in_strings(match: re.Match[str]) -> str:  # inside a label matcher's string: a plain word
        return _VARIABLE.sub(lambda m: GRAFANA_GLOBALS.get(m.group(1) or m.group(2), "x"), match.group(0))

    text = _IN_STRING.sub(in_strings, expr)
    return _VARIABLE.sub(lambda m: GRAFANA_GLOBALS.get(m.group(1) or m.group(2), "1"), text)


def check(expr: str) -> set[str]:
    """The metric names ``expr`` selects; raises PromQLError when it does not parse."""
    import promql_parser

    try:
        tree = promql_parser.parse(grafana_to_promql(expr))
    except ValueError as exc:
        raise PromQLError(f"{expr!r} does not parse as PromQL: {exc}") from None
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names


def panels(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included."""
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_problems(model: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a dashboard model's shape and queries (empty when it is fine)."""
    problems: list[str] = []
    uid = model.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 40:
        problems.append(f"uid {uid!r} must be a string of 1-40 characters")
    defined = {v.get("name") for v in model.get("templating", {}).get("list", [])} | set(GRAFANA_GLOBALS)
    ids: set[int] = set()
    for panel in panels(model):
        where = f"{uid} panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: duplicate panel id")
        ids.add(panel.get("id"))  # type: ignore[arg-type]
        if panel.get("type") == "row":
            continue
        source = panel.get("datasource") or {}
        if source.get("type") != "prometheus":
            problems.append(f"{where}: datasource {source!r} is not a Prometheus data source")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{where}: duplicate refId in {refs}")
        for target in targets:
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where} target {target.get('refId')}: no expr")
                continue
            undefined = variables_in(expr) - defined
            if undefined:
                problems.append(f"{where}: undefined variables {sorted(undefined)} in {expr!r}")
            try:
                check(expr)
            except PromQLError as exc:
                problems.append(f"{where}: {exc}")
    return problems
