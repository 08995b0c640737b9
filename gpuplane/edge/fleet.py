"""A fleet of simulated edge sites on loopback, the models they are given, and on-site traffic.

- :func:`prepare_models` exports a training export to ONNX (fp32 and int8, manifests with the top-k
  agreement on held-out users) and makes a bad model from the fp32 one by adding Gaussian noise to
  its weight matrices, so its ranking drifts from the cloud model's (what a broken export or a
  model trained on the wrong data looks like to the gate).
- :class:`Fleet` starts one ``python -m workloads.edge.site`` process per site (own port, own cache
  folder under ``out/sites/NAME/cache``), restarts one on demand (same cache: it comes back with the
  model it last served), and stops them all on the way out (through ``gpuplane.demo.procs``).
- :class:`LocalTraffic` stands for each site's own clients: a thread that sends requests straight
  to every site (not through the controller's link) and records per site which model answered,
  HTTP errors (a dropped request during a hot reload would show here) and connection failures.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpuplane.demo.procs import Processes, free_port, tail
from gpuplane.edge.rollout import ModelRef, SiteLink


@dataclass(frozen=True)
class Models:
    current: ModelRef
    """What the fleet serves at the start (fp32)."""
    new: ModelRef
    """The model rolled out (int8: a quarter of the bytes to ship)."""
    bad: ModelRef
    """Perturbed weights: the gate must reject it."""
    sizes: dict[str, int]
    """Bytes per label."""
    export_agreement: dict[str, float]
    """Top-k agreement with PyTorch measured at export, per label (the bad model's by the same measure)."""


def perturb(src: Path, dest: Path, scale: float, seed: int) -> None:
    """Copy the ONNX file ``src`` to ``dest`` with N(0, scale·std) noise added to each float weight matrix."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.ndim == 2 and w.size >= 1024:
            noisy = w + rng.normal(0.0, scale * float(w.std()), w.shape).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(dest))


def prepare_models(model_dir: Path, out: Path, histories: np.ndarray, k: int = 10, seed: int = 0) -> Models:
    from workloads.training.onnx_export import (
        agreement,
        export_onnx,
        load_reference,
        onnx_top_k,
        reference_top_k,
        session,
        sha256_of,
    )

    manifests = export_onnx(model_dir, out, quantize="int8", histories=histories, k=k)
    fp32, int8 = manifests
    bad_path = out / "model.bad.onnx"
    perturb(out / fp32.file, bad_path, scale=3.0, seed=seed)
    bad_agree = agreement(onnx_top_k(session(bad_path), histories, k), reference_top_k(load_reference(model_dir), histories, k))

    def ref(name: str, sha: str, label: str) -> ModelRef:
        return ModelRef((out / name).resolve().as_uri(), sha, label)

    return Models(
        current=ref(fp32.file, fp32.sha256, "v1-fp32"),
        new=ref(int8.file, int8.sha256, "v2-int8"),
        bad=ref(bad_path.name, sha256_of(bad_path), "bad"),
        sizes={"v1-fp32": fp32.size_bytes, "v2-int8": int8.size_bytes, "bad": bad_path.stat().st_size},
        export_agreement={"v1-fp32": fp32.agreement[f"top_{k}"], "v2-int8": int8.agreement[f"top_{k}"],
                          "bad": bad_agree},
    )


def site_names(n: int, groups: int) -> list[tuple[str, str]]:
    """(site, group) pairs: ``n`` sites spread over ``groups`` groups in order (plant-a-1, plant-a-2, ...)."""
    if not 1 <= groups <= n:
        raise ValueError(f"groups={groups}: must be between 1 and the number of sites ({n})")
    labels = [f"plant-{chr(ord('a') + g)}" for g in range(groups)]
    sizes = [n // groups + (1 if g < n % groups else 0) for g in range(groups)]
    return [(f"{labels[g]}-{i + 1}", labels[g]) for g in range(groups) for i in range(sizes[g])]


@dataclass
class SiteProcess:
    name: str
    group: str
    port: int
    cache: Path
    log: Path
    proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    """Site processes started from ``initial`` (each with its own cache folder)."""

    def __init__(self, procs: Processes, out: Path, sites: list[tuple[str, str]], initial: ModelRef,
                 python: str) -> None:
        self.procs, self.initial, self.python = procs, initial, python
        self.sites = {name: SiteProcess(name, group, free_port(), out / name / "cache", out / name / "site.log")
                      for name, group in sites}

    def _spawn(self, s: SiteProcess) -> None:
        s.proc = self.procs.spawn([self.python, "-m", "workloads.edge.site", "--name", s.name, "--port", str(s.port),
                                   "--cache-dir", str(s.cache), "--model-uri", self.initial.uri,
                                   "--sha256", self.initial.sha256, "--threads", "1"], s.log,
                                  env={"OMP_NUM_THREADS": "1"})

    def start(self, timeout_s: float = 60.0) -> None:
        for s in self.sites.values():
            self._spawn(s)
        for s in self.sites.values():
            self.wait_ready(s, timeout_s)

    def wait_ready(self, s: SiteProcess, timeout_s: float) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if s.proc.poll() is not None:
                raise RuntimeError(f"site {s.name} exited {s.proc.returncode} at start; see {s.log}:\n{tail(s.log)}")
            try:
                r = httpx.get(f"{s.url}/v1/health", timeout=1.0)
                if r.status_code == 200 and r.json()["ready"]:
                    return dict(r.json())
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"site {s.name} not ready after {timeout_s:.0f} s; see {s.log}:\n{tail(s.log)}")

    def restart(self, name: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Stop the site's process and start it again on its cache; return its first health reply."""
        s = self.sites[name]
        self.procs.stop(s.proc, timeout_s=5.0)
        self._spawn(s)
        return self.wait_ready(s, timeout_s)

    def links(self) -> list[SiteLink]:
        return [SiteLink(s.name, s.group, s.url) for s in self.sites.values()]


@dataclass
class SiteTraffic:
    ok: int = 0
    http_errors: int = 0
    down: int = 0
    """Requests that found no process listening (the site was restarting)."""
    served: list[tuple[float, str]] = field(default_factory=list)
    """(seconds since start, digest) at each change of the model that answered."""


class LocalTraffic:
    """On-site clients: round-robin requests to every site, ``interval_s`` apart, until stopped."""

    def __init__(self, urls: dict[str, str], histories: list[list[int]], interval_s: float = 0.05,
                 t0: float | None = None) -> None:
        self.urls, self.histories, self.interval_s = urls, histories, interval_s
        self.by_site = {name: SiteTraffic() for name in urls}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-local-traffic", daemon=True)
        self._t0 = time.monotonic() if t0 is None else t0

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=10.0) as http:
            i = 0
            while not self._stop.is_set():
                for name, url in self.urls.items():
                    rec = self.by_site[name]
                    try:
                        r = http.post(f"{url}/v1/infer", json={"history": [self.histories[i % len(self.histories)]],
                                                               "k": 10})
                    except httpx.TransportError:
                        rec.down += 1
                        continue
                    if r.status_code != 200:
                        rec.http_errors += 1
                        continue
                    rec.ok += 1
                    sha = r.json()["sha256"]
                    if not rec.served or rec.served[-1][1] != sha:
                        rec.served.append((round(time.monotonic() - self._t0, 3), sha))
                i += 1
                self._stop.wait(self.interval_s)

    def __enter__(self) -> LocalTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15.0)
