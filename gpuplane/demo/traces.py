"""The demo's OpenTelemetry traces: read the JSON-lines span file and pick out a cold start.

The serving step runs the activator with ``OTEL_TRACES_EXPORTER=gpuplane_file`` and
``GPUPLANE_TRACES_FILE=<out>/traces/spans.jsonl``; the activator passes its ``traceparent`` to the
model server it starts (``TRACEPARENT``) and forwards, so one cold-start request's trace holds the
activator's request span, its ``hold``, the ``server start``, the server's ``cold start`` with
its phases, and the server's request span with ``queue``, ``batch`` and ``model``
(workloads/serving/tracing.py). ``cold_start_tree`` returns that trace as rows for the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPANS_FILE = "spans.jsonl"
TRACING_ENV = {"OTEL_TRACES_EXPORTER": "gpuplane_file"}
"""Variables the serving step adds (with ``GPUPLANE_TRACES_FILE``) to turn the file exporter on."""


def load_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in the file (lines that do not parse are skipped: a process killed mid-line)."""
    if not path.exists():
        return []
    spans = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            spans.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return spans


def cold_start_tree(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first trace (by start time) with a ``server start`` span, as depth-first rows ``{depth,
    name, service, start_ms, duration_ms}`` (start relative to the trace's first span); [] if none."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(str(s.get("trace_id")), []).append(s)
    cold = [t for t in by_trace.values() if any(s.get("name") == "server start" for s in t)]
    if not cold:
        return []
    trace = min(cold, key=lambda t: min(s["start_ns"] for s in t))
    ids = {s["span_id"] for s in trace}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in trace:
        parent = s.get("parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append(s)
    origin = min(s["start_ns"] for s in trace)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["start_ns"]):
            rows.append({"depth": depth, "name": s["name"], "service": s.get("service") or "",
                         "start_ms": round((s["start_ns"] - origin) / 1e6, 2),
                         "duration_ms": round((s["end_ns"] - s["start_ns"]) / 1e6, 2)})
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return rows


def tree_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The rows as an indented text tree (one span a line: offset, duration, service)."""
    return [f"{'  ' * r['depth']}{r['name']:<{44 - 2 * r['depth']}} +{r['start_ms']:>9.1f} ms "
            f"{r['duration_ms']:>9.1f} ms  {r['service']}" for r in rows]
