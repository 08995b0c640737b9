"""Every PromQL gpuplane ships, evaluated by a real Prometheus over series from the real local processes.

What ships is read from the offline plan of ``aws-dev`` (the stack with observability, a
two-tier endpoint and a model pipeline with a canary), not from module paths: the
PrometheusRule's alert expressions, the Grafana dashboards in the ``grafana_dashboard``
ConfigMaps, and the canary gate's queries inside the WorkflowTemplate's HTTP checks.

The series come from the processes themselves, on loopback: the model server behind the
scale-to-zero activator, the two-tier router in front of them, and a training run that is
preempted (SIGTERM, exit 75) and resumed. Prometheus scrapes each under the labels the planned
PodMonitor would give it (``job`` = ``<namespace>/<monitor>``, ``namespace``, ``pod``, and the
monitor's ``podTargetLabels`` as ``gpuplane_dev_*``).

A query that returns nothing while the metrics it reads exist locally is a failure. Alerts are
judged on each comparison's left-hand side (the alert may rightly not fire; its data must exist).
Metrics no local process can export (DCGM, kube-state-metrics, Knative's queue-proxy) are listed
with the reason in ``NO_LOCAL_SOURCE``; none of those metrics may exist here, so the list stays honest.

Prometheus: ``make prometheus`` installs Debian's package (``apt-get install prometheus``) or
builds ``github.com/prometheus/prometheus/cmd/prometheus`` into
``~/.cache/gpuplane/engine/prometheus-<version>/``; ``GPUPLANE_PROMETHEUS`` names another binary.
Without one the test is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from gpuplane.engine.promql import check, grafana_to_promql, panels
from tests.workloads.test_serving_support import free_port, infer_body, wait_until, write_model_dir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_VERSION = "2.42.0"
NAMESPACE = "recs"
ENDPOINT = "recs-2t"
JOB = "recs-train"
SCRAPE_S = 1
NO_LOCAL_SOURCE = {
    "DCGM_": "NVIDIA DCGM exporter (a GPU node); no GPU exporter runs locally",
    "kube_": "kube-state-metrics (a cluster)",
    "revision_": "Knative's queue-proxy before 1.19 (no shipped query should read these names any more)",
    "kn_": "Knative 1.23's queue-proxy (kn_serving_invocation_duration_seconds), which runs only in a revision pod",
}

KNOWN_EMPTY: dict[str, str] = {}
"""Shipped queries this lane finds empty although their data exists, with the reason and the fix.
Each must still be empty (so the entry goes when the query is fixed). The 5xx-share panel was
one (no 5xx series without errors, so an empty ratio) until it became ``(... or vector(0)) / ...``."""


def prometheus_binary() -> str:
    """The Prometheus to run: $GPUPLANE_PROMETHEUS, then PATH, then the engine cache (see module doc)."""
    candidates = [os.environ.get("GPUPLANE_PROMETHEUS", ""), shutil.which("prometheus") or "",
                  str(Path.home() / ".cache" / "gpuplane" / "engine" / f"prometheus-{PROMETHEUS_VERSION}" / "prometheus")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    how = ("no prometheus binary: run `make prometheus` (Debian: apt-get install prometheus; elsewhere it builds "
           f"github.com/prometheus/prometheus/cmd/prometheus@v0.{PROMETHEUS_VERSION.split('.', 1)[1]} into "
           f"~/.cache/gpuplane/engine/prometheus-{PROMETHEUS_VERSION}/) or set GPUPLANE_PROMETHEUS")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(how)
    pytest.skip(how)


# ---------------------------------------------------------------------------------------------
# What ships: read from the plan


def _kube_objects(stack: str) -> list[dict]:
    from gpuplane.engine.plan import plan_stack

    plan = plan_stack(stack, validate=False)
    return [r.inputs for r in plan.resources if isinstance(getattr(r, "inputs", None), dict) and r.inputs.get("kind")]


@pytest.fixture(scope="module")
def shipped() -> dict[str, object]:
    objects = _kube_objects("aws-dev")
    queries: dict[str, str] = {}
    for obj in objects:
        name = obj.get("metadata", {}).get("name", "?")
        if obj["kind"] == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    queries[f"alert {rule.get('alert') or rule.get('record')}"] = rule["expr"]
        elif obj["kind"] == "ConfigMap" and "grafana_dashboard" in (obj["metadata"].get("labels") or {}):
            for body in obj["data"].values():
                model = json.loads(body)
                constants = {v["name"]: str(v["query"]) for v in model.get("templating", {}).get("list", [])
                             if v.get("type") == "constant"}
                for panel in panels(model):
                    for t in panel.get("targets", []):
                        if t.get("expr"):
                            expr = t["expr"]
                            for var, value in constants.items():  # what the planned dashboard holds
                                expr = expr.replace(f"${{{var}}}", value).replace(f"${var}", value)
                            queries[f"dashboard {model['uid']} / {panel.get('title')} / {t.get('refId')}"] = expr
        elif obj["kind"] == "WorkflowTemplate":
            for tpl in obj["spec"]["templates"]:
                url = (tpl.get("http") or {}).get("url")
                if url and "/api/v1/query" in url:
                    queries[f"pipeline gate {name} / {tpl['name']}"] = parse_qs(urlsplit(url).query)["query"][0]
    monitors = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PodMonitor"}
    kinds = {k.split(" ", 1)[0] for k in queries}
    assert {"alert", "dashboard", "pipeline"} <= kinds, f"the plan ships no {({'alert', 'dashboard', 'pipeline'} - kinds)}"
    return {"queries": queries, "monitors": monitors}


def _monitor(monitors: dict[str, dict], role: str) -> dict:
    """The planned PodMonitor for ``role`` (``gpuplane-serving``, ``gpuplane-activators``, ...)."""
    found = [m for name, m in monitors.items() if name.rstrip("s").endswith(f"-{role}")]
    assert len(found) == 1, f"one {role} PodMonitor expected, got {sorted(monitors)}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# The processes


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env or _env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _training_argv(data: Path, ckpt: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "workloads.training", "--preset", "tiny", "--data", str(data), "--batch-size", "16",
            "--max-steps", str(steps), "--threads", "1", "--log-every", "1", "--checkpoint-every", "5",
            "--checkpoint-dir", str(ckpt), "--seed", "3"]


@pytest.fixture(scope="module")
def live(shipped, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping the real processes, with traffic flowing; yields its URL."""
    from workloads.data.generate import GenerateConfig, generate

    binary = prometheus_binary()
    tmp = tmp_path_factory.mktemp("promql-live")
    model = write_model_dir(tmp / "model")
    data = tmp / "data"
    generate(data, GenerateConfig(users=300, items=200, days=7, seed=5))
    server_port, activator_port, router_port, train_port, prom_port = (free_port() for _ in range(5))
    procs: list[subprocess.Popen[bytes]] = []
    stop_traffic = threading.Event()
    try:
        procs.append(_spawn([sys.executable, "-m", "workloads.serving.activator", "--port", str(activator_port),
                             "--idle-seconds", "600", "--upstream-port", str(server_port), "--",
                             sys.executable, "-m", "workloads.serving", "--model-dir", str(model), "--port", "{port}",
                             "--torch-threads", "1"], tmp / "activator.log"))
        procs.append(_spawn([sys.executable, "-m", "workloads.serving.router", "--port", str(router_port),
                             "--backend", f"steady=http://127.0.0.1:{server_port}",
                             "--backend", f"burst=http://127.0.0.1:{activator_port}",
                             "--overflow-threshold", "1"], tmp / "router.log"))
        # training: a first run preempted by SIGTERM (exit 75), then the resumed run that stays up
        train_env = {**_env(), "GPUPLANE_METRICS_PORT": str(train_port), "GPUPLANE_METRICS_ADDR": "127.0.0.1"}
        first = _spawn(_training_argv(data, tmp / "ckpt", 100_000), tmp / "train-1.log", train_env)
        procs.append(first)
        wait_until(lambda: _ok(f"http://127.0.0.1:{train_port}/metrics") or first.poll() is not None, 120,
                   "the first training run's metrics")

        labels = {
            "serving": ({"pod": "recs-2t-steady-00001-deployment-0"}, server_port),
            "activator": ({"pod": "recs-2t-activator-0"}, activator_port),
            "router": ({"pod": "recs-2t-router-0"}, router_port),
            "training": ({"pod": "recs-train-0-0"}, train_port),
        }
        values = {"gpuplane_dev_endpoint": ENDPOINT, "gpuplane_dev_job": JOB, "gpuplane_dev_team": "recs"}
        scrape_configs = []
        for role, (extra, port) in labels.items():
            mon = _monitor(shipped["monitors"], role)
            endpoint = mon["spec"]["podMetricsEndpoints"][0]
            target = {"namespace": NAMESPACE, "container": role, **extra}
            for label in mon["spec"].get("podTargetLabels", []):
                key = label.replace(".", "_").replace("/", "_")
                target[key] = values[key]
            scrape_configs.append({
                "job_name": f"{mon['metadata']['namespace']}/{mon['metadata']['name']}",
                "scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s",
                "metrics_path": endpoint.get("path", "/metrics"),
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": target}],
            })
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": f"{SCRAPE_S}s"},
                                          "scrape_configs": scrape_configs}))
        procs.append(_spawn([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], tmp / "prometheus.log"))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: _ok(f"{prom}/-/ready"), 60, "prometheus ready")

        def traffic() -> None:  # two clients through the router (overflow threshold 1: both tiers serve)
            with httpx.Client(timeout=60) as client:
                i = 0
                while not stop_traffic.is_set():
                    i += 1
                    for url in (f"http://127.0.0.1:{router_port}", f"http://127.0.0.1:{activator_port}"):
                        with contextlib.suppress(httpx.HTTPError):
                            client.post(f"{url}/v2/models/recommender/infer", json=infer_body([[1 + i % 40, 2]], k=3))
                    stop_traffic.wait(0.05)

        # the first request cold-starts the model server through the activator
        httpx.post(f"http://127.0.0.1:{activator_port}/v2/models/recommender/infer",
                   json=infer_body([[1, 2]], k=3), timeout=120).raise_for_status()
        clients = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
        for c in clients:
            c.start()

        time.sleep(8 * SCRAPE_S)  # several scrapes of the first training run
        os.killpg(first.pid, signal.SIGTERM)
        assert first.wait(timeout=120) == 75, (tmp / "train-1.log").read_text()[-2000:]
        procs.append(_spawn(_training_argv(data, tmp / "ckpt", 100_000), tmp / "train-2.log", train_env))
        wait_until(lambda: _ok(f"http://127.0.0.1:{train_port}/metrics"), 120, "the resumed training run's metrics")
        time.sleep(20 * SCRAPE_S)  # rates need samples: 20 scrapes of everything with traffic flowing
        down = [j for j in httpx.get(f"{prom}/api/v1/targets").json()["data"]["activeTargets"] if j["health"] != "up"]
        assert not down, f"targets not up: {[(d['labels']['job'], d.get('lastError')) for d in down]}"
        yield prom
    finally:
        stop_traffic.set()
        for p in reversed(procs):
            _stop(p)


