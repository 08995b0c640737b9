"""The Kubernetes Pod Security Standards, applied to every pod spec anywhere in a resource.

Contract: ``pss_findings(obj, level, cfg)`` walks any JSON-shaped object (a Deployment, a Job,
a JobSet, a Knative Service, an Argo Workflow, a Kubeflow PyTorchJob, a RayCluster, any custom
resource, a PersistentVolume, a rendered Helm manifest) and returns ``(path, message)`` for
every control of the Pod Security Standards (kubernetes.io/docs/concepts/security/
pod-security-standards) the object breaks. Nothing is found by kind: field-local controls are
checked on every ``securityContext``, ``hostPath``, ``ports`` and ``annotations`` wherever they
sit, and the pod-level controls of the restricted level on every dict that looks like a pod
spec (a ``containers`` list of dicts with ``image`` or ``name``, or an Argo template's
``container`` / ``script``). Strings that hold YAML or JSON with pod fields (``podSpecPatch``)
are parsed and walked too.

Baseline controls: HostProcess, host namespaces, privileged, capabilities beyond the baseline
list, hostPath volumes (``..`` is resolved before ``allowedHostPaths`` is matched), host ports,
AppArmor, SELinux, ``/proc`` mount type, seccomp (not ``Unconfined``), unsafe sysctls.
Restricted adds: volume types, ``allowPrivilegeEscalation: false``, ``runAsNonRoot``, no
``runAsUser: 0``, seccomp ``RuntimeDefault``/``Localhost`` set, capabilities drop ``ALL`` and
add at most ``NET_BIND_SERVICE``.

Pure functions, no I/O; messages say what to change.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
        "image",
    }
)
_CONFINED = ("RuntimeDefault", "Localhost")
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers", "sidecars")
_EMBEDDED_HINTS = ("securityContext", "hostPath", "hostNetwork", "hostPID", "hostIPC", "privileged", "hostPort")
LEVELS = ("baseline", "restricted")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cap(name: Any) -> str:
    return str(name).upper().removeprefix("CAP_")


def _is_container(c: Any) -> bool:
    return isinstance(c, dict) and ("image" in c or "name" in c)


def is_pod_spec(d: Mapping[str, Any]) -> bool:
    """A dict that holds containers: a PodSpec (``containers``) or an Argo template (``container`` / ``script``)."""
    cs = d.get("containers")
    if isinstance(cs, list) and cs and all(_is_container(c) for c in cs):
        return True
    return any(isinstance(d.get(k), dict) and "image" in d[k] for k in ("container", "script"))


def containers_of(spec: Mapping[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for key in _CONTAINER_LISTS:
        for i, c in enumerate(as_list(spec.get(key))):
            if isinstance(c, dict):
                out.append((f"{path}.{key}[{i}]", c))
    for key in ("container", "script"):
        c = spec.get(key)
        if isinstance(c, dict) and "image" in c:
            out.append((f"{path}.{key}", c))
    cset = spec.get("containerSet")
    if isinstance(cset, dict):
        for i, c in enumerate(as_list(cset.get("containers"))):
            if isinstance(c, dict):
                out.append((f"{path}.containerSet.containers[{i}]", c))
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def walk(obj: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict in ``obj`` with its path; YAML/JSON strings holding pod fields are parsed and walked."""
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from walk(v, _join(path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")
    elif isinstance(obj, str) and 10 <= len(obj) < 262144 and any(h in obj for h in _EMBEDDED_HINTS):
        try:
            parsed = json.loads(obj) if obj.lstrip().startswith(("{", "[")) else yaml.safe_load(obj)
        except (ValueError, yaml.YAMLError):
            return
        if isinstance(parsed, (dict, list)):
            yield from walk(parsed, f"{path}(parsed)")


def _security_context(sc: Mapping[str, Any], where: str, level: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if sc.get("privileged") is True:
        out.append(
            (
                where,
                f"{where}.privileged is true. Remove it; request GPUs with resources.limits nvidia.com/gpu instead.",
            )
        )
    if _get(sc, "windowsOptions", "hostProcess") is True:
        out.append(
            (
                where,
                f"{where}.windowsOptions.hostProcess is true. Remove it; HostProcess containers have full access to the node.",
            )
        )
    caps = as_dict(sc.get("capabilities"))
    added = [str(c) for c in as_list(caps.get("add"))]
    allowed = {"NET_BIND_SERVICE"} if level == "restricted" else BASELINE_CAPABILITIES
    extra = [c for c in added if _cap(c) not in allowed]
    if extra:
        out.append(
            (
                where,
                f"{where}.capabilities.add has {extra}, beyond the {level} set. Remove them (allowed: {sorted(allowed)}).",
            )
        )
    proc = sc.get("procMount")
    if proc not in (None, "Default"):
        out.append((where, f"{where}.procMount is {proc!r}. Set it to 'Default' or remove it."))
    se = as_dict(sc.get("seLinuxOptions"))
    if se.get("type") not in (None, *SELINUX_TYPES):
        out.append((where, f"{where}.seLinuxOptions.type is {se.get('type')!r}. Use container_t (or remove it)."))
    for k in ("user", "role"):
        if se.get(k) not in (None, ""):
            out.append((where, f"{where}.seLinuxOptions.{k} is {se.get(k)!r}. Remove it."))
    for key in ("seccompProfile", "appArmorProfile"):
        t = _get(sc, key, "type")
        if t is not None and t not in _CONFINED:
            out.append((where, f"{where}.{key}.type is {t!r}. Set it to RuntimeDefault or Localhost."))
    for s in as_list(sc.get("sysctls")):
        name = s.get("name") if isinstance(s, dict) else None
        if name is not None and name not in SAFE_SYSCTLS:
            out.append(
                (where, f"{where}.sysctls sets {name!r}, which is not a safe sysctl. Remove it, or set it on the node.")
            )
    if level == "restricted" and sc.get("runAsUser") == 0:
        out.append((where, f"{where}.runAsUser is 0 (root). Run as a non-zero user ID."))
    return out


def _get(d: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = d
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def _host_path_ok(raw: str, allowed: list[str]) -> bool:
    norm = posixpath.normpath("/" + raw.lstrip("/")) if raw else "/"
    return any(norm == a.rstrip("/") or norm.startswith(a.rstrip("/") + "/") for a in allowed if a)


def _restricted_pod(spec: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pod_sc = as_dict(spec.get("securityContext"))
    for i, vol in enumerate(as_list(spec.get("volumes"))):
        if isinstance(vol, dict):
            kinds = [k for k in vol if k != "name"]
            bad = [k for k in kinds if k not in RESTRICTED_VOLUMES and k != "hostPath"]  # hostPath: baseline says it
            if bad:
                out.append(
                    (
                        f"{path}.volumes[{i}]",
                        f"{path}.volumes[{i}] ('{vol.get('name')}') is a {bad[0]} volume, not allowed at the restricted level. Use a persistentVolumeClaim, emptyDir, configMap, secret or projected volume.",
                    )
                )
    pod_nonroot = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = _get(pod_sc, "seccompProfile", "type") in _CONFINED
    for cpath, c in containers_of(spec, path):
        sc = as_dict(c.get("securityContext"))
        name = c.get("name") or cpath
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(
                (
                    cpath,
                    f"container '{name}' ({cpath}) does not set securityContext.allowPrivilegeEscalation: false. Set it.",
                )
            )
        nonroot = sc.get("runAsNonRoot")
        if not (nonroot is True or (pod_nonroot and nonroot is None)):
            out.append(
                (
                    cpath,
                    f"container '{name}' ({cpath}) may run as root. Set securityContext.runAsNonRoot: true (pod or container).",
                )
            )
        if (
            not (pod_seccomp and _get(sc, "seccompProfile", "type") is None)
            and _get(sc, "seccompProfile", "type") not in _CONFINED
        ):
            out.append(
                (
                    cpath,
                    f"container '{name}' ({cpath}) has no seccomp profile. Set securityContext.seccompProfile.type: RuntimeDefault (pod or container).",
                )
            )
        drops = {_cap(x) for x in as_list(_get(sc, "capabilities", "drop")) if isinstance(x, str)}
        if "ALL" not in drops:
            out.append(
                (
                    cpath,
                    f"container '{name}' ({cpath}) does not drop all capabilities. Set securityContext.capabilities.drop: [ALL].",
                )
            )
    return out


def pss_findings(obj: Any, level: str = "baseline", cfg: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(path, message)`` for every Pod Security Standards control ``obj`` breaks at ``level``."""
    cfg = cfg or {}
    allowed_paths = [str(p) for p in cfg.get("allowedHostPaths") or []]
    allowed_ports = {int(p) for p in cfg.get("allowedHostPorts") or [] if isinstance(p, (int, float))}
    out: list[tuple[str, str]] = []
    for path, d in walk(obj):
        for flag in _HOST_NAMESPACES:
            if d.get(flag) is True:
                out.append(
                    (path, f"{_join(path, flag)} is true. Remove it; pods must not share the node's namespaces.")
                )
        hp = d.get("hostPath")
        if isinstance(hp, dict):
            raw = hp.get("path")
            if isinstance(raw, str) and not _host_path_ok(raw, allowed_paths):
                resolved = posixpath.normpath("/" + raw.lstrip("/"))
                shown = raw if resolved == raw else f"{raw} (resolves to {resolved})"
                out.append(
                    (
                        path,
                        f"{_join(path, 'hostPath')} mounts the host path {shown}. Use a PersistentVolumeClaim, emptyDir or object storage instead.",
                    )
                )
        sc = d.get("securityContext")
        if isinstance(sc, dict):
            out += _security_context(sc, _join(path, "securityContext"), level)
        ports = d.get("ports")
        if isinstance(ports, list):
            for i, port in enumerate(ports):
                hport = port.get("hostPort") if isinstance(port, dict) else None
                if (
                    isinstance(hport, (int, float))
                    and not isinstance(hport, bool)
                    and hport > 0
                    and int(hport) not in allowed_ports
                ):
                    out.append(
                        (
                            path,
                            f"{path}.ports[{i}].hostPort is {int(hport)}. Remove it and expose the port through a Service.",
                        )
                    )
        ann = d.get("annotations")
        if isinstance(ann, dict):
            for k, v in ann.items():
                if str(k).startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                    v == "runtime/default" or str(v).startswith("localhost/")
                ):
                    out.append((path, f"{path}.annotations['{k}'] is {v!r}. Set it to runtime/default."))
                if (
                    str(k).startswith(
                        ("seccomp.security.alpha.kubernetes.io/", "container.seccomp.security.alpha.kubernetes.io/")
                    )
                    and str(v) == "unconfined"
                ):
                    out.append((path, f"{path}.annotations['{k}'] is 'unconfined'. Set it to runtime/default."))
        if level == "restricted" and is_pod_spec(d):
            out += _restricted_pod(d, path)
    return out
