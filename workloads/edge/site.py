"""One edge site: the ONNX model served with onnxruntime on one thread, hot-reloaded by URI + digest.

``python -m workloads.edge.site --name NAME --port P --cache-dir DIR [--model-uri URI --sha256 HEX]``

Routes (JSON over HTTP, loopback in the demo):

- ``POST /v1/infer`` ``{"history": [[item ids], ...], "k": 10}``: each row is left-padded (or cut to
  its newest ``block_size`` items); the reply is ``{"top_items": [[...]], "sha256": digest of the
  model that answered, "inference_ms"}``. 503 until a model is loaded, 400 on a malformed body.
- ``POST /v1/model`` ``{"uri": "file:///..." | "http://...", "sha256": "<64 hex>"}``: fetch the file
  into the cache (skipped when the cache holds a copy that verifies), check its SHA-256, open a
  session, check its input and output names, then swap it in. A digest mismatch is a 409 and the
  model in service does not change; the unverified bytes are deleted. Requests keep being served
  throughout: a request holds the session it started with, the swap is one assignment.
- ``GET /v1/health``: the model in service (digest, URI, where it came from), the previous one,
  request, error, reload and refusal counts, requests served per digest, and p50/p99 of the
  on-device inference time over the last ``LATENCY_WINDOW`` requests;
- ``GET /v2/health/live`` and ``GET /v2/health/ready`` (200 once a model is loaded, else 503): the
  probes the ``EdgeDeployment`` component's pods use.

Digests are 64 hex characters, with or without the ``sha256:`` prefix the component writes. The
flags default to the component's site environment where it has one (``EDGE_SITE``, ``EDGE_PORT``,
``EDGE_MODEL_URI``, ``EDGE_MODEL_DIGEST``), so the module can be the container's command; the
on-device gate of that contract (``EDGE_GATE_*``: replaying the held-out sample before reporting
ready) is not implemented here — in the local demo the controller measures each site instead.

The cache directory holds ``<sha256>.onnx`` files and ``current.json`` (digest and URI of the model
in service, written atomically after each swap). On start the site serves what ``current.json``
names when its file verifies, whatever ``--model-uri`` says: a site that restarts while its link
is down comes back with the model it last served, without fetching anything. The cache keeps the
current and the previous model (a rollback is a cache hit) and deletes older files.

Deliberately not here: authentication (the demo runs on loopback), batching across requests,
metrics in Prometheus form, and any knowledge of waves or gates (the controller's business).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

INPUT_NAME = "history"
OUTPUT_NAME = "scores"
LATENCY_WINDOW = 1000
DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_K = 100


class ModelLoadError(Exception):
    """A model could not be fetched, verified or opened; ``status`` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Loaded:
    """A model in service: its session and where it came from."""

    session: Any
    sha256: str
    uri: str
    block_size: int
    vocab_size: int
    source: str
    """``cache`` (found in the cache directory) or ``fetched``."""
    loaded_at: float

    def describe(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "uri": self.uri, "source": self.source, "loaded_at": self.loaded_at}


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(uri: str, dest: Path) -> None:
    """Copy ``uri`` (file:// or a path, http:// or https://) to ``dest``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        src = Path(unquote(parsed.path) if parsed.scheme else uri)
        if not src.is_file():
            raise ModelLoadError(f"uri={uri}: no such file", 422)
        shutil.copyfile(src, dest)
    elif parsed.scheme in ("http", "https"):
        import httpx

        with httpx.stream("GET", uri, timeout=30.0) as r, open(dest, "wb") as f:
            if r.status_code != 200:
                raise ModelLoadError(f"uri={uri}: HTTP {r.status_code}", 502)
            for chunk in r.iter_bytes():
                f.write(chunk)
    else:
        raise ModelLoadError(f"uri={uri}: scheme {parsed.scheme!r} is not supported; use file:// or http(s)://", 422)


class ModelStore:
    """The site's cache directory: verified model files by digest, and which one is current."""

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self.dir = cache_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.threads = threads

    def path_of(self, sha256: str) -> Path:
        return self.dir / f"{sha256}.onnx"

    def ensure(self, uri: str, sha256: str) -> tuple[Path, str]:
        """The cached file of ``sha256``, fetched from ``uri`` first when the cache lacks it; (path, source)."""
        sha256 = sha256.removeprefix("sha256:")
        if not DIGEST.fullmatch(sha256):
            raise ModelLoadError(f"sha256={sha256!r}: expected 64 lowercase hex characters (the file's SHA-256)", 400)
        path = self.path_of(sha256)
        if path.is_file() and _hash_file(path) == sha256:
            return path, "cache"
        part = self.dir / f".{sha256}.part-{os.getpid()}"
        try:
            _fetch(uri, part)
            got = _hash_file(part)
            if got != sha256:
                raise ModelLoadError(f"digest mismatch for uri={uri}: expected sha256 {sha256}, the file has {got}; "
                                     "the model in service is unchanged. To fix: send the digest from the model's "
                                     "manifest", 409)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        return path, "fetched"

    def open(self, path: Path, sha256: str, uri: str, source: str) -> Loaded:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail / InvalidGraph types
            raise ModelLoadError(f"uri={uri}: onnxruntime cannot open it: {err}", 422) from err
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ModelLoadError(f"uri={uri}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, got inputs "
                                 f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}", 422)
        block_size, vocab = inputs[0].shape[1], next(o for o in outputs if o.name == OUTPUT_NAME).shape[1]
        if not isinstance(block_size, int) or not isinstance(vocab, int):
            raise ModelLoadError(f"uri={uri}: the history length and vocabulary must be fixed dimensions", 422)
        return Loaded(sess, sha256, uri, block_size, vocab, source, time.time())

    def write_current(self, loaded: Loaded) -> None:
        tmp = self.dir / f".current.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"sha256": loaded.sha256, "uri": loaded.uri}) + "\n")
        os.replace(tmp, self.dir / "current.json")

    def read_current(self) -> dict[str, str] | None:
        try:
            raw = json.loads((self.dir / "current.json").read_text())
        except (OSError, ValueError):
            return None
        return raw if isinstance(raw, dict) and DIGEST.fullmatch(str(raw.get("sha256", ""))) else None

    def prune(self, keep: set[str]) -> None:
        for f in self.dir.glob("*.onnx"):
            if f.stem not in keep:
                f.unlink(missing_ok=True)


