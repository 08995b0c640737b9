"""A small Kubernetes API client for the engine lane: discovery and server-side apply (real or dry run).

Talks HTTPS to the sandbox with the client certificate its kubeconfig names, so that hundreds of
dry-run applies cost milliseconds each instead of a kubectl process each. Requests are what
``kubectl apply --server-side [--dry-run=server]`` sends: a PATCH of type ``apply-patch+yaml``
(JSON is YAML) with a field manager, ``force=true`` and, for a dry run, ``dryRun=All``.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml


@dataclass
class ApplyResult:
    status: int
    body: dict[str, Any]
    """The object the server returned (2xx), or its ``Status`` (an error)."""
    warnings: list[str] = field(default_factory=list)
    """``Warning:`` headers (unknown fields under ``fieldValidation=Warn``, deprecations)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        return str(self.body.get("message") or self.body)


@dataclass(frozen=True)
class Resource:
    plural: str
    namespaced: bool
    listable: bool = True


_CHURN = {"Event", "Lease", "EndpointSlice", "Endpoints"}
"""Kinds the control plane writes on its own (not part of "what is in the cluster")."""


class KubeAPI:
    def __init__(self, kubeconfig: Path):
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = cfg["current-context"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
        tls.load_cert_chain(user["client-certificate"], user["client-key"])
        self.client = httpx.Client(base_url=self.server, verify=tls, timeout=60)
        self._resources: dict[tuple[str, str], Resource] = {}

    def close(self) -> None:
        self.client.close()

    # --- discovery -------------------------------------------------------------------------------
    def discover(self) -> dict[tuple[str, str], Resource]:
        """``(apiVersion, kind) -> Resource`` for everything the server serves now."""
        found: dict[tuple[str, str], Resource] = {}
        versions = ["v1"]
        groups = self.client.get("/apis").raise_for_status().json()["groups"]
        versions += [v["groupVersion"] for g in groups for v in g["versions"]]
        for gv in versions:
            path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            resp = self.client.get(path)
            if resp.status_code != 200:
                continue
            for r in resp.json().get("resources", []):
                if "/" in r["name"]:
                    continue  # subresources
                found[(gv, r["kind"])] = Resource(r["name"], bool(r["namespaced"]), "list" in r.get("verbs", []))
        self._resources = found
        return found

    def resource(self, api_version: str, kind: str) -> Resource | None:
        if (api_version, kind) not in self._resources:
            self.discover()
        return self._resources.get((api_version, kind))

    def wait_served(self, pairs: set[tuple[str, str]], timeout: float = 60.0) -> set[tuple[str, str]]:
        """Wait until every ``(apiVersion, kind)`` is served; return those still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = pairs - set(self.discover())
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.5)

    # --- apply -----------------------------------------------------------------------------------
    def path(self, body: dict[str, Any], res: Resource) -> str:
        gv = body["apiVersion"]
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        meta = body.get("metadata") or {}
        ns = f"/namespaces/{meta.get('namespace') or 'default'}" if res.namespaced else ""
        return f"{base}{ns}/{res.plural}/{meta['name']}"

    def as_sent(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` without ``metadata.namespace`` when its kind is cluster-scoped (Helm and Pulumi drop
        it the same way; a chart may set it on a webhook configuration)."""
        res = self.resource(body["apiVersion"], body["kind"])
        if res is not None and not res.namespaced and (body.get("metadata") or {}).get("namespace"):
            return {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "namespace"}}
        return body

    def apply(self, body: dict[str, Any], *, dry_run: bool, manager: str = "gpuplane-engine-lane",
              field_validation: str = "Warn") -> ApplyResult:
        res = self.resource(body["apiVersion"], body["kind"])
        if res is None:
            return ApplyResult(404, {"message": f"the server does not serve {body['apiVersion']} {body['kind']} "
                                                "(no such CRD installed)"})
        body = self.as_sent(body)
        params = {"fieldManager": manager, "force": "true", "fieldValidation": field_validation}
        if dry_run:
            params["dryRun"] = "All"
        resp = self.client.patch(self.path(body, res), params=params, content=json.dumps(body),
                                 headers={"Content-Type": "application/apply-patch+yaml"})
        try:
            data = resp.json()
        except ValueError:
            data = {"message": resp.text}
        return ApplyResult(resp.status_code, data, resp.headers.get_list("warning"))

    def snapshot(self) -> set[tuple[str, str, str, str]]:
        """Every object in the cluster as ``(apiVersion, kind, namespace, name)``, churn left out."""
        objects = set()
        seen_kinds: set[str] = set()
        for (gv, kind), res in sorted(self.discover().items()):
            if not res.listable or kind in _CHURN or (kind in seen_kinds and gv != "v1"):
                continue
            seen_kinds.add(kind)
            base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            resp = self.client.get(f"{base}/{res.plural}")
            if resp.status_code != 200:
                continue
            for item in resp.json().get("items", []):
                meta = item.get("metadata", {})
                objects.add((gv, kind, meta.get("namespace", ""), meta.get("name", "")))
        return objects

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def delete(self, body: dict[str, Any]) -> int:
        res = self.resource(body["apiVersion"], body["kind"])
        if res is None:
            return 404
        return self.client.delete(self.path(body, res)).status_code