# ---------------------------------------------------------------------------------------------
# Evaluation


GRAFANA = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}
VARIABLES = {"namespace": NAMESPACE, "endpoint": ENDPOINT, "job": JOB, "node": ".+"}


def to_query(expr: str) -> str:
    """A dashboard's or a gate's text as Prometheus receives it: Grafana and Argo variables filled in."""
    for var, value in GRAFANA.items():
        expr = expr.replace(var, value)
    for var, value in VARIABLES.items():
        expr = expr.replace(f"${{{var}}}", value).replace(f"${var}", value)
    return expr.replace("{{workflow.name}}", "00001")  # the challenger revision of a run


def data_parts(expr: str) -> list[str]:
    """The left-hand side of every comparison with a constant (an alert's data, whether or not it fires)."""
    import promql_parser

    comparisons = {">", "<", ">=", "<=", "==", "!="}
    out: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op).strip() in comparisons \
                and isinstance(node.rhs, promql_parser.NumberLiteral):
            out.append(str(node.lhs))

    promql_parser.walk(promql_parser.parse(grafana_to_promql(expr)), visit)
    return out or [expr]


def evaluate(prom: str, query: str) -> list[dict]:
    """The instant-query result; ``QueryRejected`` with Prometheus's message when it does not run."""
    reply = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=30)
    body = reply.json()
    if reply.status_code != 200 or body.get("status") != "success":
        raise QueryRejected(f"{query}: {body.get('error')}")
    return body["data"]["result"]


