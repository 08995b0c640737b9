"""A loopback-only Kubernetes control plane from the real programs, with kwok's simulated GPU nodes.

Contract:

- A sandbox has a ``name`` and a base ``port``; it owns six consecutive loopback ports (``Layout``):
  kube-apiserver (``port``), etcd client and peer, kube-controller-manager, kube-scheduler, kwok;
  with ``controllers`` (``up --controllers``, kept in ``sandbox.json``), twelve: then Kueue's webhook and
  health, JobSet's webhook and health, and two for Karpenter (``controllers.py`` and ``karpenter.py`` run
  them). ``up`` without controllers removes the webhook configurations an earlier ``--controllers`` run wrote.
  Several sandboxes run side by side with different names and ports.
- Its state folder (``state_root()/<name>``, outside the clone) holds the PKI, the kubeconfig, etcd's
  data, every process's log, ``pids.json`` (written as each process starts), and a local Pulumi file
  backend with its passphrase. Stopping keeps the data (the cluster and the Pulumi state stay in step);
  ``down(purge=True)`` removes the folder.
- ``up`` checks everything first (a running or stale sandbox of that name, every port free, every
  program built), and raises ``SandboxError`` (one line: cause and fix; the CLI exits 2) before
  starting anything. A process that dies while starting stops every process already started.
- ``down`` stops each process group it started (SIGTERM, then SIGKILL), checks that no process and no
  port is left, and removes ``pids.json``. A pid is signalled only while its command line is still the
  program that was started (a reused pid is left alone).
- Pure parts (``Layout``, ``commands``, ``port_free``, ``kubeconfig_text``, ``env_lines``) have no side
  effects and are unit-tested; the rest runs processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuplane.sandbox import toolchain
from gpuplane.sandbox.nodes import KWOK_ANNOTATION, KWOK_ANNOTATION_VALUE, node_objects

HOST = "127.0.0.1"
DEFAULT_NAME = "default"
DEFAULT_PORT = 16443
START_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"


class SandboxError(RuntimeError):
    """A problem the user fixes; the message is one line naming the cause and the fix."""


def state_root() -> Path:
    """``$GPUPLANE_SANDBOX_HOME``, else ``~/.cache/gpuplane/sandbox``."""
    root = os.environ.get("GPUPLANE_SANDBOX_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gpuplane" / "sandbox"


@dataclass(frozen=True)
class Layout:
    """Where one sandbox lives: its name, ports and files."""

    name: str = DEFAULT_NAME
    port: int = DEFAULT_PORT
    """kube-apiserver's secure port; the next five ports belong to the other programs."""
    root: Path | None = None
    """State root (default ``state_root()``)."""
    controllers: bool = False
    """Also run Kueue, JobSet and Karpenter's kwok provider (``up --controllers``); six more ports."""

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise SandboxError(f"--name {self.name!r} is not a sandbox name; use letters, digits, '-' and '_'")
        span = len(self.ports)
        if not 1024 <= self.port <= 65536 - span:
            raise SandboxError(f"--port {self.port} is out of range; give a base port from 1024 to {65536 - span} "
                               f"({span} ports from it are used)")

    @property
    def ports(self) -> dict[str, int]:
        p = self.port
        base = {"kube-apiserver": p, "etcd": p + 1, "etcd-peer": p + 2, "kube-controller-manager": p + 3,
                "kube-scheduler": p + 4, "kwok": p + 5}
        if not self.controllers:
            return base
        return {**base, "kueue-webhook": p + 6, "kueue": p + 7, "jobset-webhook": p + 8, "jobset": p + 9,
                "karpenter-metrics": p + 10, "karpenter-health": p + 11}

    @property
    def processes(self) -> tuple[str, ...]:
        """The programs a running sandbox of this layout has, in start order."""
        from gpuplane.sandbox.controllers import NAMES
        from gpuplane.sandbox.karpenter import NAME as KARPENTER

        return START_ORDER + ((*NAMES, KARPENTER) if self.controllers else ())

    @property
    def dir(self) -> Path:
        return (self.root or state_root()) / self.name

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.port}"

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    @property
    def kubeconfig(self) -> Path:
        return self.path("kubeconfig")

    @property
    def pids_file(self) -> Path:
        return self.path("pids.json")


