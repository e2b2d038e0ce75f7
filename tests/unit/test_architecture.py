"""The dependency rule, read from the package's own imports (ast, no import of the code).

The HTTP layer is `web/` plus every feature's `routes.py`: only it imports Litestar.
Below it, services, queries and schemas never import a routes module; the store
imports no feature; no cycles between packages; nothing in the library imports the CLI.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "helpfaster_box"
FEATURES = {
    "chatbots", "knowledge", "chat", "conversations", "leads", "webhooks", "keys", "organizations",
    "analytics", "evaluations",
}  # fmt: skip
INFRASTRUCTURE = {"store", "llm", "retrieval"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module this file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def is_http(module: str) -> bool:
    parts = module.split(".")
    return (len(parts) > 1 and parts[1] == "web") or parts[-1] == "routes"


def is_cli(module: str) -> bool:
    return module.split(".")[1:2] == ["cli"]


def room(module: str) -> str:
    """The package a module lives in; the HTTP layer counts as one room."""
    if is_http(module):
        return "http"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else (parts[1] if len(parts) == 2 else "")


def internal(imports: set[str]) -> set[str]:
    return {m for m in imports if m.startswith("helpfaster_box.") and m in MODULES}


def test_the_rule_reads_real_imports():
    # The rule below means nothing if the reader finds nothing: guard against a silent parse.
    assert len(MODULES) > 50
    assert "helpfaster_box.chat.service" in MODULES
    assert "helpfaster_box.chat.compose" in internal(MODULES["helpfaster_box.chat.service"])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_http(m) and not is_cli(m)))
def test_only_the_http_layer_imports_litestar(module):
    offending = sorted(i for i in MODULES[module] if i == "litestar" or i.startswith("litestar."))
    assert not offending, f"{module} imports {offending}: HTTP belongs in routes.py or web/"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_http(m)))
def test_below_the_http_layer_nothing_imports_a_route(module):
    routes = sorted(i for i in internal(MODULES[module]) if is_http(i))
    if is_cli(module):  # the CLI sits above the app and may start it
        routes = [r for r in routes if r not in ("helpfaster_box.web.app",)]
    assert not routes, f"{module} imports the HTTP layer: {routes}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if room(m) in INFRASTRUCTURE))
def test_infrastructure_imports_no_feature(module):
    features = sorted(i for i in internal(MODULES[module]) if room(i) in FEATURES)
    assert not features, f"{module} (infrastructure) imports features: {features}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_cli(m)))
def test_the_library_never_imports_its_cli(module):
    cli = sorted(i for i in internal(MODULES[module]) if is_cli(i))
    assert not cli, f"{module} imports the CLI: {cli}"


def test_no_cycles_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imports in MODULES.items():
        if is_cli(module):
            continue
        for target in internal(imports):
            if not is_cli(target) and room(target) != room(module):
                graph[room(module)].add(room(target))
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, f"package cycles: {cycles}"


def test_the_readme_map_names_every_package_and_only_real_ones():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)/`", section, flags=re.MULTILINE))
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert listed == packages, (
        f"README lists {sorted(listed - packages)} not in the code; misses {sorted(packages - listed)}"
    )
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert all(f"`{m}`" in section for m in modules), sorted(m for m in modules if f"`{m}`" not in section)