class Site:
    """The site's state: the model in service, the one before it, counters."""

    def __init__(self, name: str, store: ModelStore) -> None:
        self.name = name
        self.store = store
        self.model: Loaded | None = None
        self.previous: Loaded | None = None
        self.requests = 0
        self.errors = 0
        self.reloads = 0
        self.refused = 0
        self.served: Counter[str] = Counter()
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._lock = asyncio.Lock()

    def load_blocking(self, uri: str, sha256: str) -> Loaded:
        path, source = self.store.ensure(uri, sha256)
        return self.store.open(path, sha256.removeprefix("sha256:"), uri, source)

    def swap(self, loaded: Loaded) -> None:
        if self.model is not None and self.model.sha256 != loaded.sha256:
            self.previous = self.model
        self.model = loaded  # one assignment: requests in flight keep the session they took
        self.store.write_current(loaded)
        self.store.prune({loaded.sha256} | ({self.previous.sha256} if self.previous else set()))

    async def load(self, uri: str, sha256: str) -> tuple[Loaded, float]:
        async with self._lock:  # one reload at a time; inference goes on meanwhile
            t = time.perf_counter()
            try:
                loaded = await asyncio.to_thread(self.load_blocking, uri, sha256)
            except ModelLoadError:
                self.refused += 1
                raise
            self.swap(loaded)
            self.reloads += 1
            return loaded, (time.perf_counter() - t) * 1000

    def start_from_cache(self) -> bool:
        current = self.store.read_current()
        if current is None or not self.store.path_of(current["sha256"]).is_file():
            return False
        try:
            path, source = self.store.ensure(current.get("uri", ""), current["sha256"])
            self.swap(self.store.open(path, current["sha256"], current.get("uri", ""), source))
        except ModelLoadError:
            return False
        return True

    def infer(self, rows: list[list[int]], k: int) -> dict[str, Any]:
        model = self.model
        if model is None:
            raise ModelLoadError("no model loaded yet", 503)
        T = model.block_size
        x = np.zeros((len(rows), T), dtype=np.int64)  # (B, T), left-padded
        for i, row in enumerate(rows):
            tail = row[-T:]
            if tail:
                x[i, T - len(tail):] = tail
        t = time.perf_counter()
        scores = model.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]  # (B, V)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)  # (B, k), best first
        ms = (time.perf_counter() - t) * 1000
        self.latency_ms.append(ms)
        self.served[model.sha256] += 1
        return {"top_items": top.tolist(), "sha256": model.sha256, "inference_ms": ms}

    def health(self) -> dict[str, Any]:
        lat = np.array(self.latency_ms) if self.latency_ms else None
        return {
            "site": self.name,
            "ready": self.model is not None,
            "model": self.model.describe() if self.model else None,
            "previous": self.previous.describe() if self.previous else None,
            "requests": self.requests,
            "errors": self.errors,
            "reloads": self.reloads,
            "refused": self.refused,
            "served_by_sha256": dict(self.served),
            "inference_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}
            if lat is not None else None,
        }