def commands(layout: Layout, bindir: Path) -> dict[str, list[str]]:
    """Every program's command line, in start order (pure)."""
    pki, ports, kc = layout.path("pki"), layout.ports, str(layout.kubeconfig)
    etcd = f"http://{HOST}:{ports['etcd']}"
    peer = f"http://{HOST}:{ports['etcd-peer']}"
    secure = ["--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
              "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"]
    return {
        "etcd": [
            str(bindir / "etcd"), "--name=sandbox", f"--data-dir={layout.path('etcd')}",
            f"--listen-client-urls={etcd}", f"--advertise-client-urls={etcd}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}", "--auto-compaction-retention=1",
            # A throwaway local cluster: skip fsync (etcd's own flag for tests), keeps `up` fast on slow disks.
            "--unsafe-no-fsync=true", "--log-level=warn",
        ],
        "kube-apiserver": [
            str(bindir / "kube-apiserver"), f"--etcd-servers={etcd}",
            f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={ports['kube-apiserver']}",
            # The reconciler would publish 127.0.0.1 in the `kubernetes` Endpoints, which validation rejects.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=RBAC", "--allow-privileged=true",
            "--profiling=false", "--v=0",
        ],
        "kube-controller-manager": [
            str(bindir / "kube-controller-manager"), f"--kubeconfig={kc}", *secure,
            f"--bind-address={HOST}", f"--secure-port={ports['kube-controller-manager']}", "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--use-service-account-credentials=false",
            "--profiling=false", "--v=0",
        ],
        "kube-scheduler": [
            str(bindir / "kube-scheduler"), f"--kubeconfig={kc}", *secure,
            f"--bind-address={HOST}", f"--secure-port={ports['kube-scheduler']}", "--leader-elect=false",
            "--profiling=false", "--v=0",
        ],
        "kwok": [
            str(bindir / "kwok"), f"--kubeconfig={kc}", f"--config={layout.path('kwok.yaml')}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE}",
            f"--node-ip={HOST}", f"--node-port={ports['kwok']}", f"--server-address={HOST}:{ports['kwok']}",
            "--node-lease-duration-seconds=40",
        ],
    }


def kubeconfig_text(layout: Layout) -> str:
    """An admin kubeconfig for the sandbox (file paths to the PKI, context ``gpuplane-<name>``)."""
    pki, ctx = layout.path("pki"), f"gpuplane-{layout.name}"
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": ctx,
        "clusters": [{"name": ctx, "cluster": {"server": layout.server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": ctx, "user": {"client-certificate": str(pki / "admin.crt"),
                                         "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
    }, indent=2) + "\n"


def env_lines(layout: Layout, bindir: Path, passphrase: str) -> list[str]:
    """The ``export`` lines ``gpuplane sandbox env`` prints (pure)."""
    def q(v: str) -> str:
        return "'" + v.replace("'", "'\\''") + "'"
    return [
        f"export KUBECONFIG={q(str(layout.kubeconfig))}",
        f"export PULUMI_BACKEND_URL={q('file://' + str(layout.path('pulumi-state')))}",
        f"export PULUMI_CONFIG_PASSPHRASE={q(passphrase)}",
        f"export PULUMI_HOME={q(str(layout.path('pulumi-home')))}",
        "export PULUMI_SKIP_UPDATE_CHECK=true",
        f"export PATH={q(str(bindir))}:\"$PATH\"",
    ]


def port_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on ``host:port`` now: nothing listens there. Connections left in
    TIME_WAIT by a stopped server do not count (SO_REUSEADDR, as Go's and most servers' listeners set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def busy_ports(layout: Layout) -> list[tuple[str, int]]:
    return [(who, p) for who, p in layout.ports.items() if not port_free(p)]


# -- processes ---------------------------------------------------------------------------------


def _read_pids(layout: Layout) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(layout.pids_file.read_text()))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as e:
        raise SandboxError(f"{layout.pids_file} is unreadable ({e}); run `gpuplane sandbox down --name {layout.name}`") from e


def _write_pids(layout: Layout, pids: dict[str, dict[str, Any]]) -> None:
    tmp = layout.pids_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(pids, indent=2) + "\n")
    tmp.replace(layout.pids_file)