class QueryRejected(Exception):
    pass


def no_local_source(expr: str) -> str | None:
    """Why no local process can produce ``expr``'s metrics, or None when one can."""
    names = check(to_query(expr))
    reasons = {reason for name in names for prefix, reason in NO_LOCAL_SOURCE.items() if name.startswith(prefix)}
    if names and len(reasons) and all(any(n.startswith(p) for p in NO_LOCAL_SOURCE) for n in names):
        return "; ".join(sorted(reasons))
    return None


def test_every_shipped_query_returns_data_when_the_processes_export_it(shipped, live) -> None:
    empty, unexpected, nan_only, rejected, fixed, evaluated = [], [], [], [], [], 0
    for where, expr in sorted(shipped["queries"].items()):
        reason = no_local_source(expr)
        for part in data_parts(to_query(expr)) if where.startswith("alert") else [to_query(expr)]:
            try:
                result = evaluate(live, part)
            except QueryRejected as err:
                rejected.append(f"{where}: {err}")
                continue
            evaluated += 1
            if reason:  # none of its metrics may exist here (the expression itself may add `or vector(0)`)
                present = [n for n in sorted(check(part)) if evaluate(live, n)]
                if present:
                    unexpected.append(f"{where}: {present} exist although NO_LOCAL_SOURCE says: {reason}")
            elif where in KNOWN_EMPTY:
                if result:
                    fixed.append(f"{where}: returns data now; remove it from KNOWN_EMPTY")
            elif not result:
                series = {n: len(evaluate(live, n)) for n in sorted(check(part))}
                empty.append(f"{where}: {part}\n    returns nothing; series present: {series}")
            elif all(math.isnan(float(r["value"][1])) for r in result):
                nan_only.append(f"{where}: {part}")
    print(f"{evaluated} queries evaluated against {live}")
    assert not rejected, "Prometheus rejects:\n" + "\n".join(rejected)
    assert not unexpected, "\n".join(unexpected)
    assert not fixed, "\n".join(fixed)
    for where, why in KNOWN_EMPTY.items():
        print(f"known empty: {where}: {why}")
    assert not empty, f"{len(empty)} shipped queries return nothing although the processes export data:\n" + \
        "\n".join(empty)
    for where in nan_only:  # a quantile of a histogram with no observation in the window: data, but NaN
        print(f"NaN (no observation in the window): {where}")


def test_the_queries_without_a_local_source_are_named_with_the_reason(shipped) -> None:
    """What this lane cannot check, printed for the report (and the gate's queries are among them today)."""
    skipped = {where: reason for where, expr in shipped["queries"].items() if (reason := no_local_source(expr))}
    for where, reason in sorted(skipped.items()):
        print(f"not evaluable locally: {where}: {reason}")
    assert len(skipped) < len(shipped["queries"]) / 2, "most shipped queries have no local source"
