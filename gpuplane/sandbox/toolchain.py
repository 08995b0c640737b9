"""The sandbox's programs, built from their Go modules at pinned versions (``make engine``).

Contract:

- ``BINARIES`` is the table of pins: for each program, the upstream Go module and version it is built
  from, the package path of its ``main``, the recipe folder under ``engine/`` (our own small wrapper
  module: a ``go.mod`` that requires the upstream module, its ``go.sum``, at most a three-line
  ``main.go``; no upstream code) and the ``-ldflags`` that stamp the version the upstream release
  process stamps.
- ``build()`` runs ``go build -trimpath -o CACHE/bin/NAME PKG`` in each recipe folder, one at a
  time, printing one progress line per program, into ``engine_cache()/<key>/bin`` where ``<key>``
  hashes the pins (program, module, version): a new pin gets a new folder, an unchanged one is
  reused. A program counts as built when its binary and its stamp file (written after the build)
  both exist and the stamp holds the program's current ``fingerprint`` (its pin and recipe files),
  so a changed recipe rebuilds that program alone, and a second run takes seconds.
- Only the Go module proxy is used (whatever ``GOPROXY`` the machine has); nothing is downloaded
  from anywhere else, and nothing is written inside the clone.
- A program whose module the proxy does not serve is listed with ``blocked`` set to the exact error;
  it is reported, never replaced by a stand-in.
- No ``go`` on PATH: ``ToolchainError`` with one line saying what is missing and how to install it
  (the CLI exits 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "engine"

KUBERNETES_VERSION = "v1.33.13"
PULUMI_VERSION = "v3.276.0"
_K8S_LDFLAGS = (
    f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}",
    "-X k8s.io/component-base/version.gitMajor=1",
    "-X k8s.io/component-base/version.gitMinor=33",
    "-X k8s.io/component-base/version.gitTreeState=clean",
    f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}",
    "-X k8s.io/client-go/pkg/version.gitMajor=1",
    "-X k8s.io/client-go/pkg/version.gitMinor=33",
    "-X k8s.io/client-go/pkg/version.gitTreeState=clean",
)
_PULUMI_LDFLAGS = (f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}",)
_LANGUAGE_HOST_BLOCKED = (
    "the Go module proxy reachable here does not serve github.com/pulumi/pulumi/sdk/{lang} at any version: "
    "`go list -m -versions` and the pseudo-versions of release commits (e.g. v3.0.0-20260713131259-e6a4ba65c60f, "
    "the commit of v3.252.0) answer '403 Forbidden: This module version is not available.'"
)


@dataclass(frozen=True)
class Binary:
    """One program of the toolchain."""

    name: str
    """File name under ``bin/`` (what the sandbox, Pulumi and the user's shell run)."""
    recipe: str
    """Folder under ``engine/`` holding the wrapper module it is built from."""
    package: str
    """Import path of its ``main`` package (``.`` for a recipe's own ``main.go``)."""
    module: str
    """Upstream Go module."""
    version: str
    """Upstream version (a release tag, or the pseudo-version of a release commit)."""
    ldflags: tuple[str, ...] = ()
    """``-X`` stamps the upstream release build sets (versions the program reports)."""
    sandbox: bool = False
    """Needed by ``gpuplane sandbox up``."""
    blocked: str = ""
    """Why it cannot be built from the Go module proxy (exact error); empty when it can."""
    controller: bool = False
    """Run by ``gpuplane sandbox up --controllers`` (Kueue, JobSet, Karpenter's kwok provider). Controllers are
    not part of ``cache_key``: they were added after the base toolchain and share its folder, each rebuilt when
    its own ``fingerprint`` changes, so adding one never invalidates the programs already built."""
    embeds_version: str = ""
    """For a Pulumi provider whose ``main`` embeds files its release build generates (``schema-embed.json``,
    ``terraform-mapping-embed.json``: the module zip has only ``schema.json``): the version written into
    the schema. The package is then built from a copy in the cache with those files made (as its
    ``go generate`` step does), never from a copy in the clone."""


BINARIES: tuple[Binary, ...] = (
    Binary("etcd", "etcd", ".", "go.etcd.io/etcd/server/v3", "v3.6.16", sandbox=True),
    Binary("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes",
           KUBERNETES_VERSION, _K8S_LDFLAGS, sandbox=True),
    Binary("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok", "v0.7.0", sandbox=True),
    Binary("kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager",
           "k8s.io/kubernetes", KUBERNETES_VERSION, _K8S_LDFLAGS, sandbox=True),
    Binary("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes",
           KUBERNETES_VERSION, _K8S_LDFLAGS, sandbox=True),
    Binary("kubectl", "kubernetes", "k8s.io/kubernetes/cmd/kubectl", "k8s.io/kubernetes", KUBERNETES_VERSION,
           _K8S_LDFLAGS, sandbox=True),
    Binary("helm", "helm", "helm.sh/helm/v3/cmd/helm", "helm.sh/helm/v3", "v3.21.4",
           ("-X helm.sh/helm/v3/internal/version.version=v3.21.4", "-X helm.sh/helm/v3/internal/version.gitTreeState=clean")),
    Binary("pulumi", "pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "github.com/pulumi/pulumi/pkg/v3",
           PULUMI_VERSION, _PULUMI_LDFLAGS),
    Binary("pulumi-language-python", "", "", "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3",
           "", blocked=_LANGUAGE_HOST_BLOCKED.format(lang="python/cmd/pulumi-language-python/v3")),
    Binary("pulumi-resource-kubernetes", "pulumi-kubernetes",
           "github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes",
           "github.com/pulumi/pulumi-kubernetes/provider/v4", "v4.0.0-20260115033456-f47bc2d6f199",
           ("-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=4.24.0-dev.f47bc2d6",),
           embeds_version="4.24.0-dev.f47bc2d6"),
    Binary("pulumi-language-nodejs", "", "", "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3",
           "", blocked=_LANGUAGE_HOST_BLOCKED.format(lang="nodejs/cmd/pulumi-language-nodejs/v3")),
    Binary("pulumi-language-go", "", "", "github.com/pulumi/pulumi/sdk/go/pulumi-language-go/v3",
           "", blocked=_LANGUAGE_HOST_BLOCKED.format(lang="go/pulumi-language-go/v3")),
    Binary("pulumi-language-yaml", "pulumi-yaml", "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml",
           "github.com/pulumi/pulumi-yaml", "v1.25.0",
           ("-X github.com/pulumi/pulumi-yaml/pkg/version.Version=v1.25.0",)),
    Binary("pulumi-resource-random", "", "", "github.com/pulumi/pulumi-random/provider/v4", "",
           blocked="the Go module proxy reachable here does not serve github.com/pulumi/pulumi-random/provider/v4: "
           "`go list -m -versions` answers '403 Forbidden: This module version is not available.'"),
)
# The controllers `gpuplane sandbox up --controllers` runs. Kueue v0.19.2 and JobSet v0.12.0 are the pins
# and are served exactly; Karpenter has no pin in the issue: v1.15.0's go.mod needs go 1.26.9 (newer than the
# go 1.26.8 here), so v1.14.1 (go 1.26.6) is the newest release that builds with the Go on this machine.
KUEUE_VERSION = "v0.19.2"
JOBSET_VERSION = "v0.12.0"
KARPENTER_VERSION = "v1.14.1"
# Knative Serving v1.21.2 (module v0.48.2): the sandbox runs Kubernetes 1.33, and 1.21 is the newest Serving
# release whose minimum is 1.33 (1.22 and 1.23 need 1.34; knative.dev/pkg version/version.go), the one gpuplane
# installs through the pinned knative-operator chart 1.23.0 on a 1.33 cluster (components/inference/knative.py).
KNATIVE_SERVING_VERSION = "v0.48.2"
BINARIES += (
    Binary("kueue", "kueue", "sigs.k8s.io/kueue/cmd/kueue", "sigs.k8s.io/kueue", KUEUE_VERSION,
           (f"-X sigs.k8s.io/kueue/pkg/version.GitVersion={KUEUE_VERSION}",), controller=True),
    Binary("jobset", "jobset", "sigs.k8s.io/jobset", "sigs.k8s.io/jobset", JOBSET_VERSION,
           (f"-X sigs.k8s.io/jobset/pkg/version.GitVersion={JOBSET_VERSION}",), controller=True),
    Binary("karpenter-kwok", "karpenter", "sigs.k8s.io/karpenter/kwok", "sigs.k8s.io/karpenter", KARPENTER_VERSION,
           controller=True),
    Binary("knative-serving-controller", "knative-serving", "knative.dev/serving/cmd/controller", "knative.dev/serving",
           KNATIVE_SERVING_VERSION, controller=True),
)
CONTROLLER_BINARIES = tuple(b.name for b in BINARIES if b.controller)
SANDBOX_BINARIES = tuple(b.name for b in BINARIES if b.sandbox)


class ToolchainError(RuntimeError):
    """The toolchain cannot be built or is incomplete; the message is one line with the fix."""


def engine_cache() -> Path:
    """``$GPUPLANE_ENGINE_CACHE``, else ``~/.cache/gpuplane/engine`` (outside any clone)."""
    root = os.environ.get("GPUPLANE_ENGINE_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gpuplane" / "engine"


def _recipe_files(recipe: str, recipes: Path) -> list[Path]:
    folder = recipes / recipe
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and (p.name in ("go.mod", "go.sum") or p.suffix == ".go"))


def cache_key(binaries: Iterable[Binary] = BINARIES) -> str:
    """Hash of the base pins (program, module, version, version stamps): equal pins, equal folder (16 hex
    digits). Controllers are left out (see ``Binary.controller``)."""
    h = hashlib.sha256()
    for b in binaries:
        if b.controller:
            continue
        h.update(json.dumps([b.name, b.module, b.version, list(b.ldflags)]).encode())
    return h.hexdigest()[:16]


def fingerprint(b: Binary, recipes: Path = RECIPES) -> str:
    """Hash of one program's pin and its recipe files: a program is rebuilt when this changes (a new
    go.sum, a replace directive), without rebuilding the others in the same folder."""
    h = hashlib.sha256(json.dumps([b.name, b.recipe, b.package, b.module, b.version, list(b.ldflags),
                                   b.embeds_version]).encode())
    for f in _recipe_files(b.recipe, recipes) if b.recipe else []:
        h.update(f"{f.name}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def bin_dir(cache: Path | None = None, key: str | None = None) -> Path:
    """The folder holding the built programs for the current pins."""
    return (cache or engine_cache()) / (key or cache_key()) / "bin"


def _stamp(bindir: Path, name: str) -> Path:
    return bindir / f".{name}.built"


def _by_name(name: str) -> Binary:
    return next(b for b in BINARIES if b.name == name)


def is_built(name: str, bindir: Path | None = None, recipes: Path = RECIPES) -> bool:
    """The binary is there, its build finished (the stamp is written after it) and the stamp's fingerprint
    is the current one."""
    bindir = bindir or bin_dir()
    if not (bindir / name).is_file():
        return False
    try:
        stamp = json.loads(_stamp(bindir, name).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("fingerprint") == fingerprint(_by_name(name), recipes))


def missing(names: Iterable[str], bindir: Path | None = None) -> list[str]:
    bindir = bindir or bin_dir()
    return [n for n in names if not is_built(n, bindir)]


def go_command() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolchainError(
            "`go` is not on PATH: the sandbox's programs are built from their Go modules. Install Go 1.26 or newer "
            "(https://go.dev/doc/install; Debian/Ubuntu's golang-go package is too old) and run `make engine` again."
        )
    return go


def go_build_command(go: str, b: Binary, out: Path, package: str | None = None) -> list[str]:
    """The one ``go build`` line for a program (run in its recipe folder)."""
    cmd = [go, "build", "-trimpath", "-mod=readonly"]
    if b.ldflags:
        cmd += ["-ldflags", " ".join(b.ldflags)]
    return [*cmd, "-o", str(out), package or b.package]


def pulumi_embeds(folder: Path, version: str) -> None:
    """What a Pulumi provider's ``go generate`` writes beside its ``main``: the schema with its version set,
    and the Terraform mapping, both compact JSON."""
    schema = json.loads((folder / "schema.json").read_text())
    schema["version"] = version
    (folder / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = folder / "terraform-mapping.json"
    if mapping.is_file():
        (folder / "terraform-mapping-embed.json").write_text(json.dumps(json.loads(mapping.read_text()),
                                                                        separators=(",", ":")))


def _generated_copy(go: str, b: Binary, recipes: Path, work: Path) -> tuple[Path, str]:
    """A work module in the cache: the recipe's go.mod/go.sum plus a copy of the main package with its
    generated files. Returns (folder to build in, package path)."""
    listed = subprocess.run([go, "list", "-e", "-f", "{{.Dir}}", b.package], cwd=recipes / b.recipe,
                            capture_output=True, text=True, check=False)
    source = Path(listed.stdout.strip())
    if listed.returncode != 0 or not (source / "main.go").is_file():
        raise ToolchainError(f"{b.name}: cannot find {b.package} in the module cache: {listed.stderr.strip()}")
    shutil.rmtree(work, ignore_errors=True)
    (work / "cmd").mkdir(parents=True)
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(recipes / b.recipe / name, work / name)
    for f in source.iterdir():
        if f.is_file() and (f.suffix == ".json" or (f.suffix == ".go" and "//go:build ignore" not in f.read_text())):
            shutil.copyfile(f, work / "cmd" / f.name)
            (work / "cmd" / f.name).chmod(0o644)
    pulumi_embeds(work / "cmd", b.embeds_version)
    return work, "./cmd"


@dataclass(frozen=True)
class BuildResult:
    name: str
    status: str
    """``built``, ``cached``, ``blocked`` or ``failed``."""
    seconds: float
    detail: str = ""


def build(
    names: Iterable[str] | None = None,
    *,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
    cache: Path | None = None,
    recipes: Path = RECIPES,
) -> list[BuildResult]:
    """Build the programs named (default: all) in table order; reuse the ones already built.

    Returns one result per program. Raises ``ToolchainError`` when ``go`` is missing and something
    needs building; a failed or blocked program is reported in the results (the caller decides)."""
    wanted = set(names) if names is not None else None
    unknown = sorted((wanted or set()) - {b.name for b in BINARIES})
    if unknown:
        raise ToolchainError(f"unknown program(s) {', '.join(unknown)}; known: {', '.join(b.name for b in BINARIES)}")
    todo = [b for b in BINARIES if wanted is None or b.name in wanted]
    bindir = bin_dir(cache)
    results: list[BuildResult] = []
    go: str | None = None
    for i, b in enumerate(todo, 1):
        tag = f"[{i}/{len(todo)}] {b.name}"
        if b.blocked:
            echo(f"{tag}: blocked: {b.blocked}")
            results.append(BuildResult(b.name, "blocked", 0.0, b.blocked))
            continue
        if is_built(b.name, bindir, recipes):
            echo(f"{tag}: cached ({b.module} {b.version})")
            results.append(BuildResult(b.name, "cached", 0.0))
            continue
        go = go or go_command()
        if not (recipes / b.recipe / "go.mod").is_file():
            raise ToolchainError(f"the recipe {recipes / b.recipe / 'go.mod'} is missing: the sandbox's programs are built "
                                 "from a gpuplane clone (its engine/ folder); run `make engine` there")
        bindir.mkdir(parents=True, exist_ok=True)
        echo(f"{tag}: building {b.package} from {b.module} {b.version} ...")
        tmp = bindir / f".{b.name}.tmp"
        start = time.monotonic()
        cwd, package = recipes / b.recipe, b.package
        if b.embeds_version:
            cwd, package = _generated_copy(go, b, recipes, bindir.parent / "work" / b.name)
        proc = subprocess.run(go_build_command(go, b, tmp, package), cwd=cwd,
                              capture_output=True, text=True, check=False)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            detail = (proc.stderr or proc.stdout).strip()
            echo(f"{tag}: FAILED after {seconds:.0f} s:\n{detail}")
            results.append(BuildResult(b.name, "failed", seconds, detail))
            continue
        tmp.replace(bindir / b.name)
        _stamp(bindir, b.name).write_text(json.dumps({"module": b.module, "version": b.version,
                                                      "fingerprint": fingerprint(b, recipes),
                                                      "seconds": round(seconds, 1)}) + "\n")
        echo(f"{tag}: built in {seconds:.0f} s")
        results.append(BuildResult(b.name, "built", seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m gpuplane.sandbox.toolchain [NAME...]`` (``make engine``): build, print a summary.

    Exit 0 when every program asked for is built or blocked-and-reported, 1 when a build failed,
    2 when ``go`` is missing."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        results = build(args or None)
    except ToolchainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"toolchain: {bin_dir()}")
    for r in results:
        print(f"  {r.name:28} {r.status:8} {r.seconds:6.0f} s")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