def _alive(entry: dict[str, Any]) -> bool:
    """The pid runs and is still the program started (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{int(entry['pid'])}/cmdline").read_bytes().split(b"\0")[0].decode()
        stat = Path(f"/proc/{int(entry['pid'])}/stat").read_text()
    except (OSError, ValueError, KeyError):
        return False
    return cmdline == entry.get("exe") and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _stop(entries: dict[str, dict[str, Any]], timeout_s: float = 15.0) -> list[str]:
    """SIGTERM each live process group (reverse start order), then SIGKILL what is left. Returns survivors."""
    # Controllers first (they talk to the API server), then the base programs in reverse start order.
    order = [n for n in entries if n not in START_ORDER] + [n for n in reversed(START_ORDER) if n in entries]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = [n for n in order if _alive(entries[n])]
        for n in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(entries[n]["pid"]), sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(_alive(entries[n]) for n in live):
            time.sleep(0.1)
    return [n for n in order if _alive(entries[n])]


def status(layout: Layout) -> dict[str, Any]:
    """``state``: ``absent`` (no folder), ``stopped``, ``running`` (every process alive), ``partial``
    (some alive) or ``stale`` (pids recorded, none alive); plus each process and port."""
    if not layout.dir.exists():
        return {"state": "absent", "processes": {}, "ports": layout.ports}
    pids = _read_pids(layout)
    alive = {n: _alive(e) for n, e in pids.items()}
    if not pids:
        state = "stopped"
    elif all(alive.values()) and set(layout.processes) <= set(pids):  # plus optional ones (up --knative)
        state = "running"
    elif any(alive.values()):
        state = "partial"
    else:
        state = "stale"
    return {"state": state, "processes": {n: {"pid": pids[n]["pid"], "alive": alive[n]} for n in pids},
            "ports": layout.ports, "dir": str(layout.dir), "server": layout.server, "controllers": layout.controllers}


# -- HTTP to the API server -----------------------------------------------------------------------


def _ssl(layout: Layout) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(layout.path("pki", "ca.crt")))
    ctx.load_cert_chain(str(layout.path("pki", "admin.crt")), str(layout.path("pki", "admin.key")))
    return ctx


def api(layout: Layout, method: str, path: str, body: Any = None, timeout: float = 5.0,
        content_type: str = "application/json") -> tuple[int, Any]:
    """One request to the sandbox's API server as admin; returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(layout.server + path, data=data, method=method,
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=_ssl(layout), timeout=timeout) as r:
            raw, code = r.read().decode(), r.status
    except urllib.error.HTTPError as e:
        raw, code = e.read().decode(), e.code
    try:
        return code, json.loads(raw)
    except ValueError:
        return code, raw


