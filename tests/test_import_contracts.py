"""The import rules of ARCHITECTURE.md, checked on the real import graph (grimp, as import-linter builds it).

- The import-linter contracts in pyproject.toml hold (the same check as ``make lint``'s ``lint-imports``).
- No import circles: none inside ``components/``, none in the whole package. Every import counts,
  including those under ``if TYPE_CHECKING:`` and inside functions (a lazy import still ties two
  modules together for a reader). ``from pkg import sub`` counts as importing ``pkg`` too (its
  ``__init__`` runs first), so a package whose ``__init__`` imports a submodule that does
  ``from pkg import sibling`` is a circle, as farm-studio reports it; grimp alone records only
  ``pkg.sub``.
- One capability uses another only through its public names: ``components.<capability>``, never
  ``components.<capability>.<module>``.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter import cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "stacks", "policies", "gpuplane", "workloads")
# Folders of components/ that are not capabilities: shared building blocks and facts.
NOT_CAPABILITIES = {"aws", "gcp", "kubernetes", "catalog"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _from_packages(graph: grimp.ImportGraph, importer: str, imported: str) -> set[str]:
    """The ``X`` of each ``from X import name`` line behind an import of ``imported`` (a package whose
    submodule was imported by name), when ``X`` is not ``imported`` itself."""
    found = set()
    for d in graph.get_import_details(importer=importer, imported=imported):
        words = d.get("line_contents", "").split()
        if len(words) >= 3 and words[0] == "from" and words[2] == "import" and words[1] != imported \
                and imported.startswith(words[1] + "."):
            found.add(words[1])
    return found


def _successors(graph: grimp.ImportGraph, module: str, modules: set[str]) -> set[str]:
    direct = graph.find_modules_directly_imported_by(module)
    out = set(direct)
    for imported in direct:
        out |= _from_packages(graph, module, imported)
    out.discard(module)
    return out & modules


def import_cycles(graph: grimp.ImportGraph, scope: str | None = None) -> list[list[str]]:
    """Groups of modules that import each other in a loop (strongly connected components), within ``scope``."""
    modules = {m for m in graph.modules if scope is None or m == scope or m.startswith(scope + ".")}
    succ = {m: sorted(_successors(graph, m, modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        # Tarjan's algorithm, iterative: (module, its remaining successors)
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def _describe(graph: grimp.ImportGraph, cycles: list[list[str]]) -> str:
    lines = []
    for group in cycles:
        members = set(group)
        lines.append("circle: " + ", ".join(group))
        for m in group:
            for n in sorted(graph.find_modules_directly_imported_by(m)):
                details = graph.get_import_details(importer=m, imported=n)
                where = ", ".join(f"line {d['line_number']}" for d in details) or "?"
                for target in sorted(({n} | _from_packages(graph, m, n)) & members - {m}):
                    lines.append(f"    {m} -> {target} ({where})")
    return "\n".join(lines)


def test_import_linter_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, f"an import contract in pyproject.toml is broken:\n{out}"
    assert "0 broken" in out and " kept" in out, out


def test_the_cycle_finder_finds_a_circle() -> None:
    """The check below can fail: a two-module loop is reported, a chain is not."""
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    assert import_cycles(g, "p") == []
    g.add_import(importer="p.c", imported="p.a")
    assert import_cycles(g, "p") == [["p.a", "p.b", "p.c"]]


def test_the_cycle_finder_sees_a_package_and_its_own_submodule() -> None:
    """``p/__init__`` imports ``p.a``; ``p.a`` does ``from p import b``: grimp records only ``p.a -> p.b``, but
    ``p``'s ``__init__`` runs for it, so ``p`` and ``p.a`` are a circle. ``import p.b`` is not."""
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b"):
        g.add_module(m)
    g.add_import(importer="p", imported="p.a", line_number=1, line_contents="from p.a import run")
    g.add_import(importer="p.a", imported="p.b", line_number=1, line_contents="import p.b")
    assert import_cycles(g, "p") == []
    g.add_import(importer="p.a", imported="p.b", line_number=2, line_contents="from p import b")
    assert import_cycles(g, "p") == [["p", "p.a"]]


def test_no_import_circles_in_components(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph, "components")
    assert not cycles, "import circles in components/:\n" + _describe(graph, cycles)


def test_no_import_circles_in_the_whole_package(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "import circles:\n" + _describe(graph, cycles)


def _capability(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "components" or parts[1] in NOT_CAPABILITIES:
        return None
    return parts[1] if (ROOT / "components" / parts[1] / "__init__.py").exists() else None


def test_capabilities_use_each_other_only_through_their_public_names(graph: grimp.ImportGraph) -> None:
    wrong = []
    for importer in sorted(m for m in graph.modules if m.startswith("components.")):
        mine = _capability(importer)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            theirs = _capability(imported)
            if theirs is not None and theirs != mine and imported != f"components.{theirs}":
                wrong.append(f"{importer} imports {imported}: use `from components.{theirs} import ...`")
    assert not wrong, "\n".join(wrong)


def test_cloud_building_blocks_import_no_capability(graph: grimp.ImportGraph) -> None:
    wrong = [
        f"{importer} imports {imported}"
        for importer in sorted(graph.modules)
        if importer.split(".")[:2] in (["components", "aws"], ["components", "gcp"], ["components", "kubernetes"])
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if _capability(imported) is not None
    ]
    assert not wrong, "building blocks under components/{aws,gcp,kubernetes} must not import a capability:\n" + "\n".join(wrong)
