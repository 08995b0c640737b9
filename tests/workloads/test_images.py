"""Every command the reference plans run in a container runs in an image that holds its code and deps.

Without Docker: the four reference stacks are planned in-process (the same engine as
``gpuplane plan``), every container spec in them is walked (Kubernetes pod specs in Deployments,
Jobs, JobSets, Knative Services and Argo WorkflowTemplates, Cloud Run containers, SageMaker
models), and each (image, command) pair is checked against the Dockerfile of that image:

- the effective argv is Kubernetes' (``command`` replaces ENTRYPOINT, ``args`` replace CMD;
  SageMaker runs ``docker run IMAGE serve``); every ``python -m MODULE`` in it (also after torchrun's
  ``-m`` and inside ``sh -c``) and every ``python -c`` snippet is resolved;
- the Dockerfile COPYs every file of the module's import closure within ``workloads/``;
- every third-party package that closure imports (top-level imports, mapped to distributions by
  ``importlib.metadata.packages_distributions()``) is installed by the Dockerfile's ``pip install``
  lines (directly or as a dependency, read from the installed packages' metadata) and declared in
  pyproject's ``workloads`` / ``features`` extras; a console script (``feast``) must come from an
  installed distribution;
- the base image, USER, WORKDIR and ENTRYPOINT are those the README's image table documents.

Images that are not ours (Envoy, the AWS and Google Cloud CLIs, vLLM, pause) must appear in
``THIRD_PARTY`` with the executables they provide.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import json
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gpuplane.engine.plan import available_stacks, plan_stack

ROOT = Path(__file__).resolve().parents[2]
THIRD_PARTY: dict[str, set[str | None]] = {
    # image repository (no tag) -> executables a spec may run in it (None: the image's own entrypoint)
    "envoyproxy/envoy": {None},
    "public.ecr.aws/aws-cli/aws-cli": {"aws"},
    "gcr.io/google.com/cloudsdktool/google-cloud-cli": {"gcloud"},
    "vllm/vllm-openai": {None},
    "registry.k8s.io/pause": {None},
}


@dataclass(frozen=True)
class Spec:
    image: str
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    where: str


@dataclass
class Dockerfile:
    path: Path
    base: str = ""
    user: str = ""
    workdir: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    pip: list[Requirement] = field(default_factory=list)


@functools.cache
def parse_dockerfile(path: Path) -> Dockerfile:
    text = re.sub(r"\\\n", " ", path.read_text())
    d = Dockerfile(path)
    args: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        for k, v in args.items():
            rest = rest.replace("${" + k + "}", v).replace("$" + k, v)
        if word == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k] = v
        elif word == "FROM":
            d.base = rest.split()[0]
        elif word == "USER":
            d.user = rest
        elif word == "WORKDIR":
            d.workdir = rest
        elif word in ("ENTRYPOINT", "CMD"):
            setattr(d, word.lower() if word == "CMD" else "entrypoint", json.loads(rest))
        elif word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            d.copies += parts[:-1]
        elif word == "RUN":
            for segment in re.split(r"&&|;", rest):
                tokens = shlex.split(segment)
                if "pip" in tokens and "install" in tokens:
                    tokens = tokens[tokens.index("install") + 1:]
                    skip = False
                    for t in tokens:
                        if skip:
                            skip = False
                        elif t in ("--index-url", "--extra-index-url", "-i", "-r", "-c"):
                            skip = True
                        elif not t.startswith("-"):
                            d.pip.append(Requirement(t))
    return d


def readme_images() -> dict[str, dict[str, str]]:
    """The README's image table: image name -> Dockerfile, base, user, workdir, entrypoint."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- images:start -->")[1].split("<!-- images:end -->")[0]
    rows = [[c.strip().strip("`") for c in line.strip().strip("|").split("|")] for line in block.splitlines() if line.startswith("|")]
    header, body = rows[0], [r for r in rows[2:]]
    return {r[0]: dict(zip(header, r, strict=True)) for r in body}


def _containers(obj: object, where: str) -> Iterator[Spec]:
    if isinstance(obj, dict):
        image = obj.get("image")
        if isinstance(image, str):
            if "modelDataUrl" in obj or "modelDataSource" in obj or ("environment" in obj and "name" not in obj):
                yield Spec(image, None, ("serve",), where + " (SageMaker: docker run IMAGE serve)")
            elif "name" in obj or "command" in obj or "args" in obj:
                c, a = obj.get("command"), obj.get("args")
                yield Spec(image, tuple(c) if c else None, tuple(a) if a else None, where)
        for v in obj.values():
            yield from _containers(v, where)
    elif isinstance(obj, list):
        for v in obj:
            yield from _containers(v, where)