def _rows(body: Any, vocab: int) -> tuple[list[list[int]], int]:
    if not isinstance(body, dict) or not isinstance(body.get("history"), list) or not body["history"]:
        raise ModelLoadError('body: expected {"history": [[item ids], ...], "k": int}', 400)
    k = body.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= min(MAX_K, vocab - 1):
        raise ModelLoadError(f"k={k!r}: expected an integer in 1..{min(MAX_K, vocab - 1)}", 400)
    rows = body["history"]
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < vocab
                                                 for v in row):
            raise ModelLoadError(f"history[{i}]: expected a list of item ids in 0..{vocab - 1}", 400)
    return rows, k


def create_app(site: Site) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def infer(request: Request) -> JSONResponse:
        site.requests += 1
        try:
            if site.model is None:
                raise ModelLoadError("no model loaded yet", 503)
            try:
                body = await request.json()
            except ValueError as err:
                raise ModelLoadError("body: not JSON", 400) from err
            rows, k = _rows(body, site.model.vocab_size)
            return JSONResponse(site.infer(rows, k))
        except ModelLoadError as err:
            site.errors += 1
            return JSONResponse({"error": str(err)}, status_code=err.status)

    async def model(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("uri"), str) or not isinstance(body.get("sha256"), str):
            return JSONResponse({"error": 'body: expected {"uri": str, "sha256": str}'}, status_code=400)
        previous = site.model.sha256 if site.model else None
        try:
            loaded, ms = await site.load(body["uri"], body["sha256"])
        except ModelLoadError as err:
            return JSONResponse({"error": str(err), "sha256": previous}, status_code=err.status)
        return JSONResponse({"sha256": loaded.sha256, "previous": previous, "source": loaded.source, "load_ms": ms})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(site.health())

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": site.model is not None}, status_code=200 if site.model is not None else 503)

    return Starlette(routes=[Route("/v1/infer", infer, methods=["POST"]), Route("/v1/model", model, methods=["POST"]),
                             Route("/v1/health", health, methods=["GET"]), Route("/v2/health/live", live, methods=["GET"]),
                             Route("/v2/health/ready", ready, methods=["GET"])])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workloads.edge.site", description=__doc__.split("\n")[0])
    env = os.environ.get
    p.add_argument("--name", default=env("EDGE_SITE"), help="site name, reported on /v1/health (default $EDGE_SITE)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 in a pod)")
    p.add_argument("--port", type=int, default=int(env("EDGE_PORT") or 0) or None, help="port (default $EDGE_PORT)")
    p.add_argument("--cache-dir", default=env("EDGE_CACHE_DIR"), help="model cache of this site, created if missing "
                   "(default $EDGE_CACHE_DIR)")
    p.add_argument("--model-uri", default=env("EDGE_MODEL_URI") or None,
                   help="model to load when the cache has no current model (default $EDGE_MODEL_URI)")
    p.add_argument("--sha256", default=env("EDGE_MODEL_DIGEST") or None,
                   help="digest of --model-uri, required with it (default $EDGE_MODEL_DIGEST)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    a = p.parse_args(argv)
    missing = [flag for flag, value in (("--name", a.name), ("--port", a.port), ("--cache-dir", a.cache_dir)) if not value]
    if missing:
        print(f"error: {', '.join(missing)} required (or $EDGE_SITE, $EDGE_PORT, $EDGE_CACHE_DIR)", file=sys.stderr)
        return 2
    if bool(a.model_uri) != bool(a.sha256):
        print("error: --model-uri and --sha256 go together (the digest from the model's manifest)", file=sys.stderr)
        return 2
    site = Site(a.name, ModelStore(Path(a.cache_dir), a.threads))
    if site.start_from_cache():
        assert site.model is not None
        print(f"site {a.name}: serving {site.model.sha256[:12]} from the cache", flush=True)
    elif a.model_uri:
        try:
            site.swap(site.load_blocking(a.model_uri, a.sha256))
        except ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"site {a.name}: serving {a.sha256[:12]} fetched from {a.model_uri}", flush=True)
    import uvicorn

    uvicorn.run(create_app(site), host=a.host, port=a.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