def _wait(what: str, check: Callable[[], bool], timeout_s: float, dead: Callable[[], str | None]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        gone = dead()
        if gone:
            raise SandboxError(gone)
        try:
            if check():
                return
        except (OSError, ssl.SSLError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SandboxError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# -- up / down ----------------------------------------------------------------------------------


def preflight(layout: Layout, bindir: Path) -> None:
    """Every check of ``up`` that needs nothing started; raises ``SandboxError``."""
    st = status(layout)
    if st["state"] in ("running", "partial"):
        raise SandboxError(f"sandbox '{layout.name}' is already running ({layout.server}, state folder {layout.dir}); "
                           f"use it with `eval $(gpuplane sandbox env --name {layout.name})`, or stop it with "
                           f"`gpuplane sandbox down --name {layout.name}`")
    if st["state"] == "stale":
        raise SandboxError(f"sandbox '{layout.name}' has a stale state folder {layout.dir}: pids.json names processes "
                           f"that are gone; run `gpuplane sandbox down --name {layout.name}` to clear it, then `up` again")
    busy = busy_ports(layout)
    if busy:
        listed = ", ".join(f"{p} ({who})" for who, p in busy)
        raise SandboxError(f"port {listed} on {HOST} is in use; stop what holds it or pick another base port with "
                           f"`gpuplane sandbox up --port N` (it uses N..N+{len(layout.ports) - 1})")
    gone = toolchain.missing(toolchain.SANDBOX_BINARIES, bindir)
    if gone:
        raise SandboxError(f"{', '.join(gone)} not built (looked in {bindir}); run `make engine` "
                           "(or `gpuplane sandbox up` without --no-build)")
    if layout.controllers:
        from gpuplane.sandbox.controllers import missing

        why = missing(bindir)
        if why:
            raise SandboxError(why)


def passphrase(layout: Layout) -> str:
    f = layout.path("pulumi-passphrase")
    if not f.is_file():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(secrets.token_urlsafe(24) + "\n")
        f.chmod(0o600)
    return f.read_text().strip()


def _prepare(layout: Layout) -> None:
    from gpuplane.sandbox.certs import write_pki

    for sub in ("logs", "etcd", "pulumi-state", "pulumi-home"):
        layout.path(sub).mkdir(parents=True, exist_ok=True)
    layout.path("etcd").chmod(0o700)
    write_pki(layout.path("pki"))
    layout.kubeconfig.write_text(kubeconfig_text(layout))
    layout.kubeconfig.chmod(0o600)
    kwok = "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n"
    if layout.controllers:
        from gpuplane.sandbox.controllers import KWOK_POD_STAGES

        kwok += "---\n" + KWOK_POD_STAGES
    layout.path("kwok.yaml").write_text(kwok)
    passphrase(layout)
    layout.path("sandbox.json").write_text(json.dumps({"name": layout.name, "port": layout.port,
                                                       "controllers": layout.controllers}) + "\n")


def load_layout(name: str = DEFAULT_NAME, port: int | None = None, root: Path | None = None,
                controllers: bool | None = None) -> Layout:
    """The layout of sandbox ``name``: ``port`` and ``controllers`` if given, else what it was last started with
    (``sandbox.json``), else the defaults."""
    saved: dict[str, Any] = {}
    if port is None or controllers is None:
        try:
            saved = dict(json.loads(Layout(name, DEFAULT_PORT, root).path("sandbox.json").read_text()))
        except (OSError, ValueError, TypeError):
            saved = {}
    if port is None:
        try:
            port = int(saved["port"])
        except (KeyError, ValueError, TypeError):
            port = DEFAULT_PORT
    if controllers is None:
        controllers = bool(saved.get("controllers", False))
    return Layout(name, port, root, controllers)


def _start(layout: Layout, name: str, argv: list[str], pids: dict[str, dict[str, Any]],
           exe: str | None = None) -> subprocess.Popen[bytes]:
    """Start one program in its own process group; ``exe``: what its command line starts with once it runs,
    when a wrapper execs it (default ``argv[0]``)."""
    log = layout.path("logs", f"{name}.log").open("ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=layout.dir)
    log.close()
    pids[name] = {"pid": proc.pid, "exe": exe or argv[0], "port": layout.ports.get(name)}
    _write_pids(layout, pids)
    return proc


def _last_log_line(layout: Layout, name: str) -> str:
    try:
        lines = [ln for ln in layout.path("logs", f"{name}.log").read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def up(layout: Layout, bindir: Path, echo: Callable[[str], None] = print, timeout_s: float = 90.0) -> float:
    """Start the sandbox; returns the seconds it took. Raises ``SandboxError`` with nothing left running."""
    start = time.monotonic()
    preflight(layout, bindir)
    _prepare(layout)
    argv = commands(layout, bindir)
    pids: dict[str, dict[str, Any]] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def dead() -> str | None:
        for n, p in procs.items():
            if p.poll() is not None:
                return (f"{n} exited while starting (code {p.returncode}): {_last_log_line(layout, n)} "
                        f"(full log: {layout.path('logs', n + '.log')})")
        return None

    def step(msg: str) -> None:
        echo(f"  {msg} ({time.monotonic() - start:.1f} s)")

    try:
        procs["etcd"] = _start(layout, "etcd", argv["etcd"], pids)
        _wait("etcd /health", lambda: b'"health":"true"' in urllib.request.urlopen(
            f"http://{HOST}:{layout.ports['etcd']}/health", timeout=2).read(), timeout_s, dead)
        step(f"etcd ready on {HOST}:{layout.ports['etcd']}")
        procs["kube-apiserver"] = _start(layout, "kube-apiserver", argv["kube-apiserver"], pids)
        _wait("kube-apiserver /readyz", lambda: api(layout, "GET", "/readyz")[0] == 200, timeout_s, dead)
        step(f"kube-apiserver ready on {layout.server}")
        if not layout.controllers:
            from gpuplane.sandbox import controllers as _controllers

            _controllers.remove_webhooks(layout, api)
        for n in ("kube-controller-manager", "kube-scheduler", "kwok"):
            procs[n] = _start(layout, n, argv[n], pids)
        nodes = node_objects()
        for node in nodes:
            code, body = api(layout, "POST", "/api/v1/nodes", node)
            if code not in (201, 409):
                raise SandboxError(f"creating node {node['metadata']['name']} failed ({code}): {body}")
        names = {n["metadata"]["name"] for n in nodes}

        def nodes_ready() -> bool:
            code, body = api(layout, "GET", "/api/v1/nodes")
            if code != 200 or not isinstance(body, dict):
                return False
            ready = {n["metadata"]["name"] for n in body.get("items", []) if any(
                c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))}
            return names <= ready

        _wait("kwok nodes Ready", nodes_ready, timeout_s, dead)
        step(f"{len(names)} kwok nodes Ready")
        _wait("the default service account", lambda: api(
            layout, "GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200, timeout_s, dead)
        step("controller-manager and scheduler running")
        if layout.controllers:
            from gpuplane.sandbox import controllers

            def launch(name: str, argv: list[str], exe: str) -> None:
                procs[name] = _start(layout, name, argv, pids, exe)

            from gpuplane.sandbox import karpenter

            try:
                controllers.start(layout, bindir, api, launch, lambda what, check: _wait(what, check, timeout_s, dead), step)
                karpenter.start(layout, bindir, api, launch, lambda what, check: _wait(what, check, timeout_s, dead), step)
            except controllers.ControllerError as e:
                raise SandboxError(str(e)) from None
    except BaseException:
        left = _stop(pids)
        if not left:
            layout.pids_file.unlink(missing_ok=True)
        raise
    return time.monotonic() - start


def down(layout: Layout, purge: bool = False, timeout_s: float = 15.0) -> dict[str, Any]:
    """Stop every process of the sandbox; verify no process and no port is left; optionally remove its folder."""
    if not layout.dir.exists():
        return {"stopped": [], "purged": False}
    pids = _read_pids(layout)
    survivors = _stop(pids, timeout_s)
    if survivors:
        raise SandboxError(f"{', '.join(survivors)} still running after SIGKILL "
                           f"(pids {[pids[n]['pid'] for n in survivors]}); check `ps` and stop them by pid")
    deadline = time.monotonic() + timeout_s
    while busy_ports(layout) and time.monotonic() < deadline:
        time.sleep(0.1)
    layout.pids_file.unlink(missing_ok=True)
    busy = busy_ports(layout)
    if busy and pids:
        raise SandboxError(f"sandbox '{layout.name}' stopped, but port(s) {busy} are still held by another process")
    if purge:
        shutil.rmtree(layout.dir)
    return {"stopped": sorted(pids), "purged": purge}