@functools.cache
def plan_specs() -> tuple[Spec, ...]:
    out: dict[tuple[str, tuple[str, ...] | None, tuple[str, ...] | None], Spec] = {}
    for stack in available_stacks():
        for r in plan_stack(stack).resources:
            if r.type.startswith("gpuplane:"):  # component summaries repeat their children's inputs
                continue
            for s in _containers(r.inputs, f"{stack}: {r.type} {r.name}"):
                out.setdefault((s.image, s.command, s.args), s)
    return tuple(out.values())


def repository(image: str) -> str:
    name = image.rsplit("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def our_image(image: str) -> str | None:
    """``gpuplane-training`` for ``.../gpuplane-training:0.1.0`` or ``ghcr.io/gpuplane/training:0.1.0``."""
    repo = repository(image)
    last = repo.rsplit("/", 1)[-1]
    if last.startswith("gpuplane-"):
        return last
    if "/gpuplane/" in repo + "/" and "/" in repo:
        return "gpuplane-" + last
    return None


def effective_argv(spec: Spec, d: Dockerfile) -> list[str]:
    command = list(spec.command) if spec.command else list(d.entrypoint)
    args = list(spec.args) if spec.args is not None else ([] if spec.command else list(d.cmd))
    return command + args


def python_uses(argv: list[str]) -> tuple[set[str], list[str], set[str]]:
    """(modules run with -m, python -c snippets, other executables) in an argv, also inside sh -c."""
    modules: set[str] = set()
    snippets: list[str] = []
    exes: set[str] = set()
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["bash", "-c"]:
        script = argv[2]
        modules |= set(re.findall(r"python3?\s+-m\s+([\w.]+)", script))
        snippets += re.findall(r"python3?\s+-c\s+'([^']*)'", script)
        return modules, snippets, exes
    if argv and argv[0] in ("python", "python3"):
        if argv[1:2] == ["-c"]:
            snippets.append(argv[2])
    elif argv:
        exes.add(argv[0])
    for i, a in enumerate(argv[:-1]):
        if a == "-m":
            modules.add(argv[i + 1])
    return modules, snippets, exes


def module_file(module: str, run: bool = False) -> Path:
    """The file ``import module`` executes (``run``: the one ``python -m module`` executes)."""
    base = ROOT.joinpath(*module.split("."))
    for p in ((base / "__main__.py",) if run else ()) + (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    raise AssertionError(f"module {module} has no file under {ROOT}")


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``if TYPE_CHECKING:`` or a ``try`` that catches ImportError (an optional import)."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test) and node in parent.body:
            return True
        if isinstance(parent, ast.Try) and node in parent.body and any(
                h.type is not None and "ImportError" in ast.unparse(h.type) for h in parent.handlers):
            return True
        node = parent
    return False


def imports_of(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if _guarded(node, parents):
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m and m != "__future__"}


def closure(modules: set[str], snippets: list[str]) -> tuple[set[Path], set[str]]:
    """Files under workloads/ and third-party top-level names that running these needs."""
    return _closure(frozenset(modules), tuple(snippets))


@functools.cache
def _closure(modules: frozenset[str], snippets: tuple[str, ...]) -> tuple[set[Path], set[str]]:
    files: set[Path] = set()
    third: set[str] = set()
    todo: list[tuple[str | None, str | None, bool]] = [(m, None, True) for m in modules] + [(None, s, False) for s in snippets]
    seen: set[tuple[str, bool]] = set()
    while todo:
        mod, snippet, run = todo.pop()
        if snippet is not None:
            names = imports_of(snippet, "")
        else:
            assert mod is not None
            if (mod, run) in seen:
                continue
            seen.add((mod, run))
            path = module_file(mod, run)
            parts = mod.split(".")
            for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
                init = ROOT.joinpath(*parts[:i], "__init__.py")
                if init.is_file():
                    todo.append((".".join(parts[:i]), None, False))
            files.add(path)
            pkg = mod if path.name in ("__init__.py", "__main__.py") else mod.rpartition(".")[0]
            names = imports_of(path.read_text(), pkg)
            if path.name == "__main__.py":  # python -m pkg imports pkg/__init__ first
                todo.append((mod, None, False))
        for name in names:
            top = name.split(".")[0]
            if top == "workloads":
                # `from workloads.x import y`: y is a module or a name in x
                cand = name
                while cand and not any(p.is_file() for p in (ROOT.joinpath(*cand.split(".")).with_suffix(".py"),
                                                                ROOT.joinpath(*cand.split("."), "__init__.py"))):
                    cand = cand.rpartition(".")[0]
                if cand and cand != "workloads":
                    todo.append((cand, None, False))
                elif cand == "workloads":
                    files.add(ROOT / "workloads" / "__init__.py")
            elif top not in sys.stdlib_module_names:
                third.add(top)
    return files, third


@functools.cache
def distributions_of(top: str) -> tuple[str, ...]:
    return tuple(canonicalize_name(d) for d in md.packages_distributions().get(top, []))


def requirement_closure(reqs: list[Requirement]) -> set[str]:
    out: set[str] = set()
    todo = [(r, frozenset()) for r in reqs]
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in out:
            continue
        out.add(key)
        out.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None:
                todo.append((sub, frozenset()))
                continue
            for extra in ["", *sorted(req.extras)]:
                env = {**default_environment(), "extra": extra}
                if sub.marker.evaluate(env):
                    todo.append((sub, frozenset()))
                    break
    return {n for n in out if "[" not in n}


@functools.cache
def _installed(dockerfile: Path) -> frozenset[str]:
    return frozenset(requirement_closure(parse_dockerfile(dockerfile).pip))


def console_script_dist(exe: str) -> str | None:
    for ep in md.entry_points(group="console_scripts"):
        if ep.name == exe and ep.dist is not None:
            return canonicalize_name(ep.dist.name)
    return None


@functools.cache
def extras_closure() -> frozenset[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = [Requirement(r) for r in project["dependencies"] + extras["workloads"] + extras["features"]]
    return frozenset(requirement_closure(reqs))


def check(spec: Spec, images: dict[str, dict[str, str]]) -> list[str]:
    """Every way ``spec`` would fail to run in its image, as messages (empty: it runs)."""
    ours = our_image(spec.image)
    if ours is None:
        allowed = THIRD_PARTY.get(repository(spec.image))
        if allowed is None:
            return [f"{spec.where}: image {spec.image} is neither ours nor listed in THIRD_PARTY"]
        exe = spec.command[0] if spec.command else None
        return [] if exe in allowed else [f"{spec.where}: runs {exe!r} in {spec.image}, which provides {allowed}"]
    if ours not in images:
        return [f"{spec.where}: image {ours} is not in the README's image table (<!-- images:start -->)"]
    dockerfile = ROOT / images[ours]["Dockerfile"]
    if not dockerfile.is_file():
        return [f"{spec.where}: {ours}'s Dockerfile {images[ours]['Dockerfile']} does not exist"]
    d = parse_dockerfile(dockerfile)
    argv = effective_argv(spec, d)
    modules, snippets, exes = python_uses(argv)
    files, third = closure(modules, snippets)
    problems: list[str] = []
    rel = lambda p: p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p)  # noqa: E731
    for f in sorted(files):
        if not any(rel(f) == c.rstrip("/") or rel(f).startswith(c.rstrip("/") + "/") for c in d.copies):
            problems.append(f"{spec.where}: {' '.join(argv)[:120]} needs {rel(f)}, which {rel(dockerfile)} does not COPY")
    installed = _installed(dockerfile)
    for top in sorted(third):
        dists = distributions_of(top)
        if not dists:
            problems.append(f"{spec.where}: imports {top}, which no installed distribution provides (add it to pyproject's extras)")
        elif not set(dists) & installed:
            problems.append(f"{spec.where}: imports {top} ({'/'.join(dists)}), which {rel(dockerfile)} does not pip install")
        elif not set(dists) & extras_closure():
            problems.append(f"{spec.where}: imports {top} ({'/'.join(dists)}), which pyproject's workloads/features extras do not declare")
    for exe in sorted(exes - {"python", "python3", "sh", "bash"}):
        dist = console_script_dist(exe)
        if dist is None or dist not in installed:
            problems.append(f"{spec.where}: runs {exe!r}, which {rel(dockerfile)} does not install")
    return problems


def test_the_plans_run_containers_of_our_three_images_and_known_third_party_ones():
    specs = plan_specs()
    ours = {our_image(s.image) for s in specs} - {None}
    assert ours == {"gpuplane-training", "gpuplane-serving", "gpuplane-features"}, ours
    assert any("workloads.pipeline.evaluate" in " ".join(s.command or ()) for s in specs)
    assert any(s.args == ("serve",) for s in specs)  # SageMaker


def test_each_container_command_runs_in_an_image_holding_its_code_and_deps():
    """Every (image, command) pair of the four plans; all problems listed at once (the plans run
    when the test runs, not at collection)."""
    specs = plan_specs()
    assert len(specs) > 20
    images = readme_images()
    problems = [p for spec in specs for p in check(spec, images)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("image", sorted(readme_images()))
def test_dockerfile_base_user_workdir_and_entrypoint_are_as_documented(image):
    doc = readme_images()[image]
    d = parse_dockerfile(ROOT / doc["Dockerfile"])
    assert (d.base, d.user, d.workdir) == (doc["base"], doc["user"], doc["workdir"]), doc["Dockerfile"]
    assert " ".join(d.entrypoint) == (doc["entrypoint"] if doc["entrypoint"] != "none" else ""), doc["Dockerfile"]
    assert d.user not in ("", "0", "root"), "images run as a non-root user"


def test_the_check_fails_for_a_module_the_image_does_not_hold(tmp_path, monkeypatch):
    """The check can fail: the evaluate step against the training Dockerfile as it was before the
    pipeline code and MLflow were added (no COPY workloads/pipeline, no mlflow-skinny)."""
    images = readme_images()
    training = (ROOT / images["gpuplane-training"]["Dockerfile"]).read_text()
    old = "\n".join(line for line in training.splitlines() if "workloads/pipeline" not in line)
    old = re.sub(r'"mlflow-skinny[^"]*"', "", old)
    (tmp_path / "Dockerfile").write_text(old)
    monkeypatch.setitem(images["gpuplane-training"], "Dockerfile", str(tmp_path / "Dockerfile"))
    spec = next(s for s in plan_specs() if "workloads.pipeline.evaluate" in " ".join(s.command or ()))
    problems = check(spec, images)
    assert any("workloads/pipeline/evaluate.py" in p and "does not COPY" in p for p in problems), problems
    assert any("imports mlflow" in p and "does not pip install" in p for p in problems), problems


PARSERS = {
    "workloads.serving": "workloads.serving.__main__",
    "workloads.serving.router": "workloads.serving.router",
    "workloads.pipeline.evaluate": "workloads.pipeline.evaluate",
    "workloads.pipeline.promote": "workloads.pipeline.promote",
    "workloads.training": "workloads.training.config",
    "workloads.batch": "workloads.batch.__main__",
}
"""Modules whose ``parse_args()`` (else ``build_parser()``) the argv of a container must satisfy."""

def module_args(spec: Spec) -> list[tuple[str, list[str]]]:
    """(module, its arguments) for every ``-m MODULE`` with a known parser in the spec's argv."""
    if our_image(spec.image) is None:
        return []
    d = parse_dockerfile(ROOT / readme_images()[our_image(spec.image)]["Dockerfile"])  # type: ignore[index]
    argv = effective_argv(spec, d)
    if argv[:2] == ["sh", "-c"]:
        script, rest = argv[2], argv[4:]  # argv[3] is $0
        found = re.findall(r"python3?\s+-m\s+([\w.]+)\s+\"\$@\"", script)
        return [(m, rest) for m in found if m in PARSERS]
    return [(argv[i + 1], argv[i + 2:]) for i, a in enumerate(argv[:-1]) if a == "-m" and argv[i + 1] in PARSERS]


def test_each_container_argv_is_accepted_by_its_module():
    import importlib

    cases = [(module, args, s.where) for s in plan_specs() for module, args in module_args(s)]
    assert {m for m, _, _ in cases} == set(PARSERS), "every parser is exercised by some container in the plans"
    problems = []
    for module, args, where in cases:
        entry = importlib.import_module(PARSERS[module])
        parse = getattr(entry, "parse_args", None) or entry.build_parser().parse_args  # serving reads SageMaker's `serve`
        try:
            parse(args)
        except SystemExit:
            problems.append(f"{where}: python -m {module} {' '.join(args)} is rejected by its argument parser")
    assert not problems, "\n".join(problems)


DOCKERFILE_REF = re.compile(r"workloads/(?:[a-z_]+/)*Dockerfile")


def test_every_dockerfile_named_in_the_code_exists():
    named = {(str(p.relative_to(ROOT)), m) for folder in ("components", "stacks", "gpuplane", "policies")
             for p in (ROOT / folder).rglob("*.py") for m in DOCKERFILE_REF.findall(p.read_text())}
    assert named, "no Dockerfile named in the code: the pattern is wrong"
    missing = sorted((f, m) for f, m in named if not (ROOT / m).is_file())
    assert not missing, missing
