"""A small Kubernetes API client for the dispatcher: a kubeconfig in, JSON requests out (standard library only).

Reads kubeconfigs with file paths (``gpuplane sandbox``) or inline ``*-data`` (what a MultiKueue
kubeconfig Secret holds), client certificates or bearer tokens. A server that cannot be reached
raises ``Unreachable`` with the server URL, the cause and the fix, never a bare socket error.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml


class Unreachable(ConnectionError):
    """The API server did not answer (connection refused, DNS, TLS, timeout)."""


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any, what: str):
        self.status = status
        self.body = body
        msg = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{what}: HTTP {status}: {msg}")


class KubeClient:
    """JSON over HTTPS to one API server, as the kubeconfig's current context."""

    def __init__(self, kubeconfig: str | dict[str, Any], name: str = "cluster", timeout: float = 10.0):
        cfg = yaml.safe_load(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
        if not isinstance(cfg, dict) or not cfg.get("clusters"):
            raise ValueError(f"{name}: the kubeconfig has no clusters. To fix: give a kubeconfig with a cluster, a user and a current context.")
        ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
        self.name = name
        self.server = cluster["server"].rstrip("/")
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        if user.get("token"):
            self._headers["Authorization"] = f"Bearer {user['token']}"
        tls = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            tls.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            tls.load_verify_locations(cafile=cluster["certificate-authority"])
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            # ssl loads client certificates from files only: keep them in a private temporary folder.
            self._tmp = tempfile.TemporaryDirectory(prefix="gpuplane-kube-")
            cert, key = os.path.join(self._tmp.name, "c.crt"), os.path.join(self._tmp.name, "c.key")
            for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(base64.b64decode(user[field]))
        if cert and key:
            tls.load_cert_chain(cert, key)
        self._tls = tls

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json", query: dict[str, str] | None = None) -> Any:
        url = self.server + path + (("?" + urllib.parse.urlencode(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={**self._headers, "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, context=self._tls, timeout=self.timeout) as r:
                raw = r.read().decode()
        except urllib.error.HTTPError as e:
            raw = e.read().decode()
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = raw
            raise ApiError(e.code, parsed, f"{self.name} {method} {path}") from None
        except (urllib.error.URLError, OSError, ssl.SSLError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(
                f"{self.name} ({self.server}) is unreachable: {reason}. To fix: check that its API server is running and that the kubeconfig "
                "(for a worker: the Secret its MultiKueueCluster names) points at it."
            ) from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def items(self, path: str) -> list[dict[str, Any]]:
        return list((self.get(path) or {}).get("items") or [])

    def merge_patch(self, path: str, patch: dict[str, Any]) -> Any:
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def apply(self, obj: dict[str, Any], manager: str = "gpuplane") -> Any:
        """Server-side apply of one object (what ``kubectl apply --server-side --force-conflicts`` sends)."""
        return self.request("PATCH", object_path(obj), obj, content_type="application/apply-patch+yaml", query={"fieldManager": manager, "force": "true"})


_CORE_PLURALS = {"Namespace": "namespaces", "Secret": "secrets", "Event": "events", "ConfigMap": "configmaps"}


def object_path(obj: dict[str, Any]) -> str:
    """The REST path of an object (core kinds and Kueue's, the kinds the federation emits)."""
    api, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
    plural = _CORE_PLURALS.get(kind) or kind.lower() + ("es" if kind.endswith("s") else "s")
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    ns = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    return f"{base}{ns}/{plural}/{meta['name']}"
